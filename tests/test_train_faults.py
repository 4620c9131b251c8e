"""Training faults: a ``python -m train`` run killed mid-fold (SIGINT, SIGKILL) resumes and ends
with the same summary as an uninterrupted run with the same seed; no write leaves a truncated
file under its final name.

The runs are real subprocesses of the CLI on generated tone data (three classes, 3-fold).
Bit-identical training needs a fixed thread count and TensorFlow's deterministic ops, so the
subprocesses get ``TF_DETERMINISTIC_OPS=1`` and one thread; everything else is the CLI as users run it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from runtime.files import PARTIAL, atomic_path, remove_partials, write_atomic
from tests.test_training import _generate

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_DETERMINISTIC_OPS": "1", "OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1",
       "TF_NUM_INTEROP_THREADS": "1", "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2"}
EPOCHS = 8
# Fields that legitimately differ between two runs of the same settings.
VOLATILE = ("train_seconds", "machine")


def _cmd(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "train", "--model", "lv42", "--dataset", "folders", "--data", str(data),
            "--protocol", "kfold", "--k", "3", "--sample-rate", "8000", "--epochs", str(EPOCHS), "--seed", "3",
            "--quiet", "--out", str(out)]


def _run(data: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_cmd(data, out), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


def _comparable(summary: dict) -> dict:
    """The summary without timings and machine description."""
    strip = lambda d: {k: v for k, v in d.items() if k not in VOLATILE}  # noqa: E731
    return {**strip(summary), "folds": [strip(f) for f in summary["folds"]],
            "mean": strip(summary["mean"]), "std": strip(summary["std"])}


def _fold_results(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(p.read_text()).items() if k not in VOLATILE}
            for p in sorted(out.glob("fold_*/result.json"))]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """Generated data and one uninterrupted run of the CLI."""
    root = tmp_path_factory.mktemp("faults")
    data = _generate(root / "data", per_class=12)
    out = root / "uninterrupted"
    proc = _run(data, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return data, out


def _kill_mid_fold(data: Path, out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start the CLI, wait until fold 0 is finished and fold 1 has saved a checkpoint, send ``sig``."""
    proc = subprocess.Popen(_cmd(data, out), cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    fold1 = out / "fold_1"
    try:
        while not ((out / "fold_0" / "result.json").is_file() and (fold1 / "model.keras").is_file()):
            assert proc.poll() is None, f"run ended before it could be interrupted: {proc.communicate()[1][-2000:]}"
            assert time.monotonic() < deadline, "fold 1 never started"
            time.sleep(0.01)
        assert not (fold1 / "result.json").exists(), "fold 1 finished before the signal: make the folds longer"
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _assert_nothing_truncated(out: Path) -> None:
    """Every checkpoint under its real name is a complete .keras archive; every JSON parses."""
    for ckpt in out.glob("**/model.keras"):
        with zipfile.ZipFile(ckpt) as z:
            assert z.testzip() is None, ckpt
            assert "config.json" in z.namelist() and "model.weights.h5" in z.namelist(), ckpt
    for js in out.glob("**/*.json"):
        json.loads(js.read_text())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_killed_run_resumes_to_the_same_summary(baseline, tmp_path, sig):
    data, reference = baseline
    out = tmp_path / "killed"
    killed = _kill_mid_fold(data, out, sig)
    if sig == signal.SIGINT:  # handled: one line, exit status 130, the finished fold reported
        assert killed.returncode == 130, killed.stderr[-2000:]
        last = killed.stderr.strip().splitlines()[-1]
        assert last.startswith("interrupted:") and "resume" in last
        assert "Traceback" not in killed.stderr
    else:
        assert killed.returncode == -signal.SIGKILL
    assert (out / "fold_0" / "result.json").is_file() and not (out / "fold_1" / "result.json").exists()
    partial = json.loads((out / "summary.json").read_text())
    assert partial["folds_done"] == 1 and not partial["complete"]
    _assert_nothing_truncated(out)

    fold0 = (out / "fold_0" / "result.json").stat().st_mtime_ns
    resumed = _run(data, out)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "fold 0 (" in resumed.stderr and "done before, skipped" in resumed.stderr
    assert (out / "fold_0" / "result.json").stat().st_mtime_ns == fold0  # not trained again
    _assert_nothing_truncated(out)
    assert not list(out.glob(f"**/.*{PARTIAL}*")), "temporary files left behind"

    got = json.loads((out / "summary.json").read_text())
    want = json.loads((reference / "summary.json").read_text())
    assert got["complete"] and got["folds_done"] == 3
    assert _comparable(got) == _comparable(want)
    assert _fold_results(out) == _fold_results(reference)  # histories and confusion matrices too


# --- atomic writes -----------------------------------------------------------------------------

def test_atomic_path_leaves_target_alone_on_error(tmp_path):
    target = tmp_path / "result.json"
    write_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    assert oct(target.stat().st_mode & 0o777) == "0o644"


_WRITER = """
import sys
from runtime.files import write_atomic
path, n = sys.argv[1], int(sys.argv[2])
i = 0
while True:  # alternate two complete payloads until killed
    write_atomic(path, (b"A" if i % 2 else b"B") * n)
    i += 1
"""


def test_sigkill_during_writes_never_leaves_a_truncated_file(tmp_path):
    """A process rewriting a 4 MB file in a loop is SIGKILLed at 20 moments: the file under its
    real name is always one complete payload; leftovers carry the partial marker and are removable."""
    target, n = tmp_path / "model.bin", 4 << 20
    for k in range(20):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(n)], cwd=ROOT)
        time.sleep(0.15 + 0.037 * k)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if target.exists():
            data = target.read_bytes()
            assert len(data) == n and data in (b"A" * n, b"B" * n), f"truncated or mixed file after kill {k}"
    leftovers = [p for p in tmp_path.iterdir() if p != target]
    assert all(p.name.startswith(".") and PARTIAL in p.name for p in leftovers), leftovers
    assert remove_partials(tmp_path) == len(leftovers) and [p.name for p in tmp_path.iterdir()] == ["model.bin"]
