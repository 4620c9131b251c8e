"""Keep glibc's allocator from handing TensorFlow's training buffers back to the kernel every step.

Training on the CPU allocates and frees the same few-MB activation and gradient buffers at every
step. glibc serves such blocks with ``mmap`` (above its mmap threshold) or trims them off the heap
top when freed, so each step the kernel zero-fills the pages again: on the 2-core machine here
about a third of an LV-24 training process's CPU time went to the kernel. Raising the mmap threshold to its maximum (32 MiB on 64-bit) and the trim threshold out of
reach keeps freed blocks in the process for the next step. ``python -m benchmarks.train_malloc``
measures the effect (``benchmarks/results/train_malloc.md``); the same trick as
``LD_PRELOAD=libtcmalloc``, with nothing to install.

The price is that a process keeps its peak heap until it exits. Importing ``train`` applies it
(``train/__init__.py``), so it is in place before TensorFlow is imported and starts its threads; set
later, it recovered only part of the time here. Processes that import ``train`` (training, export,
the order probe) get it; the runtime never imports ``train`` and keeps glibc's defaults, so its
memory figures are the default allocator's. ``TINYAUDIO_MALLOC=default`` leaves glibc alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

# mallopt(3) parameter numbers from <malloc.h>.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's ceiling on 64-bit: larger values are refused
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: "never trim" in practice
TOP_PAD = 64 * 1024 * 1024  # grow the heap in large steps, fewer brk calls

ENV = "TINYAUDIO_MALLOC"

_state: dict[str, bool] = {}


def tune_malloc() -> bool:
    """Apply the settings once per process. True when glibc accepted all three; False on other
    platforms or C libraries (musl, macOS), or when ``TINYAUDIO_MALLOC=default``. Never raises."""
    if "tuned" not in _state:
        _state["tuned"] = _apply()
    return _state["tuned"]


def _apply() -> bool:
    if os.environ.get(ENV, "").strip().lower() == "default":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success, 0 when glibc refuses the value
    return all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_TOP_PAD, TOP_PAD)))
