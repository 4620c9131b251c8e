"""``python -m train`` refuses what would waste a run or corrupt its results, in one line and
exit 2: a diverging loss (NaN weights), a teacher that gives NaN, a resume on other data, a run
folder it cannot create, unreadable run files and out-of-range seeds."""

from __future__ import annotations

import json

import pytest

from benchmarks.train_faults import make_data
from train.__main__ import MAX_SEED, main


def _args(data, out, *extra):
    return ["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "kfold", "--k", "2",
            "--out", str(out), "--epochs", "1", "--max-folds", "1", "--quiet", "--sample-rate", "8000", *extra]


def _one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    for w in words:
        assert w in err, err
    return err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("guards") / "gen", per_class=6)


def test_a_diverging_loss_stops_training_with_a_one_line_error(data, tmp_path, capsys):
    """At a learning rate of 1e10 the weights turn NaN within a few steps. Before, the fold
    failed later with "File not found: model.keras" (no epoch was ever better), and --final saved
    an all-NaN model with exit 0."""
    assert main(_args(data, tmp_path / "a", "--lr", "1e10", "--epochs", "3")) == 2
    _one_line_error(capsys, "training diverged", "the loss became nan in epoch", "--lr")
    assert not (tmp_path / "a" / "fold_0" / "result.json").exists()
    assert main(_args(data, tmp_path / "b", "--lr", "1e10", "--max-folds", "0", "--final")) == 2
    _one_line_error(capsys, "training diverged")
    assert not (tmp_path / "b" / "final" / "model.keras").exists()


def test_a_teacher_with_non_finite_outputs_is_refused(data, tmp_path, capsys):
    import keras
    import numpy as np

    teacher = tmp_path / "teacher"
    assert main(_args(data, teacher)) == 0
    path = teacher / "fold_0" / "model.keras"
    model = keras.models.load_model(str(path))
    dense = model.get_layer("probs")
    kernel, bias = dense.get_weights()
    dense.set_weights([np.full_like(kernel, np.nan), bias])  # what a diverged run would have kept
    model.save(str(path))
    capsys.readouterr()
    assert main(_args(data, tmp_path / "student", "--teacher", str(teacher))) == 2
    _one_line_error(capsys, f"teacher {teacher}", "non-finite probabilities")


def test_resuming_on_other_data_is_refused(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(data, out)) == 0
    more = make_data(tmp_path / "more", per_class=7)  # the same layout with more clips: other folds
    capsys.readouterr()
    assert main(_args(more, out)) == 2
    _one_line_error(capsys, "fold 0", "trained on other clips", "use another --out")
    assert main(_args(data, out)) == 0  # the original data still resumes
    assert "done before, skipped" in capsys.readouterr().err


def test_unreadable_run_files_and_run_folders_are_named(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(data, out)) == 0
    result = out / "fold_0" / "result.json"
    result.write_text(result.read_text()[:50])  # cut short by hand or by a broken copy
    capsys.readouterr()
    assert main(_args(data, out)) == 2
    _one_line_error(capsys, str(result), "delete it to train that fold again")
    (out / "run.json").write_text("{")
    assert main(_args(data, out)) == 2
    _one_line_error(capsys, str(out / "run.json"), "use another --out")

    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    for bad in (a_file, a_file / "sub"):
        assert main(_args(data, bad)) == 2
        _one_line_error(capsys, f"cannot use {bad} as the run folder")


@pytest.mark.parametrize("seed", ["-1", str(MAX_SEED + 1), str(2**32)])
def test_seed_out_of_range_names_the_option(data, tmp_path, capsys, seed):
    assert main(_args(data, tmp_path / "run", "--seed", seed)) == 2
    _one_line_error(capsys, "--seed must be between 0 and", seed)
    assert not (tmp_path / "run").exists()


def test_final_model_reports_where_it_went(data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_args(data, out, "--max-folds", "0", "--final")) == 0
    err = capsys.readouterr().err
    assert f"final model: 1 epochs on all {sum(1 for _ in data.rglob('*.wav'))} clips" in err
    assert str(out / "final" / "model.keras") in err
    assert json.loads((out / "final" / "config.json").read_text())["fold"] == "all data"


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    """Both folds of a tiny run, trained once; tests resume copies of it."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(_args(data, out, "--max-folds", "2")) == 0
    return out


def _copy(run, tmp_path):
    import shutil

    return shutil.copytree(run, tmp_path / "run")


def test_finished_folds_without_run_json_are_refused(data, finished_run, tmp_path, capsys):
    """Before, other settings (here another model) resumed into such a folder: its folds were
    skipped as done before and summary.json credited them to the new model."""
    out = _copy(finished_run, tmp_path)
    (out / "run.json").unlink()
    summary = (out / "summary.json").read_text()
    capsys.readouterr()
    assert main(_args(data, out, "--max-folds", "2", "--model", "lv24")) == 2
    _one_line_error(capsys, str(out), "fold_0/result.json", "no run.json", "restore its run.json or use another --out")
    assert not (out / "run.json").exists() and (out / "summary.json").read_text() == summary


def test_a_smaller_max_folds_keeps_every_finished_fold_in_the_summary(data, finished_run, tmp_path, capsys):
    """Before, --max-folds 1 rewrote a 2/2 summary as 1/2, and --max-folds 0 as 0/2 with no mean."""
    out = _copy(finished_run, tmp_path)
    before = json.loads((out / "summary.json").read_text())
    assert before["folds_done"] == 2
    for n in ("1", "0"):
        assert main(_args(data, out, "--max-folds", n)) == 0
        after = json.loads((out / "summary.json").read_text())
        assert after["folds_done"] == 2 and after["complete"], n
        assert [f["name"] for f in after["folds"]] == [f["name"] for f in before["folds"]]
        assert after["mean"]["accuracy"] == before["mean"]["accuracy"]
    assert "2/2 folds" in capsys.readouterr().out


@pytest.mark.parametrize("edit, words", [
    (lambda r: {}, ["lacks accuracy"]),
    (lambda r: {**r, "accuracy": "NaN"}, ["accuracy 'NaN'", "not a number"]),
    (lambda r: {**r, "accuracy": float("nan")}, ["accuracy nan"]),
    (lambda r: {**r, "f1": 1.5}, ["f1 1.5", "out of range"]),
    (lambda r: {**r, "best_epoch": True}, ["best_epoch True"]),
    (lambda r: {**r, "confusion": [[1, 2], [3]]}, ["confusion matrix"]),
    (lambda r: {**r, "history": []}, ["malformed"]),
    (lambda r: {**r, "train_cpu_seconds": -3.0}, ["train_cpu_seconds -3.0", "out of range"]),  # optional, checked when there
])
def test_a_corrupt_fold_result_is_named_on_resume(data, finished_run, tmp_path, capsys, edit, words):
    """Before: KeyError or TypeError tracebacks, or a NaN accuracy written into summary.json with exit 0."""
    out = _copy(finished_run, tmp_path)
    result = out / "fold_1" / "result.json"  # past --max-folds 1: read all the same, as the summary covers it
    result.write_text(json.dumps(edit(json.loads(result.read_text()))))
    summary = (out / "summary.json").read_text()
    capsys.readouterr()
    assert main(_args(data, out)) == 2
    _one_line_error(capsys, str(result), f"delete {result.parent} to train that fold again", *words)
    assert (out / "summary.json").read_text() == summary
