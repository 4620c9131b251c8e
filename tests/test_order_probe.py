"""train.order_probe: chunk shuffling keeps the sound and changes the order; the CLI scores a run's
folds as its result.json does, then shuffled, and refuses bad folders with one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.train_faults import make_data
from train.__main__ import main as train_main
from train.order_probe import main, shuffle_chunks


def test_shuffle_chunks_permutes_whole_chunks_and_never_keeps_the_order():
    audio = np.arange(1050, dtype=np.float32)  # ten chunks of 100, then one of 50
    out = shuffle_chunks(audio, 100, np.random.default_rng(0))
    assert out.dtype == np.float32 and out.shape == audio.shape
    assert not np.array_equal(out, audio)
    np.testing.assert_array_equal(np.sort(out), audio)  # the same samples
    # the output is whole input chunks, each in its own order: every jump lands on a chunk start
    pieces = np.split(out, np.flatnonzero(np.diff(out) != 1) + 1)
    assert len(pieces) > 1 and all(p[0] % 100 == 0 for p in pieces)
    np.testing.assert_array_equal(out, shuffle_chunks(audio, 100, np.random.default_rng(0)))  # seeded

    two = np.arange(20, dtype=np.float32)
    for seed in range(20):  # two chunks: the only other order, every time
        np.testing.assert_array_equal(shuffle_chunks(two, 10, np.random.default_rng(seed)), np.r_[10:20, 0:10])
    short = np.ones(30, np.float32)
    np.testing.assert_array_equal(shuffle_chunks(short, 100, np.random.default_rng(0)), short)  # one chunk
    with pytest.raises(ValueError, match="at least 1 sample"):
        shuffle_chunks(short, 0, np.random.default_rng(0))


def test_cli_scores_each_fold_as_its_result_then_shuffled(tmp_path, capsys):
    data = make_data(tmp_path / "gen", per_class=6)
    run = tmp_path / "run"
    assert train_main(["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "kfold",
                       "--k", "2", "--out", str(run), "--epochs", "2", "--quiet", "--sample-rate", "8000"]) == 0
    out = tmp_path / "res" / "probe.md"
    assert main([str(run), "--data", str(data), "--out", str(out), "--chunk", "0.05", "100", "--shuffles", "2",
                 "--quiet"]) == 0
    doc = json.loads(out.with_suffix(".json").read_text())
    # the recorded command redoes it: --seed (which moves the shuffles) and --out were left out of it
    assert doc["command"].endswith(f"--chunk 0.05 100 --shuffles 2 --seed 0 --out {out}") and doc["seed"] == 0
    probe = doc["runs"][0]
    assert probe["model"] == "lv42" and probe["frame_rf_ms"] == pytest.approx(18.5)  # python -m train.models: lv42 at 8 kHz
    assert probe["chunks_s"] == [0.05, 100.0] and len(probe["folds"]) == 2
    for fold in probe["folds"]:
        assert fold["accuracy"] == fold["result_accuracy"]  # the same evaluation as training's
        short, whole = fold["shuffled"]
        assert len(short) == 2 and all(0 <= a <= 1 for a in short) and 0 <= fold["same_prediction"][0] <= 1
        assert whole == [fold["accuracy"]] * 2 and fold["same_prediction"][1] == 1.0  # one chunk: nothing moves
    text = out.read_text()
    assert "| run | lv42 | 8000 Hz | 18.5 ms, order discarded | 2 |" in text
    assert "| 50 ms |" in text and "| 100000 ms |" in text and "| +0.0 | 100.0 % |" in text
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "run: " in capsys.readouterr().out

    sweep = probe["folds"]
    assert main([str(run), "--data", str(data), "--out", str(out), "--chunk", "0.05", "--shuffles", "2", "--quiet"]) == 0
    alone = json.loads(out.with_suffix(".json").read_text())["runs"][0]  # one length: bars
    assert alone["chunks_s"] == [0.05]
    assert [f["shuffled"][0] for f in alone["folds"]] == [f["shuffled"][0] for f in sweep]  # the same shuffles

    result = run / "fold_1" / "result.json"  # a run scored on other data than it trained on is named
    result.write_text(json.dumps({**json.loads(result.read_text()), "accuracy": 2.0}))
    capsys.readouterr()
    assert main([str(run), "--data", str(data), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: run fold 1 scores" in err and "the data it was trained on?" in err
    # a checkpoint trained on a GPU with JAX and scored here: the backends, not the data, are named
    result.write_text(json.dumps({**json.loads(result.read_text()),
                                  "trained_on": {"keras_backend": "jax", "accelerator": "NVIDIA H100 80GB HBM3"}}))
    assert main([str(run), "--data", str(data), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "trained on jax (NVIDIA H100 80GB HBM3) and is scored here on tensorflow (CPU)" in err


def test_cli_refuses_a_folder_that_is_no_run_or_a_broken_model(tmp_path, capsys):
    data = make_data(tmp_path / "gen", per_class=4)
    assert main([str(tmp_path), "--data", str(data), "--out", str(tmp_path / "p.md"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no run.json" in err and err.count("\n") == 1
    assert main([str(tmp_path), "--data", str(data), "--out", str(tmp_path / "p.md"), "--chunk", "0", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--chunk must be at least 0.001 seconds" in err and err.count("\n") == 1
    (tmp_path / "run.json").write_text("{}")
    assert main([str(tmp_path), "--data", str(data), "--out", str(tmp_path / "p.md"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "run.json lacks model, dataset, protocol" in err and err.count("\n") == 1
    (tmp_path / "run.json").unlink()

    run = tmp_path / "run"
    assert train_main(["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "kfold",
                       "--k", "2", "--out", str(run), "--epochs", "1", "--max-folds", "1", "--quiet",
                       "--sample-rate", "8000"]) == 0
    capsys.readouterr()
    (run / "fold_0" / "model.keras").write_bytes(b"not a zip")
    assert main([str(run), "--data", str(data), "--out", str(tmp_path / "p.md"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cannot load fold_0/model.keras" in err and err.count("\n") == 1
    assert not (tmp_path / "p.md").exists()  # nothing half-written


def _fsdd(root, speakers, per_digit=1):
    """An FSDD layout of short tones: one pitch per digit, for the given speakers."""
    import soundfile as sf

    (root / "recordings").mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(2000) / 8000
    for speaker in speakers:
        for digit in range(10):
            for i in range(per_digit):
                x = 0.3 * np.sin(2 * np.pi * (200 + 150 * digit) * t) + 0.02 * rng.standard_normal(len(t))
                sf.write(str(root / "recordings" / f"{digit}_{speaker}_{i}.wav"), x.astype(np.float32), 8000)
    return root


def test_cli_matches_folds_by_name_and_refuses_data_without_the_runs_folds(tmp_path, capsys):
    """Before, fold_K was scored on the K-th fold of whatever --data gave: on data with other
    speakers the model of fold 'speaker=alice' scored bob's clips, which it had trained on (exit 0)."""
    data = _fsdd(tmp_path / "fsdd", ("alice", "bob", "carol"))
    run = tmp_path / "run"
    assert train_main(["--model", "lv42", "--dataset", "fsdd", "--data", str(data), "--protocol", "loso",
                       "--out", str(run), "--epochs", "1", "--max-folds", "1", "--quiet"]) == 0
    out = tmp_path / "probe.md"
    wrong = _fsdd(tmp_path / "other", ("bob", "carol", "dave"))  # as many clips; fold 0 is bob's there
    capsys.readouterr()
    assert main([str(run), "--data", str(wrong), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {run}: fold 'speaker=alice' of fold_0 is not among "
                                                   f"the folds {wrong} gives (speaker=bob, speaker=carol, speaker=dave)")
    more = _fsdd(tmp_path / "more", ("alice", "bob", "carol"), per_digit=2)  # the same speakers, other clips
    assert main([str(run), "--data", str(more), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fold 'speaker=alice' of fold_0 was trained on other clips (n_train" in err
    assert not out.exists()
    assert main([str(run), "--data", str(data), "--out", str(out), "--shuffles", "1", "--quiet"]) == 0  # its own data
    folds = json.loads(out.with_suffix(".json").read_text())["runs"][0]["folds"]
    assert [f["fold"] for f in folds] == ["speaker=alice"]
    assert all(f["accuracy"] == f["result_accuracy"] for f in folds)
