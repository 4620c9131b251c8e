"""Microphone faults through a real device (private PulseAudio null sink, see
``test_runtime_mic.py``): a consumer that stops reading stdout (blocks are dropped
and counted, exit 0) and a device that disappears (summary printed, then one
``error:`` line). Skips where PulseAudio cannot start."""

from __future__ import annotations

import json
import re
import time

from test_runtime_mic import live, pulse  # noqa: F401  (pulse is a fixture)


def test_stalled_consumer_drops_blocks_and_exits_0(pulse):  # noqa: F811
    # --hop 0.001: ~1000 JSON lines per second of audio fill the 64 KiB pipe within a second;
    # while nobody reads, the main thread blocks in write() and the capture queue overflows.
    proc = live(pulse.env, "--duration", "6", "--hop", "0.001")
    try:
        first = proc.stdout.readline()
        assert first.startswith("{"), proc.stderr.read() if proc.poll() is not None else first
        time.sleep(10)  # a consumer that stalls for longer than the queue holds (256 blocks)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert proc.returncode == 0 and summary["dropped_blocks"] > 0 and summary["audio_s"] == 6.0
    # the windows span the gaps: said once, at the end, with the count (the summary's)
    assert re.match(rf"warning: .+: {summary['dropped_blocks']} block\(s\) dropped \(", err) and err.count("\n") == 1, err


def test_device_gone_prints_summary_then_error(pulse):  # noqa: F811
    proc = live(pulse.env, "--duration", "60")
    try:
        first = proc.stdout.readline()
        assert first.startswith("{"), proc.stderr.read() if proc.poll() is not None else first
        time.sleep(1)
        pulse.kill()
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "stopped delivering audio" in lines[0], err
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["windows"] == len(out.splitlines()) and summary["audio_s"] > 0.5
    assert "stopped delivering audio" in summary["error"]
