"""Training one fold with Keras: Adam + categorical cross-entropy, best-val-loss checkpoint.

Batches are cut on the fly from decoded clips (``train.windows``), so memory holds each
clip once; augmentation (``train.augment``) is applied to training batches only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from runtime.files import atomic_path
from train.augment import Augment
from train import epoch_state
from train.config import ModelConfig
from train.fit_config import MONITORS, FitConfig, hop_samples  # noqa: F401 (FitConfig, hop_samples: re-exported)
from train.malloc import tune_malloc
from train.metrics import confusion_matrix, scores
from train.models import build, get_entry
from train.quiet import import_keras
from train.windows import clip_mean, cut, window_table

keras = import_keras()


class _NoRetracingNotice(logging.Filter):
    """Drop TensorFlow's "N out of the last M calls ... triggered tf.function retracing" warning:
    every fold builds and compiles a fresh model on purpose (nothing carries over between folds),
    which is exactly the pattern it warns about, so in a multi-fold run it is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


logging.getLogger("tensorflow").addFilter(_NoRetracingNotice())


def mix(x: np.ndarray, y: np.ndarray, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Mixup: each window blended with a random partner of the batch, labels alike.

    x: float32 (n, samples); y: float32 (n, C) one-hot. lam ~ Beta(alpha, alpha) per window,
    folded to >= 0.5 so the window keeps its own label as the larger share. Returns new arrays.
    """
    lam = rng.beta(alpha, alpha, size=(x.shape[0], 1)).astype(np.float32)
    lam = np.maximum(lam, 1.0 - lam)
    partner = rng.permutation(x.shape[0])
    return lam * x + (1.0 - lam) * x[partner], lam * y + (1.0 - lam) * y[partner]


def best_epoch(history: dict, monitor: str) -> int:
    """1-based epoch the checkpoint rule keeps: the first best value of ``monitor`` (NaN never wins)."""
    values = np.array(history[monitor], dtype=float)
    values = np.where(np.isnan(values), np.inf if MONITORS[monitor] == "min" else -np.inf, values)
    return int(np.argmin(values) if MONITORS[monitor] == "min" else np.argmax(values)) + 1


class WindowBatches(keras.utils.PyDataset):
    """Batches of (float32 (b, window) PCM, float32 (b, C) targets) windows cut from clips.

    The targets are the clips' one-hot labels, or with ``targets`` (float (n_clips, C), rows summing
    to 1, e.g. a teacher's soft labels from ``train.distill``) those rows for every window of a clip.
    """

    def __init__(self, audios: Sequence[np.ndarray], labels: np.ndarray, window: int, hop: int, num_classes: int,
                 batch_size: int, augment: Augment | None = None, shuffle: bool = False, seed: int = 0,
                 mixup: float = 0.0, targets: np.ndarray | None = None) -> None:
        super().__init__()
        self.mixup = mixup
        self.audios, self.labels = audios, np.asarray(labels, dtype=np.int64)
        self.targets = (np.eye(num_classes, dtype=np.float32)[self.labels] if targets is None
                        else np.asarray(targets, dtype=np.float32))
        if self.targets.shape != (len(audios), num_classes):
            raise ValueError(f"targets must be ({len(audios)}, {num_classes}), not {self.targets.shape}")
        self.window, self.num_classes, self.batch_size = window, num_classes, batch_size
        self.clip_idx, self.starts = window_table(audios, window, hop)
        self.augment, self.shuffle, self.seed = augment, shuffle, seed
        self.epoch = 0
        self._order()

    def _order(self) -> None:
        n = len(self.clip_idx)
        self.order = np.random.default_rng((self.seed, self.epoch)).permutation(n) if self.shuffle else np.arange(n)

    def __len__(self) -> int:
        return math.ceil(len(self.clip_idx) / self.batch_size)

    def __getitem__(self, i: int):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        starts = self.starts[idx]
        rng = np.random.default_rng((self.seed, self.epoch, i))
        if self.augment is not None:
            starts = starts + self.augment.shifts(rng, len(idx), self.window)
        x = np.stack([cut(self.audios[c], int(s), self.window) for c, s in zip(self.clip_idx[idx], starts)])
        if self.augment is not None:
            x = self.augment(x, rng)
        y = self.targets[self.clip_idx[idx]]
        if self.mixup > 0.0:
            x, y = mix(x, y, self.mixup, rng)
        return x, y

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._order()


def save_model_atomic(model: keras.Model, path: Path) -> None:
    """``model.save`` through a temporary ``.keras`` name and a rename: a run killed while
    saving never leaves a truncated checkpoint under the real name."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(str(tmp))


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: the weights are lost, and no checkpoint of them is kept."""


class StopOnNonFinite(keras.callbacks.Callback):
    """Stop at the first batch whose loss is NaN or infinite and remember where: from there on
    every weight is NaN, so the remaining epochs would only burn time (Keras's TerminateOnNaN
    stops too, but says nothing about it)."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch = 0
        self.where: tuple[int, int, float] | None = None  # (epoch from 1, batch from 1, loss)

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None) -> None:
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss) and self.where is None:
            self.where = (self.epoch + 1, batch + 1, loss)
            self.model.stop_training = True


