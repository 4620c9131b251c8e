"""Bad input to the training-side tools (train.augment, train.data loaders, train.describe,
train.order_probe, train.grid, train.report): one `error: ...` line naming the file, row or option,
a non-zero exit, and nothing written beside a refused --out. Fixtures are a few generated clips."""

from __future__ import annotations

import csv
import errno
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from train.augment import Augment
from train.data import DataError, check_out, decode, load_dataset


def _tone(path: Path, sr: int = 8000, seconds: float = 0.2, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sr * seconds)) / sr
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr, **kw)
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def _folders(root: Path, per_class: int = 2) -> Path:
    for cls in ("a", "b"):
        for i in range(per_class):
            _tone(root / cls / f"{i}.wav")
    return root


# --------------------------------------------------------------------- 1. augmentation bounds


@pytest.mark.parametrize("kw, message", [
    ({"eq_db": math.inf}, "eq must be"),
    ({"eq_db": 1e6}, "eq must be"),
    ({"eq_db": math.nan}, "eq must be"),
    ({"speed": (0.9, math.inf)}, "speed range"),
    ({"speed": (1e-6, 1.0)}, "speed range"),  # a window's resampled copy would be a million windows long
    ({"speed": (math.nan, 1.0)}, "speed range"),
    ({"masks": 1000}, "masks must be"),
    ({"shift": math.inf}, "shift"),
    ({"noise_prob": math.nan}, "noise probability"),
    ({"gain_db": (-math.inf, 6.0)}, "gain range"),
    ({"snr_db": (15.0, math.nan)}, "snr range"),
    ({"snr_db": (40.0, 15.0)}, "snr range"),
])
def test_augment_refuses_non_finite_and_absurd_settings(kw, message):
    with pytest.raises(ValueError, match=message):
        Augment(**kw)


def test_augment_keeps_the_documented_settings():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 800)).astype(np.float32)
    for kw in ({}, {"eq_db": 10.0}, {"speed": (0.85, 1.15)}, {"masks": 2}, {"eq_db": 40.0, "speed": (0.25, 4.0)}):
        assert Augment(**kw)(x, rng).shape == x.shape


def test_train_cli_eq_inf_is_one_line(tmp_path, capsys):
    """Regression: --eq inf passed the check, then rng.uniform raised OverflowError in the first batch."""
    from train.__main__ import main

    data = _folders(tmp_path / "set", per_class=6)  # enough for --protocol split's three sides
    assert main(["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "split",
                 "--out", str(tmp_path / "o"), "--eq", "inf", "--quiet"]) == 2
    assert "eq must be" in _one_line(capsys)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("protocol, extra, words", [
    ("loso", ["--k", "5"], "--protocol loso ignores it"),
    ("split", ["--k", "5"], "--protocol split ignores it"),
    ("split", ["--val-fraction", "0.2"], "its own 80/10/10 validation share"),
    ("split", ["--val-by", "speaker"], "--val-by applies to loso, official and kfold"),
    ("kfold", ["--val-by", "speaker"], "has no speaker information: --val-by speaker needs speakers"),
    ("kfold", ["--no-augment", "--speed", "0.9", "1.1"], "--speed shape the training augmentation"),
    ("kfold", ["--no-augment", "--eq", "6", "--masks", "2"], "--eq and --masks shape the training augmentation"),
    ("kfold", ["--mixup", "1e308"], "mixup must be 0 (off) or positive up to 100"),
    ("kfold", ["--window", "1e9"], "--window must be a positive number of seconds up to 60"),
])
def test_train_cli_refuses_options_that_would_change_nothing_or_blow_up(tmp_path, capsys, protocol, extra, words):
    """An option without effect (--k outside kfold, augmentation settings with --no-augment) was
    accepted and recorded in run.json as if it had shaped the run; --mixup 1e308 silently mixed nothing
    (numpy's Beta sampler gives 0) and --window 1e9 went on to allocate the window."""
    from train.__main__ import main

    data = _folders(tmp_path / "set", per_class=6)
    assert main(["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", protocol,
                 "--out", str(tmp_path / "o"), "--quiet", *extra]) == 2
    assert words in _one_line(capsys)
    assert not (tmp_path / "o").exists()


