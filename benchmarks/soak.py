"""Soak run: hours of generated audio through the streaming engine with an int8 model.

    python -m benchmarks.soak --hours 10 --out benchmarks/results/soak.json   # + soak.png beside it
    python -m benchmarks.soak --hours 0.0334 --out /tmp/soak.json             # ~2 minutes of audio

Audio (noise, tones, chirps, clicks, full-scale square waves and silences, in
segments of 0.2-6 s, seeded) is generated at ``--rate`` (default 16 kHz, so the
engine resamples to the model's 8 kHz) and fed block by block, faster than real
time, through :class:`runtime.engine.StreamingEngine` exactly as ``runtime.live``
does. Recorded:

* RSS (current, from ``/proc/self/statm``, and peak, from ``getrusage``) every
  minute of audio; the growth after the first minute must be ~0;
* windows produced vs expected (``floor((samples - window) / hop) + 1`` at the
  model's rate) and that every window ends exactly one hop after the previous one;
* non-finite probabilities (must be 0);
* latency p50/p99/max per hour of audio (per ``--bucket-s``), to compare first and last.

The model: ``--model PATH``, or (default) ``lv24`` @ 8 kHz, untrained, converted by
``export.tflite.convert_full_int8`` (int8 weights and activations, float32 IO, as
``python -m export`` writes it) with the metadata put inside by
``export.tflite_metadata.add_metadata``. It is built in a child process so
TensorFlow never enters the measured process's memory.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from runtime.cli import ArgumentParser
from runtime.errors import USER_ERRORS, ConfigError, one_line
from runtime.files import atomic_path, cannot_write, write_atomic
from runtime.limits import MAX_BLOCK_FRAMES, MAX_RATE, MIN_RATE  # the bounds runtime.live applies

ROOT = Path(__file__).resolve().parents[1]
MODEL_NAME, MODEL_RATE, MODEL_CLASSES = "lv24", 8000, 10
DEFAULT_HOP_S = 0.1
# Upper bounds for the command line: seconds become sample counts with round(), which overflows
# for huge values, and far below that a typo (1e6 hours) would run for months.
MAX_HOURS = 1000.0
MAX_HOP_S = 3600.0


# ---------------------------------------------------------------- model (TensorFlow, child process)


def make_int8_model(path: str | Path, seed: int = 0) -> Path:
    """Write an untrained full-integer ``lv24`` @ 8 kHz ``.tflite`` (metadata inside) to ``path``.

    Imports TensorFlow; :func:`build_model_subprocess` runs it in a child process.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from train.quiet import import_keras

    keras = import_keras()  # without TensorFlow's start-up banner on stderr

    from export.tflite import convert_full_int8, frozen_function
    from export.tflite_metadata import add_metadata
    from runtime.metadata import ModelMetadata
    from train.models import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(MODEL_NAME, sample_rate=MODEL_RATE, num_classes=MODEL_CLASSES)
    dense = model.get_layer("probs")  # untrained: sharpen the softmax so outputs move between windows
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 20.0, bias])
    window = int(model.inputs[0].shape[1])
    gen = SignalGenerator(MODEL_RATE, seed=seed + 1)
    rep = np.stack([gen.segment(window / MODEL_RATE)[:window] for _ in range(64)]).astype(np.float32)
    data = convert_full_int8(frozen_function(model, window), rep)
    meta = ModelMetadata(
        name=MODEL_NAME, labels=tuple(f"class{i}" for i in range(MODEL_CLASSES)), sample_rate=MODEL_RATE,
        window_samples=window, hop_samples=round(DEFAULT_HOP_S * MODEL_RATE),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, add_metadata(data, meta, "untrained lv24 @ 8 kHz, full int8 (soak test model)"))
    return path


def build_model_subprocess(path: Path, timeout: float = 600) -> Path:
    code = "import sys; from benchmarks.soak import make_int8_model; make_int8_model(sys.argv[1])"
    proc = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        hint = (" (it needs TensorFlow: pip install -e '.[export]'; or pass --model FILE)"
                if "ImportError" in last or "ModuleNotFoundError" in last else "")
        raise SystemExit(f"error: building the soak model failed: {last}{hint}")
    return path


# ---------------------------------------------------------------- audio


