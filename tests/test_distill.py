"""Distillation (--teacher): soft targets, their way into training, and the checks that keep a
teacher from having seen a fold's test clips."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from benchmarks.train_faults import make_data
from train.__main__ import main
from train.distill import soft_targets, soften
from train.fit import WindowBatches


def test_soften_flattens_like_dividing_logits_and_targets_mix_one_hot_with_the_teacher():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(soften(probs, 1.0), probs, rtol=1e-6)
    by_logits = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(soften(probs, 2.0), by_logits, rtol=1e-6)
    assert soften(probs, 2.0)[0].max() < probs[0].max()  # flatter
    assert np.isfinite(soften(np.array([[1.0, 0.0, 0.0]]), 3.0)).all()  # a hard zero stays finite

    labels = np.array([1, 0])
    np.testing.assert_array_equal(soft_targets(labels, probs, 0.0, 2.0), np.eye(3)[labels])
    np.testing.assert_allclose(soft_targets(labels, probs, 1.0, 1.0), probs, rtol=1e-6)
    mixed = soft_targets(labels, probs, 0.25, 2.0)
    np.testing.assert_allclose(mixed, 0.75 * np.eye(3)[labels] + 0.25 * by_logits, rtol=1e-6)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="teacher weight"):
        soft_targets(labels, probs, 1.5, 2.0)
    with pytest.raises(ValueError, match="temperature"):
        soften(probs, 0.0)


def test_window_batches_carry_each_clips_target_row_to_all_its_windows():
    audios = [np.zeros(300, np.float32), np.ones(100, np.float32)]  # 5 windows of 100 (hop 50), then 1
    targets = np.array([[0.7, 0.3], [0.1, 0.9]], np.float32)
    x, y = WindowBatches(audios, np.array([0, 1]), 100, 50, 2, batch_size=8, targets=targets)[0]
    assert x.shape == (6, 100)
    np.testing.assert_array_equal(y, targets[[0, 0, 0, 0, 0, 1]])
    _, y = WindowBatches(audios, np.array([0, 1]), 100, 50, 2, batch_size=8)[0]
    np.testing.assert_array_equal(y, np.eye(2)[[0, 0, 0, 0, 0, 1]])  # without targets: one-hot labels
    with pytest.raises(ValueError, match="targets must be"):
        WindowBatches(audios, np.array([0, 1]), 100, 50, 2, batch_size=8, targets=targets[:1])


def _args(data, out, *extra):
    return ["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "kfold", "--k", "2",
            "--out", str(out), "--epochs", "1", "--max-folds", "1", "--quiet", "--sample-rate", "8000", *extra]


def _spy_on_targets(monkeypatch) -> dict:
    """Record the train_targets each train.fit.train call gets (under "targets"), then train."""
    import train.fit

    seen, real = {}, train.fit.train

    def spy(*args, train_targets=None, **kwargs):
        seen["targets"] = train_targets
        return real(*args, train_targets=train_targets, **kwargs)

    monkeypatch.setattr(train.fit, "train", spy)
    return seen


def test_cli_distils_from_a_teacher_run_with_its_fold_models_soft_labels(tmp_path, monkeypatch):
    """The student's training targets are exactly (1 - W) one-hot + W softened teacher clip
    probabilities, computed here again from the teacher's own fold checkpoint."""
    import keras

    from train.data import decode, load_dataset
    from train.fit import predict_clips
    from train.protocols import make_folds
    from train.report import recipe

    data = make_data(tmp_path / "gen", per_class=6)
    teacher = tmp_path / "teacher"
    assert main(_args(data, teacher)) == 0

    seen = _spy_on_targets(monkeypatch)
    student = tmp_path / "student"
    assert main(_args(data, student, "--teacher", str(teacher), "--teacher-weight", "0.7", "--teacher-temperature", "1.5")) == 0

    ds = load_dataset("folders", data)
    fold = make_folds(ds, "kfold", seed=0, k=2)[0]
    clips = [ds.clips[i] for i in fold.train]
    meta = json.loads((teacher / "fold_0" / "config.json").read_text())
    probs = predict_clips(keras.models.load_model(str(teacher / "fold_0" / "model.keras")), decode(clips, 8000),
                          meta["window_samples"], meta["hop_samples"])
    expected = soft_targets(np.array([c.label for c in clips]), probs, 0.7, 1.5)
    np.testing.assert_allclose(seen["targets"], expected, atol=1e-5)
    assert not np.allclose(expected, np.eye(3)[[c.label for c in clips]])  # soft, not the labels again

    run = json.loads((student / "run.json").read_text())
    assert (run["teacher"], run["teacher_weight"], run["teacher_temperature"]) == ([str(teacher)], 0.7, 1.5)
    assert "teacher" not in json.loads((teacher / "run.json").read_text())  # plain runs keep their old run.json
    assert recipe(run) == "augment, distilled from 1 run (weight 0.7, T 1.5), k 2"  # the runs are in run.json


def test_cli_refuses_a_teacher_that_saw_the_test_clips_or_is_not_finished(tmp_path, capsys):
    data = make_data(tmp_path / "gen", per_class=6)
    teacher = tmp_path / "teacher"
    assert main(_args(data, teacher)) == 0
    capsys.readouterr()
    cases = [
        (["--seed", "1"], "test clip(s) of fold 0"),  # the seed redraws the groups: the teacher trained on this test fold
        (["--max-folds", "2"], "has not finished fold 1"),
        (["--final"], "no final model"),
        (["--teacher-weight", "2"], "teacher weight must be in [0, 1]"),
        (["--teacher-temperature", "inf"], "temperature must be positive"),
    ]
    for extra, message in cases:
        assert main(_args(data, tmp_path / "student", "--teacher", str(teacher), *extra)) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "\n" not in err, (extra, err)
    assert main(_args(data, tmp_path / "s2", "--teacher", str(tmp_path / "gen"))) == 2
    assert "no run.json" in capsys.readouterr().err
    assert main(_args(data, tmp_path / "s3", "--teacher-temperature", "3")) == 2
    assert "only with --teacher" in capsys.readouterr().err
    assert not (tmp_path / "student" / "fold_0").exists()  # refused before any training

    broken = tmp_path / "broken"
    shutil.copytree(teacher, broken)
    model = broken / "fold_0" / "model.keras"
    model.write_bytes(model.read_bytes()[:200])  # truncated, as by a full disk
    assert main(_args(data, tmp_path / "s4", "--teacher", str(broken))) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: teacher") and "cannot load fold_0/model.keras" in err and "\n" not in err


def test_cli_final_model_distils_from_the_teachers_final_model(tmp_path, monkeypatch):
    """--final labels all clips with each teacher's own final/ model (the folds' models each
    held some clips out)."""
    data = make_data(tmp_path / "gen", per_class=4)
    teacher = tmp_path / "teacher"
    assert main(_args(data, teacher, "--max-folds", "0", "--final")) == 0
    seen = _spy_on_targets(monkeypatch)
    student = tmp_path / "student"
    assert main(_args(data, student, "--max-folds", "0", "--final", "--teacher", str(teacher))) == 0
    assert (student / "final" / "model.keras").is_file()
    assert seen["targets"].shape == (12, 3) and np.allclose(seen["targets"].sum(axis=1), 1.0)
    assert (seen["targets"].max(axis=1) < 1.0).all()  # soft: the teacher's share is in every row
