"""One grid task: train and evaluate one fold of one (model, dataset, seed) run.

This is the function a Ray worker (or the driver itself, in-process) executes. It writes the fold
into a private temporary folder and renames it into place only when complete, so a worker killed
mid-task leaves no partial result behind and a retried task cannot produce a second one. Its state
after every epoch is kept in ``fold_K/resume.npz``, as ``python -m train`` keeps it, so a retried or
re-run task goes on from the last finished epoch instead of epoch 1.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from train.__main__ import RESUME, TrainConfig, plan, train_fold
from train.data import AudioCache, decode
from train.quiet import import_keras

# Test hook: a folder; a file there named like a task's key makes that task SIGKILL its own worker
# once, after training and before the rename (the worst moment). The file is first renamed to
# KEY.killed (holding the killed pid, for the test to check), so the retry runs normally.
# Unset in normal use.
FAULTS_ENV = "TINYAUDIO_GRID_FAULTS"
PART = ".part-"  # temporary fold folders: .fold_K.part-<random>

# Decoded audio per worker process, by the tasks' cache folder (None: memory only): a Ray worker (or
# the in-process driver) runs many tasks on the same dataset, so it decodes each file once, and with
# --cache-dir it reads what other workers and earlier grids decoded.
_CACHES: dict[str | None, AudioCache] = {}
_THREADS: int | None = None


@dataclass(frozen=True)
class Task:
    """Fold ``fold`` of the run configured by ``run`` (its ``out`` is the run folder)."""

    run: TrainConfig
    fold: int

    @property
    def key(self) -> str:
        return f"{Path(self.run.out).name}.fold_{self.fold}"

    @property
    def fold_dir(self) -> Path:
        return Path(self.run.out) / f"fold_{self.fold}"

    def done(self) -> bool:
        return (self.fold_dir / "result.json").is_file()


def pin_threads(threads: int) -> None:
    """One TensorFlow thread pool size and deterministic ops in this process, before any TF op runs:
    the same seed then gives bit-identical results in-process and on any Ray worker."""
    global _THREADS
    if _THREADS == threads:
        return
    keras = import_keras()  # a spawned worker's first import: without TensorFlow's banner in the grid's log

    if keras.backend.backend() != "tensorflow":  # JAX or PyTorch (a GPU machine may have no TensorFlow)
        _THREADS = threads
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TF already ran ops in this process: its pools are fixed
        print(f"warning: TensorFlow already initialised here; not pinned to {threads} thread(s), so results may "
              "differ in the last digits from other workers", file=sys.stderr)
    tf.config.experimental.enable_op_determinism()
    _THREADS = threads


def run_task(task: Task, threads: int = 1) -> dict:
    """Train one fold into ``run/fold_K`` (skipped when already there). Returns a small result dict."""
    start = time.perf_counter()
    if task.done():
        return {"key": task.key, "skipped": True, "seconds": 0.0}
    pin_threads(threads)
    keras = import_keras()

    keras.backend.clear_session()  # a long-lived worker must not accumulate graphs from earlier tasks
    p = plan(dataclasses.replace(task.run, progress=False))
    fold = p.folds[task.fold]
    if task.run.cache_dir not in _CACHES:
        _CACHES[task.run.cache_dir] = AudioCache(task.run.cache_dir)
    audio = decode(p.dataset.clips, p.rate, _CACHES[task.run.cache_dir])
    tmp = Path(task.run.out) / f".fold_{task.fold}{PART}{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    # The epoch state lives where python -m train keeps it, fold_K/resume.npz, outside the throw-away
    # folder: a retry (or a re-run after a crash, or python -m train) goes on from the last finished
    # epoch. Until the rename below fold_K/ holds nothing else, and task.done() needs a result.json.
    task.fold_dir.mkdir(exist_ok=True)
    try:
        result = train_fold(p, fold, audio, tmp, state_dir=task.fold_dir)
        _maybe_die(task)
        kept = _commit(tmp, task.fold_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone after a rename; a failed attempt's leftovers otherwise
    return {"key": task.key, "skipped": False, "kept": kept, "accuracy": result["accuracy"], "f1": result["f1"],
            "train_seconds": result["train_seconds"], "seconds": time.perf_counter() - start, "pid": os.getpid()}


def _commit(tmp: Path, final: Path) -> bool:
    """Rename the finished fold into place. False when another attempt already finished it (ours is dropped)."""
    if (final / "result.json").is_file():
        (final / RESUME).unlink(missing_ok=True)  # what this attempt wrote there after the other's rename
        return False
    if final.exists():  # the epoch state of this task, or an unfinished fold of ``python -m train``: replaced
        shutil.rmtree(final)
    try:
        os.rename(tmp, final)
    except OSError:
        if (final / "result.json").is_file():  # lost a race with a concurrent attempt: keep theirs
            return False
        raise
    return True


def clean_parts(run_dir: Path) -> int:
    """Remove temporary fold folders left by killed attempts (call only while no task runs)."""
    parts = list(Path(run_dir).glob(f".fold_*{PART}*"))
    for p in parts:
        shutil.rmtree(p, ignore_errors=True)
    return len(parts)


def _maybe_die(task: Task) -> None:
    folder = os.environ.get(FAULTS_ENV)
    if not folder:
        return
    marker = Path(folder) / task.key
    try:
        os.rename(marker, marker.with_name(task.key + ".killed"))
    except FileNotFoundError:
        return
    marker.with_name(task.key + ".killed").write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":  # a module, not a command (no parser, so no entry among the CLIs): say which command runs it
    if sys.argv[1:] in (["-h"], ["--help"]):
        print(f"usage: python -m train.grid ...\n\n{__doc__.strip()}\n\nNot a command: python -m train.grid runs these "
              "tasks (see its --help).")
        sys.exit(0)
    print("error: train.grid_task is the task function of python -m train.grid, not a command; run python -m train.grid "
          "(see its --help)", file=sys.stderr)
    sys.exit(2)