class BestCheckpoint(keras.callbacks.Callback):
    """Keep the weights of the best ``monitor`` so far at ``path`` (written atomically).

    Same rule as ``keras.callbacks.ModelCheckpoint(monitor, save_best_only=True)``: saved when
    strictly better than the best so far (lower loss, higher accuracy); NaN never counts as better.
    """

    def __init__(self, path: Path, monitor: str = "val_loss") -> None:
        super().__init__()
        self.path, self.monitor = Path(path), monitor
        self.sign = 1.0 if MONITORS[monitor] == "min" else -1.0
        self.best = math.inf
        self.kept: list[np.ndarray] = []  # the weights in the file, for train.epoch_state
        self.stamp: list[int] | None = None  # the file's (mtime_ns, size) when this callback wrote it

    def on_epoch_end(self, epoch, logs=None) -> None:
        value = self.sign * float((logs or {}).get(self.monitor, math.nan))
        if value < self.best:
            self.best = value
            self.write(self.model)

    def write(self, model: keras.Model) -> None:
        save_model_atomic(model, self.path)
        self.kept, self.stamp = model.get_weights(), file_stamp(self.path)


def file_stamp(path: Path) -> list[int] | None:
    """[mtime_ns, size] of a file, None if there is none: tells whether someone else wrote it since."""
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def numpy_values(model: keras.Model, variables, dtype=None) -> list[np.ndarray]:
    """Numpy copies of ``variables`` of ``model`` as training left them."""
    # JAX keeps the training state outside the model's variables between steps; pull it back first
    if hasattr(model, "jax_state_sync"):
        model.jax_state_sync()
    return [np.array(keras.ops.convert_to_numpy(v.value), dtype=dtype) for v in variables]


class WeightAverage(keras.callbacks.Callback):
    """Exponential moving average of the float weights (BatchNorm statistics included), for
    validation and checkpoints; training itself goes on from the raw weights.

    After step t (from 0): ``avg = d * avg + (1 - d) * w`` with ``d = min(decay, t / (t + 1))``:
    the plain mean of the weights so far until its window, about ``1 / (1 - decay)`` steps, is
    full, so neither the random initialisation nor the first steps weigh on it for long. The average is swapped in when
    validation starts and swapped out at the end of the epoch: list this callback *after*
    ``BestCheckpoint`` so the checkpoint saves the average. When training ends the model keeps it.
    Seed-generator states and other integer variables are left alone.
    """

    def __init__(self, decay: float) -> None:
        super().__init__()
        self.decay = decay
        self.raw: list[np.ndarray] | None = None

    @staticmethod
    def averaged(model: keras.Model) -> list:
        """The variables the average covers: every float weight of ``model``."""
        return [v for v in model.weights if "float" in str(v.dtype)]

    def _values(self) -> list[np.ndarray]:
        return numpy_values(self.model, self.variables, np.float32)

    def _assign(self, values: list[np.ndarray]) -> None:
        for v, a in zip(self.variables, values):
            v.assign(a)

    def on_train_begin(self, logs=None) -> None:
        self.variables = self.averaged(self.model)
        self.average, self.steps = self._values(), 0

    def on_train_batch_end(self, batch, logs=None) -> None:
        d = min(self.decay, self.steps / (self.steps + 1.0))
        for a, w in zip(self.average, self._values()):
            a *= d
            a += (1.0 - d) * w
        self.steps += 1

    def on_test_begin(self, logs=None) -> None:
        if self.raw is None:  # validation inside fit: score the average
            self.raw = self._values()
            self._assign(self.average)

    def on_epoch_end(self, epoch, logs=None) -> None:
        if self.raw is not None:
            self._assign(self.raw)
            self.raw = None

    def on_train_end(self, logs=None) -> None:
        self._assign(self.average)


