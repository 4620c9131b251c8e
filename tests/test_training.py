"""Training learns (real FSDD when present, generated tones otherwise) and the CLI resumes."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from benchmarks.train_faults import CLASSES as TONE_CLASSES
from benchmarks.train_faults import make_data
from tests.conftest import SHARED_DATA
from train.__main__ import main
from train.config import ModelConfig
from train.data import decode, load_dataset
from train.fit import FitConfig, evaluate, train

CLASSES = tuple(name for name, _ in TONE_CLASSES)
_generate = make_data  # three classes of noisy tone bursts, one folder per class


def _fsdd_subset():
    """(train, val, test) clip lists: 3 speakers train (10 % val), a 4th speaker tests."""
    ds = load_dataset("fsdd", SHARED_DATA / "fsdd")
    train_spk, test_spk = ("george", "jackson", "nicolas"), "theo"
    tr = [c for c in ds.clips if c.speaker in train_spk]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(tr))
    val = [tr[i] for i in order[:150]]
    tr = [tr[i] for i in order[150:]]
    return tr, val, [c for c in ds.clips if c.speaker == test_spk], len(ds.labels)


def test_small_model_learns(tmp_path):
    """lv42 at 8 kHz, a few epochs: held-out accuracy well above chance."""
    if (SHARED_DATA / "fsdd").is_dir():
        tr, val, te, n_classes = _fsdd_subset()
        epochs, floor = 12, 0.3  # chance 0.10; the unseen speaker makes this hard
    else:
        ds = load_dataset("folders", _generate(tmp_path / "gen"))
        idx = np.random.default_rng(0).permutation(len(ds.clips))
        tr, val, te = ([ds.clips[i] for i in part] for part in (idx[:80], idx[80:100], idx[100:]))
        n_classes, epochs, floor = 3, 8, 0.6  # chance 0.33
    config = ModelConfig("lv42", num_classes=n_classes, sample_rate=8000)
    fit = FitConfig(epochs=epochs, batch_size=32, learning_rate=2e-3, seed=0)
    audio = [decode(part, 8000) for part in (tr, val, te)]
    labels = [np.array([c.label for c in part]) for part in (tr, val, te)]
    ckpt = tmp_path / "model.keras"
    r = train(config, audio[0], labels[0], audio[1], labels[1], fit, ckpt, progress=False)
    assert ckpt.is_file() and 1 <= r["best_epoch"] <= epochs
    result = evaluate(ckpt, config, audio[2], labels[2], fit)
    assert result["accuracy"] > floor, result


def test_cli_resume_and_artifacts(tmp_path, capsys):
    data = _generate(tmp_path / "gen", per_class=12)
    out = tmp_path / "runs" / "tiny"
    args = ["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "kfold", "--k", "2",
            "--out", str(out), "--epochs", "1", "--max-folds", "1", "--quiet", "--sample-rate", "8000"]
    assert main(args) == 0
    result = out / "fold_0" / "result.json"
    stamp = result.stat().st_mtime_ns
    for name in ("fold_0/model.keras", "fold_0/config.json", "fold_0/confusion.png", "fold_0/curves.png",
                 "summary.json", "confusion.png", "curves.png", "recall_by_fold.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    weakest = summary["weakest_cells"]
    assert weakest and weakest[0]["fold"] == summary["folds"][0]["name"] and weakest[0]["label"] in CLASSES
    assert [c["recall"] for c in weakest] == sorted(c["recall"] for c in weakest)
    assert summary["folds_done"] == 1 and summary["folds_total"] == 2 and not summary["complete"]
    for key in ("accuracy", "precision", "recall", "f1", "epochs", "train_seconds"):
        assert key in summary["folds"][0] and key in summary["mean"] and key in summary["std"]
    from train.malloc import tune_malloc

    fold = json.loads(result.read_text())
    assert fold["malloc_tuned"] is tune_malloc()  # its train_seconds depend on it
    # CPU time beside the wall clock, and the cores the process could use: what makes runs taken under
    # other loads comparable (train.report's relative training time)
    assert fold["train_cpu_seconds"] > 0 and 1 <= fold["cores"] <= os.cpu_count()
    assert summary["mean"]["train_cpu_seconds"] == fold["train_cpu_seconds"] and summary["std"]["train_cpu_seconds"] == 0
    config = json.loads((out / "fold_0" / "config.json").read_text())
    assert config["labels"] == sorted(CLASSES) and ModelConfig.from_dict(config["model_config"]).sample_rate == 8000

    capsys.readouterr()
    assert main(args + ["--final"]) == 0  # resume: the finished fold is not trained again
    assert result.stat().st_mtime_ns == stamp
    assert "done before, skipped" in capsys.readouterr().err
    assert (out / "final" / "model.keras").is_file() and json.loads((out / "final" / "config.json").read_text())["epochs"] == 1
    assert not list(out.glob("*/resume.npz")), "epoch states are deleted once their fold or final model is finished"
    (out / "fold_0" / "resume.npz").write_bytes(b"left by a kill between result.json and its deletion")
    assert main(args) == 0 and not (out / "fold_0" / "resume.npz").exists()

    changed = [("2" if a == "1" and args[i - 1] == "--epochs" else a) for i, a in enumerate(args)]
    assert main(changed) == 2  # same --out, different settings: refused
    assert "different settings" in capsys.readouterr().err

    # a run folder from before recipe options existed (no such keys in run.json) still resumes
    run_file = out / "run.json"
    old = json.loads(run_file.read_text())
    for key in ("schedule", "label_smoothing", "mixup"):
        del old[key]
    del old["augmentation"]["eq_db"], old["augmentation"]["masks"]
    run_file.write_text(json.dumps(old))
    assert main(args) == 0 and result.stat().st_mtime_ns == stamp


def test_checkpoint_monitor_rules():
    from train.fit import best_epoch

    hist = {"val_loss": [1.8, 2.2, float("nan"), 2.6], "val_accuracy": [0.2, 0.48, 0.5, 0.5]}
    assert best_epoch(hist, "val_loss") == 1 and best_epoch(hist, "val_accuracy") == 3  # first best; NaN never wins
    with pytest.raises(ValueError, match="monitor"):
        FitConfig(monitor="loss")


def test_cli_monitor_val_accuracy_keeps_the_best_accuracy_epoch(tmp_path):
    data = _generate(tmp_path / "gen", per_class=8)
    out = tmp_path / "acc"
    assert main(["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "kfold", "--k", "2",
                 "--out", str(out), "--epochs", "3", "--max-folds", "1", "--quiet", "--sample-rate", "8000",
                 "--monitor", "val_accuracy"]) == 0
    result = json.loads((out / "fold_0" / "result.json").read_text())
    acc = result["history"]["val_accuracy"]
    assert result["best_epoch"] == acc.index(max(acc)) + 1
    assert json.loads((out / "run.json").read_text())["monitor"] == "val_accuracy"


def test_mixup_blends_pairs_and_keeps_the_own_label_larger():
    from train.fit import mix

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 100)).astype(np.float32)
    labels = rng.integers(0, 5, 64)
    y = np.eye(5, dtype=np.float32)[labels]
    mx, my = mix(x, y, 0.4, rng)
    assert mx.shape == x.shape and mx.dtype == np.float32 and my.dtype == np.float32
    np.testing.assert_allclose(my.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(my[np.arange(64), labels] >= 0.5)  # the window's own class keeps the larger share
    assert not np.allclose(mx, x)  # something was mixed in
    # each mixed window is lam * own + (1 - lam) * partner with the label's lam
    lam = my[np.arange(64), labels]
    rest = mx - lam[:, None] * x
    partner_share = (1.0 - lam)[:, None]
    ok = [np.any(np.all(np.abs(rest[i] - partner_share[i] * x) < 1e-4, axis=1)) or lam[i] == 1.0 for i in range(64)]
    assert all(ok)


def test_recipe_settings_are_checked():
    from train.augment import Augment

    with pytest.raises(ValueError, match="schedule"):
        FitConfig(schedule="step")
    with pytest.raises(ValueError, match="label smoothing"):
        FitConfig(label_smoothing=1.0)
    with pytest.raises(ValueError, match="mixup"):
        FitConfig(mixup=-0.1)
    with pytest.raises(ValueError, match="ema"):
        FitConfig(ema=1.0)
    with pytest.raises(ValueError, match="speed"):
        Augment(speed=(1.1, 0.9))


def test_cli_recipe_flags_reach_training_and_run_json(tmp_path):
    """--schedule cosine, --label-smoothing, --mixup and --speed: recorded in run.json, and the
    cosine rate has decayed to ~0 by the end of training."""
    import keras

    data = _generate(tmp_path / "gen", per_class=8)
    out = tmp_path / "recipe"
    assert main(["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "kfold", "--k", "2",
                 "--out", str(out), "--epochs", "2", "--max-folds", "1", "--quiet", "--sample-rate", "8000",
                 "--schedule", "cosine", "--label-smoothing", "0.1", "--mixup", "0.3", "--speed", "0.9", "1.1", "--eq", "6", "--masks", "2",
                 "--ema", "0.99"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert (run["schedule"], run["label_smoothing"], run["mixup"], run["ema"]) == ("cosine", 0.1, 0.3, 0.99)
    assert run["augmentation"]["speed"] == [0.9, 1.1] and run["augmentation"]["eq_db"] == 6.0 and run["augmentation"]["masks"] == 2
    opt = keras.models.load_model(str(out / "fold_0" / "model.keras")).optimizer
    assert int(opt.iterations) > 0 and float(np.asarray(opt.learning_rate)) < 1e-3  # decayed from the starting rate


def test_cli_window_sets_the_model_input_and_its_own_report_table(tmp_path):
    """--window 0.5 at 8 kHz: a 4000-sample model, recorded in run.json and the fold's config, named in
    the recipe (so train.report keeps it apart from paper-window runs)."""
    import keras

    from train.report import main as report_main, recipe

    data = _generate(tmp_path / "gen", per_class=6)
    out = tmp_path / "short"
    argv = ["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "kfold", "--k", "2",
            "--epochs", "1", "--max-folds", "1", "--quiet", "--sample-rate", "8000"]
    assert main(argv + ["--out", str(out), "--window", "0.5"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert json.loads((out / "run.json").read_text())["window"] == 0.5
    assert summary["window_samples"] == 4000 and summary["model_config"]["input_samples"] == 4000
    assert json.loads((out / "fold_0" / "config.json").read_text())["window_samples"] == 4000
    assert keras.models.load_model(str(out / "fold_0" / "model.keras")).inputs[0].shape[1] == 4000
    assert recipe(summary["config"]) == "augment, 0.5 s window, k 2"  # --k 2: not the default 3 folds
    assert recipe({**summary["config"], "window": None}) == "augment, k 2"
    # beside a paper-window run of the same model, the report states both sizes
    assert main(argv + ["--out", str(tmp_path / "paper")]) == 0
    assert report_main([str(out), str(tmp_path / "paper"), "--out", str(tmp_path / "acc.md")]) == 0
    text = (tmp_path / "acc.md").read_text()
    assert "## gen · kfold · 8000 Hz · augment, 0.5 s window, k 2" in text  # dataset named after its folder
    statement = next(line for line in text.splitlines() if line.startswith("- Training recipe (gen"))
    assert "8000-sample window: 72," in statement and "4000-sample window: 72," in statement and "M MACs" in statement


def test_cli_sinc_units_reach_the_layer_summary_and_report(tmp_path, capsys):
    """SincNet's band edges train in sample-rate units by default: stored in run.json, the summary's
    model_config and the saved layer; a run from before the option (no sinc_units) reads as Hz."""
    import keras

    from train.report import recipe

    data = _generate(tmp_path / "gen", per_class=6)
    out = tmp_path / "sinc"
    argv = ["--model", "sincnet", "--dataset", "folders", "--data", str(data), "--protocol", "kfold", "--k", "2",
            "--out", str(out), "--epochs", "1", "--max-folds", "1", "--quiet", "--sample-rate", "8000"]
    assert main(argv) == 0
    run = json.loads((out / "run.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert run["sinc_units"] == "sample-rate" and summary["model_config"]["sinc_hz_per_unit"] == 8000.0
    layer = keras.models.load_model(str(out / "fold_0" / "model.keras"), safe_mode=True).get_layer("sinc")
    assert layer.hz_per_unit == 8000.0
    assert recipe(summary["config"]) == "augment, k 2"  # the default recipe (on two folds)
    assert recipe({**summary["config"], "sinc_units": "hz"}) == "augment, SincNet band edges in Hz, k 2"
    legacy = {k: v for k, v in summary["config"].items() if k != "sinc_units"}
    assert recipe(legacy) == "augment, SincNet band edges in Hz, k 2"
    assert recipe({**legacy, "model": "lv24"}) == "augment, k 2"
    # a run folder from before the option was trained in Hz: it resumes with --sinc-units hz, not without
    (out / "run.json").write_text(json.dumps({k: v for k, v in run.items() if k != "sinc_units"}))
    capsys.readouterr()
    assert main(argv) == 2 and "sinc_units" in capsys.readouterr().err
    assert main(argv + ["--sinc-units", "hz"]) == 0

    # and train.sinc_bands tabulates how far the edges moved (one Adam step moves them by ~8 Hz here)
    from train.sinc_bands import main as bands_main, read_bands

    bands = read_bands(out)
    assert bands.units == "sample-rate" and bands.low.shape == (1, 32) and bands.drift()["max_hz"] > 1.0
    assert bands_main([str(out), "--out", str(tmp_path / "bands" / "sinc_bands.md")]) == 0
    table = (tmp_path / "bands" / "sinc_bands.md").read_text()
    assert "| sinc | sample-rate | 1 |" in table and (tmp_path / "bands" / "sinc_bands.png").stat().st_size > 0
    assert bands_main([str(tmp_path / "gen"), "--out", str(tmp_path / "x.md")]) == 2  # no checkpoints: one-line error
    # a fold still training (its model.keras there, no result.json yet) is not counted as a finished one
    import shutil

    shutil.copytree(out / "fold_0", out / "fold_1", ignore=shutil.ignore_patterns("result.json"))
    assert read_bands(out).low.shape == (1, 32)


def test_cli_head_segments_reach_run_summary_report_export_and_order_probe(tmp_path, capsys):
    """--head-segments (ours, 1D only): recorded in run.json and the summary's model_config, built into
    the checkpoint, named in the report's recipe and the order probe's table, read back by export; a
    run without it keeps run.json as before the option, and the two never resume each other."""
    import keras

    from export.loading import from_run
    from train.order_probe import main as probe_main
    from train.report import recipe

    data = _generate(tmp_path / "gen", per_class=6)
    out = tmp_path / "seg"
    argv = ["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "kfold", "--k", "2",
            "--out", str(out), "--epochs", "1", "--max-folds", "1", "--quiet", "--sample-rate", "8000"]
    assert main(argv + ["--head-segments", "4"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert json.loads((out / "run.json").read_text())["head_segments"] == 4
    assert summary["model_config"]["head_segments"] == 4
    model = keras.models.load_model(str(out / "fold_0" / "model.keras"), safe_mode=True)
    assert model.get_layer("segments").output.shape[1] == 4
    assert recipe(summary["config"]) == "augment, head: 4 time segments in order, k 2"
    assert from_run(out).model_config.head_segments == 4
    capsys.readouterr()
    assert main(argv) == 2 and "head_segments" in capsys.readouterr().err  # not the same run
    probe = tmp_path / "probe.md"
    assert probe_main([str(out), "--data", str(data), "--out", str(probe), "--chunk", "0.1", "--quiet"]) == 0
    assert "| seg | lv42 | 8000 Hz | 4 time segments, in order | 1 |" in probe.read_text()

    plain = tmp_path / "plain"
    argv[argv.index(str(out))] = str(plain)
    assert main(argv) == 0
    assert "head_segments" not in json.loads((plain / "run.json").read_text())
    assert main(argv + ["--head-segments", "2"]) == 2


@pytest.mark.parametrize("bad, message", [
    (["--model", "nope"], "unknown model"),
    (["--model", "lv81", "--sample-rate", "8000"], "not 8000"),
    (["--protocol", "loso"], "no speaker"),
    (["--schedule", "cosine", "--speed", "1.2", "0.8"], "speed range"),
    (["--label-smoothing", "1.5"], "label smoothing"),
    (["--sinc-units", "hz"], "sincnet only"),
    (["--head-segments", "0"], "--head-segments must be at least 1"),
    (["--model", "convdf", "--head-segments", "2"], "1D models only, not convdf"),
    (["--window", "0.05", "--head-segments", "8"], "needs at least 8 feature frames"),
    (["--window", "0.005"], "too short for its convolutions"),
    (["--window", "-1"], "positive number of seconds"),
    (["--window", "inf"], "positive number of seconds"),
    (["--lr", "nan"], "learning rate must be a positive number"),
    (["--lr", "0"], "learning rate must be a positive number"),
    (["--mixup", "nan"], "mixup"),
    (["--eq", "nan"], "eq must be"),
    (["--val-fraction", "-0.5"], "--val-fraction must be between 0 and 1"),
    (["--patience", "-1"], "patience must be at least 1"),
    (["--cache-dir", "/dev/null/cache"], "cache folder /dev/null/cache: cannot create it"),
])
def test_cli_errors_are_one_line(tmp_path, capsys, bad, message):
    data = _generate(tmp_path / "gen", per_class=3)
    base = {"--model": "lv42", "--dataset": "folders", "--data": str(data), "--protocol": "split", "--out": str(tmp_path / "o")}
    for flag, value in zip(bad[::2], bad[1::2]):
        base[flag] = value
    argv = [x for kv in base.items() for x in kv] + [x for x in bad if x not in base and x not in base.values()]
    assert main(argv + ["--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_training_settings_are_refused_before_tensorflow_loads(tmp_path):
    """--lr, --ema, --label-smoothing, --mixup, --patience: a typo costs no TensorFlow start-up
    (7-17 s here), so FitConfig is checked before anything imports Keras."""
    import subprocess
    import sys

    data = _generate(tmp_path / "gen", per_class=2)
    code = ("import sys; from train.__main__ import main; rc = main(sys.argv[1:]); "
            "print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    base = ["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "split", "--quiet"]
    for i, bad in enumerate((["--lr", "-1"], ["--ema", "1"], ["--label-smoothing", "1"], ["--mixup", "-1"],
                             ["--patience", "0"])):
        done = subprocess.run([sys.executable, "-c", code, *base, "--out", str(tmp_path / f"o{i}"), *bad],
                              capture_output=True, text=True, timeout=120)
        assert done.stdout.split() == ["2", "False", "False"], (bad, done.stdout, done.stderr[-500:])
        assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
        assert not (tmp_path / f"o{i}").exists()


def test_cli_out_of_memory_is_one_line_and_keeps_finished_folds(tmp_path, capsys, monkeypatch):
    """Twelve JAX trainings on one H100 ran it out of memory in XLA's autotuner and left a traceback.
    Fold 0 trains for real here; fold 1 then fails with that error's text (a GPU is not at hand):
    one line, exit 1, and the same command resumes after fold 0."""
    import train.__main__ as cli

    data = _generate(tmp_path / "gen", per_class=6)
    out = tmp_path / "oom"
    args = ["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "kfold", "--k", "2",
            "--out", str(out), "--epochs", "1", "--quiet", "--sample-rate", "8000"]
    real = cli.train_fold

    def second_fold_runs_out(p, fold, audio, fold_dir):
        if fold_dir.name == "fold_1":
            raise RuntimeError("INTERNAL: Failed to get configs for: 3 out of 18 instructions.\n"
                               " - RESOURCE_EXHAUSTED: : CUDA_ERROR_OUT_OF_MEMORY: out of memory")
        return real(p, fold, audio, fold_dir)

    monkeypatch.setattr(cli, "train_fold", second_fold_runs_out)
    assert main(args) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[0].startswith("fold 0 ")  # fold 0's result line, then the error in one line
    assert len(lines) == 2 and lines[1].startswith("error: out of memory (INTERNAL: Failed to get configs")
    assert "re-run the same command" in lines[1]
    stamp = (out / "fold_0" / "result.json").stat().st_mtime_ns

    monkeypatch.setattr(cli, "train_fold", real)
    assert main(args) == 0
    assert (out / "fold_0" / "result.json").stat().st_mtime_ns == stamp  # not trained again
    assert json.loads((out / "summary.json").read_text())["folds_done"] == 2

    monkeypatch.setattr(cli, "run", lambda cfg: (_ for _ in ()).throw(RuntimeError("a bug, not memory")))
    with pytest.raises(RuntimeError, match="a bug"):  # anything else still surfaces as itself
        main(args)


@pytest.mark.parametrize("error, oom", [
    (MemoryError("Unable to allocate 880. GiB for an array"), True),
    (type("ResourceExhaustedError", (Exception,), {})("OOM when allocating tensor"), True),
    (RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 2.1GiB"), True),
    (RuntimeError("INVALID_ARGUMENT: Buffer has been deleted or donated."), False),
    (ValueError("shapes do not match"), False),
])
def test_out_of_memory_recognises_the_backends_words(error, oom):
    from train.__main__ import out_of_memory

    assert out_of_memory(error) is oom


def check_weight_average(folder: str) -> None:
    """WeightAverage on a small Dense+BatchNorm model, checked step by step against numpy: the final
    model holds the average, each epoch trains on from the raw weights, and the checkpoint kept by
    val_loss is the average at the end of its epoch, validated as such. Runs on any Keras backend."""
    from pathlib import Path

    import keras

    from train.fit import BestCheckpoint, WeightAverage

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 64)]
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.BatchNormalization(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="categorical_crossentropy")

    def values():
        if hasattr(model, "jax_state_sync"):
            model.jax_state_sync()
        return [np.array(keras.ops.convert_to_numpy(v.value)) for v in model.weights]

    class Record(keras.callbacks.Callback):  # listed first: sees the raw weights of every step
        def on_train_begin(self, logs=None):
            self.first, self.steps, self.starts, self.ends = values(), [], [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.starts.append(values())

        def on_train_batch_end(self, batch, logs=None):
            self.steps.append(values())

        def on_epoch_end(self, epoch, logs=None):
            self.ends.append(len(self.steps))

    record, path, decay = Record(), Path(folder) / "best.keras", 0.9
    history = model.fit(x, y, batch_size=16, epochs=3, validation_data=(x[:32], y[:32]), verbose=0,
                        callbacks=[record, BestCheckpoint(path), WeightAverage(decay)]).history
    average, at_epoch_end = record.first, []
    for t, w in enumerate(record.steps):
        d = min(decay, t / (t + 1.0))
        average = [d * a + (1.0 - d) * b for a, b in zip(average, w)]
        if t + 1 in record.ends:
            at_epoch_end.append(average)
    for a, b in zip(values(), average):  # training ended: the model holds the average
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    for epoch in (1, 2):  # each epoch trained on from the raw weights of the one before, not the average
        for a, b in zip(record.starts[epoch], record.steps[record.ends[epoch - 1] - 1]):
            np.testing.assert_array_equal(a, b)
    best = int(np.argmin(history["val_loss"]))
    kept = keras.saving.load_model(path)
    for a, b in zip(kept.get_weights(), at_epoch_end[best]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert abs(float(kept.evaluate(x[:32], y[:32], verbose=0)) - history["val_loss"][best]) < 1e-4
    assert not np.allclose(at_epoch_end[best][0], record.steps[record.ends[best] - 1][0])  # averaging did something


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_weight_average_validates_and_keeps_the_average(tmp_path, backend):
    if backend == "tensorflow":
        check_weight_average(str(tmp_path))
        return
    pytest.importorskip("jax")
    import os
    import subprocess
    import sys

    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    code = f"from tests.test_training import check_weight_average; check_weight_average({str(tmp_path)!r})"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


_JAX_RUN = """
import json, sys
import keras, numpy as np
from train.__main__ import main
out = sys.argv[2]
assert main(["--model", "conv2d", "--dataset", "folders", "--data", sys.argv[1], "--protocol", "kfold", "--k", "2",
             "--window", "1", "--epochs", "1", "--max-folds", "1", "--quiet", "--out", out]) == 0
