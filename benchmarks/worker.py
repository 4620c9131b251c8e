"""Measure one model file in this (fresh) process: load time, latency per window, peak RSS.

Run by ``python -m benchmarks`` once per (model, format, threads) in its own
process, so one model's memory never hides in another's. Needs only the base
install (numpy + LiteRT; onnxruntime for ``.onnx``). Prints one JSON object.

Timing, nanoGPT style: load, run ``warmup`` windows untimed, then time each of
``windows`` invocations separately with ``time.perf_counter``. The input is
the same seeded noise window every time (latency of these models does not
depend on the values).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np


def _rss_mb() -> float:
    # ru_maxrss is KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _TFLite:
    def __init__(self, path: Path, threads: int):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # tflite_runtime crashes with numpy 2: only a fallback
            from tflite_runtime.interpreter import Interpreter
        self.interp = Interpreter(model_path=str(path), num_threads=threads)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]

    def input_window(self, rng) -> np.ndarray:
        x = (0.1 * rng.standard_normal(self.inp["shape"])).astype(np.float32)
        if self.inp["dtype"] != np.float32:  # full-integer I/O: quantise with the file's own scale
            scale, zero = self.inp["quantization"]
            info = np.iinfo(self.inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.inp["dtype"])
        return x

    def __call__(self, x):
        self.interp.set_tensor(self.inp["index"], x)
        self.interp.invoke()
        return self.interp.get_tensor(self.out["index"])


class _Onnx:
    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.inp = self.sess.get_inputs()[0]

    def input_window(self, rng) -> np.ndarray:
        shape = [d if isinstance(d, int) else 1 for d in self.inp.shape]
        return (0.1 * rng.standard_normal(shape)).astype(np.float32)

    def __call__(self, x):
        return self.sess.run(None, {self.inp.name: x})[0]


def measure_file(path: Path, threads: int, windows: int, warmup: int) -> dict:
    """Load ``path`` (.tflite or .onnx) and time ``windows`` single-window runs."""
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    runner = _Onnx(path, threads) if path.suffix.lower() == ".onnx" else _TFLite(path, threads)
    load_s = time.perf_counter() - t0
    x = runner.input_window(np.random.default_rng(0))
    for _ in range(warmup):
        out = runner(x)
    times = np.empty(windows)
    for i in range(windows):
        t = time.perf_counter()
        out = runner(x)
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
        "output_finite": bool(np.isfinite(np.asarray(out, dtype=np.float32)).all()),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.worker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", type=Path, help=".tflite or .onnx file")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--windows", type=int, default=100, help="timed windows (default 100)")
    p.add_argument("--warmup", type=int, default=10, help="untimed windows first (default 10)")
    args = p.parse_args(argv)
    if not args.model.is_file():
        print(f"error: model file not found: {args.model}", file=sys.stderr)
        return 2
    try:
        result = measure_file(args.model, args.threads, args.windows, args.warmup)
    except Exception as e:  # a broken model file must give one line, not a traceback
        print(f"error: {args.model.name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
              file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