class _Progress(keras.callbacks.Callback):
    """One tqdm bar per fold, one tick per epoch, showing the losses."""

    def __init__(self, total: int, desc: str, initial: int = 0) -> None:
        super().__init__()
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="epoch", leave=True)

    def on_epoch_end(self, epoch, logs=None) -> None:
        logs = logs or {}
        self.bar.set_postfix({k: f"{v:.3f}" for k, v in logs.items() if k in ("loss", "val_loss", "accuracy", "val_accuracy")})
        self.bar.update(1)

    def on_train_end(self, logs=None) -> None:
        self.bar.close()


class KeepEpochState(keras.callbacks.Callback):
    """Record an :class:`train.epoch_state.EpochState` after every epoch (and write it to ``path``
    unless None), and put a resumed state's counters back into the callbacks that own them.

    List it last: its epoch end must see what the checkpoint, early stopping and the weight
    average did in theirs, and the raw weights the average swapped back.
    """

    def __init__(self, state: epoch_state.EpochState, path: Path | None, epochs: int, guard: StopOnNonFinite,
                 checkpoint: BestCheckpoint | None, stopper: keras.callbacks.EarlyStopping | None,
                 average: WeightAverage | None) -> None:
        super().__init__()
        self.state, self.path, self.epochs = state, path, epochs
        self.guard, self.checkpoint, self.stopper, self.average = guard, checkpoint, stopper, average

    def on_train_begin(self, logs=None) -> None:
        c, self.start, self.before = self.state.counters, time.perf_counter(), self.state.seconds
        self.cpu_start, self.cpu_before = time.process_time(), self.state.cpu_seconds
        if not self.state.epoch:
            return
        if self.checkpoint is not None and c.get("best") is not None:
            self.checkpoint.best = c["best"]  # its file and weights were put back before training (train())
        if self.stopper is not None:  # its own on_train_begin has just reset these
            self.stopper.wait, self.stopper.best = int(c["stop_wait"]), c["stop_best"]
            self.stopper.best_epoch = int(c["stop_best_epoch"])
        if self.average is not None:
            self.average.average, self.average.steps = [a.copy() for a in self.state.average], int(c["average_steps"])

    def on_epoch_end(self, epoch, logs=None) -> None:
        if self.guard.where is not None:  # diverged: these weights are NaN, keep the state before them
            return
        st = self.state
        st.epoch = epoch + 1
        for k, v in (logs or {}).items():
            st.history.setdefault(k, []).append(float(v))
        st.seconds = self.before + time.perf_counter() - self.start
        st.cpu_seconds = None if self.cpu_before is None else self.cpu_before + time.process_time() - self.cpu_start
        st.done = bool(self.model.stop_training) or st.epoch >= self.epochs
        if self.path is None:  # history and seconds are all train() needs
            return
        st.counters = {}
        if self.checkpoint is not None:
            st.counters["best"], st.counters["kept_stamp"] = self.checkpoint.best, self.checkpoint.stamp
            st.kept = self.checkpoint.kept
        if self.stopper is not None:
            st.counters.update(stop_wait=self.stopper.wait, stop_best=self.stopper.best, stop_best_epoch=self.stopper.best_epoch)
        if self.average is not None:
            st.counters["average_steps"] = self.average.steps
            st.average = [a.copy() for a in self.average.average]
        st.model = numpy_values(self.model, self.model.variables)
        st.optimizer = numpy_values(self.model, self.model.optimizer.variables)
        epoch_state.save(st, self.path)