model = keras.saving.load_model(out + "/fold_0/model.keras")
probe = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 22050, 1)).astype(np.float32)
np.save(sys.argv[3], keras.ops.convert_to_numpy(model(probe, training=False)))
print(keras.backend.backend())
"""


def test_jax_backend_trains_a_checkpoint_tensorflow_loads(tmp_path):
    """Keras on JAX (how the 2D models train on a GPU machine without TensorFlow) runs python -m train;
    the checkpoint it keeps loads under TensorFlow, which exports it, and gives the same outputs."""
    pytest.importorskip("jax")
    import os
    import subprocess
    import sys

    import keras

    data, out, probs = _generate(tmp_path / "gen", per_class=8), tmp_path / "jax_run", tmp_path / "jax.npy"
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", _JAX_RUN, str(data), str(out), str(probs)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "jax"
    machine = json.loads((out / "summary.json").read_text())["machine"]
    assert machine["keras_backend"] == "jax" and machine["accelerator"] is None  # JAX on the CPU here
    fold = json.loads((out / "fold_0" / "result.json").read_text())
    assert fold["trained_on"] == {"keras_backend": "jax", "accelerator": None}  # kept if the run is resumed elsewhere
    model = keras.saving.load_model(out / "fold_0" / "model.keras")
    probe = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 22050, 1)).astype(np.float32)
    np.testing.assert_allclose(model(probe, training=False).numpy(), np.load(probs), atol=1e-5)


def _report_every_run(runs, out) -> tuple[str, dict]:
    """python -m train.report over every run folder in ``runs``: the Markdown written to ``out`` and
    the JSON's groups."""
    from train.report import main as report_main

    assert report_main([str(p) for p in sorted(runs.iterdir())] + ["--out", str(out)]) == 0
    return out.read_text(), json.loads(out.with_suffix(".json").read_text())["groups"]