def test_grid_cli_refuses_an_option_without_effect(tmp_path, capsys):
    from train.grid import main as grid_main

    data = _folders(tmp_path / "set", per_class=6)
    assert grid_main(["--models", "lv42", "--datasets", "folders", "--data", f"folders={data}", "--protocol", "loso",
                      "--k", "4", "--out", str(tmp_path / "g")]) == 2
    assert "--protocol loso ignores it" in _one_line(capsys)
    assert not (tmp_path / "g").exists()


@pytest.mark.parametrize("name", ["two\nlines", "tab\there", "trailing "])
def test_a_class_name_labels_txt_cannot_hold_is_refused_on_loading(tmp_path, capsys, name):
    """Regression: a class folder named with a line break trained for hours, then gave an export whose
    labels.txt listed one class more than the model has outputs."""
    from train.describe import main as describe_main

    root = _folders(tmp_path / "set")
    (root / "a").rename(root / name)
    with pytest.raises(DataError, match="labels.txt holds one class per line"):
        load_dataset("folders", root)
    assert describe_main(["--data", f"folders={root}", "--out", str(tmp_path / "d.md"), "--quiet"]) == 2
    assert f"class name {name!r}" in _one_line(capsys)


# --------------------------------------------------------------------- 2. metadata CSVs


def _urbansound(root: Path, rows: list[list]) -> Path:
    (root / "metadata").mkdir(parents=True)
    with (root / "metadata" / "UrbanSound8K.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"])
        w.writerows(rows)
    for r in rows:
        if len(r) == 8 and str(r[5]).isdigit():
            _tone(root / "audio" / f"fold{r[5]}" / r[0])
    return root


GOOD_US8K = [["1-0-0-0.wav", 1, 0, 1, 1, 1, 0, "air"], ["2-1-0-0.wav", 2, 0, 1, 1, 2, 1, "dog"]]


@pytest.mark.parametrize("bad, message", [
    (["3-1-0-0.wav", 3, 0, 1, 1, 1, "dog", "dog"], "line 4: classID 'dog' is not a whole number"),
    (["3-1-0-0.wav", 3, 0, 1, 1, "one", 1, "dog"], "line 4: fold 'one' is not a whole number"),
    (["3-1-0-0.wav", 3, 0], "line 4: 3 of 8 fields (no end, salience, fold, classID, class)"),
    (["3-1-0-0.wav", 3, 0, 1, 1, 1, 1, ""], "line 4: empty class"),
    (["3-1-0-0.wav", 3, 0, 1, 1, 1, 1, "cat"], "line 4: class 1 is 'cat', but 'dog' on line 3"),
])
def test_urbansound_csv_garbage_names_file_and_line(tmp_path, capsys, bad, message):
    """Regression: a non-numeric classID read 'invalid literal for int()' with no file named, a short
    row raised TypeError; python -m train.describe on the same data showed the same traceback."""
    from train.describe import main as describe_main

    root = _urbansound(tmp_path / "us8k", GOOD_US8K + [bad])
    with pytest.raises(DataError) as e:
        load_dataset("urbansound8k", root)
    assert str(e.value) == f"{root / 'metadata' / 'UrbanSound8K.csv'}, {message}"
    assert describe_main(["--data", f"urbansound8k={root}", "--out", str(tmp_path / "d.md"), "--quiet"]) == 2
    assert message in _one_line(capsys)


