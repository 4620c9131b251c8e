"""The experiment grid: in-process, in local worker processes and on local Ray give identical results; a killed Ray worker's task
is retried, not lost or duplicated; configuration errors are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from train.grid import GridConfig, main, run_grid
from train.grid_task import FAULTS_ENV, PART

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("lv42", "lv24")
# Two folds, one epoch, tiny clips at 8 kHz: each task trains for well under a second.
ARGS = ["--protocol", "kfold", "--k", "2", "--epochs", "1", "--batch-size", "16", "--sample-rate", "8000"]


def _generate(root: Path, per_class: int = 6, sr: int = 8000) -> Path:
    rng = np.random.default_rng(0)
    for cls, f0 in (("low", 300.0), ("high", 2000.0)):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            t = np.arange(int(sr * 0.4)) / sr
            x = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal(t.size)
            sf.write(str(root / cls / f"{i}.wav"), x.astype(np.float32), sr)
    return root


def _config(data: Path, out: Path, models=MODELS, **kw) -> GridConfig:
    return GridConfig(models=models, data=(("folders", str(data)),), protocol="kfold", out=str(out),
                      training=dict(k=2, epochs=1, batch_size=16, sample_rate=8000), **kw)


def _folds(grid: Path) -> dict[str, list[tuple]]:
    """Per run: (fold, accuracy, f1, validation-loss history) of every fold, from the written files."""
    out = {}
    for summary in sorted(grid.glob("*/summary.json")):
        s = json.loads(summary.read_text())
        assert s["complete"], summary
        rows = []
        for f in s["folds"]:
            history = json.loads((summary.parent / f"fold_{f['fold']}" / "result.json").read_text())["history"]
            rows.append((f["fold"], f["accuracy"], f["f1"], history["val_loss"]))
        out[summary.parent.name] = rows
    return out


def _grid_cli(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """The grid of MODELS on ``data`` through its CLI, in a fresh process (its TensorFlow starts pinned to one
    thread, so its numbers match in_process's to the bit); fails the test unless it exits 0."""
    cmd = [sys.executable, "-m", "train.grid", "--models", *MODELS, "--datasets", "folders", "--data", str(data),
           "--out", str(out), *extra, *ARGS]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp("gen") / "tones")


@pytest.fixture(scope="module")
def in_process(data, tmp_path_factory) -> Path:
    """The grid through the CLI, in a fresh process (its TensorFlow starts pinned to one thread)."""
    out = tmp_path_factory.mktemp("grid") / "inproc"
    r = _grid_cli(data, out)
    assert "[grid 4/4 done" in r.stderr and "wrote" in r.stdout
    return out


def test_in_process_layout_report_and_resume(in_process, data):
    assert sorted(p.name for p in in_process.iterdir() if p.is_dir()) == ["lv24_folders", "lv42_folders"]
    for run in ("lv24_folders", "lv42_folders"):
        for name in ("run.json", "summary.json", "fold_0/model.keras", "fold_1/result.json"):
            assert (in_process / run / name).is_file(), (run, name)
        assert not list((in_process / run).glob(".fold_*"))  # no temporary folders left
    assert (in_process / "report.md").is_file()
    before = (in_process / "lv42_folders" / "fold_0" / "result.json").stat().st_mtime_ns
    result = run_grid(_config(data, in_process))  # everything done: nothing runs again
    assert (result["ran"], result["skipped"], result["failed"]) == (0, 4, 0)
    assert (in_process / "lv42_folders" / "fold_0" / "result.json").stat().st_mtime_ns == before