def _write_summary(run, model, acc, secs, protocol, config=None, model_config=None, cpu_secs=None):
    """A summary.json as python -m train writes it, for an UrbanSound8K run of two folds (with CPU
    seconds if ``cpu_secs``, as runs since that field)."""
    run.mkdir(parents=True, exist_ok=True)
    stats = {"accuracy": acc, "precision": acc, "recall": acc, "f1": acc, "epochs": 5, "best_epoch": 4, "train_seconds": secs,
             **({"train_cpu_seconds": cpu_secs} if cpu_secs else {})}
    (run / "summary.json").write_text(json.dumps({
        "model": model, "dataset": "urbansound8k", "protocol": protocol, "sample_rate": 22050,
        "folds_done": 2, "folds_total": 2, "complete": True, "mean": stats,
        "folds": [{"fold": 0, "name": "fold=1", "accuracy": acc}, {"fold": 1, "name": "fold=2", "accuracy": acc}], "std": {k: 0.0 for k in stats},
        "config": config or {"augment": True, "epochs": 5}, "machine": {"cpu": "test", "nproc": 2},
        **({"model_config": model_config, "window_samples": model_config["input_samples"]} if model_config else {})}))


def test_report_takes_relative_training_time_from_cpu_seconds_when_every_run_has_them(tmp_path):
    """lv18 trained alone on two cores (wall 30 s, 50 CPU s), lv81 beside another job (wall 40 s,
    20 CPU s): by the wall clock lv81 looks slower, by the work done it is the faster. A table with
    a run that lacks CPU seconds falls back to the wall clock for every row."""
    runs = tmp_path / "runs"
    _write_summary(runs / "lv18", "lv18", 0.7, 30.0, "official", cpu_secs=50.0)
    _write_summary(runs / "lv81", "lv81", 0.6, 40.0, "official", cpu_secs=20.0)
    for protocol in ("random-split",):  # the other table: one run from before the field
        _write_summary(runs / f"lv18_{protocol}", "lv18", 0.8, 30.0, protocol, cpu_secs=50.0)
        _write_summary(runs / f"lv81_{protocol}", "lv81", 0.9, 40.0, protocol)
    text, groups = _report_every_run(runs, tmp_path / "accuracy.md")
    by = {r["model"]: r for r in groups["urbansound8k · official · 22050 Hz"]}
    assert by["lv18"]["relative_training_time"] == 2.5 and by["lv81"]["relative_training_time"] == 1.0
    assert by["lv18"]["relative_time_from"] == "cpu" and "| 2.50 *cpu* | 30 | 50 |" in text
    wall = {r["model"]: r for r in groups["urbansound8k · random-split · 22050 Hz"]}
    assert wall["lv81"]["relative_training_time"] == 40 / 30 and wall["lv81"]["relative_time_from"] == "wall"
    assert "| 1.33 | 40 | – |" in text  # no CPU seconds: a dash, and the ratio from the wall clock
    # --keep carries the CPU seconds over and recomputes the ratio from them
    from train.report import main as report_main

    shutil.rmtree(runs / "lv81")
    out = tmp_path / "again.md"
    assert report_main([str(runs / "lv18"), "--keep", str(tmp_path / "accuracy.json"), "--out", str(out)]) == 0
    kept = {r["model"]: r for r in json.loads(out.with_suffix(".json").read_text())["groups"]["urbansound8k · official · 22050 Hz"]}
    assert kept["lv81"]["train_cpu_seconds"] == 20.0 and kept["lv18"]["relative_training_time"] == 2.5


