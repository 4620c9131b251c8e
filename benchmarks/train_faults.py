"""Training fault injection: kill ``python -m train`` at random moments, resume, compare.

Each trial starts the real CLI on generated tone data (three classes, 3-fold, ``lv42`` @ 8 kHz),
sends SIGINT or SIGKILL after a random delay (anywhere from TensorFlow's start-up to the last
fold), records what was on disk at that moment, checks that no file under its final name is
truncated (every ``.keras`` a complete archive, every JSON parseable), re-runs the same command
and compares the final summary with an uninterrupted run of the same seed (timings and machine
excluded). Bit-identical training needs a fixed thread count and TensorFlow's deterministic
ops, so the runs get ``TF_DETERMINISTIC_OPS=1`` and one thread.

    python -m benchmarks.train_faults --out benchmarks/results/train_faults.md
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from runtime.cli import ArgumentParser
from runtime.files import PARTIAL, cannot_write, write_atomic
from train import epoch_state

ROOT = Path(__file__).resolve().parents[1]
ENV = {"TF_DETERMINISTIC_OPS": "1", "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
       "TF_NUM_INTEROP_THREADS": "1", "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
# differ between two runs of the same settings (clocks, where it ran); resumed_at says where a killed fold went on from
VOLATILE = ("train_seconds", "train_cpu_seconds", "cores", "machine", "resumed_at")
CLASSES = (("low", 300.0), ("mid", 900.0), ("high", 2400.0))


def make_data(root: Path, per_class: int = 12, sr: int = 8000, seed: int = 0) -> Path:
    """Three classes of noisy tone bursts, one folder per class (the ``folders`` layout)."""
    rng = np.random.default_rng(seed)
    for cls, f0 in CLASSES:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            n = int(sr * rng.uniform(0.3, 1.4))
            t = np.arange(n) / sr
            x = 0.3 * np.sin(2 * np.pi * f0 * rng.uniform(0.9, 1.1) * t) + 0.05 * rng.standard_normal(n)
            sf.write(str(root / cls / f"{i}.wav"), x.astype(np.float32), sr)
    return root


def command(data: Path, out: Path, epochs: int = 8, seed: int = 3) -> list[str]:
    return [sys.executable, "-m", "train", "--model", "lv42", "--dataset", "folders", "--data", str(data),
            "--protocol", "kfold", "--k", "3", "--sample-rate", "8000", "--epochs", str(epochs), "--seed", str(seed),
            "--quiet", "--out", str(out)]


def run(data: Path, out: Path, epochs: int = 8) -> subprocess.CompletedProcess:
    return subprocess.run(command(data, out, epochs), cwd=ROOT, env={**os.environ, **ENV},
                          capture_output=True, text=True, timeout=900)


def _default_sigint() -> None:
    # A process started in the background by a non-interactive shell (``cmd &``, nohup) inherits
    # SIGINT as *ignored*, and Python then installs no KeyboardInterrupt handler: Ctrl-C would be
    # silently dropped. The run under test gets the default disposition a terminal user has.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(data: Path, out: Path, epochs: int = 8) -> subprocess.Popen:
    return subprocess.Popen(command(data, out, epochs), cwd=ROOT, env={**os.environ, **ENV},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def comparable(summary: dict) -> dict:
    """A summary.json without timings and machine description."""
    def strip(d: dict) -> dict:
        return {k: v for k, v in d.items() if k not in VOLATILE}
    return {**strip(summary), "folds": [strip(f) for f in summary.get("folds", [])],
            "mean": strip(summary.get("mean", {})), "std": strip(summary.get("std", {}))}


def fold_results(out: Path) -> list[dict]:
    """Every finished fold's result.json (histories, confusion matrices) without timings."""
    return [{k: v for k, v in json.loads(p.read_text()).items() if k not in VOLATILE}
            for p in sorted(out.glob("fold_*/result.json"))]


def _complete(out: Path) -> bool:
    try:
        return bool(json.loads((out / "summary.json").read_text())["complete"])
    except (OSError, ValueError, KeyError):
        return False


def ended_as_expected(sig: signal.Signals | None, returncode: int, stderr: str, out: Path) -> bool:
    """Whether a run sent ``sig`` (None: it had ended before the signal) exited as it should."""
    if sig is None:
        return returncode == 0
    if sig == signal.SIGKILL:
        return returncode == -signal.SIGKILL
    lines = stderr.strip().splitlines()  # SIGINT is handled: one line, exit 130, no traceback ...
    return "Traceback" not in stderr and (
        (returncode == 130 and bool(lines) and lines[-1].startswith("interrupted:"))
        # ... unless it came after the run's last write, while the process was exiting: nothing to interrupt
        or (returncode == 0 and _complete(out)))