def test_a_corrupt_fold_result_is_named_not_summarised(in_process, data, tmp_path, capsys):
    """Regression: the grid read finished folds' result.json without the checks python -m train makes on
    resume, so a hand-edited accuracy went into summary.json (and the report) as it was."""
    import shutil

    grid = tmp_path / "grid"
    shutil.copytree(in_process, grid)
    result_file = grid / "lv42_folders" / "fold_0" / "result.json"
    result = json.loads(result_file.read_text())
    result_file.write_text(json.dumps({**result, "accuracy": 7.5}))
    before = (grid / "lv42_folders" / "summary.json").read_text()
    assert main(["--models", *MODELS, "--datasets", "folders", "--data", str(data), "--out", str(grid), *ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error:") and str(result_file) in err and "accuracy 7.5" in err, err
    assert (grid / "lv42_folders" / "summary.json").read_text() == before


def test_resume_on_changed_data_is_refused_before_training(in_process, data, tmp_path, capsys):
    """Regression: the grid trained its unfinished folds first and checked the finished ones after, so a
    fold trained on other clips sat beside new ones (two folds of the same speaker) before the error."""
    import shutil

    grid, more = tmp_path / "grid", tmp_path / "tones"
    shutil.copytree(in_process, grid)
    shutil.copytree(data, more)
    shutil.copy(more / "low" / "0.wav", more / "low" / "extra.wav")  # the folds of the new folder differ
    shutil.rmtree(grid / "lv24_folders" / "fold_1")  # a task left to run
    assert main(["--models", *MODELS, "--datasets", "folders", "--data", str(more), "--out", str(grid), *ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error:") and "other clips" in err, err
    assert not (grid / "lv24_folders" / "fold_1").exists()


def test_local_jobs_match_in_process(in_process, data, tmp_path):
    """--jobs 2: two spawned worker processes, no Ray; the same numbers as one process, to the bit, and
    the workers' TensorFlow start-up banner kept out of the log (regression: eight absl/oneDNN lines)."""
    from train.quiet import BANNER

    r = _grid_cli(data, tmp_path / "jobs", "--jobs", "2")
    assert "[grid 4/4 done" in r.stderr and "0 failed" in r.stdout
    assert not [line for line in r.stderr.splitlines() if any(b in line for b in BANNER)], r.stderr
    assert _folds(tmp_path / "jobs") == _folds(in_process)


def test_cache_dir_is_shared_by_tasks_and_later_grids(in_process, data, tmp_path, monkeypatch):
    """--cache-dir: the grid's tasks decode into a folder python -m train can share, results as without it; a
    later grid (a new worker process, here an emptied in-process store) reads it and decodes nothing."""
    import train.data
    import train.grid_task

    cache = tmp_path / "cache"
    _grid_cli(data, tmp_path / "a", "--cache-dir", str(cache))  # a fresh process, as in_process: same bits
    assert len(list(cache.glob("*/*.npy"))) == 12  # one entry per clip, at the one rate both models use
    assert _folds(tmp_path / "a") == _folds(in_process)

    def no_decoding(*a, **kw):
        raise AssertionError("decoded a file the cache holds")

    monkeypatch.setattr(train.grid_task, "_CACHES", {})
    monkeypatch.setattr(train.data, "read_audio", no_decoding)
    result = run_grid(_config(data, tmp_path / "b", models=("lv42",), cache_dir=str(cache)))
    assert (result["ran"], result["failed"]) == (2, 0)
    assert json.loads((tmp_path / "b" / "lv42_folders" / "summary.json").read_text())["complete"]


def test_a_task_killed_mid_fold_goes_on_from_its_last_epoch(data, tmp_path, monkeypatch):
    """Regression: a grid task trained in a throw-away folder with no epoch state, so a task killed in
    epoch 90 of 100 (or its retry) started again from epoch 1. Now it keeps fold_K/resume.npz, as
    python -m train does, and the re-run (by either command) trains only the epochs left, ending where
    an uninterrupted grid ends (same process, same seeds)."""
    from train.fit import KeepEpochState

    def config(out):
        return GridConfig(models=("lv42",), data=(("folders", str(data)),), protocol="kfold", out=str(out),
                          training=dict(k=2, epochs=3, batch_size=16, sample_rate=8000))

    assert run_grid(config(tmp_path / "whole"))["failed"] == 0
    keep = KeepEpochState.on_epoch_end

    def dying(self, epoch, logs=None):  # the process "dies" right after epoch 2's state was written
        keep(self, epoch, logs)
        if epoch + 1 == 2:
            raise RuntimeError("killed")

    monkeypatch.setattr(KeepEpochState, "on_epoch_end", dying)
    out = tmp_path / "cut"
    assert run_grid(config(out))["failed"] == 2
    run = out / "lv42_folders"
    for k in (0, 1):  # no result, no throw-away folder: only the state, in the fold's own folder
        assert sorted(p.name for p in (run / f"fold_{k}").iterdir()) == ["resume.npz"]
    assert not list(run.glob(f".fold_*{PART}*"))
    monkeypatch.undo()
    # fold 0 goes on under python -m train (the same settings, into the grid's run folder), fold 1 under the grid
    from train.__main__ import main as train_main

    assert train_main(["--model", "lv42", "--dataset", "folders", "--data", str(data), "--out", str(run), "--max-folds", "1",
                       "--quiet", "--protocol", "kfold", "--k", "2", "--epochs", "3", "--batch-size", "16", "--sample-rate", "8000"]) == 0
    result = run_grid(config(out))
    assert (result["ran"], result["skipped"], result["failed"]) == (1, 1, 0)
    for k in (0, 1):
        folder = run / f"fold_{k}"
        assert json.loads((folder / "result.json").read_text())["resumed_at"] == [2]
        assert not (folder / "resume.npz").exists()
    assert _folds(out) == _folds(tmp_path / "whole")


@pytest.mark.parametrize("extra, message", [
    (["--data", "emodb=/x"], "emodb is not in --datasets"),
    (["--data", "nonsense"], "folder not found"),
    (["--models", "nope"], "unknown model"),
    (["--num-cpus", "2"], "add --ray"),
    (["--sinc-units", "hz"], "--sinc-units applies to sincnet only"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--jobs", "0"], "--jobs must be at least 1"),
    (["--jobs", "2", "--ray-address", "auto"], "--jobs runs worker processes without Ray"),
    (["--max-folds", "0"], "--max-folds must be at least 1, got 0"),  # was: every fold
    (["--max-folds", "-1"], "--max-folds must be at least 1, got -1"),  # was: all but the last
    (["--seeds", "4294967296"], "--seeds must be between 0 and"),  # was: run.json written, every task failed, exit 0
    (["--name", "{model}_{seed}"], "only {model} and {dataset} can be filled in"),
    (["--name", "../{model}"], "without a path separator"),
    (["--name", ".{model}"], "not start with a dot"),
    (["--cache-dir", "/dev/null/cache"], "cache folder /dev/null/cache: cannot create it"),
])
def test_errors_are_one_line(tmp_path, capsys, data, extra, message):
    base = {"--models": "lv42", "--datasets": "folders", "--data": str(data), "--protocol": "kfold", "--out": str(tmp_path / "o")}
    base.update(dict(zip(extra[::2], extra[1::2])))
    assert main([x for kv in base.items() for x in kv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err, err


def test_name_template_puts_grid_runs_beside_hand_started_ones(data, tmp_path, capsys):
    """--name: a grid names its runs as a hand-started series is named, so it adds seeds to that series
    (the hand run's finished folds are skipped, not trained again) instead of a second, differently named copy."""
    from train.__main__ import main as train_main

    out = tmp_path / "runs"
    settings = ["--protocol", "kfold", "--k", "2", "--epochs", "1", "--batch-size", "16", "--sample-rate", "8000"]
    assert train_main(["--model", "lv42", "--dataset", "folders", "--data", str(data), "--out", str(out / "folders_lv42_e1"),
                       "--quiet", *settings]) == 0
    assert main(["--models", "lv42", "--datasets", "folders", "--data", str(data), "--out", str(out), "--seeds", "0", "1",
                 "--name", "{dataset}_{model}_e1", *settings]) == 0
    assert "grid: 2 task(s) run, 2 done before, 0 failed" in capsys.readouterr().out  # seed 1's two folds only
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["folders_lv42_e1", "folders_lv42_e1_seed1"]
    assert json.loads((out / "folders_lv42_e1_seed1" / "run.json").read_text())["seed"] == 1
    for run in ("folders_lv42_e1", "folders_lv42_e1_seed1"):
        assert json.loads((out / run / "summary.json").read_text())["complete"], run


def test_name_template_that_merges_runs_is_refused(data, tmp_path):
    with pytest.raises(ValueError, match=r"gives two runs the folder 'x_folders' \(lv42 on folders and lv24 on folders\)"):
        _config(data, tmp_path, name="x_{dataset}")


def test_grid_takes_every_training_option_of_python_m_train(data, tmp_path):
    """Both CLIs share their training options: the same flags give a grid run the settings (run.json
    identity) that python -m train would record for that model and seed."""
    from train.__main__ import _identity, parser as train_parser, training_fields
    from train.grid import config_from_args, expand, parser as grid_parser

    options = ["--epochs", "7", "--batch-size", "8", "--lr", "0.002", "--augment", "--k", "2", "--val-fraction", "0.2",
               "--patience", "3", "--monitor", "val_accuracy", "--schedule", "cosine", "--label-smoothing", "0.1",
               "--mixup", "0.2", "--speed", "0.9", "1.1", "--eq", "3", "--masks", "2", "--sample-rate", "8000"]
    sinc = ["--sinc-units", "hz"]  # python -m train refuses it for other models; the grid applies it to sincnet
    common = ["--data", str(data), "--protocol", "kfold"]
    grid = config_from_args(grid_parser().parse_args(
        ["--models", "sincnet", "lv24", "--datasets", "folders", "--out", str(tmp_path / "g"), "--seeds", "0", "3", *common, *options, *sinc]))
    _, tasks = expand(grid)
    runs = {(t.run.model, t.run.seed): t.run for t in tasks}
    assert sorted(runs) == [("lv24", 0), ("lv24", 3), ("sincnet", 0), ("sincnet", 3)]
    for (model, seed), run in runs.items():
        args = train_parser().parse_args(["--model", model, "--dataset", "folders", "--out", "x", "--seed", str(seed),
                                          *common, *options, *(sinc if model == "sincnet" else [])])
        single = dict(training_fields(args, [model]), model=model, dataset="folders", data=run.data, protocol="kfold",
                      out=run.out, seed=seed, progress=False)
        assert _identity(run) == _identity(type(run)(**single)), (model, seed)
    assert runs[("sincnet", 0)].sinc_units == "hz" and runs[("lv24", 0)].schedule == "cosine"
    assert "sinc_units" not in _identity(runs[("lv24", 0)])  # means nothing outside sincnet


def test_grid_config_refuses_unknown_training_settings(data, tmp_path):
    with pytest.raises(ValueError, match="not a per-run training setting: epoch, seed"):
        GridConfig(models=("lv24",), data=(("folders", str(data)),), protocol="kfold", out=str(tmp_path),
                   training={"epoch": 3, "seed": 1})


def test_missing_ray_is_one_line(tmp_path, capsys, data, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    argv = ["--models", "lv42", "--datasets", "folders", "--data", str(data), "--protocol", "kfold", "--out", str(tmp_path / "o"), "--ray"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Ray is not installed") and "\n" not in err
    assert not (tmp_path / "o").exists()  # refused before anything was written


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """One local Ray instance for the module (start-up is slow); workers inherit the fault-hook folder."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'tinyaudio[grid]')")
    faults = tmp_path_factory.mktemp("faults")
    os.environ[FAULTS_ENV] = str(faults)  # before ray.init: workers inherit the driver's environment
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=100 * 2**20)
    yield faults
    ray.shutdown()
    os.environ.pop(FAULTS_ENV, None)


def test_ray_matches_in_process(ray_local, in_process, data, tmp_path):
    result = run_grid(_config(data, tmp_path / "ray", ray=True, num_cpus=2))
    assert (result["ran"], result["failed"]) == (4, 0)
    assert _folds(tmp_path / "ray") == _folds(in_process)  # same accuracy, F1 and loss curves, to the bit


def test_ray_retries_a_killed_worker(ray_local, in_process, data, tmp_path):
    out = tmp_path / "faulty"
    (ray_local / "lv42_folders.fold_1").write_text("")  # fold 1's first attempt kills its worker
    result = run_grid(_config(data, out, models=("lv42",), ray=True, num_cpus=2))
    killed = ray_local / "lv42_folders.fold_1.killed"
    assert killed.is_file() and int(killed.read_text()) > 0  # the first attempt did die, after training
    assert (result["ran"], result["failed"]) == (2, 0)  # ... and the retry finished it
    run = out / "lv42_folders"
    assert sorted(p.name for p in run.iterdir() if p.name.startswith(("fold", ".fold"))) == ["fold_0", "fold_1"]
    assert _folds(out)["lv42_folders"] == _folds(in_process)["lv42_folders"]  # one result per fold, the right one


def test_pinning_threads_on_jax_leaves_tensorflow_alone():
    """On a GPU machine without TensorFlow the grid runs on Keras' JAX backend: pinning a task's
    threads must not import TensorFlow there."""
    pytest.importorskip("jax")
    code = ("import sys\nfrom train.grid_task import pin_threads\npin_threads(1)\n"
            "assert 'tensorflow' not in sys.modules, 'TensorFlow imported'\nprint('ok')")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]