class SignalGenerator:
    """Deterministic varied audio: segments of one kind of sound each, generated
    piece by piece into the caller's buffer (no large temporaries, so the soak's
    RSS measures the engine, not the generator)."""

    KINDS = ("silence", "noise", "tone", "chirp", "clicks", "square", "quiet_noise")

    def __init__(self, rate: int, seed: int = 0) -> None:
        self.rate = rate
        self.rng = np.random.default_rng(seed)
        self.n = self.pos = 0

    def _new_segment(self, seconds: float | None = None) -> None:
        r, rate = self.rng, self.rate
        self.n = max(1, int(round((seconds if seconds is not None else r.uniform(0.2, 6.0)) * rate)))
        self.pos = 0
        self.kind = self.KINDS[r.integers(len(self.KINDS))]
        self.amp = r.uniform(0.05, 1.0)
        self.f0, self.f1 = r.uniform(50, 0.45 * rate, size=2)
        self.square_f = r.uniform(20, 2000)
        self.phase = r.uniform(0, 2 * np.pi)

    def _piece(self, start: int, k: int) -> np.ndarray:
        r, kind = self.rng, self.kind
        if kind == "silence":
            return np.zeros(k)
        if kind == "noise":
            return self.amp * r.standard_normal(k).clip(-3, 3) / 3
        if kind == "quiet_noise":
            return 1e-4 * r.standard_normal(k)
        if kind == "clicks":
            x = np.zeros(k)
            x[r.random(k) < 1 / 2000] = 1.0
            return x
        t = (start + np.arange(k, dtype=np.float64)) / self.rate
        if kind == "tone":
            return self.amp * np.sin(2 * np.pi * self.f0 * t + self.phase)
        if kind == "chirp":
            dur = self.n / self.rate
            return self.amp * np.sin(2 * np.pi * (self.f0 * t + (self.f1 - self.f0) * t * t / (2 * dur)))
        return np.sign(np.sin(2 * np.pi * self.square_f * t))  # full-scale square wave

    def fill(self, out: np.ndarray) -> np.ndarray:
        """Write the next ``len(out)`` samples into ``out`` (float32) and return it."""
        i = 0
        while i < out.shape[0]:
            if self.pos >= self.n:
                self._new_segment()
            k = min(out.shape[0] - i, self.n - self.pos, 4096)
            out[i : i + k] = self._piece(self.pos, k)
            self.pos += k
            i += k
        return out

    def segment(self, seconds: float) -> np.ndarray:
        """One new segment of ``seconds`` (for calibration windows)."""
        self._new_segment(seconds)
        return self.fill(np.empty(self.n, np.float32))


def blocks(gen: SignalGenerator, total_frames: int, block: int):
    """Exactly ``total_frames`` samples as ``float32 (block,)`` blocks (the last may be
    shorter), all views of one preallocated buffer (the engine copies what it keeps)."""
    buf = np.empty(block, np.float32)
    sent = 0
    while sent < total_frames:
        k = min(block, total_frames - sent)
        sent += k
        yield gen.fill(buf[:k])


# ---------------------------------------------------------------- measurement