def _epochs_kept(state: Path) -> int:
    """Finished epochs recorded in a fold's epoch state (0: none, or unreadable)."""
    return int((epoch_state.header(state) or {}).get("epoch", 0))


def truncated_files(out: Path) -> list[str]:
    """Files under their final names that are not complete: broken ``.keras`` archives, unparsable JSON,
    epoch states (``resume.npz``) that do not load."""
    bad = []
    bad += [str(state.relative_to(out)) for state in out.glob("**/resume.npz") if epoch_state.header(state) is None]
    for ckpt in out.glob("**/*.keras"):
        if ckpt.name.startswith("."):
            continue  # a temporary name: allowed to be partial
        try:
            with zipfile.ZipFile(ckpt) as z:
                if z.testzip() is not None or not {"config.json", "model.weights.h5"} <= set(z.namelist()):
                    bad.append(str(ckpt.relative_to(out)))
        except (zipfile.BadZipFile, OSError):
            bad.append(str(ckpt.relative_to(out)))
    for js in out.glob("**/*.json"):
        try:
            json.loads(js.read_text())
        except (ValueError, OSError):
            bad.append(str(js.relative_to(out)))
    return bad


def partial_files(out: Path) -> list[str]:
    return [str(p.relative_to(out)) for p in out.glob(f"**/.*{PARTIAL}*")]


@dataclass
class Trial:
    signal: str
    delay_s: float
    running_at_signal: bool  # False: the run had already finished, the trial tests nothing
    exit_status: int | None
    folds_done_at_kill: int
    fold_in_progress: bool  # a fold folder without result.json existed at the kill
    checkpoint_in_progress: bool  # ... and it already held a checkpoint
    partial_at_kill: int  # temporary files present right after the kill
    truncated: list[str]
    message_ok: bool  # SIGINT: one 'interrupted: ...' line, no traceback; SIGKILL: n/a (True)
    resumed_ok: bool
    same_summary: bool
    same_folds: bool
    partial_after_resume: int
    # finished epochs the fold in progress had in its epoch state (resume.npz) at the kill; reports
    # from before epoch-level resume lack it
    epochs_kept_at_kill: int = 0

    @property
    def ok(self) -> bool:
        """Ended as expected and resumed to the uninterrupted run's numbers, nothing truncated."""
        return self.resumed_ok and self.same_summary and self.same_folds and not self.truncated and self.message_ok


def inject(data: Path, out: Path, sig: signal.Signals, delay: float, reference: Path, epochs: int = 8) -> Trial:
    proc = start(data, out, epochs)
    time.sleep(delay)
    running = proc.poll() is None
    if running:
        proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=300)
    done = len(list(out.glob("fold_*/result.json")))
    open_folds = [d for d in out.glob("fold_*") if d.is_dir() and not (d / "result.json").exists()]
    # read now: the resumed run below writes these folds' checkpoints
    checkpoint = any((d / "model.keras").exists() for d in open_folds)
    kept = max((_epochs_kept(d / "resume.npz") for d in open_folds), default=0)
    partial = partial_files(out) if out.exists() else []
    truncated = truncated_files(out) if out.exists() else []
    message_ok = ended_as_expected(sig if running else None, proc.returncode, stderr, out)
    resumed = run(data, out, epochs)
    ok = resumed.returncode == 0 and (out / "summary.json").is_file()
    got = json.loads((out / "summary.json").read_text()) if ok else {}
    want = json.loads((reference / "summary.json").read_text())
    return Trial(sig.name, round(delay, 2), running, proc.returncode, done, bool(open_folds), checkpoint, len(partial),
                 truncated + [f"after resume: {t}" for t in truncated_files(out)], message_ok, ok,
                 ok and comparable(got) == comparable(want), ok and fold_results(out) == fold_results(reference),
                 len(partial_files(out)), kept)


