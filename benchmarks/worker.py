"""Measure one model file in this (fresh) process: load time, latency per window, peak RSS.

Run by ``python -m benchmarks`` once per (model, format, threads) in its own
process, so one model's memory never hides in another's. Needs only the base
install (numpy + LiteRT; onnxruntime for ``.onnx``). Prints one JSON object.

Timing, nanoGPT style: load through ``runtime.model.load_model`` (what an app
would use: quantisation scales from the interpreter, metadata from the file),
run ``warmup`` windows untimed, then time each of ``windows`` calls of
``predict`` separately with ``time.perf_counter``. The input is the same seeded
noise window every time (latency of these models does not depend on values).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from runtime.cli import ArgumentParser
from runtime.errors import USER_ERRORS, one_line


def _rss_mb() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure_file(path: Path, threads: int, windows: int, warmup: int) -> dict:
    """Load ``path`` (.tflite or .onnx) and time ``windows`` single-window runs."""
    from runtime.model import load_model

    rss_before = _rss_mb()
    t0 = time.perf_counter()
    model = load_model(path, threads=threads)
    load_s = time.perf_counter() - t0
    x = (0.1 * np.random.default_rng(0).standard_normal(model.window_samples)).astype(np.float32)
    for _ in range(warmup):
        out = model.predict(x)
    times = np.empty(windows)
    for i in range(windows):
        t = time.perf_counter()
        out = model.predict(x)
        times[i] = time.perf_counter() - t
    ms = times * 1e3
    return {
        "file": str(path),
        "size_bytes": path.stat().st_size,
        "threads": threads,
        "windows": windows,
        "load_ms": load_s * 1e3,
        "latency_ms": {
            "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)),
            "mean": float(ms.mean()),
        },
        "windows_per_s": float(windows / times.sum()),
        "rss_before_load_mb": rss_before,
        "peak_rss_mb": _rss_mb(),
        "output_finite": bool(np.isfinite(out).all()),
    }


# A million windows is minutes of timing for the biggest model here; far above it a typo (extra
# zeros) would preallocate the timing array in gigabytes or run for days.
MAX_WINDOWS = 1_000_000


def bad_counts(windows: int, warmup: int, threads: int) -> str | None:
    """The one-line error for timing options no run can use (no timed window: no percentile, more
    threads than :func:`runtime.model.max_threads` allows, a typo of millions of windows), else None."""
    from runtime.model import max_threads

    for name, value, least, most in (("--windows", windows, 1, MAX_WINDOWS), ("--warmup", warmup, 0, MAX_WINDOWS),
                                     ("--threads", threads, 1, max_threads())):
        if not least <= value <= most:
            return f"{name} must be {least} to {most}, got {value}"
    return None


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m benchmarks.worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help=".tflite or .onnx file")
    p.add_argument("--threads", type=int, default=1, help="interpreter threads (default 1)")
    p.add_argument("--windows", type=int, default=100, help="timed windows (default 100)")
    p.add_argument("--warmup", type=int, default=10, help="untimed windows first (default 10)")
    args = p.parse_args(argv)
    bad = bad_counts(args.windows, args.warmup, args.threads)
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    if not args.model.is_file():
        print(f"error: model file not found: {args.model}", file=sys.stderr)
        return 2
    try:
        result = measure_file(args.model, args.threads, args.windows, args.warmup)
    except Exception as e:  # a broken model file must give one line, not a traceback
        msg = one_line(e, 500) if isinstance(e, USER_ERRORS) else f"{type(e).__name__}: {one_line(e, 500)}"
        # runtime.model's errors name the file already: name it once
        print(f"error: {msg if args.model.name in msg else f'{args.model.name}: {msg}'}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
