"""The microphone path for real: a private PulseAudio daemon with a null sink,
a recording played into the sink with ``paplay``, and ``python -m runtime.live``
capturing the sink's monitor through sounddevice (ALSA ``default`` -> PulseAudio)
at the device's own rate. Skips only where no audio server can start.

The model is the hand-made two-tone detector from ``runtime_fixtures``: its top
label is, by construction, the tone that is playing, so the labels live capture
reports can be checked against file mode on the same recording.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from itertools import groupby
from pathlib import Path

import pytest
import soundfile as sf

from runtime_fixtures import tone_signal, tone_tflite

ROOT = Path(__file__).resolve().parents[1]
SINK = "tinyaudio_test"
RECORDING_RATE = 44100
# silence / tones / silence: the order of tones is what both modes must report.
SEGMENTS = [(None, 0.5), ("low", 1.5), (None, 0.75), ("high", 1.5), (None, 0.75), ("low", 1.0), (None, 0.5)]
EXPECTED = ["low", "high", "low"]
LOUD_RMS = 0.05  # tones play at RMS 0.35; the idle monitor delivers exact zeros


class PulseServer:
    """A private PulseAudio daemon (own runtime dir, HOME and socket) so tests
    never touch a user's or another test's server; ``env`` points clients at it."""

    def __init__(self) -> None:
        # Short path: unix socket paths are limited to ~108 bytes.
        self.dir = Path(tempfile.mkdtemp(prefix="ta-pulse-"))
        os.chmod(self.dir, 0o700)
        self.env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(self.dir),
            "HOME": str(self.dir),  # the cookie and state go here, not into the real HOME
            "PULSE_RUNTIME_PATH": str(self.dir / "pulse"),
            "PULSE_STATE_PATH": str(self.dir / "state"),
            "PULSE_SERVER": f"unix:{self.dir / 'pulse' / 'native'}",
        }
        self.env.pop("PULSE_SINK", None)
        self.env.pop("PULSE_SOURCE", None)

    def start(self) -> None:
        # As root PulseAudio warns ("not intended to be run as root") but runs a
        # per-user daemon fine; --system would need a pulse user and D-Bus.
        cmd = [
            "pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n", "--use-pid-file=yes",
            "--disallow-module-loading=no", "--log-target=stderr",
            "--load=module-native-protocol-unix",
            f"--load=module-null-sink sink_name={SINK} rate={RECORDING_RATE} channels=2",
        ]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=20)
        if proc.returncode != 0:
            raise RuntimeError(f"pulseaudio did not start (rc {proc.returncode}): {proc.stderr.strip()[-300:]}")
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("pulseaudio started but does not answer pactl info")
            time.sleep(0.1)
        self.pactl("set-default-source", f"{SINK}.monitor")
        self.pactl("set-default-sink", SINK)

    def pactl(self, *args: str) -> str:
        return subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True, timeout=10, check=True).stdout

    @property
    def pid(self) -> int | None:
        try:
            return int((self.dir / "pulse" / "pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def kill(self) -> None:
        """Stop the daemon this object started (by its own pid file, nothing broader)."""
        pid = self.pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def pulse():
    for tool in ("pulseaudio", "pactl", "paplay"):
        if shutil.which(tool) is None:
            pytest.skip(f"no audio server can start here: {tool} is not installed (apt-get install pulseaudio pulseaudio-utils)")
    server = PulseServer()
    try:
        server.start()
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        server.stop()
        pytest.skip(f"no audio server can start here: {e}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "tones.wav"
    sf.write(path, tone_signal(SEGMENTS, RECORDING_RATE, amplitude=0.5, channels=2), RECORDING_RATE, subtype="PCM_16")
    return path


def live(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "runtime.live", "--model", str(tone_tflite()), "--json", "--smooth", "1", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def label_runs(windows: list[dict]) -> list[str]:
    """Top-1 labels of windows with energy, consecutive repeats collapsed."""
    loud = [w["top"][0]["label"] for w in windows if w["rms"] >= LOUD_RMS]
    return [label for label, _ in groupby(loud)]


def test_microphone_labels_match_file_mode(pulse, recording):
    file_proc = subprocess.run(
        [sys.executable, "-m", "runtime.live", "--model", str(tone_tflite()), "--json", "--smooth", "1", "--file", str(recording)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert file_proc.returncode == 0, file_proc.stderr
    file_windows = [json.loads(line) for line in file_proc.stdout.splitlines()][:-1]
    assert label_runs(file_windows) == EXPECTED

    seconds = sum(s for _, s in SEGMENTS)
    proc = live(pulse.env, "--duration", str(seconds + 4))
    try:
        first = proc.stdout.readline()  # capture is running once the first window is out
        assert first.startswith("{"), proc.stderr.read() if proc.poll() is not None else first
        play = subprocess.run(["paplay", f"--device={SINK}", str(recording)], env=pulse.env, capture_output=True, text=True, timeout=30)
        assert play.returncode == 0, play.stderr
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and err == "", err
    rows = [json.loads(line) for line in (first + out).splitlines()]
    summary, mic_windows = rows[-1]["summary"], rows[:-1]
    assert summary["source"]["sample_rate"] == RECORDING_RATE  # the device's own rate; the engine resampled
    assert summary["source"]["channels"] == 2  # and downmixed
    assert label_runs(mic_windows) == EXPECTED, [(w["time"], w["top"][0]["label"], w["rms"]) for w in mic_windows]
    # The same amount of loud audio in both modes (give or take the windows at segment edges).
    for label in ("low", "high"):
        n_file = sum(w["top"][0]["label"] == label and w["rms"] >= LOUD_RMS for w in file_windows)
        n_mic = sum(w["top"][0]["label"] == label and w["rms"] >= LOUD_RMS for w in mic_windows)
        assert abs(n_file - n_mic) <= 3, (label, n_file, n_mic)
    assert summary["dropped_blocks"] == 0


def test_device_disappearing_mid_stream_is_a_clear_error(pulse):
    proc = live(pulse.env, "--duration", "60")
    try:
        first = proc.stdout.readline()
        assert first.startswith("{"), proc.stderr.read() if proc.poll() is not None else first
        pulse.kill()  # the audio server, and with it the device, goes away
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "stopped delivering audio" in lines[0], err


def test_unsupported_rate_is_a_clear_error(pulse):
    # Under the CLI's own 768 kHz bound, so the device is asked and says no (PulseAudio stops at 384 kHz).
    proc = live(pulse.env, "--rate", "700000", "--duration", "1")
    out, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "does not support 700000 Hz" in lines[0], err


def test_list_devices_shows_the_pulse_device(pulse):
    proc = subprocess.run([sys.executable, "-m", "runtime.live", "--list-devices"], cwd=ROOT, env=pulse.env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stderr == ""
    assert "default" in proc.stdout or "pulse" in proc.stdout