def rss_mib() -> float:
    """Current resident set size (``/proc/self/statm``; falls back to the peak)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mib()


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def soak(model_path: Path, seconds: float, rate: int = 16000, block: int = 1024, hop_s: float = DEFAULT_HOP_S,
         bucket_s: float = 3600.0, seed: int = 0, threads: int = 1, progress=None) -> dict:
    """Stream ``seconds`` of generated audio at ``rate`` through the engine; returns the results dict."""
    from runtime.engine import EngineConfig, StreamingEngine
    from runtime.model import load_model

    model = load_model(model_path, threads=threads)
    if hop_s * model.sample_rate < 1:  # rounding it up to one sample would measure another hop than asked
        raise ConfigError(f"--hop must be at least one sample at the model's {model.sample_rate} Hz "
                          f"({1 / model.sample_rate:g} s), got {hop_s:g}")
    hop = round(hop_s * model.sample_rate)
    engine = StreamingEngine(model, EngineConfig(hop_samples=hop, smooth=3), input_rate=rate)
    total = int(round(seconds * rate))
    out_total = total * model.sample_rate // rate
    if out_total * rate != total * model.sample_rate:
        raise ConfigError("choose --rate and --hours so the resampled length is a whole number of samples")
    if out_total < engine.window:  # the engine would pad the one short clip: no window count to check
        raise ConfigError(f"--hours must cover at least one model window ({engine.window / model.sample_rate:g} s of audio)")
    expected = (out_total - engine.window) // hop + 1

    bucket_frames = int(round(bucket_s * rate))
    # No bucket holds more windows than the whole run: a bucket longer than the audio must not size the arrays.
    per_bucket = int(min(bucket_s, seconds) * model.sample_rate // hop) + 2
    lat = np.empty(per_bucket, np.float64)  # preallocated: the measurement must not grow either
    cpu = np.empty(per_bucket, np.float64)  # thread CPU time of the push that produced each window
    n_lat = 0
    buckets: list[dict] = []
    # RSS every minute of audio: (audio min, wall s, rss, peak), preallocated like the rest.
    samples_arr = np.zeros((int(seconds // 60) + 3, 4), np.float64)
    n_samples = 0
    # Touch every preallocated page and run the percentile code once now, so the
    # harness's own memory is in place before the 1-minute baseline.
    lat.fill(0.0)
    cpu.fill(0.0)
    np.percentile(lat * 1e3, [50, 99])
    np.percentile(cpu * 1e3, [50, 99])
    produced = gaps = nonfinite = 0
    last_end = None
    next_sample = 0
    consumed = 0
    gen = SignalGenerator(rate, seed)
    t_start = time.perf_counter()

    def close_bucket(end_frame: int) -> None:
        nonlocal n_lat
        x = lat[:n_lat] * 1e3
        c = cpu[:n_lat] * 1e3
        buckets.append({
            "audio_h": round(end_frame / rate / 3600, 4),
            "windows": int(n_lat),
            "p50_ms": round(float(np.percentile(x, 50)), 4) if n_lat else None,
            "p99_ms": round(float(np.percentile(x, 99)), 4) if n_lat else None,
            "max_ms": round(float(x.max()), 4) if n_lat else None,
            # CPU time of the block push that produced the window (resampling + model): what the
            # engine costs, without the waits a shared machine adds to wall-clock latency.
            "cpu_p50_ms": round(float(np.percentile(c, 50)), 4) if n_lat else None,
            "cpu_p99_ms": round(float(np.percentile(c, 99)), 4) if n_lat else None,
            "loadavg_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        })
        n_lat = 0

    def handle(results, cpu_s: float) -> None:
        nonlocal n_lat, produced, gaps, nonfinite, last_end
        for r in results:
            produced += 1
            if last_end is not None and r.end_sample - last_end != hop:
                gaps += 1
            last_end = r.end_sample
            if not (np.isfinite(r.probs).all() and np.isfinite(r.smoothed).all()):
                nonfinite += 1
            if n_lat < lat.shape[0]:
                lat[n_lat] = r.latency_s
                cpu[n_lat] = cpu_s / len(results)
                n_lat += 1

    for b in blocks(gen, total, block):
        c0 = time.thread_time()
        results = engine.push(b)
        handle(results, time.thread_time() - c0)
        consumed += b.shape[0]
        if consumed >= next_sample and n_samples < samples_arr.shape[0] - 1:
            samples_arr[n_samples] = (consumed / rate / 60, time.perf_counter() - t_start, rss_mib(), peak_rss_mib())
            n_samples += 1
            next_sample += 60 * rate
            if progress:
                progress(_sample(samples_arr[n_samples - 1]), produced)
        if consumed % bucket_frames < b.shape[0] and consumed >= bucket_frames and consumed < total:
            close_bucket(consumed - consumed % bucket_frames)
    c0 = time.thread_time()
    results = engine.flush()
    handle(results, time.thread_time() - c0)
    close_bucket(total)
    wall = time.perf_counter() - t_start
    samples_arr[n_samples] = (total / rate / 60, wall, rss_mib(), peak_rss_mib())
    samples = [_sample(row) for row in samples_arr[: n_samples + 1]]

    after_first = [s for s in samples if s["audio_min"] >= 1.0] or samples[-1:]
    first, last = buckets[0], buckets[-1]
    return {
        "config": {
            "model": str(model_path), "model_name": model.metadata.name, "backend": model.backend,
            "input_dtype": str(model.input_quant.dtype), "model_rate": model.sample_rate,
            "window_samples": engine.window, "hop_samples": hop, "source_rate": rate, "block_frames": block,
            "threads": threads, "seed": seed, "bucket_s": bucket_s,
        },
        "audio_s": round(total / rate, 3),
        "wall_s": round(wall, 2),
        "speed_x_real_time": round(total / rate / wall, 1),
        "model_samples": int(engine.samples_seen),
        "model_samples_expected": int(out_total),
        "windows": int(produced),
        "windows_expected": int(expected),
        "windows_dropped": int(expected - produced),
        "hop_gaps": int(gaps),
        "nonfinite_windows": int(nonfinite),
        "rss": {
            "at_1_min_mib": after_first[0]["rss_mib"],
            "peak_at_1_min_mib": after_first[0]["peak_rss_mib"],
            "final_mib": samples[-1]["rss_mib"],
            "peak_final_mib": samples[-1]["peak_rss_mib"],
            "peak_growth_after_1_min_mib": round(samples[-1]["peak_rss_mib"] - after_first[0]["peak_rss_mib"], 2),
            "max_current_minus_1_min_mib": round(max(s["rss_mib"] for s in after_first) - after_first[0]["rss_mib"], 2),
        },
        "latency_per_bucket": buckets,
        "p99_first_ms": first["p99_ms"],
        "p99_last_ms": last["p99_ms"],
        "p99_last_over_first": round(last["p99_ms"] / first["p99_ms"], 3) if first["p99_ms"] and last["p99_ms"] else None,
        "cpu_p99_first_ms": first["cpu_p99_ms"],
        "cpu_p99_last_ms": last["cpu_p99_ms"],
        "rss_samples": samples,
        "loadavg_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _sample(row) -> dict:
    return {"audio_min": round(float(row[0]), 3), "wall_s": round(float(row[1]), 2),
            "rss_mib": round(float(row[2]), 2), "peak_rss_mib": round(float(row[3]), 2)}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["rss_samples"]
    hours = [x["audio_min"] / 60 for x in s]
    b = result["latency_per_bucket"]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    a1.plot(hours, [x["rss_mib"] for x in s], label="RSS")
    a1.plot(hours, [x["peak_rss_mib"] for x in s], label="peak RSS", linestyle="--")
    a1.set_ylabel("MiB")
    a1.legend()
    a1.set_title(f"soak: {result['audio_s'] / 3600:.2f} h of audio, {result['windows']} windows "
                 f"({result['windows_dropped']} dropped), peak RSS growth {result['rss']['peak_growth_after_1_min_mib']} MiB")
    centres = [x["audio_h"] for x in b]
    a2.step(centres, [x["p99_ms"] for x in b], where="pre", label="p99")
    a2.step(centres, [x["p50_ms"] for x in b], where="pre", label="p50")
    a2.step(centres, [x["cpu_p99_ms"] for x in b], where="pre", label="p99 CPU time", linestyle="--")
    a2.set_ylabel("latency per window (ms)")
    a2.set_yscale("log")
    a2.set_xlabel("audio time (h)")
    a2.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    p.add_argument("--hours", type=float, default=10.0, help="hours of audio (default 10)")
    p.add_argument("--rate", type=int, default=16000, help="source rate in Hz (default 16000; the model runs at 8000)")
    p.add_argument("--block", type=int, default=1024, help="frames per block (default 1024)")
    p.add_argument("--hop", type=float, default=DEFAULT_HOP_S, help="seconds between windows (default 0.1)")
    p.add_argument("--bucket", type=float, default=3600.0, help="seconds of audio per latency bucket (default 3600)")
    p.add_argument("--model", type=Path, help="model file (default: build an untrained int8 lv24 @ 8 kHz)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated audio (default 0)")
    p.add_argument("--out", type=Path, required=True, help="results JSON; the plot goes beside it as .png")
    args = p.parse_args(argv)
    from benchmarks.machine import describe_machine

    # "not x > 0" also refuses NaN, which slips through every comparison; a zero hop or bucket would
    # make the window count and the latency buckets meaningless rather than fail.
    for name, value, limit in (("--hours", args.hours, MAX_HOURS), ("--hop", args.hop, MAX_HOP_S),
                               ("--bucket", args.bucket, MAX_HOURS * 3600), ("--rate", args.rate, MAX_RATE),
                               ("--block", args.block, MAX_BLOCK_FRAMES)):
        if not (value > 0 and math.isfinite(value)):
            print(f"error: {name} must be a positive finite number, got {value}", file=sys.stderr)
            return 2
        if value > limit:
            print(f"error: {name} must be at most {limit}, got {value}", file=sys.stderr)
            return 2
    if args.rate < MIN_RATE:
        print(f"error: --rate must be at least {MIN_RATE}, got {args.rate}", file=sys.stderr)
        return 2
    if args.bucket < args.hop:  # a bucket is closed between windows: shorter than a hop it holds none
        print(f"error: --bucket must be at least one --hop ({args.hop:g} s), got {args.bucket:g}", file=sys.stderr)
        return 2
    if args.seed < 0:  # numpy's generators take only non-negative seeds
        print(f"error: --seed must be >= 0, got {args.seed}", file=sys.stderr)
        return 2
    if args.hop * args.rate < 1:  # checked again against the model's rate once it is loaded
        print(f"error: --hop must be at least one sample at --rate {args.rate} Hz ({1 / args.rate:g} s), "
              f"got {args.hop:g}", file=sys.stderr)
        return 2
    out = args.out
    if not out.parent.is_dir():  # checked before any work, so a long run cannot end without a place to write
        print(f"error: output folder does not exist: {out.parent}", file=sys.stderr)
        return 2
    problem = cannot_write(out, out.with_suffix(".png"))
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    machine = describe_machine()  # before the soak: its load average is the one it started under
    with tempfile.TemporaryDirectory(prefix="tinyaudio-soak-") as tmp:
        model = args.model or build_model_subprocess(Path(tmp) / "lv24_8k_int8.tflite")
        log = lambda s, n: print(f"  {s['audio_min'] / 60:6.2f} h audio  {s['wall_s']:8.1f} s wall  RSS {s['rss_mib']:.1f} MiB  peak {s['peak_rss_mib']:.1f}  windows {n}", file=sys.stderr, flush=True)  # noqa: E731
        try:
            result = soak(model, args.hours * 3600, rate=args.rate, block=args.block, hop_s=args.hop,
                          bucket_s=args.bucket, seed=args.seed, progress=lambda s, n: log(s, n) if round(s["audio_min"]) % 30 == 0 else None)
        except USER_ERRORS as e:  # a missing or corrupt --model, a hop the engine refuses
            print(f"error: {one_line(e, 500)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # a cut soak has no end to compare with its start: the progress lines are its record
            print(f"interrupted: nothing written to {out} (the progress lines above are what was measured)",
                  file=sys.stderr)
            return 130
    result["command"] = "python -m benchmarks.soak " + " ".join(argv if argv is not None else sys.argv[1:])
    result["machine"] = machine
    if args.model is None:
        result["config"]["model"] = "untrained lv24 @ 8 kHz, full int8 via export.tflite.convert_full_int8 (built by this command)"
    try:  # checked up front; a disk can still fill up, and hours of soak must not end in a traceback
        write_atomic(out, json.dumps(result, indent=1) + "\n")
        plot(result, out.with_suffix(".png"))
    except OSError as e:
        print(f"error: cannot write {out}: {e.strerror or e}", file=sys.stderr)
        return 2
    r = result
    print(f"{r['audio_s'] / 3600:.2f} h audio in {r['wall_s']:.0f} s ({r['speed_x_real_time']}x real time); windows {r['windows']}/{r['windows_expected']} "
          f"(dropped {r['windows_dropped']}, hop gaps {r['hop_gaps']}, non-finite {r['nonfinite_windows']}); "
          f"peak RSS {r['rss']['peak_at_1_min_mib']} -> {r['rss']['peak_final_mib']} MiB after the first minute; "
          f"p99 first {r['p99_first_ms']} ms, last {r['p99_last_ms']} ms (CPU time p99 {r['cpu_p99_first_ms']} -> {r['cpu_p99_last_ms']} ms)")
    ok = r["windows_dropped"] == 0 and r["hop_gaps"] == 0 and r["nonfinite_windows"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
