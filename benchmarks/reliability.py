"""Broken and unusual audio files through every path that reads audio, counted.

    python -m benchmarks.reliability --out benchmarks/results/reliability.md          # full corpus (10-min clip too)
    python -m benchmarks.reliability --quick --out /tmp/reliability.md                # without the slow inputs

A seeded corpus (:func:`make_corpus`: truncated and zero-length WAV/FLAC, wrong
headers, NaN/inf float samples, 1-sample clips, long clips, 1 kHz and 192 kHz,
6 channels, 8/16/24/32-bit int and 32/64-bit float) goes through three paths:

* ``data``: ``train.data.load_folders`` + ``decode`` (the dataset loaders' decode path);
* ``runtime``: ``runtime.sources.FileSource`` -> ``runtime.engine.StreamingEngine`` in-process;
* ``cli``: ``python -m runtime.live --file X --json --model M`` as a subprocess.

Each run ends one of six ways. Good: ``ok`` (finite outputs everywhere), ``warned`` (the CLI
classified input that is used but suspect, a truncated file or NaN samples, and said so in
``warning: ...`` lines on stderr, exit 0) or ``error`` (the project's one-line error:
``DataError``/``RuntimeFailure`` in-process, exactly one ``error: ...`` line on stderr, exit != 0
and no traceback for the CLI).
Bad: ``nonfinite`` (NaN/inf in an output), ``crash`` (another exception, a traceback
or a multi-line error) and ``hang`` (past the timeout).

The model (default): untrained ``lv24`` @ 8 kHz, full int8, from :mod:`benchmarks.soak`
(``--model`` for another; ``--float`` adds a float32 conversion of the same network).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from runtime.cli import ArgumentParser
from runtime.errors import USER_ERRORS, one_line
from runtime.files import cannot_write, write_atomic

ROOT = Path(__file__).resolve().parents[1]
GOOD = ("ok", "warned", "error")
BAD = ("nonfinite", "crash", "hang")
OUTCOMES = GOOD + BAD
DATA_RATE = 8000  # rate the data path decodes to (the model's)


@dataclass(frozen=True)
class Case:
    """One input file: ``make(folder) -> path``; ``slow`` ones are left out of quick runs."""

    name: str
    what: str
    make: Callable[[Path], Path]
    slow: bool = False


@dataclass
class Outcome:
    case: str
    path: str  # "data" | "runtime" | "cli"
    outcome: str  # one of OUTCOMES
    detail: str
    seconds: float


# ---------------------------------------------------------------- corpus


def _signal(seconds: float, rate: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = max(1, int(round(seconds * rate)))
    t = np.arange(n) / rate
    x = 0.3 * np.sin(2 * np.pi * min(440.0, rate / 4) * t) + 0.05 * rng.standard_normal(n)
    x = x.astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) * np.linspace(1, 0.5, channels, dtype=np.float32) if channels > 1 else x


def _write(name: str, data, rate: int, subtype: str | None = None, fmt: str | None = None):
    def make(folder: Path) -> Path:
        path = folder / name
        sf.write(path, data() if callable(data) else data, rate, subtype=subtype, format=fmt)
        return path

    return make


def _bytes(name: str, payload: Callable[[Path], bytes]):
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(payload(folder))
        return path

    return make


def _valid_bytes(folder: Path, fmt: str = "WAV", subtype: str = "PCM_16", seconds: float = 1.5) -> bytes:
    tmp = folder / f".valid.{fmt.lower()}"
    sf.write(tmp, _signal(seconds, 8000), 8000, subtype=subtype, format=fmt)
    data = tmp.read_bytes()
    tmp.unlink()
    return data


def _wav_header(channels: int, rate: int, bits: int, data_bytes: int, fmt_tag: int = 1) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, rate * block, block, bits)
    return b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", data_bytes)


def _pcm16(n: int) -> bytes:
    return (np.random.default_rng(1).uniform(-0.5, 0.5, n) * 32767).astype("<i2").tobytes()


def _with(values: list[float], seconds: float = 1.5, rate: int = 8000, every: int = 97) -> Callable[[], np.ndarray]:
    def data() -> np.ndarray:
        x = _signal(seconds, rate)
        for i, v in enumerate(values):
            x[i::every * len(values)] = v
        return x

    return data


def make_corpus() -> list[Case]:
    """Every input, in a fixed order; contents are seeded (same bytes every run)."""
    nan, inf = float("nan"), float("inf")
    return [
        Case("ok_pcm16_8k.wav", "valid 1.5 s PCM16 8 kHz (control)", _write("ok_pcm16_8k.wav", _signal(1.5, 8000), 8000, "PCM_16")),
        Case("zero_bytes.wav", "empty file (0 bytes)", _bytes("zero_bytes.wav", lambda f: b"")),
        Case("zero_frames.wav", "valid WAV header, 0 frames", _write("zero_frames.wav", np.zeros(0, np.float32), 8000, "PCM_16")),
        Case("zero_frames.flac", "valid FLAC, 0 frames", _write("zero_frames.flac", np.zeros(0, np.float32), 8000, "PCM_16")),
        Case("header_cut.wav", "first 30 bytes of a WAV (header cut)", _bytes("header_cut.wav", lambda f: _valid_bytes(f)[:30])),
        Case("data_cut.wav", "WAV cut at 60 % (header claims more data)", _bytes("data_cut.wav", lambda f: (b := _valid_bytes(f))[: int(len(b) * 0.6)])),
        Case("odd_byte_cut.wav", "WAV cut in the middle of a sample", _bytes("odd_byte_cut.wav", lambda f: _valid_bytes(f)[: 44 + 2001])),
        Case("data_cut.flac", "FLAC cut at 50 %", _bytes("data_cut.flac", lambda f: (b := _valid_bytes(f, "FLAC"))[: len(b) // 2])),
        Case("flac_header_cut.flac", "first 40 bytes of a FLAC", _bytes("flac_header_cut.flac", lambda f: _valid_bytes(f, "FLAC")[:40])),
        Case("riff_garbage.wav", "RIFF/WAVE magic then random bytes", _bytes("riff_garbage.wav", lambda f: b"RIFF\x24\x00\x00\x00WAVEfmt " + np.random.default_rng(2).bytes(400))),
        Case("random_bytes.wav", "4 KiB of random bytes named .wav", _bytes("random_bytes.wav", lambda f: np.random.default_rng(3).bytes(4096))),
        Case("text.flac", "a text file named .flac", _bytes("text.flac", lambda f: b"this is not audio\n" * 100)),
        Case("flac_named.wav", "FLAC content with a .wav name", _bytes("flac_named.wav", lambda f: _valid_bytes(f, "FLAC"))),
        Case("rate0.wav", "WAV header with sample rate 0", _bytes("rate0.wav", lambda f: _wav_header(1, 0, 16, 16000) + _pcm16(8000))),
        Case("channels0.wav", "WAV header with 0 channels", _bytes("channels0.wav", lambda f: _wav_header(0, 8000, 16, 16000) + _pcm16(8000))),
        Case("bits7.wav", "WAV header with 7 bits per sample", _bytes("bits7.wav", lambda f: _wav_header(1, 8000, 7, 16000) + _pcm16(8000))),
        Case("format_tag_999.wav", "WAV with an unknown format tag", _bytes("format_tag_999.wav", lambda f: _wav_header(1, 8000, 16, 16000, fmt_tag=999) + _pcm16(8000))),
        Case("datasize_huge.wav", "data chunk size 0xFFFFFFFF, 1 s of data", _bytes("datasize_huge.wav", lambda f: _wav_header(1, 8000, 16, 0) [:-4] + struct.pack("<I", 0xFFFFFFFF) + _pcm16(8000))),
        Case("float_some_nan.wav", "float WAV, every ~100th sample NaN", _write("float_some_nan.wav", _with([nan]), 8000, "FLOAT")),
        Case("float_all_nan.wav", "float WAV, all NaN", _write("float_all_nan.wav", np.full(12000, nan, np.float32), 8000, "FLOAT")),
        Case("float_inf.wav", "float WAV with +inf and -inf samples", _write("float_inf.wav", _with([inf, -inf]), 8000, "FLOAT")),
        Case("float_one_nan.wav", "float WAV, a single NaN sample", _write("float_one_nan.wav", _with([nan], every=100000), 8000, "FLOAT")),
        Case("double_nan_inf.wav", "64-bit float WAV with NaN and inf", _write("double_nan_inf.wav", _with([nan, inf]), 8000, "DOUBLE")),
        Case("float_huge.wav", "float WAV, samples of +-1e30", _write("float_huge.wav", lambda: np.sign(_signal(1.5, 8000)) * np.float32(1e30), 8000, "FLOAT")),
        Case("float_overdriven.wav", "float WAV, samples up to +-8", _write("float_overdriven.wav", lambda: 26 * _signal(1.5, 8000), 8000, "FLOAT")),
        Case("float_subnormal.wav", "float WAV of subnormal values", _write("float_subnormal.wav", lambda: np.full(12000, 1e-40, np.float32), 8000, "FLOAT")),
        Case("one_sample.wav", "1-sample PCM16 clip", _write("one_sample.wav", np.array([0.5], np.float32), 8000, "PCM_16")),
        Case("one_sample_float.wav", "1-sample float clip", _write("one_sample_float.wav", np.array([0.5], np.float32), 8000, "FLOAT")),
        Case("one_sample_192k.wav", "1-sample clip at 192 kHz", _write("one_sample_192k.wav", np.array([0.5], np.float32), 192000, "PCM_16")),
        Case("rate_1k.wav", "1.5 s at 1 kHz", _write("rate_1k.wav", _signal(1.5, 1000), 1000, "PCM_16")),
        Case("rate_192k.wav", "1.5 s at 192 kHz", _write("rate_192k.wav", _signal(1.5, 192000), 192000, "PCM_24")),
        Case("rate_1hz.wav", "1 Hz sample rate, 4 samples", _write("rate_1hz.wav", _signal(4, 1), 1, "PCM_16")),
        Case("ch6_48k.wav", "6 channels, 48 kHz", _write("ch6_48k.wav", _signal(1.5, 48000, channels=6), 48000, "PCM_16")),
        Case("ch6_48k.flac", "6 channels FLAC, 48 kHz", _write("ch6_48k.flac", _signal(1.5, 48000, channels=6), 48000, "PCM_24")),
        Case("pcm_u8.wav", "8-bit unsigned WAV", _write("pcm_u8.wav", _signal(1.5, 8000), 8000, "PCM_U8")),
        Case("pcm24.wav", "24-bit int WAV", _write("pcm24.wav", _signal(1.5, 8000), 8000, "PCM_24")),
        Case("pcm32.wav", "32-bit int WAV", _write("pcm32.wav", _signal(1.5, 8000), 8000, "PCM_32")),
        Case("float32.wav", "32-bit float WAV", _write("float32.wav", _signal(1.5, 8000), 8000, "FLOAT")),
        Case("double64.wav", "64-bit float WAV", _write("double64.wav", _signal(1.5, 8000), 8000, "DOUBLE")),
        Case("pcm24.flac", "24-bit FLAC", _write("pcm24.flac", _signal(1.5, 8000), 8000, "PCM_24")),
        Case("full_scale_dc.wav", "float WAV, constant +1.0", _write("full_scale_dc.wav", np.ones(12000, np.float32), 8000, "FLOAT")),
        Case("silence.wav", "1.5 s of digital silence", _write("silence.wav", np.zeros(12000, np.float32), 8000, "PCM_16")),
        Case("long_60s_44k.wav", "60 s, 44.1 kHz stereo", _write("long_60s_44k.wav", lambda: _signal(60, 44100, channels=2), 44100, "PCM_16")),
        Case("long_10min_44k.wav", "10 min, 44.1 kHz stereo", _write("long_10min_44k.wav", lambda: _signal(600, 44100, channels=2), 44100, "PCM_16"), slow=True),
    ]


# ---------------------------------------------------------------- the three paths


def _one_line(e: BaseException) -> bool:
    text = str(e)
    return bool(text.strip()) and "\n" not in text.strip()


def run_data(path: Path, workdir: Path) -> tuple[str, str]:
    """The dataset loaders' decode path: a two-class ``folders`` layout around ``path``."""
    from train.data import DataError, decode, load_folders

    root = workdir / "dataset"
    shutil.rmtree(root, ignore_errors=True)
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    shutil.copy(path, root / "a" / path.name)
    sf.write(root / "b" / "ok.wav", _signal(0.5, 8000), 8000)
    try:
        ds = load_folders(root)
        audio = decode([c for c in ds.clips if c.label == 0], DATA_RATE)
    except DataError as e:
        return ("error", str(e)) if _one_line(e) else ("crash", f"multi-line DataError: {e!r}")
    except Exception as e:  # noqa: BLE001 - anything else is a bug
        return "crash", f"{type(e).__name__}: {e}"
    if len(audio) != 1 or audio[0].dtype != np.float32 or audio[0].ndim != 1:
        return "crash", f"unexpected decode result {[(a.dtype, a.shape) for a in audio]}"
    if not np.isfinite(audio[0]).all():
        return "nonfinite", f"{int((~np.isfinite(audio[0])).sum())} non-finite samples decoded"
    return "ok", f"{audio[0].shape[0]} samples @ {DATA_RATE} Hz"


