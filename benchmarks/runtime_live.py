"""Measure ``python -m runtime.live --file`` on the bundled models with real recordings.

    python -m benchmarks.runtime_live --data ../shared/data --out benchmarks/results/runtime_live.md

For each model in ``android_demo_assets/`` (``RECORDINGS``; float32 and int8) the command
builds a recording from real dataset clips (spoken digits from FSDD, street
sounds from UrbanSound8K), resampled to a typical microphone rate so the
runtime's streaming resampler is part of the measurement, writes it to a
temporary WAV (no dataset audio is kept), and runs the runtime CLI on it in a
fresh process, one thread, as fast as possible. Reported from the CLI's own
summary: per-window latency p50/p95/max, real-time factor, peak RSS, and the
runtime's overhead (everything but the backend's invoke) as a fraction of
invoke time. Writes Markdown and JSON (same name, .json).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from runtime.cli import ArgumentParser
from runtime.files import unwritable

ASSETS = Path(__file__).resolve().parents[1] / "android_demo_assets"
# folder -> (dataset, glob under the dataset root, recording rate fed to the runtime)
RECORDINGS = {
    "spoken_digit": ("fsdd", "recordings/*_theo_*.wav", 16000),
    "environmental": ("urbansound8k", "audio/fold2/*.flac", 44100),
    "spoken_digit_conv2d": ("fsdd", "recordings/*_theo_*.wav", 48000),
}


def clips(data_root: Path, folder: str) -> list[Path]:
    dataset, pattern, _ = RECORDINGS[folder]
    files = sorted((data_root / dataset).glob(pattern))
    if not files:
        raise FileNotFoundError(f"no {dataset} clips matching {pattern} under {data_root}")
    return files


def make_recording(data_root: Path, folder: str, seconds: float, out: Path) -> dict:
    """Concatenate real clips (0.25 s of silence between them) at the recording rate into ``out``."""
    import soundfile as sf
    import soxr

    dataset, _, rate = RECORDINGS[folder]
    files = clips(data_root, folder)
    parts, total, used = [], 0, 0
    gap = np.zeros(rate // 4, np.float32)
    for f in files:
        x, sr = sf.read(str(f), dtype="float32", always_2d=True)
        x = soxr.resample(x.mean(axis=1), sr, rate)
        parts += [x.astype(np.float32), gap]
        total += len(x) + len(gap)
        used += 1
        if total >= seconds * rate:
            break
    sf.write(str(out), np.concatenate(parts), rate, subtype="PCM_16")
    return {"dataset": dataset, "clips": used, "seconds": round(total / rate, 2), "rate": rate}


def measure(model: Path, recording: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "runtime.live", "--model", str(model), "--file", str(recording),
                           "--json", "--threads", "1"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"runtime.live failed on {model.name}: {proc.stderr.strip()}")
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return next(line["summary"] for line in lines if "summary" in line)


def render(rows: list[dict], machine: dict, command: str) -> str:
    from benchmarks.machine import machine_line

    out = ["# `python -m runtime.live --file` on the bundled models", "",
           f"Produced by `{command}`. Machine: {machine_line(machine)}.", "",
           "Each row is one fresh process: `python -m runtime.live --model M --file REC --json --threads 1`, "
           "as fast as possible, default hop and smoothing. REC is real dataset audio resampled to the stated "
           "rate (so the runtime resamples it back). Overhead = (engine time − invoke time) / invoke time: "
           "resampling, ring buffer, quantisation, smoothing. RSS is the whole Python process.", "",
           "| model | file | recording | windows | p50 ms | p95 ms | max ms | real-time factor | overhead | peak RSS MiB |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        s, rec = r["summary"], r["recording"]
        lat = s["latency_ms"]
        out.append(f"| {r['folder']} | {r['file']} | {rec['dataset']}, {rec['clips']} clips, {rec['seconds']} s @ "
                   f"{rec['rate']} Hz | {s['windows']} | {lat['p50']:.3f} | {lat['p95']:.3f} | {lat['max']:.3f} | "
                   f"{s['real_time_factor']:.4f} | {100 * s['overhead_fraction']:.0f} % | {s['peak_rss_mib']:.1f} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m benchmarks.runtime_live", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="folder holding fsdd/ and urbansound8k/ (original layouts)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of each recording (default 60)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/runtime_live.md"),
                   help="Markdown to write; the JSON goes beside it (default benchmarks/results/runtime_live.md)")
    args = p.parse_args(argv)
    from benchmarks.machine import describe_machine

    # "not x > 0" also refuses NaN (with which the clip loop never reaches its length); a day is far
    # more audio than the datasets' clips add up to.
    if not (args.seconds > 0 and math.isfinite(args.seconds)) or args.seconds > 86400:
        print(f"error: --seconds must be a positive number of seconds up to 86400, got {args.seconds}", file=sys.stderr)
        return 2
    # Checked before measuring, so minutes of work never end with nowhere to write; the JSON is
    # written beside the Markdown, so a .json --out would be overwritten by it.
    bad_out = unwritable(args.out, siblings=(".json",))
    if bad_out:
        print(f"error: --out {args.out}: {bad_out}", file=sys.stderr)
        return 2
    folders = [f for f in RECORDINGS if (ASSETS / f / "metadata.json").is_file()]
    if not folders:
        print(f"error: no bundled models under {ASSETS}", file=sys.stderr)
        return 2
    try:  # every recording's clips are there before the first one is measured
        for folder in folders:
            clips(args.data, folder)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = []
    machine = describe_machine()  # before the runs: its load average is the one they started under
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for folder in folders:
                rec_path = Path(tmp) / f"{folder}.wav"
                rec = make_recording(args.data, folder, args.seconds, rec_path)
                for name in ("model_float32.tflite", "model_int8.tflite"):
                    rows.append({"folder": folder, "file": name, "recording": rec,
                                 "summary": measure(ASSETS / folder / name, rec_path)})
                    print(f"{folder}/{name}: done", file=sys.stderr)
    except (FileNotFoundError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    command = "python -m benchmarks.runtime_live " + " ".join(argv if argv is not None else sys.argv[1:])
    from export.config import ExportError
    from export.files import write_atomic

    try:  # the folder was checked up front, but a disk can still fill up
        write_atomic(args.out, render(rows, machine, command.strip()))
        write_atomic(args.out.with_suffix(".json"),
                     json.dumps({"machine": machine, "command": command.strip(), "rows": rows}, indent=1) + "\n")
    except (ExportError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