def test_report_gathers_runs(tmp_path):
    from train.report import main as report_main

    recipe = {"augment": True, "epochs": 40, "schedule": "cosine", "mixup": 0.2, "ema": 0.999, "augmentation": {"speed": [0.9, 1.1]}}
    for model, acc, secs, protocol, config in (("lv18", 0.7, 30.0, "official", None), ("lv81", 0.5, 10.0, "official", None),
                                               ("lv81", 0.8, 10.0, "random-split", None), ("lv18", 0.75, 90.0, "official", recipe),
                                               ("lv18", 0.72, 60.0, "official", {"augment": True, "epochs": 10}),
                                               ("lv81", 0.56, 10.0, "official", {"augment": True, "epochs": 5, "seed": 1}),
                                               ("lv81", 0.53, 10.0, "official", {"augment": True, "epochs": 5, "seed": 2})):
        run = tmp_path / "runs" / (f"{model}_{protocol}{'_' + str(config['epochs']) if config else ''}"
                                   f"{'_seed' + str(config['seed']) if config and 'seed' in config else ''}")
        _write_summary(run, model, acc, secs, protocol, config)
    (tmp_path / "runs" / "empty").mkdir()
    out = tmp_path / "accuracy.md"
    assert report_main([str(p) for p in sorted((tmp_path / "runs").iterdir())] + ["--out", str(out)]) == 0
    text = out.read_text()
    assert "71.8 ± 3.5" in text and "68.1 ± 4.3" in text  # the paper's lv18/lv81 UrbanSound8K numbers
    rows = json.loads(out.with_suffix(".json").read_text())["groups"]["urbansound8k · official · 22050 Hz"]
    by = {r["model"]: r for r in rows}
    assert by["lv81"]["fold_accuracy"] == {"fold=1": 0.5, "fold=2": 0.5}  # per fold in the JSON, for single-fold comparisons
    assert by["lv18"]["paper_value"] == [71.8, 3.5]  # the number the chart's diamond is drawn at
    # the chart: a real PNG beside the Markdown, one panel per table, linked from the report
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "](accuracy.png)" in text
    from PIL import Image
    with Image.open(png) as im:
        assert im.width > 500 and im.height > 300 and len(im.convert("RGB").getcolors(1 << 20)) > 20  # drawn, not blank
    assert abs(by["lv18"]["relative_performance"] - 1.4) < 1e-9 and abs(by["lv18"]["relative_training_time"] - 3.0) < 1e-9
    assert "Pooling vs striding" in text and "no summary.json" in text
    # computed from the built models (train.macs.frame_receptive_field), beside each model's best run
    assert ("Frame receptive field (urbansound8k · official · 22050 Hz): the 1D models classify the mean of frame "
            "features (global average pooling, order discarded), each frame seeing lv81 23.2 ms (50.0 %), "
            "lv18 46.4 ms (75.0 %)") in text
    assert "Random split inflation (urbansound8k, lv81 @ 22050 Hz, kept by val_loss)" in text and "+30.0 points over official" in text
    # a non-default recipe gets its own table, and a statement sets it beside the default recipe
    assert "## urbansound8k · official · 22050 Hz · augment, speed 0.9–1.1, cosine LR, mixup 0.2, weight EMA 0.999" in text
    assert ("Training recipe (urbansound8k · official · 22050 Hz, lv18, kept by val_loss): augment, 5 epochs: 70.0 ± 0.0 % "
            "(2/2 folds, lv18_official); augment, 10 epochs: 72.0 ± 0.0 % (2/2 folds, lv18_official_10); "
            "augment, speed 0.9–1.1, cosine LR, mixup 0.2, weight EMA 0.999, 40 epochs: 75.0 ± 0.0 %") in text
    # the same recipe run longer is an ablation: its own table, so each table has one row per model
    assert [r["run"] for r in rows if r["model"] == "lv18"] == [str(tmp_path / "runs" / "lv18_official")]
    longer = json.loads(out.with_suffix(".json").read_text())["groups"]["urbansound8k · official · 22050 Hz · 10 epochs"]
    assert [r["run"] for r in longer] == [str(tmp_path / "runs" / "lv18_official_10")]
    # the same training with other seeds: its own table beside its seed-0 run, and a statement that
    # sets the spread between seeds against the spread between the models of the seed-0 table
    assert [r["run"] for r in rows if r["model"] == "lv81"] == [str(tmp_path / "runs" / "lv81_official")]
    seeds = json.loads(out.with_suffix(".json").read_text())["groups"]["urbansound8k · official · 22050 Hz · seed repeats"]
    assert [(r["label"], r["accuracy"]) for r in seeds] == [("lv81 (seed 0)", 0.5), ("lv81 (seed 1)", 0.56), ("lv81 (seed 2)", 0.53)]
    assert ("Seed repeats (urbansound8k · official · 22050 Hz, lv81, augment, 5 epochs): seed 0 50.0 %, seed 1 56.0 %, "
            "seed 2 53.0 % — mean 53.0 ± 3.0 (std over seeds), spread 6.0 points; the 2 models of its seed-0 table span "
            "50.0–70.0 % (20.0 points)") in text
    assert "| lv81 (seed 1) | lv81_official_5_seed1 |" in text
    statements = json.loads(out.with_suffix(".json").read_text())["statements"]
    assert not [t for t in statements if "_seed" in t and not t.startswith("Seed repeats")]  # other statements: seed 0 only


