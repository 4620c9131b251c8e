"""Protocols: fold structure, determinism, and no speaker/source leakage for each protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from train.data import Clip, DataError, Dataset, load_dataset
from train.protocols import Fold, check_fold, make_folds


def _synthetic(speakers: int = 6, per: int = 20, folds: bool = False, sources_per_speaker: int = 5) -> Dataset:
    clips = []
    for s in range(speakers):
        for i in range(per):
            clips.append(Clip(Path(f"s{s}_{i}.wav"), i % 4, f"spk{s}", f"src{s}_{i % sources_per_speaker}",
                              fold=(s % 3) + 1 if folds else None))
    return Dataset("synthetic", ("a", "b", "c", "d"), tuple(clips))


def _assert_no_leak(ds: Dataset, folds: list[Fold], speakers: bool) -> None:
    for f in folds:
        check_fold(ds.clips, f)
        test = {ds.clips[i] for i in f.test}
        rest = [ds.clips[i] for i in f.train + f.val]
        assert not {c.source for c in test} & {c.source for c in rest}
        assert not {c.source for c in (ds.clips[i] for i in f.train)} & {c.source for c in (ds.clips[i] for i in f.val)}
        if speakers:
            assert not {c.speaker for c in test} & {c.speaker for c in rest}


@pytest.mark.parametrize("protocol", ["loso", "official", "kfold", "split"])
def test_no_leakage_synthetic(protocol):
    ds = _synthetic(folds=True)
    folds = make_folds(ds, protocol, seed=3, k=3)
    _assert_no_leak(ds, folds, speakers=True)
    # every clip is tested exactly once (except the single fixed split)
    tested = sorted(i for f in folds for i in f.test)
    if protocol != "split":
        assert tested == list(range(len(ds.clips)))
    assert make_folds(ds, protocol, seed=3, k=3) == folds  # seeded: deterministic


@pytest.mark.parametrize("protocol", ["loso", "kfold"])
def test_validation_by_speaker_holds_out_unseen_speakers_and_keeps_the_test_sets(protocol):
    """--val-by speaker: no validation speaker trains (by default they do, only their recordings are
    kept apart), while every fold tests exactly what it tests by default, so the two are comparable."""
    ds = _synthetic(speakers=7)
    default = make_folds(ds, protocol, seed=3, k=3)
    by_speaker = make_folds(ds, protocol, seed=3, k=3, val_by="speaker")
    _assert_no_leak(ds, by_speaker, speakers=True)
    speakers = lambda part: {ds.clips[i].speaker for i in part}  # noqa: E731
    assert any(speakers(f.val) & speakers(f.train) for f in default)  # what the option changes
    for d, f in zip(default, by_speaker):
        assert f.test == d.test and f.val and not speakers(f.val) & speakers(f.train)
        assert sorted(f.train + f.val) == sorted(d.train + d.val)
    assert make_folds(ds, protocol, seed=3, k=3, val_by="speaker") == by_speaker
    with pytest.raises(DataError, match="speaker.*in both train and validation"):
        check_fold(ds.clips, default[0], val_by="speaker")


def test_tools_that_rebuild_a_runs_folds_honour_its_validation_grouping():
    """Distillation, ensembles and the order probe rebuild a finished run's folds from its run.json to
    check which clips it trained and validated on: a --val-by speaker run must not read as the default."""
    from train.__main__ import TrainConfig, _identity
    from train.finished import run_folds

    ds = _synthetic(speakers=7)
    cfg = TrainConfig(model="lv42", dataset="x", data=".", protocol="kfold", out=".", seed=3, val_by="speaker")
    assert _identity(cfg)["val_by"] == "speaker"
    assert "val_by" not in _identity(TrainConfig(model="lv42", dataset="x", data=".", protocol="kfold", out="."))
    assert run_folds(_identity(cfg), ds) == make_folds(ds, "kfold", seed=3, val_by="speaker")
    assert run_folds({"protocol": "kfold", "seed": 3}, ds) == make_folds(ds, "kfold", seed=3)  # from before the option


def test_validation_by_speaker_errors():
    ds = _synthetic()
    no_spk = Dataset("x", ds.labels, tuple(Clip(c.path, c.label, None, c.source, fold=1 + i % 2)
                                           for i, c in enumerate(ds.clips)))
    with pytest.raises(DataError, match="no speaker information: --val-by speaker needs speakers"):
        make_folds(no_spk, "official", val_by="speaker")
    with pytest.raises(DataError, match="--val-by speaker applies to loso, official and kfold"):
        make_folds(ds, "split", val_by="speaker")
    with pytest.raises(DataError, match="with --val-by speaker needs at least 4 speakers"):
        make_folds(_synthetic(speakers=3), "loso", val_by="speaker")
    assert len(make_folds(_synthetic(speakers=3), "loso")) == 3  # enough without it
    with pytest.raises(DataError, match="unknown validation grouping 'voice'"):
        make_folds(ds, "kfold", val_by="voice")


def test_check_fold_catches_leak():
    ds = _synthetic()
    bad = Fold(0, "bad", train=(0, 1, 2), val=(3,), test=(4, 20))  # clip 4 shares speaker/source with train
    with pytest.raises(DataError, match="test and training"):
        check_fold(ds.clips, bad)


def test_split_fractions():
    ds = _synthetic(speakers=1, per=200, sources_per_speaker=200)
    ds = Dataset(ds.name, ds.labels, tuple(Clip(c.path, c.label, None, c.source) for c in ds.clips))
    (f,) = make_folds(ds, "split", seed=0)
    assert 150 <= len(f.train) <= 170 and 15 <= len(f.val) <= 25 and 15 <= len(f.test) <= 25


def test_a_split_that_whole_groups_cannot_make_says_what_it_took():
    """Five speakers cannot split 80/10/10: FSDD came out 60/20/20 under the name "split 80/10/10"."""
    ds = _synthetic(speakers=5, per=20)
    (f,) = make_folds(ds, "split", seed=0)
    assert [len(p) for p in (f.train, f.val, f.test)] == [60, 20, 20]
    assert f.name == "split 80/10/10 (taken: 60/20/20 of the clips, in whole speaker or source groups)"
    (close,) = make_folds(_synthetic(speakers=20, per=10), "split", seed=0)  # 16/2/2 speakers: as asked
    assert close.name == "split 80/10/10"


def test_random_split_is_a_plain_clip_split():
    """random-split ignores speakers and recordings (that is its point) but never repeats a clip."""
    ds = _synthetic(folds=True)
    (f,) = make_folds(ds, "random-split", seed=3)
    assert f.name == "random split 80/10/10"
    parts = [set(f.train), set(f.val), set(f.test)]
    assert sum(map(len, parts)) == len(ds.clips) and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    with pytest.raises(DataError, match="test and training"):  # it does share sources: the grouped check rejects it
        check_fold(ds.clips, f)
    assert make_folds(ds, "random-split", seed=3) == [f]


def test_protocol_errors():
    ds = _synthetic()
    no_spk = Dataset("x", ds.labels, tuple(Clip(c.path, c.label, None, c.source) for c in ds.clips))
    with pytest.raises(DataError, match="no speaker"):
        make_folds(no_spk, "loso")
    with pytest.raises(DataError, match="no official folds"):
        make_folds(ds, "official")
    with pytest.raises(DataError, match="unknown protocol"):
        make_folds(ds, "bogus")


def test_fsdd_loso_real(fsdd_dir):
    ds = load_dataset("fsdd", fsdd_dir)
    folds = make_folds(ds, "loso")
    assert len(folds) == 5 and all(len(f.test) == 500 for f in folds)
    _assert_no_leak(ds, folds, speakers=True)


def test_emodb_kfold_real(emodb_dir):
    ds = load_dataset("emodb", emodb_dir)
    folds = make_folds(ds, "kfold", k=3)
    assert len(folds) == 3
    _assert_no_leak(ds, folds, speakers=True)
    assert sorted(i for f in folds for i in f.test) == list(range(len(ds.clips)))
    by_speaker = make_folds(ds, "kfold", k=3, val_by="speaker")
    for d, f in zip(folds, by_speaker):
        check_fold(ds.clips, f, val_by="speaker")
        assert f.test == d.test and len({ds.clips[i].speaker for i in f.val}) >= 1


def test_urbansound_official_and_split_real(urbansound_dir):
    ds = load_dataset("urbansound8k", urbansound_dir)
    folds = make_folds(ds, "official")
    assert [f.name for f in folds] == ["fold=1", "fold=2"]
    _assert_no_leak(ds, folds, speakers=False)
    split = make_folds(ds, "split")
    _assert_no_leak(ds, split, speakers=False)
    n = len(ds.clips)
    assert 0.05 * n < len(split[0].test) < 0.15 * n and 0.05 * n < len(split[0].val) < 0.15 * n
    (leaky,) = make_folds(ds, "random-split")  # the 2D paper's plain split: recordings cross into the test set
    test_sources = {ds.clips[i].source for i in leaky.test}
    crossing = test_sources & {ds.clips[i].source for i in leaky.train}
    assert len(crossing) > len(test_sources) // 2, "a random clip split of UrbanSound8K should leak most recordings"
