"""Epoch-level resume (train.epoch_state): a fold killed after epoch k and trained again from its
state ends with the weights and history of the fold that was never interrupted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.train_faults import make_data
from train import epoch_state
from train.config import ModelConfig
from train.data import decode, load_dataset
from train.fit import FitConfig, KeepEpochState, train

RATE = 8000


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    """(train audio, labels, val audio, labels) of the generated three-tone data set at 8 kHz."""
    ds = load_dataset("folders", make_data(tmp_path_factory.mktemp("tones"), per_class=12))
    audio, labels = decode(ds.clips, RATE), np.array([c.label for c in ds.clips])
    idx = np.random.default_rng(0).permutation(len(audio))
    tr, va = idx[:28], idx[28:]
    return [audio[i] for i in tr], labels[tr], [audio[i] for i in va], labels[va]


class Killed(Exception):
    """Stands in for the process dying right after an epoch's state was written."""


def _train(tones, fit, folder, state=True, kill_after=None, monkeypatch=None):
    if kill_after is not None:
        keep = KeepEpochState.on_epoch_end

        def dying(self, epoch, logs=None):
            keep(self, epoch, logs)
            if epoch + 1 == kill_after:
                raise Killed

        monkeypatch.setattr(KeepEpochState, "on_epoch_end", dying)
    folder.mkdir(parents=True, exist_ok=True)
    config = ModelConfig("lv42", num_classes=3, sample_rate=RATE)
    return train(config, *tones, fit, folder / "model.keras", progress=False,
                 state_path=folder / "resume.npz" if state else None)


def _weights(path):
    import keras

    return [np.asarray(w) for w in keras.models.load_model(str(path)).weights]


RECIPES = {
    "plain": FitConfig(epochs=4, batch_size=8, learning_rate=2e-3, seed=3),
    # early stopping that does stop (checked below), killed before it does; -m slow (24 epochs in all)
    "stops-early": FitConfig(epochs=12, batch_size=8, learning_rate=2e-2, seed=3, patience=1),
    # every callback with memory (checkpoint, early stopping, weight average) and a step-counting schedule
    "ema-cosine-patience-mixup": FitConfig(epochs=4, batch_size=8, learning_rate=2e-3, seed=3, ema=0.9, patience=3,
                                           schedule="cosine", mixup=0.4),
}


@pytest.mark.parametrize("recipe", [pytest.param(r, marks=pytest.mark.slow) if r == "stops-early" else r for r in RECIPES])
def test_resumed_fold_equals_the_uninterrupted_one(tones, tmp_path, monkeypatch, recipe):
    fit = RECIPES[recipe]
    whole = _train(tones, fit, tmp_path / "whole", state=False)
    with pytest.raises(Killed):
        _train(tones, fit, tmp_path / "cut", kill_after=2, monkeypatch=monkeypatch)
    monkeypatch.undo()
    state = tmp_path / "cut" / "resume.npz"
    saved = epoch_state.load(state, _fingerprint_of(state))
    assert saved is not None and saved.epoch == 2 and not saved.done and saved.model and saved.optimizer
    resumed = _train(tones, fit, tmp_path / "cut")
    assert resumed["resumed_at"] == [2] and whole["resumed_at"] == []
    assert resumed["history"] == whole["history"] and resumed["best_epoch"] == whole["best_epoch"]
    # both clocks go on from the state's: the resumed fold's time is its two runs' together
    assert resumed["seconds"] > saved.seconds > 0 and resumed["cpu_seconds"] > saved.cpu_seconds > 0
    if recipe == "stops-early":
        assert 2 < whole["epochs"] < fit.epochs, whole["epochs"]
    for a, b in zip(_weights(tmp_path / "whole" / "model.keras"), _weights(tmp_path / "cut" / "model.keras"), strict=True):
        np.testing.assert_array_equal(a, b)


def _fingerprint_of(path) -> str:
    return epoch_state.header(path)["fingerprint"]


