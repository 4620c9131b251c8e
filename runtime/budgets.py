"""Mobile budgets (``runtime/budgets.json``) and the run summary checked against them."""

from __future__ import annotations

import json
import resource
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.errors import ConfigError

BUDGETS_FILE = Path(__file__).with_name("budgets.json")


@dataclass(frozen=True)
class Limit:
    """One limit of a budget and where its number comes from."""

    value: float
    source: str


# The limits a budget may set; a profile sets only those that make sense for it
# (phones: latency, RSS, size; microcontrollers: operations and memory).
LIMIT_KEYS = ("latency_ms_per_window", "peak_rss_mib", "model_size_kib", "ram_kib", "mops_per_window")


@dataclass(frozen=True)
class Budget:
    """Limits for one device class (see budgets.json); absent limits are ``None``."""

    name: str
    description: str
    limits: dict[str, Limit] = field(default_factory=dict, compare=False)

    @property
    def latency_ms_per_window(self) -> float | None:
        return self._value("latency_ms_per_window")

    @property
    def peak_rss_mib(self) -> float | None:
        return self._value("peak_rss_mib")

    def _value(self, key: str) -> float | None:
        limit = self.limits.get(key)
        return None if limit is None else limit.value

    def judge(self, measured: dict[str, float | None]) -> dict:
        """Pass/fail against every limit this budget sets.

        Args:
            measured: values keyed like ``LIMIT_KEYS``; a missing or ``None``
                value cannot be judged and is reported as such (not a pass).
        Returns:
            ``{"pass": bool, "reasons": [str, ...], "unjudged": [key, ...], "failed": [key, ...]}``;
            ``pass`` is True only when every judged limit holds and none is unjudged.
        """
        reasons, unjudged, failed = [], [], []
        for key, limit in self.limits.items():
            value = measured.get(key)
            if value is None:
                unjudged.append(key)
                continue
            holds = value <= limit.value
            if not holds:
                failed.append(key)
            reasons.append(f"{key} {value:.4g} {'<=' if holds else '>'} {limit.value:g}")
        return {"pass": not failed and not unjudged, "reasons": reasons, "unjudged": unjudged, "failed": failed}


def load_budgets(path: Path = BUDGETS_FILE) -> dict[str, Budget]:
    data = json.loads(path.read_text())["budgets"]
    budgets = {}
    for name, b in data.items():
        unknown = set(b) - set(LIMIT_KEYS) - {"description"}
        if unknown:
            raise ConfigError(f"{path.name}: budget {name!r} has unknown limits: {', '.join(sorted(unknown))}")
        limits = {k: Limit(float(b[k]["limit"]), str(b[k]["source"])) for k in LIMIT_KEYS if k in b}
        budgets[name] = Budget(name, str(b.get("description", "")), limits)
    return budgets


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
        # Exact percentiles need every latency: 8 bytes per window here (a list of floats
        # costs ~32), ~2.9 MB per 10 h at 10 windows/s.
        self.latencies_s = array("d")
        self.invoke_total_s = 0.0
        self.processing_s = 0.0  # wall time inside the engine (everything from block to result)
        self.audio_s = 0.0  # seconds of input audio consumed
        self.silent_windows = 0  # under the engine's silence gate (timed like any other)

    def add_window(self, latency_s: float, invoke_s: float, silent: bool = False) -> None:
        self.latencies_s.append(latency_s)
        self.invoke_total_s += invoke_s
        self.silent_windows += bool(silent)

    def summary(self, budget: Budget, dropped: int = 0, overflows: int = 0) -> dict:
        lat = np.asarray(self.latencies_s, dtype=np.float64) * 1e3
        invoke_total = self.invoke_total_s
        rss = peak_rss_mib()
        p95 = float(np.percentile(lat, 95)) if lat.size else None
        return {
            "windows": int(lat.size),
            "silent_windows": self.silent_windows,
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
            # Only what a running process can measure is judged here; python -m
            # benchmarks judges the remaining limits (size, operations, memory).
            "budget": {
                "name": budget.name,
                "latency_ms_per_window": budget.latency_ms_per_window,
                "peak_rss_mib": budget.peak_rss_mib,
                **_judge_runtime(budget, p95, rss),
            },
        }


def _judge_runtime(budget: Budget, p95_ms: float | None, rss_mib: float) -> dict:
    """The budget's latency and RSS limits against this run.

    Returns ``{"within": True | False | None, "reasons": [str, ...]}``. ``None``
    means "not judged": the budget sets neither limit (microcontrollers), or a
    limit went unmeasured (no window was timed) while none that was measured
    failed. Neither is a pass, and neither is a measured failure either.
    """
    runtime_limits = {k: v for k, v in budget.limits.items() if k in ("latency_ms_per_window", "peak_rss_mib")}
    if not runtime_limits:
        return {"within": None, "reasons": ["this budget sets no latency or RSS limit; python -m benchmarks judges its limits"]}
    measured = {"latency_ms_per_window": p95_ms, "peak_rss_mib": rss_mib}
    verdict = Budget(budget.name, budget.description, runtime_limits).judge(measured)
    # RSS is always measured; only latency can be missing, when no window ran.
    reasons = verdict["reasons"] + [f"{key} not judged: no windows were timed" for key in verdict["unjudged"]]
    within = True if verdict["pass"] else False if verdict["failed"] else None
    return {"within": within, "reasons": reasons}


def _r(x, digits: int = 3):
    return None if x is None else round(float(x), digits)