def fingerprint(model_config: ModelConfig, fit: FitConfig, train_audio: Sequence[np.ndarray], train_labels: np.ndarray,
                val_audio: Sequence[np.ndarray] | None, val_labels: np.ndarray | None, train_targets: np.ndarray | None) -> str:
    """SHA-256 over everything a fold's training computes from: a resume state is used only by
    the same settings on the same clips (their samples, labels and soft targets)."""
    # Keras and its backend too: a state saved by other code may not fit the model, or mix backends in one fold
    identity = [model_config.to_dict(), dataclasses.asdict(fit), keras.__version__, keras.backend.backend()]
    h = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode())
    for part in (train_audio, [train_labels], val_audio or [], [] if val_labels is None else [val_labels],
                 [] if train_targets is None else [train_targets]):
        for a in part:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype}{a.shape}".encode())
            h.update(a.data)
    return h.hexdigest()


def train(model_config: ModelConfig, train_audio: Sequence[np.ndarray], train_labels: np.ndarray,
          val_audio: Sequence[np.ndarray] | None, val_labels: np.ndarray | None, fit: FitConfig,
          checkpoint: Path, desc: str = "training", progress: bool = True, train_targets: np.ndarray | None = None,
          state_path: Path | None = None) -> dict:
    """Train a fresh model; keep the best weights by ``fit.monitor`` at ``checkpoint`` (``.keras``).

    Without validation data the model of the last epoch is saved (used for ``--final``).
    ``train_targets`` (float (n_train, C)) replaces the one-hot training labels, e.g. by a
    teacher's soft labels (``train.distill``); validation always scores the true labels.
    With ``state_path`` (an ``.npz``) the training state is written there after every epoch and,
    when a state of the same training is already there, training goes on from it
    (``train.epoch_state``); the caller deletes it once the result is safe.
    Returns ``{"history": {metric: [per epoch]}, "epochs": int, "best_epoch": int, "seconds": float,
    "cpu_seconds": float | None, "malloc_tuned": bool, "resumed_at": [epochs done when resumed]}``
    (``seconds``: wall clock; ``cpu_seconds``: the process's CPU time, None when resumed from a state
    that did not record it; ``malloc_tuned``: whether ``train.malloc.tune_malloc`` applied, which
    changes both).
    """
    tuned = tune_malloc()  # done when train was imported (train/__init__.py); this reports whether it applied
    keras.utils.set_random_seed(fit.seed)
    entry = get_entry(model_config.name)
    window = model_config.window_samples(entry.family)
    hop = hop_samples(window, fit)
    model = build(model_config)
    batches = WindowBatches(train_audio, train_labels, window, hop, model_config.num_classes, fit.batch_size,
                            fit.augmentation if fit.augment else None, shuffle=True, seed=fit.seed, mixup=fit.mixup,
                            targets=train_targets)
    rate = fit.learning_rate
    if fit.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(fit.learning_rate, decay_steps=fit.epochs * len(batches))
    model.compile(optimizer=keras.optimizers.Adam(rate),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=fit.label_smoothing), metrics=["accuracy"])
    # the clips are hashed only when a state may be read or written
    print_ = (fingerprint(model_config, fit, train_audio, train_labels, val_audio, val_labels, train_targets)
              if state_path is not None else "")
    state = (epoch_state.load(state_path, print_) if state_path is not None else None) or epoch_state.EpochState(print_)
    if state.epoch:
        model.optimizer.build(model.trainable_variables)
        variables, values = [*model.variables, *model.optimizer.variables], [*state.model, *state.optimizer]
        if [tuple(v.shape) for v in variables] != [a.shape for a in values]:  # cannot happen with the same code
            state = epoch_state.EpochState(print_)
    if state.epoch:
        for v, a in zip(variables, values, strict=True):
            v.assign(a)
        batches.epoch = state.epoch
        batches._order()
        if not state.done:
            state.resumed_at.append(state.epoch)
    guard = StopOnNonFinite()
    callbacks: list = [guard] + ([_Progress(fit.epochs, desc, state.epoch)] if progress and not state.done else [])
    val = checkpointer = stopper = average = None
    if val_audio is not None:
        val = WindowBatches(val_audio, val_labels, window, hop, model_config.num_classes, fit.batch_size * 4)
        checkpointer = BestCheckpoint(checkpoint, fit.monitor)
        callbacks.append(checkpointer)
        if fit.patience:
            stopper = keras.callbacks.EarlyStopping(monitor=fit.monitor, mode=MONITORS[fit.monitor], patience=fit.patience)
            callbacks.append(stopper)
    if fit.ema:
        average = WeightAverage(fit.ema)
        callbacks.append(average)  # after BestCheckpoint: it saves the averaged weights
    callbacks.append(KeepEpochState(state, state_path, fit.epochs, guard, checkpointer, stopper, average))  # last
    if checkpointer is not None and state.kept:
        checkpointer.kept, checkpointer.stamp = state.kept, state.counters.get("kept_stamp")
        if file_stamp(checkpoint) != checkpointer.stamp:
            # Written by an epoch killed before its state (or lost): put back the one this state kept,
            # since a re-run of that epoch need not write it again (nondeterministic kernels, a GPU).
            now = model.get_weights()
            model.set_weights(state.kept)
            checkpointer.write(model)
            model.set_weights(now)
    if not state.done:
        # shuffle=False: WindowBatches shuffles every epoch from (seed, epoch) already; Keras would also
        # shuffle the batch order from Python's global RNG, a state no resumed run could restore.
        model.fit(batches, validation_data=val, epochs=fit.epochs, initial_epoch=state.epoch, callbacks=callbacks,
                  shuffle=False, verbose=0)
    elif average is not None:  # finished before: what WeightAverage.on_train_end would have left in the model
        for v, a in zip(WeightAverage.averaged(model), state.average, strict=True):
            v.assign(a)
    if guard.where is not None:
        epoch, batch, loss = guard.where
        raise TrainingDiverged(f"training diverged: the loss became {loss} in epoch {epoch}, batch {batch} "
                               f"(learning rate {fit.learning_rate:g}; try a lower --lr, or check the data and augmentation)")
    if val is None:
        # No validation: the last epoch's weights are the model. Its loss was computed before the last
        # step, so weights that a last step blew up (to NaN, or so large the outputs overflow) show
        # only in what the model now gives on training windows.
        if not np.isfinite(np.asarray(model(batches[0][0], training=False))).all():
            raise TrainingDiverged(f"training diverged: the model gives NaN or infinite outputs after the last epoch "
                                   f"(learning rate {fit.learning_rate:g}; try a lower --lr)")
        save_model_atomic(model, checkpoint)
    elif not checkpoint.is_file():  # every epoch's monitored value was NaN: nothing was ever better
        raise TrainingDiverged(f"no epoch gave a finite {fit.monitor}, so no checkpoint was kept "
                               f"(learning rate {fit.learning_rate:g}; try a lower --lr)")
    hist = state.history
    best = best_epoch(hist, fit.monitor) if fit.monitor in hist else len(hist["loss"])
    return {"history": hist, "epochs": len(hist["loss"]), "best_epoch": best, "seconds": state.seconds,
            "cpu_seconds": state.cpu_seconds, "malloc_tuned": tuned,
            "resumed_at": state.resumed_at}


def predict_clips(model: keras.Model, audios: Sequence[np.ndarray], window: int, hop: int, batch_size: int = 128) -> np.ndarray:
    """Clip-level probabilities, float32 (n_clips, C): mean over each clip's windows."""
    clip_idx, starts = window_table(audios, window, hop)
    probs = []
    for lo in range(0, len(clip_idx), batch_size):
        x = np.stack([cut(audios[c], int(s), window) for c, s in zip(clip_idx[lo:lo + batch_size], starts[lo:lo + batch_size])])
        probs.append(np.asarray(model(x, training=False)))
    return clip_mean(np.concatenate(probs), clip_idx, len(audios))


def evaluate(checkpoint: Path, model_config: ModelConfig, audios: Sequence[np.ndarray], labels: np.ndarray, fit: FitConfig) -> dict:
    """Load the kept checkpoint and score it on clips: scores + confusion matrix (lists)."""
    model = keras.models.load_model(str(checkpoint), safe_mode=True)
    window = model_config.window_samples(get_entry(model_config.name).family)
    probs = predict_clips(model, audios, window, hop_samples(window, fit))
    cm = confusion_matrix(labels, probs.argmax(axis=1), model_config.num_classes)
    return {**scores(cm), "confusion": cm.tolist()}