def test_a_fold_killed_after_its_last_epoch_is_not_trained_again(tones, tmp_path, monkeypatch):
    fit = RECIPES["ema-cosine-patience-mixup"]
    whole = _train(tones, fit, tmp_path / "whole", state=False)
    with pytest.raises(Killed):  # all epochs done and recorded, the result not yet written
        _train(tones, fit, tmp_path / "cut", kill_after=fit.epochs, monkeypatch=monkeypatch)
    monkeypatch.undo()
    calls = []
    monkeypatch.setattr(KeepEpochState, "on_epoch_end", lambda self, epoch, logs=None: calls.append(epoch))
    again = _train(tones, fit, tmp_path / "cut")
    assert calls == [] and again["resumed_at"] == [] and again["history"] == whole["history"]
    for a, b in zip(_weights(tmp_path / "whole" / "model.keras"), _weights(tmp_path / "cut" / "model.keras"), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_written_after_the_last_state_is_put_back_from_the_state(tones, tmp_path, monkeypatch):
    """Killed between the checkpoint of epoch 3 and that epoch's state: the file on disk is not the
    one the state (epoch 2) kept. A re-run of epoch 3 on a GPU need not write the same file again,
    so the resumed fold puts back the state's own copy first."""
    fit = RECIPES["plain"]
    whole = _train(tones, fit, tmp_path / "whole", state=False)
    keep = KeepEpochState.on_epoch_end

    def dying(self, epoch, logs=None):
        if epoch + 1 == 3:
            raise Killed  # the checkpoint callback has run, this one has not
        keep(self, epoch, logs)

    monkeypatch.setattr(KeepEpochState, "on_epoch_end", dying)
    with pytest.raises(Killed):
        _train(tones, fit, tmp_path / "cut")
    monkeypatch.undo()
    ckpt = tmp_path / "cut" / "model.keras"
    ckpt.write_bytes(b"not the kept checkpoint")  # stands in for epoch 3's weights, which a re-run may not repeat
    resumed = _train(tones, fit, tmp_path / "cut")
    assert resumed["resumed_at"] == [2] and resumed["history"] == whole["history"]
    for a, b in zip(_weights(tmp_path / "whole" / "model.keras"), _weights(ckpt), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_state_of_other_settings_or_a_broken_one_starts_the_fold_afresh(tones, tmp_path, monkeypatch):
    fit = RECIPES["plain"]
    with pytest.raises(Killed):
        _train(tones, fit, tmp_path / "cut", kill_after=1, monkeypatch=monkeypatch)
    monkeypatch.undo()
    state = tmp_path / "cut" / "resume.npz"
    other = FitConfig(**{**fit.__dict__, "learning_rate": 1e-3, "epochs": 2})
    assert _train(tones, other, tmp_path / "cut")["resumed_at"] == []  # another learning rate: not this state's training
    saved = epoch_state.load(state, _fingerprint_of(state))
    saved.model[-1] = np.zeros(7, np.float32)  # same fingerprint, a variable that does not fit (other code)
    saved.done = False
    epoch_state.save(saved, state)
    assert _train(tones, other, tmp_path / "cut")["resumed_at"] == []
    state.write_bytes(state.read_bytes()[:100])  # ... truncated (by hand: the writer renames only whole files)
    assert epoch_state.load(state, "anything") is None
    state.write_bytes(b"")
    assert epoch_state.load(state, "anything") is None
    assert _train(tones, FitConfig(**{**fit.__dict__, "epochs": 1}), tmp_path / "cut")["resumed_at"] == []


def test_a_state_from_before_cpu_seconds_resumes_without_them(tones, tmp_path, monkeypatch):
    """The CPU time of epochs trained before the field is unknown: the resumed fold says None rather
    than counting only its own epochs as the whole fold's."""
    fit = RECIPES["plain"]
    with pytest.raises(Killed):
        _train(tones, fit, tmp_path / "cut", kill_after=2, monkeypatch=monkeypatch)
    monkeypatch.undo()
    state = tmp_path / "cut" / "resume.npz"
    with np.load(state) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays["header"]))
    del header["cpu_seconds"]  # as written before the field
    arrays["header"] = np.array(json.dumps(header))
    np.savez(state, **arrays)
    assert epoch_state.load(state, header["fingerprint"]).cpu_seconds is None
    resumed = _train(tones, fit, tmp_path / "cut")
    assert resumed["resumed_at"] == [2] and resumed["cpu_seconds"] is None and resumed["seconds"] > 0


@pytest.mark.slow
def test_resume_is_exact_under_jax_too():
    """The same checks with KERAS_BACKEND=jax, which keeps the training state outside the model's
    variables between steps (the GPU machines train with it). Minutes: JAX compiles every shape."""
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k", "not jax"],
                          env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:]
