"""Mobile budgets (``runtime/budgets.json``) and the run summary checked against them."""

from __future__ import annotations

import json
import resource
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.errors import ConfigError

BUDGETS_FILE = Path(__file__).with_name("budgets.json")


@dataclass(frozen=True)
class Budget:
    """Limits for one device class; each limit carries its source (see budgets.json)."""

    name: str
    latency_ms_per_window: float
    peak_rss_mib: float
    sources: dict[str, str] = field(default_factory=dict, compare=False)


def load_budgets(path: Path = BUDGETS_FILE) -> dict[str, Budget]:
    data = json.loads(path.read_text())["budgets"]
    return {
        name: Budget(
            name,
            float(b["latency_ms_per_window"]["limit"]),
            float(b["peak_rss_mib"]["limit"]),
            {k: b[k]["source"] for k in ("latency_ms_per_window", "peak_rss_mib")},
        )
        for name, b in data.items()
    }


def get_budget(name: str) -> Budget:
    budgets = load_budgets()
    if name not in budgets:
        raise ConfigError(f"unknown budget {name!r}; choose one of: {', '.join(budgets)}")
    return budgets[name]


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (``getrusage``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


class RunStats:
    """Accumulates per-window timings of one run; ``summary()`` turns them into numbers."""

    def __init__(self) -> None:
        self.latencies_s: list[float] = []
        self.invoke_s: list[float] = []
        self.processing_s = 0.0  # wall time inside the engine (everything from block to result)
        self.audio_s = 0.0  # seconds of input audio consumed

    def add_window(self, latency_s: float, invoke_s: float) -> None:
        self.latencies_s.append(latency_s)
        self.invoke_s.append(invoke_s)

    def summary(self, budget: Budget, dropped: int = 0, overflows: int = 0) -> dict:
        lat = np.asarray(self.latencies_s, dtype=np.float64) * 1e3
        invoke_total = float(np.sum(self.invoke_s))
        rss = peak_rss_mib()
        p95 = float(np.percentile(lat, 95)) if lat.size else None
        within = p95 is not None and p95 <= budget.latency_ms_per_window and rss <= budget.peak_rss_mib
        return {
            "windows": int(lat.size),
            "audio_s": round(self.audio_s, 3),
            "latency_ms": {
                "p50": _r(np.percentile(lat, 50)) if lat.size else None,
                "p95": _r(p95) if lat.size else None,
                "max": _r(lat.max()) if lat.size else None,
            },
            # processing time / audio time: < 1 keeps up with real time.
            "real_time_factor": _r(self.processing_s / self.audio_s, 6) if self.audio_s else None,
            # everything but the backend's invoke (resampling, buffering, quantization,
            # smoothing) as a fraction of invoke time.
            "overhead_fraction": _r((self.processing_s - invoke_total) / invoke_total, 4) if invoke_total else None,
            "peak_rss_mib": _r(rss, 1),
            "dropped_blocks": int(dropped),
            "overflows": int(overflows),
            "budget": {
                "name": budget.name,
                "latency_ms_per_window": budget.latency_ms_per_window,
                "peak_rss_mib": budget.peak_rss_mib,
                "within": bool(within),
            },
        }


def _r(x, digits: int = 3):
    return None if x is None else round(float(x), digits)