def run_runtime(path: Path, model) -> tuple[str, str]:
    """``FileSource`` -> ``StreamingEngine`` in-process, every window checked."""
    from runtime.engine import StreamingEngine
    from runtime.sources import FileSource

    windows = bad = 0
    try:
        with FileSource(path, block_frames=1024) as src:
            engine = StreamingEngine(model, input_rate=src.sample_rate)
            for block in src:
                for r in engine.push(block):
                    windows += 1
                    bad += not (np.isfinite(r.probs).all() and np.isfinite(r.smoothed).all() and math.isfinite(r.rms))
            for r in engine.flush():
                windows += 1
                bad += not (np.isfinite(r.probs).all() and np.isfinite(r.smoothed).all() and math.isfinite(r.rms))
    except USER_ERRORS as e:
        return ("error", str(e)) if _one_line(e) else ("crash", f"multi-line error: {e!r}")
    except Exception as e:  # noqa: BLE001
        return "crash", f"{type(e).__name__}: {e}"
    if bad:
        return "nonfinite", f"{bad} of {windows} windows with NaN/inf"
    return "ok", f"{windows} windows"


def run_cli(path: Path, model_path: Path, timeout: float = 120) -> tuple[str, str]:
    """``python -m runtime.live --file X --json --model M`` as a subprocess."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "runtime.live", "--file", str(path), "--json", "--model", str(model_path)],
            cwd=ROOT, capture_output=True, timeout=timeout, text=True,
        )
    except subprocess.TimeoutExpired:
        return "hang", f"no exit within {timeout:.0f} s"
    err = proc.stderr.strip()
    if "Traceback" in err:
        return "crash", err.splitlines()[-1][:200]
    if proc.returncode != 0:
        lines = err.splitlines()
        if len(lines) == 1 and lines[0].startswith("error: "):
            return "error", lines[0][len("error: "):]
        return "crash", f"exit {proc.returncode}, stderr {err[:200]!r}"
    warnings = err.splitlines()
    if warnings and not all(line.startswith("warning: ") for line in warnings):
        return "crash", f"exit 0 but stderr {err[:200]!r}"
    try:
        rows = [json.loads(line) for line in proc.stdout.splitlines()]
    except json.JSONDecodeError as e:
        return "crash", f"invalid JSON line ({e})"
    if not rows or "summary" not in rows[-1]:
        return "crash", "no summary line"
    windows = rows[:-1]
    scores = [s["score"] for w in windows for s in w["top"]] + [w["rms"] for w in windows]
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in scores):
        return "nonfinite", "NaN/inf in the JSON output"
    if rows[-1]["summary"]["windows"] != len(windows):
        return "crash", "summary window count differs from the windows printed"
    if warnings:
        return "warned", f"{len(windows)} windows; " + " ".join(w.removeprefix("warning: ") for w in warnings)
    return "ok", f"{len(windows)} windows"


# ---------------------------------------------------------------- driver


def run_all(model_path: Path, quick: bool = False, paths: tuple[str, ...] = ("data", "runtime", "cli"),
            workdir: Path | None = None, log=None) -> list[Outcome]:
    from runtime.model import load_model

    model = load_model(model_path, threads=1)
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="tinyaudio-fuzz-")) if own else Path(workdir)
    corpus_dir = workdir / "corpus"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    results = []
    try:
        for case in make_corpus():
            if quick and case.slow:
                continue
            path = case.make(corpus_dir)
            for which in paths:
                t0 = time.perf_counter()
                if which == "data":
                    outcome, detail = run_data(path, workdir)
                elif which == "runtime":
                    outcome, detail = run_runtime(path, model)
                else:
                    outcome, detail = run_cli(path, model_path)
                detail = " ".join(detail.replace(str(workdir), "<tmp>").split())[:160]
                results.append(Outcome(case.name, which, outcome, detail, round(time.perf_counter() - t0, 2)))
                if log:
                    log(results[-1])
    finally:
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def markdown(results: list[Outcome], command: str, machine: dict | None, model_note: str) -> str:
    from benchmarks.machine import machine_line

    cases = {c.name: c for c in make_corpus()}
    paths = list(dict.fromkeys(r.path for r in results))
    names = list(dict.fromkeys(r.case for r in results))
    by = {(r.case, r.path): r for r in results}
    counts = {p: Counter(r.outcome for r in results if r.path == p) for p in paths}
    total = Counter(r.outcome for r in results)
    lines = [
        "# Reliability: broken and unusual audio inputs",
        "",
        f"Generated by `{command}` — do not edit by hand.",
        "",
        f"Model: {model_note}. " + (f"Machine: {machine_line(machine)}." if machine else ""),
        "",
        "Paths: **data** = `train.data.load_folders` + `decode` (resampled to 8 kHz); "
        "**runtime** = `runtime.sources.FileSource` → `runtime.engine.StreamingEngine` in-process; "
        "**cli** = `python -m runtime.live --file X --json --model M` (subprocess, 120 s timeout).",
        "Good endings: `ok` (finite outputs), `warned` (CLI only: input used but suspect, a truncated file or "
        "NaN/inf samples, said in `warning: …` lines on stderr, exit 0, finite outputs) and `error` (the project's "
        "one-line error; for the CLI exactly one `error: …` line on stderr, exit ≠ 0, no traceback). "
        "Bad endings: `nonfinite`, `crash`, `hang`.",
        "",
        "Other faults, each with its own generated report: training killed mid-run (SIGINT/SIGKILL at random "
        "moments, resumed, compared) in `train_faults.md` (`python -m benchmarks.train_faults`); the 10-hour "
        "streaming soak in `soak.json`/`soak.png` (`python -m benchmarks.soak`).",
        "",
        f"**{len(names)} inputs × {len(paths)} paths = {len(results)} runs: "
        + ", ".join(f"{total[o]} {o}" for o in OUTCOMES) + ".**",
        "",
        "| path | runs | " + " | ".join(OUTCOMES) + " |",
        "|---|---|" + "---|" * len(OUTCOMES),
    ]
    for p in paths:
        lines.append(f"| {p} | {sum(counts[p].values())} | " + " | ".join(str(counts[p][o]) for o in OUTCOMES) + " |")
    lines += ["", "## Every input", "", "| input | what | " + " | ".join(paths) + " |", "|---|---|" + "---|" * len(paths)]
    for n in names:
        cells = []
        for p in paths:
            r = by.get((n, p))
            cells.append("—" if r is None else f"`{r.outcome}` {r.detail.replace('|', '/')}")
        lines.append(f"| `{n}` | {cases[n].what if n in cases else ''} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def other_faults(results_dir: Path) -> list[str]:
    """Markdown lines summarising the soak and training-fault reports committed beside this one."""
    lines: list[str] = []
    soak = results_dir / "soak.json"
    if soak.is_file():
        d = json.loads(soak.read_text())
        rss = d["rss"]
        lines += ["", "## Soak (from `soak.json`)", "",
                  f"`{d['command']}`: {d['audio_s'] / 3600:.1f} h of audio in {d['wall_s']:.0f} s "
                  f"({d['speed_x_real_time']:.0f}× real time); {d['windows']:,} of {d['windows_expected']:,} windows "
                  f"({d['windows_dropped']} dropped, {d['hop_gaps']} hop gaps, {d['nonfinite_windows']} non-finite); "
                  f"RSS {rss['at_1_min_mib']:.1f} MiB after the first minute, {rss['final_mib']:.1f} MiB at the end "
                  f"(peak growth {rss['peak_growth_after_1_min_mib']:.2f} MiB); latency p99 first hour "
                  f"{d['p99_first_ms']:.3f} ms, last hour {d['p99_last_ms']:.3f} ms."]
    faults = results_dir / "train_faults.json"
    if faults.is_file():
        from benchmarks.train_faults import Trial

        trials = json.loads(faults.read_text())["trials"]
        good = sum(Trial(**t).ok for t in trials)
        mid = sum(t["running_at_signal"] and t["fold_in_progress"] for t in trials)
        kept = sum(t.get("epochs_kept_at_kill", 0) > 0 for t in trials)  # reports from before epoch-level resume lack it
        lines += ["", "## Training killed mid-run (from `train_faults.json`)", "",
                  f"{len(trials)} kills of `python -m train` "
                  f"({sum(t['signal'] == 'SIGINT' for t in trials)} SIGINT, {sum(t['signal'] == 'SIGKILL' for t in trials)} SIGKILL; "
                  f"{mid} landed inside a fold, {kept} of them after the fold had saved an epoch, which the resume went on from): "
                  f"{good} resumed to the identical summary and fold results, "
                  f"{sum(len(t['truncated']) for t in trials)} truncated files. Details: `train_faults.md`."]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m benchmarks.reliability", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="markdown table to write")
    p.add_argument("--model", type=Path, help="model file (default: build the soak's untrained int8 lv24 @ 8 kHz)")
    p.add_argument("--quick", action="store_true", help="leave out the slow inputs (the 10-minute clip)")
    args = p.parse_args(argv)
    from benchmarks.machine import describe_machine
    from benchmarks.soak import build_model_subprocess

    if not args.out.parent.is_dir():
        print(f"error: output folder does not exist: {args.out.parent}", file=sys.stderr)
        return 2
    problem = cannot_write(args.out)  # before the corpus runs: minutes of work must have somewhere to go
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    machine = describe_machine()  # before the runs: its load average is the one they started under
    with tempfile.TemporaryDirectory(prefix="tinyaudio-reliability-") as tmp:
        model = args.model or build_model_subprocess(Path(tmp) / "lv24_8k_int8.tflite")
        note = str(args.model) if args.model else "untrained `lv24` @ 8 kHz, full int8 (`benchmarks.soak.make_int8_model`, via `export.tflite.convert_full_int8`)"
        try:
            results = run_all(model, quick=args.quick, log=lambda r: print(f"{r.case:24s} {r.path:8s} {r.outcome:9s} {r.detail[:90]}", file=sys.stderr, flush=True))
        except USER_ERRORS as e:  # a missing or corrupt --model: nothing can be measured
            print(f"error: {one_line(e, 500)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # the per-run lines above are the record of what ran
            print(f"interrupted: nothing written to {args.out}", file=sys.stderr)
            return 130
    command = "python -m benchmarks.reliability " + " ".join(argv if argv is not None else sys.argv[1:])
    text = markdown(results, command, machine, note) + "\n".join(other_faults(args.out.parent)) + "\n"
    try:
        write_atomic(args.out, text)
    except OSError as e:  # checked up front; a disk can still fill up
        print(f"error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    bad = [r for r in results if r.outcome in BAD]
    print(f"{len(results)} runs: " + ", ".join(f"{n} {o}" for o, n in Counter(r.outcome for r in results).items()))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