def test_report_and_describe_refuse_bad_runs_and_outputs_in_one_line(tmp_path, capsys):
    """A corrupt summary, a NaN accuracy or a mistyped folder is an error, not a quietly shorter
    report or a NaN in a table; an output path that cannot be written is one line, not a traceback."""
    from train.describe import main as describe_main
    from train.report import main as report_main

    good = tmp_path / "runs" / "good"
    _write_summary(good, "lv18", 0.7, 30.0, "official")
    corrupt = tmp_path / "runs" / "corrupt"
    corrupt.mkdir()
    (corrupt / "summary.json").write_text('{"model": "lv18", "folds": [')
    nan = tmp_path / "runs" / "nan"
    _write_summary(nan, "lv81", float("nan"), 10.0, "official")
    (tmp_path / "outdir.md").mkdir()
    cases = [([str(good), str(corrupt)], 2, f"{corrupt / 'summary.json'}: unreadable (JSONDecodeError)"),
             ([str(good), str(nan)], 2, "accuracy is not a finite number"),
             ([str(good), str(tmp_path / "runs" / "typo")], 2, "no such run folder"),
             ([str(good), "--out", str(tmp_path / "outdir.md")], 1, "cannot write the report to")]
    for argv, code, message in cases:
        assert report_main(argv) == code, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and message in err and "\n" not in err, err
    data = _generate(tmp_path / "gen", per_class=2)
    assert describe_main(["--data", f"folders={data}", "--out", str(tmp_path / "outdir.md"), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot write to") and "\n" not in err, err


@pytest.mark.parametrize("text", ["null", "3", "[]", '"lv18"'])
def test_report_names_a_summary_that_is_no_json_object(tmp_path, capsys, text):
    """Valid JSON but no object: before, an AttributeError traceback ('NoneType' has no 'get')."""
    from train.report import main as report_main

    good, bad = tmp_path / "runs" / "good", tmp_path / "runs" / "bad"
    _write_summary(good, "lv18", 0.7, 30.0, "official")
    bad.mkdir()
    (bad / "summary.json").write_text(text)
    assert report_main([str(good), str(bad), "--out", str(tmp_path / "r.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {bad / 'summary.json'}: holds {text}, not a summary object; remove the run folder "
                   "from the arguments or train it again"), err
    assert not (tmp_path / "r.md").exists()


def test_report_keeps_an_earlier_reports_rows(tmp_path, capsys):
    """Run folders (checkpoints) are not committed: --keep carries an earlier report's rows over, a run
    folder given again replaces its row, and the report reads the same as one built from all folders."""
    from train.report import main as report_main

    runs = tmp_path / "runs"
    seeds = {"augment": True, "epochs": 5, "seed": 1}
    _write_summary(runs / "lv18", "lv18", 0.7, 30.0, "official")
    _write_summary(runs / "lv81", "lv81", 0.5, 10.0, "official")
    _write_summary(runs / "lv81_seed1", "lv81", 0.56, 10.0, "official", seeds)
    _write_summary(runs / "lv81_random", "lv81", 0.8, 10.0, "random-split")
    everything = tmp_path / "all" / "accuracy.md"
    assert report_main([str(p) for p in sorted(runs.iterdir())] + ["--out", str(everything)]) == 0
    full = json.loads(everything.with_suffix(".json").read_text())

    # one folder left (the rest are gone): the kept rows make up the same report
    again = tmp_path / "again" / "accuracy.md"
    assert report_main([str(runs / "lv18"), "--keep", str(everything.with_suffix(".json")), "--out", str(again)]) == 0
    assert "1 runs read, 3 kept" in capsys.readouterr().out
    kept = json.loads(again.with_suffix(".json").read_text())
    assert kept == full and again.read_text() == everything.read_text()
    # the tables keep their order whichever run is read afresh (here one of the last table)
    last = tmp_path / "last" / "accuracy.md"
    assert report_main([str(runs / "lv81_random"), "--keep", str(everything.with_suffix(".json")), "--out", str(last)]) == 0
    assert last.read_text() == everything.read_text()
    # the seed-0 run listed twice (its table and the seed repeats) is kept once and listed twice again
    assert [r["label"] for r in kept["groups"]["urbansound8k · official · 22050 Hz · seed repeats"]] == ["lv81 (seed 0)", "lv81 (seed 1)"]

    # a folder given again is read afresh, not kept; a new one joins with its model's size
    _write_summary(runs / "lv81", "lv81", 0.6, 10.0, "official")
    _write_summary(runs / "lv42", "lv42", 0.65, 20.0, "official",
                   model_config={"name": "lv42", "num_classes": 10, "sample_rate": 22050, "input_samples": 22050})
    newer = tmp_path / "newer" / "accuracy.md"
    assert report_main([str(runs / "lv81"), str(runs / "lv42"), "--keep", str(again.with_suffix(".json")), "--out", str(newer)]) == 0
    table = {r["model"]: r for r in json.loads(newer.with_suffix(".json").read_text())["groups"]["urbansound8k · official · 22050 Hz"]}
    assert table["lv81"]["accuracy"] == 0.6 and table["lv18"]["accuracy"] == 0.7 and len(table) == 3
    assert table["lv42"]["params"] > 60_000 and table["lv42"]["macs"] > 1e6 and table["lv18"]["params"] is None
    assert f"| {table['lv42']['params']:,} | {table['lv42']['macs'] / 1e6:.1f} |" in newer.read_text()

    # a kept file that is not a report: one line, exit 2
    capsys.readouterr()
    (tmp_path / "bad.json").write_text("{not json")
    assert report_main(["--keep", str(tmp_path / "bad.json"), "--out", str(tmp_path / "x.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "bad.json" in err and "\n" not in err
    assert report_main(["--out", str(tmp_path / "x.md")]) == 2  # nothing to report

    # a report from before the seed column (benchmarks/results/probes.json was one): its rows read as seed 0
    old = json.loads(again.with_suffix(".json").read_text())
    for table in old["groups"].values():
        for row in table:
            if row["seed"] == 0:  # seed-1 rows came with the column
                row.pop("seed")
    (tmp_path / "old.json").write_text(json.dumps(old))
    assert report_main([str(runs / "lv18"), "--keep", str(tmp_path / "old.json"), "--out", str(tmp_path / "o" / "a.md")]) == 0
    assert json.loads((tmp_path / "o" / "a.json").read_text()) == kept


def test_report_puts_gpu_runs_in_tables_of_their_own(tmp_path):
    """A run trained on an accelerator is not timed like a CPU run: its own table, its own machine line."""
    runs = tmp_path / "runs"
    seed1 = {"augment": True, "epochs": 5, "seed": 1}
    _write_summary(runs / "lv18", "lv18", 0.7, 30.0, "official")
    _write_summary(runs / "lv18_seed1", "lv18", 0.66, 30.0, "official", seed1)
    _write_summary(runs / "lv81_nomachine", "lv81", 0.5, 10.0, "official")  # an old summary without a machine
    _write_summary(runs / "lv18_gpu", "lv18", 0.72, 3.0, "official")
    _write_summary(runs / "lv18_gpu_seed1", "lv18", 0.74, 3.0, "official", seed1)
    for name in ("lv18_gpu", "lv18_gpu_seed1", "lv81_nomachine"):
        summary = json.loads((runs / name / "summary.json").read_text())
        if name == "lv81_nomachine":
            summary["machine"] = None
        else:
            summary["machine"].update(keras_backend="jax", accelerator="NVIDIA H100 80GB HBM3")
        (runs / name / "summary.json").write_text(json.dumps(summary))
    text, groups = _report_every_run(runs, tmp_path / "accuracy.md")
    assert [r["run"] for r in groups["urbansound8k · official · 22050 Hz"]] == [str(runs / "lv18"), str(runs / "lv81_nomachine")]
    assert [r["run"] for r in groups["urbansound8k · official · 22050 Hz · on NVIDIA H100 80GB HBM3"]] == [str(runs / "lv18_gpu")]
    # each machine's seed repeats sit beside its own seed 0
    assert [r["run"] for r in groups["urbansound8k · official · 22050 Hz · seed repeats"]] == [
        str(runs / "lv18"), str(runs / "lv18_seed1")]
    assert [r["run"] for r in groups["urbansound8k · official · 22050 Hz · on NVIDIA H100 80GB HBM3 · seed repeats"]] == [
        str(runs / "lv18_gpu"), str(runs / "lv18_gpu_seed1")]
    assert "Seed repeats (urbansound8k · official · 22050 Hz, lv18, augment, 5 epochs on NVIDIA H100 80GB HBM3): seed 0 72.0 %, seed 1 74.0 %" in text
    assert "Seed repeats (urbansound8k · official · 22050 Hz, lv18, augment, 5 epochs): seed 0 70.0 %, seed 1 66.0 %" in text
    assert "Machine: test, 2 logical CPUs (shared" in text
    assert "Machine: test, 2 logical CPUs, training on NVIDIA H100 80GB HBM3 (Keras jax backend)" in text


def test_report_ranks_dilation_over_seeds_and_tables_the_learning_rate(tmp_path):
    """One seed's gap between models can be inside the seed spread: the dilation statement is repeated
    with means over seeds; a run with another --lr is another recipe, not a seed of the default one."""
    runs = tmp_path / "runs"
    _write_summary(runs / "conv2d", "conv2d", 0.6, 10.0, "official")
    for seed, acc in ((0, 0.70), (1, 0.74), (2, 0.72)):
        _write_summary(runs / f"convdf_s{seed}", "convdf", acc, 10.0, "official", {"augment": True, "epochs": 5, "seed": seed})
    _write_summary(runs / "convdf_lr", "convdf", 0.5, 10.0, "official", {"augment": True, "epochs": 5, "lr": 5e-4})
    text, groups = _report_every_run(runs, tmp_path / "accuracy.md")
    assert ("Dilation over seeds (urbansound8k · official · 22050 Hz): conv2d 60.0 % (1 seed), convdf 72.0 ± 2.0 % "
            "(3 seeds); ranked by mean: convdf > conv2d") in text
    assert [r["run"] for r in groups["urbansound8k · official · 22050 Hz · augment, lr 0.0005"]] == [str(runs / "convdf_lr")]
    assert "convdf_lr" not in json.dumps(groups["urbansound8k · official · 22050 Hz · seed repeats"])
    # the chart: one panel per task, each model once (its best seed-0 run, named with its recipe), and
    # the mean over seeds where the training was repeated
    from train.report import overview, rows_by_group, run_row

    rows = [run_row({**json.loads((p / "summary.json").read_text()), "run": str(p)}) for p in sorted(runs.iterdir())]
    (task, panel), = overview(rows_by_group(rows))
    assert task == "urbansound8k · official · 22050 Hz"
    assert [(r["label"], r["accuracy"], r["seed_mean"]) for r in panel] == [
        ("convdf · augment, 5 ep", 0.70, pytest.approx(0.72)), ("conv2d · augment, 5 ep", 0.6, None)]


def test_summary_records_where_its_folds_trained():
    """A run resumed or re-summarised on another machine keeps where its folds trained; folds from
    before the field take this process's (TensorFlow on the CPU here: nothing recorded)."""
    from train.__main__ import machine, trained_on

    gpu = {"keras_backend": "jax", "accelerator": "NVIDIA H100 80GB HBM3"}
    assert trained_on() == {}  # the tests run on TensorFlow
    assert machine([{"trained_on": gpu}, {"trained_on": gpu}]).items() >= gpu.items()
    assert "accelerator" not in machine([{"trained_on": {}}]) and "accelerator" not in machine([{}])
    assert "accelerator" not in machine([{"trained_on": gpu}, {}])  # a fold from before the field: this process
    mixed = machine([{"trained_on": gpu}, {"trained_on": {}}])
    assert mixed["keras_backend"] == "jax + tensorflow" and mixed["accelerator"] == "CPU + NVIDIA H100 80GB HBM3"
    on_cpu = machine([{"trained_on": {"keras_backend": "jax", "accelerator": None}}])
    assert on_cpu["keras_backend"] == "jax" and on_cpu["accelerator"] is None


def test_report_states_every_seed_of_one_training_length_together(tmp_path):
    """Seeds 1 and 2 of a 100-epoch training, beside 60-epoch seed repeats in the same recipe: one
    statement lists seeds 0, 1 and 2 at 100 epochs, and both repeats sit in the 100-epoch seed table."""
    runs = tmp_path / "runs"
    for name, model, acc, epochs, seed in [("df100", "convdf", 0.75, 100, 0), ("df60_s1", "convdf", 0.70, 60, 1),
                                           ("db60_s1", "convdb", 0.66, 60, 1), ("df100_s1", "convdf", 0.71, 100, 1),
                                           ("df100_s2", "convdf", 0.745, 100, 2)]:
        _write_summary(runs / name, model, acc, 10.0, "official", {"augment": True, "epochs": epochs, "seed": seed})
    text, groups = _report_every_run(runs, tmp_path / "accuracy.md")
    assert ("Seed repeats (urbansound8k · official · 22050 Hz, convdf, augment, 100 epochs): "
            "seed 0 75.0 %, seed 1 71.0 %, seed 2 74.5 % — mean 73.5") in text
    assert sorted(r["run"].split("/")[-1] for r in groups["urbansound8k · official · 22050 Hz · seed repeats · 100 epochs"]) == \
        ["df100", "df100_s1", "df100_s2"]


def test_report_does_not_call_a_rerun_of_the_same_length_an_epochs_ablation(tmp_path):
    """Two runs of one model, seed, recipe and length (a fix between them the recipe cannot show) split
    into two tables, the second marked as another run: not "· 50 epochs" beside a 50-epoch table."""
    runs = tmp_path / "runs"
    for name, acc, epochs in [("a_old", 0.41, 50), ("b_new", 0.61, 50), ("c_long", 0.65, 100)]:
        _write_summary(runs / name, "lv24", acc, 10.0, "official", {"augment": True, "epochs": epochs})
    text, groups = _report_every_run(runs, tmp_path / "accuracy.md")
    base = "urbansound8k · official · 22050 Hz"
    assert [r["run"].split("/")[-1] for r in groups[base]] == ["a_old"]
    assert [r["run"].split("/")[-1] for r in groups[f"{base} · another run, same settings"]] == ["b_new"]
    assert [r["run"].split("/")[-1] for r in groups[f"{base} · 100 epochs"]] == ["c_long"]
    assert f"{base} · 50 epochs" not in groups


def test_report_lists_where_the_errors_sit(tmp_path):
    """A summary with weakest_cells gets a line under "Where the errors sit" (its lowest three), kept in
    the JSON so --keep carries it; one from before the field gets none, and no section if none has it."""
    runs = tmp_path / "runs"
    _write_summary(runs / "old", "lv24", 0.6, 10.0, "official")
    text, _ = _report_every_run(runs, tmp_path / "a.md")
    assert "Where the errors sit" not in text
    _write_summary(runs / "new", "lv18", 0.7, 10.0, "official")
    summary = json.loads((runs / "new" / "summary.json").read_text())
    summary["weakest_cells"] = [{"fold": "fold=2", "label": "siren", "recall": 0.05, "clips": 40, "taken_for": "drilling"},
                                {"fold": "fold=1", "label": "gun_shot", "recall": 0.5, "clips": 2, "taken_for": None},
                                {"fold": "fold=1", "label": "dog_bark", "recall": 0.6, "clips": 50, "taken_for": "siren"},
                                {"fold": "fold=1", "label": "jackhammer", "recall": 0.7, "clips": 50, "taken_for": "drilling"}]
    (runs / "new" / "summary.json").write_text(json.dumps(summary))
    text, groups = _report_every_run(runs, tmp_path / "b.md")
    section = text.split("## Where the errors sit", 1)[1]
    assert ('- new (lv18, urbansound8k official, 70.0 % mean): fold=2 "siren" 5 % (taken for "drilling"), '
            'fold=1 "gun_shot" 50 %, fold=1 "dog_bark" 60 % (taken for "siren")') in section
    assert "jackhammer" not in section and "- old" not in section
    from train.report import main as report_main

    assert report_main(["--keep", str(tmp_path / "b.json"), "--out", str(tmp_path / "c.md")]) == 0
    assert 'fold=2 "siren" 5 %' in (tmp_path / "c.md").read_text()
