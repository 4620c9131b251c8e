"""Training faults: a ``python -m train`` run killed mid-fold (SIGINT, SIGKILL) resumes from the
killed fold's last finished epoch and ends with the same summary as an uninterrupted run with the
same seed; no write leaves a truncated file under its final name.

The runs are real subprocesses of the CLI on generated tone data (``benchmarks.train_faults``, whose
``python -m benchmarks.train_faults`` injects kills at random moments for the committed report).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import train_faults as faults
from runtime.files import PARTIAL, atomic_path, remove_partials, write_atomic

ROOT = Path(__file__).resolve().parents[1]

EPOCHS = 8


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """Generated data and one uninterrupted run of the CLI."""
    root = tmp_path_factory.mktemp("faults")
    data = faults.make_data(root / "data", per_class=12)
    out = root / "uninterrupted"
    proc = faults.run(data, out, EPOCHS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "retracing" not in proc.stderr  # a fresh model per fold is on purpose: TensorFlow's notice is dropped
    return data, out


def _kill_mid_fold(data: Path, out: Path, sig: int) -> subprocess.CompletedProcess:
    """Start the CLI, wait until fold 0 is finished and fold 1 has saved a checkpoint and its state
    after an epoch, send ``sig``."""
    proc = faults.start(data, out, EPOCHS)
    deadline = time.monotonic() + 300
    fold1 = out / "fold_1"
    try:
        while not ((out / "fold_0" / "result.json").is_file() and (fold1 / "model.keras").is_file()
                   and (fold1 / "resume.npz").is_file()):
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
    assert faults.truncated_files(out) == []
    kept = faults._epochs_kept(out / "fold_1" / "resume.npz")
    assert 1 <= kept < EPOCHS

    fold0 = (out / "fold_0" / "result.json").stat().st_mtime_ns
    resumed = faults.run(data, out, EPOCHS)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "fold 0 (" in resumed.stderr and "done before, skipped" in resumed.stderr
    assert (out / "fold_0" / "result.json").stat().st_mtime_ns == fold0  # not trained again
    assert faults.truncated_files(out) == []
    assert faults.partial_files(out) == [], "temporary files left behind"
    assert "fold 1 (" in resumed.stderr and f"resumed after epoch {kept}" in resumed.stderr  # not from epoch 1
    assert json.loads((out / "fold_1" / "result.json").read_text())["resumed_at"] == [kept]
    assert not list(out.glob("fold_*/resume.npz")), "epoch states are deleted once their fold is finished"

    got = json.loads((out / "summary.json").read_text())
    want = json.loads((reference / "summary.json").read_text())
    assert got["complete"] and got["folds_done"] == 3
    assert faults.comparable(got) == faults.comparable(want)
    assert faults.fold_results(out) == faults.fold_results(reference)  # histories and confusion matrices too


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


@pytest.mark.skipif(os.name != "posix", reason="folders are fsynced on POSIX only")
def test_atomic_write_fsyncs_the_file_then_the_folder(tmp_path, monkeypatch):
    """The data must be on disk before the rename, and the rename itself after it."""
    import runtime.files as files

    synced = []
    real = files._fsync
    monkeypatch.setattr(files, "_fsync", lambda path: (synced.append(Path(path)), real(path)))
    write_atomic(tmp_path / "model.bin", b"x")
    assert len(synced) == 2 and synced[0].parent == tmp_path and PARTIAL in synced[0].name
    assert synced[1] == tmp_path


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


def test_fault_report_renders_each_trial():
    ok = faults.Trial("SIGKILL", 3.2, True, -9, 1, True, True, 1, [], True, True, True, True, 0, 4)
    bad = faults.Trial("SIGINT", 7.0, True, 130, 2, True, False, 0, ["fold_2/model.keras"], True, True, False, True, 0, 0)
    text = faults.markdown([ok, bad], 12.3, "python -m benchmarks.train_faults --out x.md", None)
    assert "**2 trials (2 signalled while the run was going): 1 ended as expected" in text
    rows = [line for line in text.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert len(rows) == 2 and "| SIGKILL | 3.2 | yes | -9 | 1 | yes (yes, 4) | 1 | 0 |" in rows[0] and "| 1 | ok | yes | NO |" in rows[1]


def test_a_sigint_counts_as_handled_only_with_its_one_line_or_after_the_last_write(tmp_path):
    ok = faults.ended_as_expected
    (tmp_path / "summary.json").write_text(json.dumps({"complete": False}))
    assert ok(signal.SIGINT, 130, "fold 0 (...): accuracy 0.5\ninterrupted: re-run the same command to resume\n", tmp_path)
    assert not ok(signal.SIGINT, 130, "Traceback (most recent call last):\ninterrupted: ...\n", tmp_path)
    assert not ok(signal.SIGINT, 0, "", tmp_path)  # exit 0 with the run unfinished: the signal was lost
    (tmp_path / "summary.json").write_text(json.dumps({"complete": True}))
    assert ok(signal.SIGINT, 0, "", tmp_path)  # it came while the finished run was exiting
    assert ok(signal.SIGKILL, -9, "", tmp_path) and not ok(signal.SIGKILL, 0, "", tmp_path)
    assert ok(None, 0, "", tmp_path) and not ok(None, 1, "", tmp_path)


def test_reliability_report_summarises_the_fault_reports(tmp_path):
    from benchmarks.reliability import other_faults

    assert other_faults(tmp_path) == []  # nothing committed beside it: nothing claimed
    trial = faults.Trial("SIGKILL", 3.2, True, -9, 1, True, True, 1, [], True, True, True, True, 0, 4)
    (tmp_path / "train_faults.json").write_text(json.dumps({"baseline_seconds": 9.0, "trials": [trial.__dict__] * 3}))
    text = "\n".join(other_faults(tmp_path))
    assert ("3 kills of `python -m train` (0 SIGINT, 3 SIGKILL; 3 landed inside a fold, 3 of them after the fold had saved "
            "an epoch, which the resume went on from): 3 resumed") in text
