"""Faults at run time: NaN input, an input that dies mid-run, a consumer slower than
the audio thread, a device that disappears — counted and reported, summary kept.

The microphone cases run in-process against a fake PortAudio (``runtime.sources._sounddevice``
replaced): a thread that calls the stream callback like PortAudio does, as fast as
the test wants, raising the driver's ``input_overflow`` flag on some blocks, and
optionally "unplugging" itself. ``tests/test_reliability_mic.py`` repeats the two
main cases through a real PulseAudio device.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from runtime_fixtures import TONE_RATE, tone_signal, tone_tflite

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model() -> Path:
    return tone_tflite()


# ---------------------------------------------------------------- NaN / inf


def test_read_audio_refuses_nan(tmp_path):
    """Regression: train.data.read_audio passed NaN/inf from float files into training."""
    from train.data import DataError, decode, load_folders, read_audio

    x = tone_signal([("low", 1.0)], 8000)
    x[100] = np.nan
    x[200] = np.inf
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sf.write(tmp_path / "a" / "bad.wav", x, 8000, subtype="FLOAT")
    sf.write(tmp_path / "b" / "good.wav", tone_signal([("high", 1.0)], 8000), 8000)
    with pytest.raises(DataError, match=r"2 NaN/inf sample\(s\).*bad.wav"):
        read_audio(tmp_path / "a" / "bad.wav", 8000)
    ds = load_folders(tmp_path)
    with pytest.raises(DataError, match=r"bad.wav \(audio file has 2 NaN/inf sample\(s\)\)") as e:
        decode(ds.clips, 8000)
    assert "\n" not in str(e.value)


def test_cli_replaces_nan_and_counts_it(tmp_path, model):
    """Regression: NaN samples in a float WAV made every window NaN (JSON ``NaN`` scores)."""
    x = tone_signal([("low", 1.0), ("high", 1.0)], TONE_RATE)
    x[::500] = np.nan
    x[7] = -np.inf
    wav = tmp_path / "nan.wav"
    sf.write(wav, x, TONE_RATE, subtype="FLOAT")
    proc = subprocess.run([sys.executable, "-m", "runtime.live", "--model", str(model), "--file", str(wav), "--json", "--smooth", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ("warning: nan.wav holds NaN/inf samples (the first in the block at 0.00 s); they are "
                           "replaced by silence (NaN) or full scale (inf) and counted in the summary\n")  # once, not per block
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    windows, summary = rows[:-1], rows[-1]["summary"]
    assert summary["nonfinite_samples"] == len(x[::500]) + 1
    assert all(np.isfinite(s["score"]) for w in windows for s in w["top"])
    assert windows[2]["top"][0]["label"] == "low" and windows[-1]["top"][0]["label"] == "high"


def test_read_audio_refuses_garbage_floats(tmp_path):
    """Finite float samples far beyond full scale (a corrupt float WAV holds values up to 3.4e38) went
    through the resampler, which turned them into inf and NaN."""
    from train.data import DataError, read_audio

    x = tone_signal([("low", 1.0)], 8000)
    x[100], x[200], x[300] = 3e38, -1e20, 15.0  # the last is loud, but audio
    sf.write(tmp_path / "bad.wav", x, 8000, subtype="FLOAT")
    with pytest.raises(DataError, match=r"2 sample\(s\) beyond ±16 full scale.*bad.wav$"):
        read_audio(tmp_path / "bad.wav", 16000)


def test_cli_clips_garbage_floats_and_counts_them(tmp_path, model):
    """Regression: a float WAV with samples near 3.4e38 gave NaN windows after resampling, a JSON ``"rms":
    NaN`` and a confident label; with the model's own rate, an RMS of 1e37."""
    x = tone_signal([("low", 1.0), ("high", 1.0)], TONE_RATE)
    x[::700] = 3e38
    x[5] = 20.0
    wav = tmp_path / "garbage.wav"
    sf.write(wav, x, 2 * TONE_RATE, subtype="FLOAT")  # another rate: the resampler must see clipped values
    proc = subprocess.run([sys.executable, "-m", "runtime.live", "--model", str(model), "--file", str(wav), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ("warning: garbage.wav holds samples beyond ±16 full scale (the first in the block at "
                           "0.00 s), which audio never reaches (a corrupt float file?); they are clipped and counted "
                           "in the summary\n")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]  # json.loads reads NaN: checked below
    windows, summary = rows[:-1], rows[-1]["summary"]
    assert summary["clipped_samples"] == len(x[::700]) + 1 and summary["nonfinite_samples"] == 0
    assert windows and all(np.isfinite(w["rms"]) and w["rms"] <= 16 for w in windows)
    assert all(np.isfinite(s["score"]) for w in windows for s in w["top"])


@pytest.fixture
def cut_mp3(tmp_path) -> Path:
    """A 5 s MP3 cut to its first 60 %: libsndfile decodes the frames there and ends without an error."""
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile writes no MP3")
    whole = tmp_path / "whole.mp3"
    sf.write(whole, tone_signal([("low", 5.0)], TONE_RATE), TONE_RATE, format="MP3")
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) * 6 // 10])
    return cut


