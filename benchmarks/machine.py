"""Describe the machine a benchmark ran on (no TensorFlow needed)."""

from __future__ import annotations

import os
import platform
from importlib import metadata


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    """The SIMD extensions that matter for inference kernels."""
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "fma", "neon", "asimd", "sve")
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    have = set(line.split(":", 1)[1].split())
                    return [w for w in wanted if w in have]
    except OSError:
        pass
    return []


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def describe_machine() -> dict:
    """CPU, cores, memory, OS and the versions of every inference library present."""
    return {
        "cpu": _cpu_model(),
        "simd": _cpu_flags(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "python": platform.python_version(),
        # Other work on the machine inflates tails: recorded so readers can judge a run.
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "libraries": {
            d: v
            for d in ("numpy", "ai-edge-litert", "onnxruntime", "tensorflow-cpu", "tensorflow", "keras", "mediapipe")
            if (v := _version(d)) is not None
        },
    }


def machine_line(m: dict) -> str:
    """One-line summary for report headers."""
    mem = f", {m['memory_gib']} GiB" if m.get("memory_gib") else ""
    simd = f" ({', '.join(m['simd'])})" if m.get("simd") else ""
    load = f", load average {m['load_average_1m']} at start" if m.get("load_average_1m") is not None else ""
    return f"{m['cpu']}{simd}, {m['cores']} cores{mem}, {m['os']}, Python {m['python']}{load}"