def _esc50(root: Path, rows: list[list]) -> Path:
    (root / "meta").mkdir(parents=True)
    with (root / "meta" / "esc50.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        w.writerows(rows)
    for r in rows:
        _tone(root / "audio" / r[0])
    return root


@pytest.mark.parametrize("bad, message", [
    (["3.wav", 1, "dog", "dog", "True", 3, "A"], "line 4: target 'dog' is not a whole number"),
    (["3.wav", 1, 0], "line 4: 3 of 7 fields (no category, esc10, src_file, take)"),
    (["3.wav", 1, 0, "dog", "maybe", 3, "A"], "line 4: esc10 'maybe' is neither True nor False"),
    (["3.wav", 0, 0, "dog", "True", 3, "A"], "line 4: fold 0 is below 1"),
])
def test_esc50_csv_garbage_names_file_and_line(tmp_path, bad, message):
    good = [["1.wav", 1, 0, "dog", "True", 1, "A"], ["2.wav", 2, 1, "cat", "False", 2, "A"]]
    root = _esc50(tmp_path / "esc", good + [bad])
    for name in ("esc50", "esc10"):
        with pytest.raises(DataError) as e:
            load_dataset(name, root)
        assert str(e.value) == f"{root / 'meta' / 'esc50.csv'}, {message}"


# --------------------------------------------------------------------- 3. EMO-DB names


def test_emodb_without_the_five_emotions_says_so(tmp_path):
    """Regression: only boredom/neutral files read 'leave-one-speaker-out needs 3 speakers, has 0'."""
    for name in ("03a01La.wav", "03a01Nc.wav", "08b02Na.wav"):
        _tone(tmp_path / "wav" / name)
    with pytest.raises(DataError, match=r"no files of the 5 emotions \(W anger, E disgust, A fear, F happiness, "
                                        r"T sadness\) among the 3 audio files in .*wav"):
        load_dataset("emodb", tmp_path)
    assert len(load_dataset("emodb7", tmp_path).clips) == 3


@pytest.mark.parametrize("name", ["abcdeWxyz.wav", "__-__A_.wav", "3a01Fa.wav", "03a01Fab.wav", "03a01Xa.wav"])
def test_emodb_misnamed_files_are_named(tmp_path, name):
    _tone(tmp_path / "wav" / "03a01Fa.wav")
    _tone(tmp_path / "wav" / name)
    with pytest.raises(DataError, match=rf"not of the form SSTTTEV .*: {name.replace('.', '[.]')}$"):
        load_dataset("emodb", tmp_path)


# --------------------------------------------------------------------- 4. audio extensions


def test_audio_soundfile_cannot_read_is_named_not_skipped(tmp_path):
    """Regression: 0_alice_8.m4a and 0_alice_7.wave in an FSDD folder were skipped, exit 0."""
    rec = tmp_path / "recordings"
    _tone(rec / "0_alice_0.wav")
    (rec / "0_alice_8.m4a").write_bytes(b"\0\0\0\x20ftypM4A ")
    (rec / "README.txt").write_text("notes")  # not audio: ignored
    (rec / ".DS_Store").write_bytes(b"\0")
    with pytest.raises(DataError, match=r"FSDD: 1 audio file\(s\) in a format soundfile cannot read: 0_alice_8.m4a; "
                                        "convert them"):
        load_dataset("fsdd", tmp_path)
    (rec / "0_alice_8.m4a").unlink()
    with pytest.raises(DataError, match="folders: 1 audio file.*: x.aac"):
        (tmp_path / "f" / "b").mkdir(parents=True)
        _tone(tmp_path / "f" / "a" / "1.wav")
        (tmp_path / "f" / "b" / "x.aac").write_bytes(b"\xff\xf1")
        load_dataset("folders", tmp_path / "f")


def test_other_spellings_of_readable_formats_are_read(tmp_path):
    rec = tmp_path / "recordings"
    _tone(rec / "0_alice_0.wav")
    _tone(rec / "0_alice_7.wave", format="WAV")
    _tone(rec / "1_alice_1.aif", format="AIFF")
    _tone(rec / "2_alice_2.aiff", format="AIFF")
    _tone(rec / "3_alice_3.opus", sr=48000, format="OGG", subtype="OPUS")
    _tone(rec / "4_alice_4.oga", format="OGG")
    ds = load_dataset("fsdd", tmp_path)
    assert sorted(c.path.name for c in ds.clips) == ["0_alice_0.wav", "0_alice_7.wave", "1_alice_1.aif",
                                                     "2_alice_2.aiff", "3_alice_3.opus", "4_alice_4.oga"]
    assert all(len(a) > 1000 for a in decode(ds.clips, 8000))


# --------------------------------------------------------------------- 5. the reason of an unreadable file


def test_unreadable_file_is_named_once_with_libsndfile_reason(tmp_path):
    """Regression: 'f/a/junk.wav (cannot read audio file f/a/junk.wav)': the path twice, no reason."""
    root = _folders(tmp_path / "f")
    junk = root / "a" / "junk.wav"
    junk.write_bytes(b"RIFF junk")
    gone = root / "b" / "0.wav"
    ds = load_dataset("folders", root)
    gone.unlink()
    with pytest.raises(DataError) as e:
        decode(ds.clips, 8000)
    msg = str(e.value)
    assert f"{junk} (Format not recognised)" in msg and f"{gone} (No such file or directory)" in msg
    assert msg.count(str(junk)) == 1 and "\n" not in msg


def test_truncated_and_zero_frame_files_are_named_by_training_and_export(tmp_path, capsys):
    """Regression: libsndfile reads a WAV cut short without a word, so half a clip trained (and
    calibrated int8) as a whole one; a WAV header with no frames passed export's reader. Training and
    export now share one reader (export.audio.read_clip is train.data.read_audio)."""
    from export.audio import read_clip
    from export.config import ExportError

    root = _folders(tmp_path / "f")
    whole = (root / "a" / "0.wav").read_bytes()
    cut = root / "a" / "cut.wav"
    cut.write_bytes(whole[: len(whole) // 2])
    empty = _tone(root / "b" / "empty.wav", seconds=0.0)
    with pytest.raises(DataError) as e:
        decode(load_dataset("folders", root).clips, 8000)
    msg = str(e.value)
    assert msg.startswith("2 audio file(s) missing or unreadable") and "\n" not in msg
    assert f"{cut} (truncated: its header declares {len(whole) - 44} bytes of audio, the file holds" in msg
    assert f"{empty} (audio file is empty)" in msg
    for path, words in ((cut, "is truncated"), (empty, "audio file is empty")):
        with pytest.raises(ExportError, match=words):
            read_clip(path, 8000)
    assert read_clip(root / "a" / "0.wav", 16000).shape == (3200,)  # a whole file still reads, resampled


def test_describe_names_the_reason_too(tmp_path, capsys):
    from train.describe import main as describe_main

    root = _folders(tmp_path / "f")
    (root / "a" / "junk.wav").write_bytes(b"RIFF junk")
    assert describe_main(["--data", f"folders={root}", "--out", str(tmp_path / "d.md"), "--quiet"]) == 2
    assert f"{root / 'a' / 'junk.wav'} (Format not recognised)" in _one_line(capsys)


# --------------------------------------------------------------------- 6-8. output locations


@pytest.mark.parametrize("where, message", [
    ("dir", "is a folder; give a file name"),
    ("under-file", "is not a folder"),
    ("/proc/x/op.md", "cannot create files in /proc: "),
    ("/proc/op.md", "cannot create files in /proc"),
    ("/dev/null", "is not a regular file"),
    ("x.json", "the .json written beside it would overwrite it"),
])
def test_check_out_refuses_before_any_work(tmp_path, where, message):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    out = {"dir": tmp_path / "dir", "under-file": tmp_path / "file" / "sub" / "op.md",
           "x.json": tmp_path / "x.json"}.get(where, Path(where))
    with pytest.raises(DataError, match=message):
        check_out(out)
    assert check_out(tmp_path / "new" / "r.md") == tmp_path / "new" / "r.md"
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".write-check-*"))  # nothing left behind


@pytest.mark.parametrize("extra, words", [
    (["--chunk", "1e-9"], "--chunk must be at least 0.001 seconds (finite) and --shuffles 1 to 100, got 1e-09 and 3"),
    (["--chunk", "0.1", "inf"], "got 0.1, inf and 3"),
    (["--chunk", "nan"], "got nan and 3"),
    (["--shuffles", "100000"], "got 0.1 and 100000"),
    (["--shuffles", "0"], "got 0.1 and 0"),
])
def test_order_probe_bounds_its_settings_before_any_work(tmp_path, capsys, monkeypatch, extra, words):
    """Regression: --chunk 1e-9 passed the check and failed in shuffle_chunks after the model loaded;
    --shuffles 100000 was accepted (100,000 passes over every fold's test clips)."""
    import train.order_probe as op

    monkeypatch.setattr(op, "probe_run", lambda *a, **k: pytest.fail("scored with settings out of bounds"))
    assert op.main([str(tmp_path), "--data", str(tmp_path), "--out", str(tmp_path / "op.md"), "--quiet", *extra]) == 2
    assert words in _one_line(capsys)
    assert not list(tmp_path.glob("op.*"))


def test_order_probe_checks_out_before_scoring(tmp_path, capsys, monkeypatch):
    """Regression: --out /proc/x/op.md crashed with a traceback after all the scoring work."""
    import train.order_probe as op

    monkeypatch.setattr(op, "probe_run", lambda *a, **k: pytest.fail("scored before --out was checked"))
    assert op.main([str(tmp_path), "--data", str(tmp_path), "--out", "/proc/x/op.md", "--quiet"]) == 2
    assert "--out /proc/x/op.md: cannot create files in /proc: " in _one_line(capsys)


def test_order_probe_write_failure_after_scoring_is_one_line(tmp_path, capsys, monkeypatch):
    import train.order_probe as op

    probe = op.RunProbe(str(tmp_path / "run"), "lv42", "folders", 8000, (0.1,), 18.5,
                        (op.FoldProbe("fold 0", 4, 0.5, 0.5, ((0.5,),), (1.0,)),))
    monkeypatch.setattr(op, "read_run", lambda run: {"dataset": "folders"})
    monkeypatch.setattr(op, "probe_run", lambda *a, **k: probe)
    monkeypatch.setattr(op, "probe_png", lambda probes, path: None)

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(op, "write_atomic", full)
    assert op.main([str(tmp_path / "run"), "--data", str(tmp_path), "--out", str(tmp_path / "op.md"), "--quiet"]) == 1
    assert "No space left on device" in _one_line(capsys)


def _summary(run: Path, **drop) -> Path:
    """A summary.json as python -m train writes it (two folds), without the keys in ``drop``."""
    run.mkdir(parents=True)
    stats = {"accuracy": 0.7, "precision": 0.7, "recall": 0.7, "f1": 0.7, "epochs": 5, "best_epoch": 4, "train_seconds": 3.0}
    s = {"model": "lv42", "dataset": "folders", "protocol": "kfold", "sample_rate": 8000, "folds_done": 2,
         "folds_total": 2, "complete": True, "mean": stats, "std": {k: 0.0 for k in stats},
         "folds": [{"fold": 0, "name": "fold 0", "accuracy": 0.7}, {"fold": 1, "name": "fold 1", "accuracy": 0.7}],
         "config": {"augment": True, "epochs": 5}, "machine": {"cpu": "test", "nproc": 2}}
    (run / "summary.json").write_text(json.dumps({k: v for k, v in s.items() if k not in drop}))
    return run


def test_report_summary_without_a_field_is_one_line(tmp_path, capsys):
    """Regression: a summary.json with finished folds but no "config" gave a KeyError traceback."""
    from train.report import main

    run = _summary(tmp_path / "run", config=True)
    assert main([str(run), "--out", str(tmp_path / "r.md")]) == 2
    assert f"{run / 'summary.json'} has no 'config'" in _one_line(capsys)
    assert not list(tmp_path.glob("r.*"))


@pytest.mark.parametrize("tool", ["report", "describe"])
def test_out_that_is_a_folder_is_refused_and_nothing_is_written(tmp_path, capsys, tool):
    """Regression: --out out/res, a folder, left a stray out/res.png behind."""
    (tmp_path / "out" / "res").mkdir(parents=True)
    if tool == "report":
        from train.report import main

        run = _summary(tmp_path / "run")
        rc = main([str(run), "--out", str(tmp_path / "out" / "res")])
    else:
        from train.describe import main

        rc = main(["--data", f"folders={_folders(tmp_path / 'f')}", "--out", str(tmp_path / "out" / "res"), "--quiet"])
    assert rc == 1  # both tools' exit status for an output they cannot write
    assert "is a folder; give a file name" in _one_line(capsys)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["res"] and not any((tmp_path / "out" / "res").iterdir())


@pytest.mark.parametrize("rows, words", [
    ([1], "row 1 is int, not an object"),
    ([{"accuracy": "x"}], "has a malformed accuracy"),
    ([{"run": 5}], "has a malformed run"),
    ([{"seed": 1.5, "epochs": float("nan")}], "has a malformed seed, epochs"),
    ([{"train_cpu_seconds": "12"}], "has a malformed train_cpu_seconds"),
])
def test_report_keep_with_malformed_rows_is_one_line(tmp_path, capsys, rows, words):
    """Regression: --keep with a row that was not an object gave a TypeError traceback; a row with a
    string accuracy went on to fail inside the table code."""
    from train.report import main

    good = json.loads(Path(__file__).resolve().parents[1].joinpath("benchmarks/results/accuracy.json").read_text())
    row = next(iter(good["groups"].values()))[0]
    keep = tmp_path / "keep.json"
    keep.write_text(json.dumps({"groups": {"t": [r if not isinstance(r, dict) else {**row, **r} for r in rows]}}))
    assert main(["--keep", str(keep), "--out", str(tmp_path / "r.md")]) == 2
    assert words in _one_line(capsys)
    assert not list(tmp_path.glob("r.*"))


def test_report_reads_a_run_listed_twice_once(tmp_path, monkeypatch):
    """Regression: runs/x runs/x/ (two globs) gave the run two rows, and its seed-repeat statement a
    second 'seed'."""
    from train.report import main

    run = _summary(tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    assert main(["run", "run/", "./run", str(run), "--out", "r.md"]) == 0
    rows = [r for table in json.loads((tmp_path / "r.json").read_text())["groups"].values() for r in table]
    assert len(rows) == 1


def test_report_keep_replaces_a_run_given_by_its_absolute_path(tmp_path, monkeypatch):
    """A kept row says runs/x; the same run given as /abs/runs/x was added beside it (listed twice)."""
    from train.report import main

    monkeypatch.chdir(tmp_path)
    run = _summary(tmp_path / "runs" / "x")
    assert main(["runs/x", "--out", "first.md"]) == 0
    assert main([str(run.resolve()), "--keep", "first.json", "--out", "second.md"]) == 0
    rows = [r for table in json.loads((tmp_path / "second.json").read_text())["groups"].values() for r in table]
    assert len(rows) == 1


def test_report_tables_keep_other_protocol_settings_apart():
    """k-fold with another k, another validation share or an early stop went into one table as the same
    recipe (one pooling-vs-striding statement over them), and an FSDD k-fold row stood beside the
    paper's leave-one-speaker-out number."""
    from train.report import paper_value, recipe

    base = {"augment": True, "protocol": "kfold", "k": 3, "val_fraction": 0.1, "patience": None}
    assert recipe(base) == "augment"
    assert recipe({**base, "k": 2}) == "augment, k 2"
    assert recipe({**base, "val_fraction": 0.3, "patience": 1}) == ("augment, validation share 0.3, "
                                                                   "early stop after 1 epochs")
    assert recipe({**base, "protocol": "loso", "k": 2}) == "augment"  # k means nothing outside k-fold
    assert recipe({**base, "val_by": "speaker"}) == "augment, validation by speaker"
    assert recipe({**base, "val_by": "recording"}) == "augment"
    assert paper_value("lv24", "fsdd", "loso") is not None and paper_value("lv24", "fsdd", "kfold") is None
    assert paper_value("lv24", "emodb", "kfold") is not None
    assert paper_value("conv2d", "urbansound8k", "split") == paper_value("conv2d", "urbansound8k", "official")


def test_report_names_skipped_runs_on_stderr_and_shows_its_default(tmp_path, capsys):
    from train.report import main

    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert main([str(empty), "--out", str(tmp_path / "r.md")]) == 2  # nothing else to report
    err = capsys.readouterr().err
    assert f"note: {empty}: no summary.json, skipped" in err
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: benchmarks/results/accuracy.md" in text and "overwrites the committed report" in text


# --------------------------------------------------------------------- 7, 9. grid


def _grid_argv(tmp_path: Path, *extra: str) -> list[str]:
    return ["--models", "lv42", "--datasets", "folders", "--data", str(_folders(tmp_path / "set", per_class=6)),
            "--protocol", "split", "--out", str(tmp_path / "grid"), *extra]


@pytest.mark.parametrize("extra, message", [
    (["--timing-out", "/proc/x/t.md"], "--timing-out /proc/x/t.md: cannot create files in /proc: "),
    (["--out", "FILE"], "FILE is not a folder; give a grid folder"),
    (["--out", "FILE/sub"], "FILE is not a folder; give a grid folder"),
    (["--out", "/proc/x"], "--out /proc/x: cannot create files in /proc: "),
])
def test_grid_checks_where_it_writes_before_running(tmp_path, capsys, monkeypatch, extra, message):
    """Regression: --timing-out /proc/x/t.md gave a traceback after the whole grid had run."""
    import train.grid as grid

    (tmp_path / "FILE").write_text("x")
    extra = [str(tmp_path / e) if e.startswith("FILE") else e for e in extra]
    monkeypatch.setattr(grid, "run_grid", lambda cfg: pytest.fail("the grid ran before its outputs were checked"))
    assert grid.main(_grid_argv(tmp_path) + extra) == 2
    assert message in _one_line(capsys)


def test_grid_timing_write_failure_after_the_grid_is_one_line(tmp_path, capsys, monkeypatch):
    import train.grid as grid
    import train.grid_timing as timing

    result = {"runs": 1, "tasks": 1, "ran": 1, "skipped": 0, "failed": 0, "wall_seconds": 1.0,
              "load_average_start": None, "summaries": {}}
    monkeypatch.setattr(grid, "run_grid", lambda cfg: result)

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(timing, "write_atomic", full)
    assert grid.main(_grid_argv(tmp_path, "--timing-out", str(tmp_path / "t.md"))) == 1
    assert "--timing-out: cannot write" in _one_line(capsys)


def test_grid_help_is_wrapped_and_grid_task_explains_itself(capsys):
    import subprocess
    import sys

    from train.grid import parser

    text = parser().format_help()
    description = text[text.index("Run an experiment grid"):text.index("options:")]
    assert max(map(len, description.splitlines())) <= 80
    r = subprocess.run([sys.executable, "-m", "train.grid_task", "--help"], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0 and "python -m train.grid" in r.stdout
    r = subprocess.run([sys.executable, "-m", "train.grid_task"], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr


def _npy(array) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("entry", [
    b"",  # cut to nothing: was EOFError
    b"not an array\n",  # was numpy's "pickled data ... allow_pickle", naming no file
    _npy(np.zeros((2, 800), np.float32)),  # was a broadcast error in training
    _npy(np.full(1600, np.nan, np.float32)),  # was loaded as is, past read_audio's NaN check
    _npy(np.zeros(1600, np.float64)),
    _npy(np.array([{"code": "would run"}], dtype=object)),  # a pickle: never loaded
], ids=["empty", "text", "2d", "nan", "float64", "pickle"])
def test_a_corrupt_cache_entry_is_decoded_again_and_replaced(tmp_path, entry):
    from train.data import AudioCache

    clips = load_dataset("folders", _folders(tmp_path / "data", per_class=1)).clips
    want = decode(clips, 8000, AudioCache(tmp_path / "cache"))
    entries = sorted((tmp_path / "cache").glob("*/*.npy"))
    assert len(entries) == len(clips)
    entries[0].write_bytes(entry)
    cache = AudioCache(tmp_path / "cache")
    got = decode(clips, 8000, cache)
    assert cache.reads == 1  # only the corrupt entry was decoded again
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.load(entries[0]), want[0])  # and the entry is whole again
    assert sorted((tmp_path / "cache").glob("*/*")) == entries  # replaced atomically: no temporary file left