def test_cli_warns_about_a_file_that_decodes_short(cut_mp3, model):
    """Regression: a cut MP3 or Ogg was classified in part (half the audio lost) with no word and exit 0."""
    proc = subprocess.run([sys.executable, "-m", "runtime.live", "--model", str(model), "--file", str(cut_mp3),
                           "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    m = re.fullmatch(rf"warning: cut.mp3 decoded to (\d+) of the {5 * TONE_RATE} frames its header declares "
                     r"\((\d+) %: truncated or corrupt\?\); classified what was there", line)
    assert m and 0 < int(m[1]) < 5 * TONE_RATE, line
    summary = json.loads(proc.stdout.splitlines()[-1])["summary"]
    assert summary["source"]["warning"] == line.removeprefix("warning: ")
    assert 0 < summary["audio_s"] < 5


def test_read_audio_refuses_a_file_that_decodes_short(cut_mp3):
    from train.data import DataError, read_audio

    with pytest.raises(DataError, match=rf"cut.mp3 decoded to \d+ of the {5 * TONE_RATE} frames its header declares "
                                        r"\(\d+ %: truncated or corrupt\?\); restore or remove it$"):
        read_audio(cut_mp3, 8000)


# ---------------------------------------------------------------- input lost mid-run


def test_file_unreadable_midway_keeps_the_summary(tmp_path, model):
    """A FLAC cut in half: the windows before the damage, the summary, then one error line."""
    flac = tmp_path / "cut.flac"
    sf.write(flac, tone_signal([("low", 3.0), ("high", 3.0)], TONE_RATE), TONE_RATE, subtype="PCM_16")
    data = flac.read_bytes()
    flac.write_bytes(data[: len(data) // 2])
    proc = subprocess.run([sys.executable, "-m", "runtime.live", "--model", str(model), "--file", str(flac), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: cut.flac: read failed"), proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    summary = rows[-1]["summary"]
    assert summary["windows"] == len(rows) - 1 > 0 and summary["error"] in lines[0]


# ---------------------------------------------------------------- microphone faults (fake PortAudio)


class FakeStream:
    """Calls ``callback`` from its own thread like PortAudio: ``pace_s`` between blocks,
    ``input_overflow`` on every ``overflow_every``-th block, and after ``unplug_after``
    blocks it stops and calls ``finished_callback`` (the device is gone)."""

    def __init__(self, owner, *, device, channels, samplerate, dtype, blocksize, callback, finished_callback):
        self.owner, self.channels, self.rate = owner, channels, samplerate
        self.block = blocksize or 256
        self.callback, self.finished = callback, finished_callback
        self.active = False
        self._stop = threading.Event()

    def start(self):
        self.active = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        t = np.arange(self.block) / self.rate
        i = 0
        while not self._stop.is_set():
            if self.owner.unplug_after is not None and i >= self.owner.unplug_after:
                self.active = False
                self.finished()
                return
            x = 0.5 * np.sin(2 * np.pi * 440 * (t + i * self.block / self.rate))
            indata = np.repeat(x[:, None], self.channels, axis=1).astype(np.float32)
            status = SimpleNamespace(input_overflow=self.owner.overflow_every > 0 and i % self.owner.overflow_every == 0)
            self.callback(indata, self.block, None, status)
            self.owner.delivered += 1
            i += 1
            time.sleep(self.owner.pace_s)

    def abort(self):
        self._stop.set()
        self.active = False

    def close(self):
        self._stop.set()


class FakeSoundDevice:
    def __init__(self, pace_s=0.0005, overflow_every=0, unplug_after=None):
        self.pace_s, self.overflow_every, self.unplug_after = pace_s, overflow_every, unplug_after
        self.delivered = 0

    def query_devices(self, device=None, kind=None):
        return {"name": "fake mic", "index": 0, "default_samplerate": float(TONE_RATE), "max_input_channels": 2}

    def check_input_settings(self, *args, **kwargs):
        pass

    def InputStream(self, **kwargs):  # noqa: N802 - sounddevice's name
        return FakeStream(self, **kwargs)


@pytest.fixture
def fake_mic(monkeypatch):
    import runtime.sources

    def install(**kwargs) -> FakeSoundDevice:
        sd = FakeSoundDevice(**kwargs)
        monkeypatch.setattr(runtime.sources, "_sounddevice", lambda: sd)
        return sd

    return install


def test_slow_consumer_drops_are_counted_not_fatal(fake_mic, model):
    """The consumer (model + output) is slower than the audio thread: the bounded queue
    fills, blocks are dropped and counted, driver overflows are counted, the run ends
    normally at --duration with its summary."""
    from runtime.live import LiveConfig, run

    sd = fake_mic(pace_s=0.0005, overflow_every=50)  # 256-frame blocks ~30x faster than real time
    seen = []

    def slow(result):
        seen.append(result)
        time.sleep(0.02)  # a slow consumer: 20 ms per 125 ms hop, but the device runs 30x real time

    summary = run(LiveConfig(model=model, duration_s=20.0, smooth=1), on_window=slow)
    assert summary["dropped_blocks"] > 0 and summary["overflows"] > 0
    assert summary["windows"] == len(seen) == 159  # (20 s - 0.25 s) / 0.125 s + 1: --duration counts audio kept
    assert "error" not in summary and sd.delivered > summary["audio_s"] * TONE_RATE / 256


def test_slow_consumer_cli_exit_0(fake_mic, model, capfd):
    from runtime.live import main

    fake_mic(pace_s=0.0005, overflow_every=10)
    out = io.StringIO()

    class Slow(io.StringIO):
        def write(self, s):
            time.sleep(0.002)
            return out.write(s)

    assert main(["--model", str(model), "--json", "--duration", "5", "--hop", "0.01"], out=Slow()) == 0
    summary = json.loads(out.getvalue().splitlines()[-1])["summary"]
    assert summary["dropped_blocks"] > 0 and summary["overflows"] > 0
    # Windows cut across dropped audio are suspect: one warning at the end (was: nothing but the count)
    (line,) = capfd.readouterr().err.splitlines()
    assert re.fullmatch(rf"warning: fake mic: {summary['dropped_blocks']} block\(s\) dropped \(\d+% of those "
                        r"delivered\): the classifier did not keep up with the device, so windows span gaps in the "
                        r"audio \(a larger --block or --hop helps\)", line), line


@pytest.mark.parametrize("block,rate,limit", [(0, 16000, 3.0), (1024, 16000, 3.0), (32000, 8000, 9.0),
                                              (65536, 16000, 2 * 4.096 + 1)])
def test_a_long_block_is_not_taken_for_a_lost_device(fake_mic, block, rate, limit):
    """--block 32000 at 8 kHz (4 s per block) failed as 'stopped delivering audio' after 3 s, every time."""
    from runtime.sources import MicConfig, MicSource

    fake_mic()
    source = MicSource(MicConfig(sample_rate=rate, block_frames=block))
    assert source.stall_limit_s == pytest.approx(limit)


def test_device_unplugged_ends_with_summary_and_one_error_line(fake_mic, model, capfd):
    from runtime.live import main

    fake_mic(pace_s=0.001, unplug_after=200)  # 200 blocks of 256 frames = 3.2 s of audio, then gone
    out = io.StringIO()
    t0 = time.monotonic()
    assert main(["--model", str(model), "--json", "--duration", "60"], out=out) == 2
    assert time.monotonic() - t0 < 20
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    summary = rows[-1]["summary"]
    assert summary["audio_s"] == pytest.approx(200 * 256 / TONE_RATE)
    assert summary["windows"] == len(rows) - 1 == 24  # (3.2 - 0.25) / 0.125 + 1
    assert "stopped delivering audio" in summary["error"]
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: input device 'fake mic' stopped delivering audio"), err


def test_device_unplugged_console_view_prints_summary(fake_mic, model, capfd):
    from runtime.live import main

    fake_mic(pace_s=0.001, unplug_after=100)
    out = io.StringIO()
    assert main(["--model", str(model), "--duration", "60"], out=out) == 2
    assert "windows 11" in out.getvalue() and "dropped blocks 0" in out.getvalue()
    assert capfd.readouterr().err.startswith("error: ")


# ---------------------------------------------------------------- the CLI writes nothing


def test_live_writes_no_files(tmp_path, model):
    """``runtime.live`` only reads: run from an empty folder, it stays empty."""
    wav = tmp_path / "in" / "t.wav"
    wav.parent.mkdir()
    sf.write(wav, tone_signal([("low", 1.0)], TONE_RATE), TONE_RATE)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-m", "runtime.live", "--model", str(model), "--file", str(wav)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert list(cwd.iterdir()) == [] and sorted(p.name for p in wav.parent.iterdir()) == ["t.wav"]


def test_a_rate_no_recording_has_is_refused_on_every_path(tmp_path, model):
    """A WAV whose header says 1 Hz: its 4 samples were upsampled into 31 windows (and a long one into
    gigabytes). The loaders and the runtime now refuse it, naming the file and the rate."""
    from benchmarks.reliability import make_corpus, run_cli, run_data, run_runtime
    from runtime.model import load_model

    path = next(c for c in make_corpus() if c.name == "rate_1hz.wav").make(tmp_path)
    for outcome, detail in (run_data(path, tmp_path), run_runtime(path, load_model(model)), run_cli(path, model)):
        assert outcome == "error" and "1 Hz" in detail and "rate_1hz.wav" in detail, detail
