"""``python -m runtime.live`` through a subprocess: files, stdin, and every error
case the issue lists (one ``error:`` line on stderr, no traceback, exit != 0)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from runtime_fixtures import TONE_RATE, tone_signal, tone_tflite

ROOT = Path(__file__).resolve().parents[1]
SEGMENTS = [("low", 1.0), (None, 0.5), ("high", 1.0), (None, 0.5), ("low", 0.75)]


def run_cli(*args: str, stdin: bytes | None = None, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runtime.live", *args],
        cwd=ROOT, input=stdin, capture_output=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *words: str) -> str:
    err = proc.stderr.decode()
    assert proc.returncode != 0, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for w in words:
        assert w in lines[0], err
    return lines[0]


def json_windows(proc: subprocess.CompletedProcess) -> tuple[list[dict], dict]:
    assert proc.returncode == 0, proc.stderr.decode()
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert "summary" in rows[-1]
    return rows[:-1], rows[-1]["summary"]


def loud_labels(windows: list[dict], min_rms: float = 0.05) -> list[str]:
    return [w["top"][0]["label"] for w in windows if w["rms"] >= min_rms]


@pytest.fixture(scope="module")
def model() -> str:
    return str(tone_tflite())


@pytest.mark.parametrize("rate,channels", [(TONE_RATE, 1), (44100, 2), (48000, 1)])
def test_file_mode_any_rate_and_channels(tmp_path, model, rate, channels):
    wav = tmp_path / "tones.wav"
    sf.write(wav, tone_signal(SEGMENTS, rate, channels=channels), rate)
    windows, summary = json_windows(run_cli("--model", model, "--file", str(wav), "--json", "--smooth", "1"))
    assert summary["windows"] == len(windows) == 29  # (3.75 s - 0.25 s) / 0.125 s + 1
    assert summary["audio_s"] == pytest.approx(3.75)
    labels = loud_labels(windows)
    # Windows inside a tone segment carry its label; windows spanning a tone and silence too.
    assert Counter(labels) == Counter({"low": labels.count("low"), "high": labels.count("high")})
    assert labels.count("high") >= 8 and labels.count("low") >= 12
    w = windows[10]  # ends at 1.5 s: all silence
    assert w["rms"] < 1e-3 and set(w) == {"index", "time", "top", "event", "rms", "silent", "latency_ms"}
    assert w["silent"] and w["event"] is None  # under the default -60 dBFS gate
    assert summary["silent_windows"] == sum(x["silent"] for x in windows) >= 1
    assert not any(x["silent"] for x in windows if x["rms"] > 0.01)
    assert summary["latency_ms"]["p95"] > 0 and summary["peak_rss_mib"] > 10
    assert summary["budget"]["name"] == "low-end-phone"


def test_console_view_prints_a_summary(tmp_path, model):
    wav = tmp_path / "t.wav"
    sf.write(wav, tone_signal([("high", 1.0)], 22050), 22050)
    proc = run_cli("--model", model, "--file", str(wav), "--hop", "0.25", "--budget", "mid-range-phone")
    out = proc.stdout.decode()
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    assert ">>> high" in out and "windows 4" in out and "p95" in out and "peak RSS" in out and "mid-range-phone" in out


def test_stdin_raw_pcm_stereo(model):
    x = tone_signal([("high", 0.5), ("low", 0.5)], 48000, channels=2)
    pcm = (x * 32767).astype("<i2").tobytes()
    windows, summary = json_windows(
        run_cli("--model", model, "--stdin", "--rate", "48000", "--channels", "2", "--json", "--smooth", "1", stdin=pcm)
    )
    assert summary["audio_s"] == pytest.approx(1.0)
    assert windows[0]["top"][0]["label"] == "high" and windows[-1]["top"][0]["label"] == "low"


def test_duration_stops_early(tmp_path, model):
    wav = tmp_path / "t.wav"
    sf.write(wav, tone_signal([("low", 3.0)], TONE_RATE), TONE_RATE)
    _, summary = json_windows(run_cli("--model", model, "--file", str(wav), "--json", "--duration", "1"))
    assert summary["audio_s"] == pytest.approx(1.0) and summary["windows"] == 7


# ---------------------------------------------------------------- errors


def test_empty_wav(tmp_path, model):
    wav = tmp_path / "empty.wav"
    sf.write(wav, np.zeros((0,), np.float32), 16000)
    assert_one_line_error(run_cli("--model", model, "--file", str(wav)), "empty.wav", "no audio")


def test_corrupt_wav(tmp_path, model):
    wav = tmp_path / "corrupt.wav"
    wav.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(200))
    assert_one_line_error(run_cli("--model", model, "--file", str(wav)), "corrupt.wav")


def test_missing_audio_file(tmp_path, model):
    assert_one_line_error(run_cli("--model", model, "--file", str(tmp_path / "nope.wav")), "not found")


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_model_file_that_is_not_a_model(tmp_path, suffix):
    bad = tmp_path / f"model{suffix}"
    bad.write_bytes(b"this is a text file, not a model\n" * 50)
    wav = tmp_path / "t.wav"
    sf.write(wav, np.zeros(16000, np.float32), 16000)
    assert_one_line_error(run_cli("--model", str(bad), "--file", str(wav)), f"model{suffix}", "not a loadable")


def test_default_model_is_the_bundled_spoken_digit_model(fsdd_dir):
    """No --model: the bundled int8 spoken-digit model; one padded window per short digit clip.
    (It was trained on all of FSDD, so this checks the pipeline, not accuracy.)"""
    clips = sorted((fsdd_dir / "recordings").glob("*_jackson_0.wav"))
    assert len(clips) == 10
    right = 0
    for clip in clips:
        proc = run_cli("--file", str(clip), "--json", "--smooth", "1")
        assert proc.returncode == 0, proc.stderr
        windows = [json.loads(line) for line in proc.stdout.decode().splitlines() if "\"top\"" in line]
        assert len(windows) == 1
        right += windows[0]["top"][0]["label"] == clip.name.split("_")[0]
    assert right >= 8


@pytest.mark.parametrize(
    "args,words",
    [
        (["--stdin"], ["--rate"]),
        (["--stdin", "--rate", "0"], ["--rate"]),
        (["--stdin", "--rate", "16000", "--format", "u8"], ["format"]),
        (["--hop", "-1", "--file", "x.wav"], ["--hop"]),
        (["--threads", "0", "--file", "x.wav"], ["threads"]),
        (["--budget", "flip-phone", "--file", "x.wav"], ["flip-phone"]),
    ],
)
def test_bad_settings(model, args, words):
    assert_one_line_error(run_cli("--model", model, *args, stdin=b""), *words)


def test_a_threshold_an_int8_model_cannot_reach_is_refused(tmp_path):
    """Before: --threshold 1.0 with the bundled int8 model ran and never raised an event: its float
    output is dequantized from an int8 softmax (scale 1/256), so no score exceeds 255/256."""
    wav = tmp_path / "t.wav"
    sf.write(wav, tone_signal([("low", 1.0)], TONE_RATE, amplitude=0.3), TONE_RATE)
    int8 = str(ROOT / "android_demo_assets" / "spoken_digit" / "model_int8.tflite")
    assert_one_line_error(run_cli("--model", int8, "--file", str(wav), "--threshold", "1"),
                          "threshold 1 can never be reached", "model_int8.tflite", "0.9961")
    assert run_cli("--model", int8, "--file", str(wav), "--threshold", "0.996").returncode == 0
    for model in (int8.replace("int8", "float32"), str(tone_tflite(int8=True))):  # 1.0 exists (the tone's int8 scale is 1/255)
        assert run_cli("--model", model, "--file", str(wav), "--threshold", "1").returncode == 0, model


@pytest.mark.parametrize(
    "args,words",
    [
        (["--hop", "nan"], ["--hop", "finite", "nan"]),
        (["--hop", "inf"], ["--hop", "finite", "inf"]),
        (["--duration", "nan"], ["--duration", "finite", "nan"]),
        (["--duration", "inf"], ["--duration", "finite", "inf"]),
        (["--threads", "100000"], ["threads", "100000"]),  # used to segfault inside LiteRT
        (["--channels", "100000"], ["--channels", "1024", "100000"]),
        (["--channels", "0"], ["--channels", "got 0"]),  # 0 is not "the default"
        (["--block", "0"], ["--block", "got 0"]),
        (["--block", "100000000000"], ["--block", "65536"]),  # one raw read would not fit in memory
        (["--rate", "0"], ["--rate must be 1000 to", "got 0"]),  # a rate was given: not "needs --rate"
        (["--rate", "1"], ["--rate must be 1000 to", "got 1"]),  # a 64k block would have upsampled to 2 GiB
        (["--smooth", "99999999999999999999"], ["smoothing", "1 to 1000"]),  # overflowed the deque's length
        (["--rate", "1000000000000"], ["--rate", "768000", "1000000000000"]),  # used to give "0 windows"
        (["--hop", "1e308"], ["--hop", "a year", "1e+308"]),  # finite, but round(seconds x rate) overflowed
        (["--duration", "1e308"], ["--duration", "a year", "1e+308"]),
        (["--hop", "0.00001"], ["--hop", "under one sample"]),  # used to become 1 sample: a window per sample
        (["--silence-db", "3"], ["silence level", "at most 0"]),
        (["--silence-db", "nan"], ["silence level", "nan"]),
        (["--silence-db", "loud"], ["--silence-db", "'off'"]),
    ],
)
def test_bad_numbers_exit_2_with_one_line(tmp_path, model, args, words):
    pcm = (tone_signal([("low", 0.5)], 8000) * 32767).astype("<i2").tobytes()
    proc = run_cli("--model", model, "--stdin", *([] if "--rate" in args else ["--rate", "8000"]), *args, stdin=pcm)
    assert_one_line_error(proc, *words)
    assert proc.returncode == 2 and proc.stdout == b""


@pytest.mark.parametrize(
    "data,args,words",
    [(b"", [], ["stdin contains no audio", "0 bytes"]), (b"abc", ["--channels", "2"], ["stdin contains no audio", "3 bytes", "4 bytes"])],
    ids=["empty", "less-than-one-frame"],
)
def test_stdin_without_a_whole_frame_is_an_error(model, data, args, words):
    """Like an empty file: refused at open, before any output."""
    proc = run_cli("--model", model, "--stdin", "--rate", "8000", *args, stdin=data)
    assert_one_line_error(proc, *words)
    assert proc.returncode == 2 and proc.stdout == b""


def test_no_window_is_an_error_whose_summary_judges_no_latency(tmp_path, model):
    """No window timed (--duration under one sample): the summary says latency was not judged, never
    silently left out, and the run ends with one error line, not exit 0 with "0 windows"."""
    wav = tmp_path / "t.wav"
    sf.write(wav, tone_signal([("low", 1.0)], TONE_RATE), TONE_RATE)
    proc = run_cli("--model", model, "--file", str(wav), "--json", "--duration", "1e-9")
    assert proc.returncode == 2
    assert proc.stderr.decode() == f"error: t.wav gave no window to classify: 0 frame(s) at {TONE_RATE} Hz is less than one sample at the model's 16000 Hz\n"
    summary = json.loads(proc.stdout.decode().splitlines()[-1])["summary"]
    b = summary["budget"]
    assert summary["windows"] == 0
    assert "latency_ms_per_window not judged: no windows were timed" in b["reasons"]
    # A subprocess inherits its parent's peak RSS on Linux (ru_maxrss survives exec),
    # so under pytest the RSS limit may fail for real: then the verdict is False.
    assert b["within"] is (None if summary["peak_rss_mib"] <= b["peak_rss_mib"] else False)


def test_budget_without_runtime_limits_is_not_judged(tmp_path, model):
    wav = tmp_path / "t.wav"
    sf.write(wav, tone_signal([("low", 1.0)], TONE_RATE), TONE_RATE)
    proc = run_cli("--model", model, "--file", str(wav), "--budget", "mcu-small")
    out = proc.stdout.decode()
    assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
    assert "budget mcu-small: not judged (this budget sets no latency or RSS limit" in out and "OUTSIDE" not in out


def test_no_such_input_device(model):
    assert_one_line_error(run_cli("--model", model, "--device", "no-such-device-xyz", "--duration", "1"), "no input device")


def test_no_input_device_at_all(model):
    # No audio server to talk to: ALSA's default/pulse devices vanish.
    env = {"PULSE_SERVER": "unix:/nonexistent/pulse/native"}
    listing = run_cli("--list-devices", env=env)
    if listing.stdout.strip() != b"no input devices found":
        pytest.skip(f"this machine has input hardware besides PulseAudio: {listing.stdout.decode().strip()}")
    assert_one_line_error(run_cli("--model", model, "--duration", "1", env=env), "no default input device")


def test_list_devices_refuses_options_it_would_ignore(model):
    proc = run_cli("--list-devices", "--model", model, "--format", "s16le")
    assert_one_line_error(proc, "--list-devices lists the input devices and exits", "(got --model, --format)")
    assert proc.returncode == 2 and proc.stdout == b""


def test_file_at_real_time_pace(tmp_path, model):
    wav = tmp_path / "t.wav"
    sf.write(wav, tone_signal([("low", 1.0)], TONE_RATE), TONE_RATE)
    t0 = time.monotonic()
    _, summary = json_windows(run_cli("--model", model, "--file", str(wav), "--json", "--realtime", "--block", "800"))
    assert time.monotonic() - t0 >= 1.0 and summary["windows"] == 7


@pytest.mark.parametrize(
    "args,words",
    [
        (["--file", "{wav}", "--rate", "16000"], ["--rate applies only to", "header"]),
        (["--file", "{wav}", "--channels", "2"], ["--channels applies only to", "header"]),
        (["--file", "{wav}", "--device", "1"], ["--device applies only to the microphone"]),
        (["--file", "{wav}", "--format", "f32le"], ["--format applies only to --stdin"]),
        (["--stdin", "--rate", "8000", "--realtime"], ["--realtime applies only to --file"]),
        (["--stdin", "--rate", "8000", "--device", "1"], ["--device applies only to the microphone"]),
    ],
)
def test_options_the_input_would_ignore_are_refused(tmp_path, model, args, words):
    """An option that would silently do nothing (a rate for a file that has one) is refused."""
    wav = tmp_path / "t.wav"
    sf.write(wav, tone_signal([("low", 1.0)], TONE_RATE), TONE_RATE)
    assert_one_line_error(run_cli("--model", model, *[a.format(wav=wav) for a in args], stdin=b""), *words)


def test_silence_and_cancelling_channels_raise_no_event(tmp_path, model):
    """The models normalise every window to unit RMS, so digital silence would be read as a class
    with confidence; the gate says "silence" instead. Two channels in anti-phase average to silence."""
    silent = tmp_path / "zeros.wav"
    sf.write(silent, np.zeros(2 * TONE_RATE, np.float32), TONE_RATE)
    windows, summary = json_windows(run_cli("--model", model, "--file", str(silent), "--json"))
    assert windows and all(w["silent"] and w["event"] is None for w in windows)
    assert summary["silent_windows"] == summary["windows"] == len(windows)
    ungated, _ = json_windows(run_cli("--model", model, "--file", str(silent), "--json", "--silence-db", "off"))
    assert not any(w["silent"] for w in ungated) and any(w["event"] for w in ungated)  # what the gate prevents

    x = tone_signal([("low", 1.0)], TONE_RATE)
    anti = tmp_path / "anti.wav"
    sf.write(anti, np.stack([x, -x], axis=1), TONE_RATE)
    proc = run_cli("--model", model, "--file", str(anti))
    out = proc.stdout.decode()
    assert proc.returncode == 0 and ">>>" not in out, out
    assert "2 channels averaged to mono" in out and "windows 7 (7 silent)" in out


def test_a_word_after_silence_is_a_new_event(tmp_path, model):
    """Silence ends the last event: low, pause, low gives two events, not one."""
    wav = tmp_path / "t.wav"
    sf.write(wav, tone_signal([("low", 1.0), (None, 1.0), ("low", 1.0)], TONE_RATE), TONE_RATE)
    windows, _ = json_windows(run_cli("--model", model, "--file", str(wav), "--json"))
    assert [w["event"] for w in windows if w["event"]] == ["low", "low"]


@pytest.mark.parametrize("kind", ["folder", "device", "empty-model", "folder-model"])
def test_paths_that_are_not_regular_files(tmp_path, model, kind):
    wav = tmp_path / "t.wav"
    sf.write(wav, tone_signal([("low", 1.0)], TONE_RATE), TONE_RATE)
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    args, words = {
        "folder": (["--model", model, "--file", str(tmp_path)], ["is a folder"]),
        "device": (["--model", model, "--file", "/dev/null"], ["not a regular file"]),
        "empty-model": (["--model", str(empty), "--file", str(wav)], ["empty.tflite is empty (0 bytes)"]),
        "folder-model": (["--model", str(tmp_path), "--file", str(wav)], ["model file", "is a folder"]),
    }[kind]
    assert_one_line_error(run_cli(*args), *words)


def test_truncated_wav_is_classified_with_a_warning(tmp_path, model):
    """A WAV cut short (its header declares more data than follows) still plays what is
    there, and says so on stderr and in the summary."""
    whole = tmp_path / "whole.wav"
    sf.write(whole, tone_signal([("low", 3.0)], TONE_RATE), TONE_RATE, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[: 44 + 2 * TONE_RATE])  # header + 1 s of 16-bit mono
    proc = run_cli("--model", model, "--file", str(cut), "--json")
    windows, summary = json_windows(proc)
    warning = proc.stderr.decode().strip()
    assert warning.startswith("warning: cut.wav looks truncated") and len(warning.splitlines()) == 1, warning
    assert summary["audio_s"] == pytest.approx(1.0) and summary["source"]["warning"] in warning
    _, clean = json_windows(run_cli("--model", model, "--file", str(whole), "--json"))
    assert clean["source"]["warning"] is None


def test_closed_stdout_is_a_one_line_error(tmp_path, model):
    wav = tmp_path / "t.wav"
    sf.write(wav, tone_signal([("low", 1.0)], TONE_RATE), TONE_RATE)
    proc = subprocess.run(["bash", "-c", f'"{sys.executable}" -m runtime.live --model "{model}" --file "{wav}" >&-'],
                          cwd=ROOT, capture_output=True, timeout=60)
    assert_one_line_error(proc, "stdout is closed")


@pytest.mark.parametrize("kind,score", [("nan", "nan"), ("inf", "inf"), ("logits", "100")])
def test_output_that_is_not_probabilities_is_an_error(tmp_path, kind, score):
    """NaN or inf scores were printed (``"score": NaN`` is not even JSON) and an infinite one raised
    an event; logits made --threshold meaningless. Now one error line naming the file and the score."""
    from runtime_fixtures import bad_output_tflite

    wav = tmp_path / "t.wav"
    sf.write(wav, tone_signal([("low", 1.0)], TONE_RATE), TONE_RATE)
    proc = run_cli("--model", str(bad_output_tflite(kind)), "--file", str(wav), "--json")
    assert_one_line_error(proc, "model.tflite gave", score, "not probabilities")
    assert proc.returncode == 2 and b"NaN" not in proc.stdout and b"Infinity" not in proc.stdout


def test_closed_stderr_still_classifies(tmp_path, model):
    """With stderr closed (``2>&-``) the tool exited 1 with no output at all."""
    wav = tmp_path / "t.wav"
    sf.write(wav, tone_signal([("low", 1.0)], TONE_RATE), TONE_RATE)
    proc = subprocess.run(f"{shlex.quote(sys.executable)} -m runtime.live --model {shlex.quote(model)} "
                          f"--file {shlex.quote(str(wav))} --json 2>&-", shell=True, cwd=ROOT, capture_output=True,
                          timeout=60)
    windows, summary = json_windows(proc)
    assert summary["windows"] == len(windows) > 0


def test_closed_stdin_is_one_error_line(model):
    proc = subprocess.run(f"{shlex.quote(sys.executable)} -m runtime.live --model {shlex.quote(model)} "
                          "--stdin --rate 8000 <&-", shell=True, cwd=ROOT, capture_output=True, timeout=60)
    assert_one_line_error(proc, "stdin is closed")


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("WAV", "FLOAT")])
def test_a_file_piped_into_stdin_is_refused(tmp_path, model, fmt, subtype):
    """``arecord`` without ``-t raw`` (the example given before) writes a WAV header: read as PCM its 44
    bytes were 22 loud samples over digital silence, and a silent recording raised an event."""
    path = tmp_path / f"silence.{fmt.lower()}"
    sf.write(path, np.zeros(16000, np.float32), 16000, format=fmt, subtype=subtype)
    proc = subprocess.run([sys.executable, "-m", "runtime.live", "--model", model, "--stdin", "--rate", "16000"],
                          input=path.read_bytes(), cwd=ROOT, capture_output=True, timeout=60)
    line = assert_one_line_error(proc, "stdin starts with a", "file header", "--stdin takes headerless PCM",
                                 "arecord -t raw")
    assert proc.returncode == 2 and proc.stdout == b"", line


def test_raw_pcm_of_two_bytes_is_still_one_frame(model):
    """The first read now waits for four bytes (a header's magic); a stream of one s16 frame still runs."""
    proc = subprocess.run([sys.executable, "-m", "runtime.live", "--model", model, "--stdin", "--rate", "8000",
                           "--json"], input=b"\x01\x00", cwd=ROOT, capture_output=True, timeout=60)
    windows, summary = json_windows(proc)
    assert summary["windows"] == len(windows) == 1  # the one frame, padded as a short clip is


def _popen(*args: str) -> subprocess.Popen:
    # A test run started in the background (nohup, `&` in a script) hands its children SIGINT *ignored*,
    # and Python then installs no KeyboardInterrupt handler: restore the default so Ctrl-C reaches it.
    return subprocess.Popen([sys.executable, "-m", "runtime.live", *args], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_ctrl_c_cuts_a_file_run_with_its_summary_and_exit_130(tmp_path, model):
    """A file cut short by Ctrl-C looked like a complete run (exit 0, nothing in the JSON said so)."""
    wav = tmp_path / "long.wav"
    sf.write(wav, tone_signal([("low", 30.0)], TONE_RATE), TONE_RATE)
    proc = _popen("--model", model, "--file", str(wav), "--json", "--realtime")
    first = json.loads(proc.stdout.readline())  # a window is out: the run is under way
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    summary = json.loads(out.decode().splitlines()[-1])["summary"]
    assert proc.returncode == 130 and err == b"", err
    assert first["index"] == 0 and summary["interrupted"] is True and summary["audio_s"] < 30


def test_ctrl_c_before_the_first_frame_is_one_line(model):
    """Ctrl-C while --stdin waits for its first frame (``arecord | ...`` not started yet) gave a traceback."""
    proc = _popen("--model", model, "--stdin", "--rate", "8000")
    deadline = time.monotonic() + 30
    wchan = Path(f"/proc/{proc.pid}/wchan")  # the kernel function it sleeps in: (anon_)pipe_read once blocked on stdin
    while time.monotonic() < deadline and not wchan.read_text().endswith("pipe_read"):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and out == b""
    assert err.decode() == "interrupted: nothing was classified\n"


def test_empty_file_and_a_closed_pipe(tmp_path, model):
    """A 0-byte WAV said libsndfile's "Format not recognised"; a reader that stops early (`| head -1`)
    gave "error: [Errno 32] Broken pipe". Now "is empty", and a quiet exit 141 as other tools give."""
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert_one_line_error(run_cli("--model", model, "--file", str(empty)), "empty.wav is empty (0 bytes)")
    wav = tmp_path / "t.wav"
    # ~1000 windows of JSON, more than a pipe's 64 KiB buffer: the writer must meet the closed end.
    sf.write(wav, tone_signal([("low", 120.0)], TONE_RATE), TONE_RATE)
    proc = subprocess.run(f"{shlex.quote(sys.executable)} -m runtime.live --model {shlex.quote(model)} --file "
                          f"{shlex.quote(str(wav))} --json | head -1; exit ${{PIPESTATUS[0]}}", shell=True,
                          executable="/bin/bash", cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == 141 and proc.stderr == b"", proc.stderr
    assert json.loads(proc.stdout)["index"] == 0