def markdown(trials: list[Trial], baseline_s: float, command_line: str, machine: dict | None) -> str:
    from benchmarks.machine import machine_line

    good = [t for t in trials if t.ok]
    hit = sum(t.running_at_signal for t in trials)
    lines = [
        "# Reliability: training killed mid-run",
        "",
        f"Generated by `{command_line}` — do not edit by hand.",
        "",
        (f"Machine: {machine_line(machine)}." if machine else ""),
        "",
        "Each trial runs `python -m train --model lv42 --dataset folders --protocol kfold --k 3 --epochs 8` on "
        "generated tones, sends the signal after the delay shown (uniform over 5–90 % of the uninterrupted run's "
        f"{baseline_s:.1f} s, start-up included), inspects the run folder, re-runs the same command and compares "
        "its summary.json and every fold's result.json (histories, confusion matrices) with an uninterrupted "
        "run of the same seed. `truncated` counts files under their final names that are incomplete "
        "(broken `.keras` archive or unparsable JSON); temporary files (`.*.partial*`) are allowed at the "
        "kill and must be gone after the resume.",
        "",
        f"**{len(trials)} trials ({hit} signalled while the run was going): {len(good)} ended as expected "
        "(one-line message and exit 130 for SIGINT, or exit 0 when it came after the run's last write; −9 for "
        "SIGKILL) and resumed to the identical summary with nothing truncated.**",
        "",
        "| # | signal | after s | still running | exit | folds done at kill | fold in progress (checkpoint, epochs kept) | temp files at kill | truncated | message | resumed | same summary | same fold results | temp files after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, t in enumerate(trials, 1):
        lines.append(f"| {i} | {t.signal} | {t.delay_s} | {'yes' if t.running_at_signal else 'no (ended)'} | "
                     f"{t.exit_status} | {t.folds_done_at_kill} | "
                     f"{'yes' if t.fold_in_progress else 'no'} ({'yes' if t.checkpoint_in_progress else 'no'}, "
                     f"{t.epochs_kept_at_kill}) | "
                     f"{t.partial_at_kill} | {len(t.truncated)} | {'ok' if t.message_ok else 'BAD'} | "
                     f"{'yes' if t.resumed_ok else 'NO'} | {'yes' if t.same_summary else 'NO'} | "
                     f"{'yes' if t.same_folds else 'NO'} | {t.partial_after_resume} |")
    lines += ["", "SIGINT is handled (`interrupted: re-run the same command to resume …`, exit 130); "
              "SIGKILL cannot be handled (exit −9). Writes go through `runtime.files.atomic_path` "
              "(temporary name, fsync, `os.replace`); a fold counts as finished only once its result.json exists. "
              "A fold killed after some epochs goes on from its last finished epoch (`fold_K/resume.npz`, "
              "`train.epoch_state`): `epochs kept` is how many it did not have to train again."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m benchmarks.train_faults", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="markdown report to write (a .json beside it)")
    p.add_argument("--trials", type=int, default=8, help="kills to inject, alternating SIGINT and SIGKILL (default: 8)")
    p.add_argument("--seed", type=int, default=0, help="seed for the kill moments (default: 0)")
    args = p.parse_args(argv)
    if not args.out.parent.is_dir():
        print(f"error: output folder does not exist: {args.out.parent}", file=sys.stderr)
        return 2
    if args.trials < 1:
        print("error: --trials must be at least 1", file=sys.stderr)
        return 2
    problem = cannot_write(args.out, args.out.with_suffix(".json"))  # before minutes of training
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from benchmarks.machine import describe_machine

    machine = describe_machine()  # before the trainings: its load average is the one they started under
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="tinyaudio-train-faults-") as tmp:
        data = make_data(Path(tmp) / "data")
        reference = Path(tmp) / "uninterrupted"
        t0 = time.perf_counter()
        base = run(data, reference)
        baseline_s = time.perf_counter() - t0
        if base.returncode != 0:
            print(f"error: the uninterrupted run failed: {base.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return 1
        trials = []
        for i in range(args.trials):
            sig = (signal.SIGINT, signal.SIGKILL)[i % 2]
            delay = rng.uniform(0.05, 0.9) * baseline_s  # mostly inside the run; start-up and the end included
            t = inject(data, Path(tmp) / f"trial_{i}", sig, delay, reference)
            trials.append(t)
            print(f"trial {i + 1}/{args.trials}: {t.signal} after {t.delay_s:.1f} s, folds done {t.folds_done_at_kill}, "
                  f"same summary {t.same_summary}, truncated {len(t.truncated)}", file=sys.stderr, flush=True)
    command_line = "python -m benchmarks.train_faults " + " ".join(argv if argv is not None else sys.argv[1:])
    try:  # checked up front; a disk can still fill up
        write_atomic(args.out, markdown(trials, baseline_s, command_line, machine))
        write_atomic(args.out.with_suffix(".json"), json.dumps({"command": command_line, "machine": machine,
                                                                "baseline_seconds": baseline_s,
                                                                "trials": [t.__dict__ for t in trials]}, indent=1) + "\n")
    except OSError as e:
        print(f"error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    bad = [t for t in trials if not t.ok]
    print(f"{len(trials)} trials, {len(trials) - len(bad)} identical after resume → {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
