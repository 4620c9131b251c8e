"""The benchmark run: discover exported models, measure each in its own process, judge budgets.

Numeric and orchestration code only; ``benchmarks.report`` renders Markdown and
plots, ``benchmarks.__main__`` is the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from runtime.errors import one_line

FORMATS = ("tflite_float32", "tflite_float16", "tflite_dynamic_int8", "tflite_int8", "onnx_float32", "onnx_int8")
# Formats whose kernels multiply in int8. Their ceiling is not the float probe's: int8 LV models ran at 1.5-2.6x
# the float peak (shipped.json, latest.json), while a 3x3 int8 probe convolution ran no faster than the float
# one, so no single probe bounds them and they get no "% of peak".
INT8_ARITHMETIC = frozenset({"tflite_dynamic_int8", "tflite_int8", "onnx_int8"})


class BenchmarkError(Exception):
    """A bad benchmark input; ``str(e)`` is one line."""


@dataclass(frozen=True)
class BenchConfig:
    """What to measure.

    Attributes:
        roots: folders searched (recursively) for export folders (a
            ``metadata.json`` listing ``files``).
        formats: artifact keys to time.
        threads: thread counts (default 1 and all cores).
        windows / warmup: timed and untimed windows per measurement.
        peers: also time Keras, TF's interpreter, onnxruntime, MediaPipe and the
            streaming runtime (needs TensorFlow; off in runtime-only mode).
        peer_windows: windows per peer.
        models: restrict to these export folder names (empty: all).
        max_models: stop after this many folders (``--quick``).
    """

    roots: tuple[Path, ...] = (Path("android_demo_assets"), Path("exports"))
    formats: tuple[str, ...] = FORMATS
    threads: tuple[int, ...] = (1, os.cpu_count() or 1)
    windows: int = 100
    warmup: int = 10
    peers: bool = True
    peer_windows: int = 30
    models: tuple[str, ...] = ()
    max_models: int | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        bad = [f for f in self.formats if f not in FORMATS]
        if bad:
            raise BenchmarkError(f"unknown format(s) {', '.join(bad)}; choose from {', '.join(FORMATS)}")
        from benchmarks.worker import bad_counts  # the bounds each worker process applies, checked before any

        for t in self.threads:
            problem = bad_counts(self.windows, self.warmup, t)
            if problem:
                raise BenchmarkError(problem)
        object.__setattr__(self, "threads", tuple(sorted(set(self.threads))))


def discover(config: BenchConfig) -> list[Path]:
    """Export folders under ``config.roots`` (sorted, de-duplicated), restricted to ``config.models``.

    Raises:
        BenchmarkError: a name in ``config.models`` matches no export (a typo
            would otherwise silently measure less than asked for).
    """
    found = _all_exports(config.roots)
    if config.models:
        names = {f.name for f in found}
        missing = [m for m in config.models if m not in names]
        if missing:
            have = ", ".join(sorted(names)) or "none"
            raise BenchmarkError(f"no export matches --models {' '.join(missing)} under "
                                 f"{', '.join(map(str, config.roots))} (exports found: {have})")
        found = [f for f in found if f.name in config.models]
    return found[: config.max_models] if config.max_models else found


def _all_exports(roots: tuple[Path, ...]) -> list[Path]:
    found = []
    for root in roots:
        if not root.exists():
            continue
        for meta in sorted(root.rglob("metadata.json")):
            try:
                doc = json.loads(meta.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if isinstance(doc, dict) and isinstance(doc.get("files"), dict):
                found.append(meta.parent)
    return sorted(set(found))


def _run_json(args: list[str], timeout: int) -> dict:
    """Run ``python -m ...`` in a fresh process; its last stdout line is JSON."""
    try:
        proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    except subprocess.TimeoutExpired:  # one stuck or slow measurement must not cost the others
        return {"error": f"error: python -m {args[0]} took over {timeout} s and was stopped (fewer --windows?)"}
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("error:")] or proc.stderr.strip().splitlines()[-1:]
        return {"error": lines[-1] if lines else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def activation_peak_bytes(path: Path) -> int | None:
    """Largest per-operator activation footprint of a ``.tflite`` (bytes).

    For every operator, the bytes of its non-constant inputs and outputs are
    summed; the maximum over operators estimates the tensor arena a
    microcontroller runtime needs at least (constant tensors — weights — live
    in the model file and are counted there).
    """
    from runtime.errors import quiet_native_stderr
    from runtime.model import litert_interpreter_class

    with quiet_native_stderr():  # LiteRT prints "Created TensorFlow Lite XNNPACK delegate" to fd 2
        interp = litert_interpreter_class()(model_path=str(path))
        interp.allocate_tensors()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()  # the only per-operator view LiteRT's Python API offers
    produced = {int(i) for op in ops for i in op["outputs"]}
    graph_inputs = {d["index"] for d in interp.get_input_details()}
    activations = produced | graph_inputs

    def nbytes(i: int) -> int:
        t = tensors[i]
        return int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize

    peak = 0
    for op in ops:
        ids = {int(i) for i in (*op["inputs"], *op["outputs"]) if int(i) in activations}
        peak = max(peak, sum(nbytes(i) for i in ids))
    return peak


def _read_metadata(folder: Path) -> dict:
    """The export's metadata.json, with the fields a measurement row needs (else BenchmarkError naming it)."""
    path = folder / "metadata.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BenchmarkError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict):
        raise BenchmarkError(f'{path}: no "files" table')
    if not isinstance(doc.get("name"), str):
        raise BenchmarkError(f'{path}: no model "name"')
    if not isinstance(doc.get("sample_rate"), int) or doc["sample_rate"] <= 0:
        raise BenchmarkError(f'{path}: no positive integer "sample_rate"')
    if not isinstance(doc.get("macs"), (int, float)) or doc["macs"] <= 0:  # GMAC/s and budgets divide by it
        raise BenchmarkError(f'{path}: no positive "macs"')
    for key, info in doc["files"].items():
        if not (isinstance(info, dict) and isinstance(info.get("file"), str)):
            raise BenchmarkError(f'{path}: files.{key} has no "file" name')
    return doc


def _accuracy(folder: Path) -> dict[str, float]:
    parity = folder / "parity.json"
    if not parity.is_file():
        return {}
    try:
        doc = json.loads(parity.read_text())
        out = {k: float(v["accuracy"]) for k, v in doc.get("artifacts", {}).items() if v.get("accuracy") is not None}
        if doc.get("keras_accuracy") is not None:
            out["keras"] = float(doc["keras_accuracy"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise BenchmarkError(f"{parity}: not a parity report ({type(e).__name__}: {one_line(e)})") from None
    return out


def _task(doc: dict) -> str:
    """Which task a model's accuracy belongs to: accuracies are comparable only within one task."""
    data = doc.get("data") or {}
    if data.get("dataset"):  # the same dataset under another protocol/fold (or seen by a final model) is another task
        return " · ".join(str(data[k]) for k in ("dataset", "protocol", "fold") if data.get(k))
    labels = doc.get("labels", [])
    return f"{len(labels)} classes: {', '.join(labels[:3])}{', …' if len(labels) > 3 else ''}"


def fraction_of_peak(row: dict, peak: dict) -> float | None:
    """A float row's GMAC/s over the machine's single-core float peak times its threads; None for int8 rows."""
    if row["format"] in INT8_ARITHMETIC:
        return None
    return row["gmacs_per_s"] / (peak["peak_gmacs"] * row["threads"])


def judge_all(row: dict, budgets: dict) -> dict:
    """Pass/fail of one measured row against every budget profile."""
    single = row["latency_ms"]["p95"] if row["threads"] == 1 else None
    measured = {
        # Phones get one core for audio: only single-thread latency is judged.
        "latency_ms_per_window": single,
        "peak_rss_mib": row["peak_rss_mb"],
        "model_size_kib": row["size_bytes"] / 1024,
        "mops_per_window": 2 * row["macs"] / 1e6,
        "ram_kib": None if row.get("activation_peak_bytes") is None
        else (row["size_bytes"] + row["activation_peak_bytes"]) / 1024,
    }
    return {name: b.judge(measured) for name, b in budgets.items()}


def run_benchmarks(config: BenchConfig, log=print) -> dict:
    """Measure every (model folder, format, threads); returns the results document."""
    from benchmarks.machine import describe_machine
    from benchmarks.probe import measure as measure_peak
    from runtime.budgets import load_budgets

    folders = discover(config)
    if not folders:
        raise BenchmarkError(f"no exported models under {', '.join(map(str, config.roots))} "
                             "(make some with: python -m benchmarks.zoo, or python -m export)")
    # Every export's metadata and parity report is read before the first measurement, so a broken
    # one stops the run in seconds, not after an hour of timing the others.
    exports = [(folder, _read_metadata(folder), _accuracy(folder)) for folder in folders]
    listed = [folder / doc["files"][key]["file"] for folder, doc, _ in exports for key in config.formats
              if key in doc["files"]]
    if not listed:
        raise BenchmarkError(f"no {' or '.join(config.formats)} file in the {len(exports)} export(s) found")
    if not any(path.is_file() for path in listed):
        raise BenchmarkError(f"nothing to measure: every model file listed is missing ({', '.join(map(str, listed))})")
    started = time.time()
    machine = describe_machine()  # now, so its load average is the one the measurements started under
    log("measuring this machine's compute peak ...")
    try:
        peak = measure_peak()
    except (subprocess.SubprocessError, ValueError) as e:  # a failed or stuck probe child; bad JSON from it
        raise BenchmarkError(f"the compute-peak probe failed: {one_line(e)}") from None
    budgets = load_budgets()
    rows, peers, peers_skipped = [], [], []
    for folder, doc, accuracy in exports:
        for key in config.formats:
            info = doc["files"].get(key)
            if info is None:  # an export need not have every format (e.g. no ONNX)
                continue
            path = folder / info["file"]

            def skip(reason: str) -> None:
                # One broken export must not cost the measurements of the others: record it as a
                # failed row (the report lists it, the CLI exits non-zero) and go on.
                log(f"warning: {reason}; skipped")
                rows.extend({"model_dir": str(folder), "model": doc["name"], "sample_rate": doc["sample_rate"],
                             "format": key, "file": str(path), "error": f"error: {reason}", "threads": t}
                            for t in config.threads)

            if not path.is_file():
                skip(f"{path}: file missing (listed in {folder / 'metadata.json'})")
                continue
            try:
                act = activation_peak_bytes(path) if path.suffix == ".tflite" else None
            except Exception as e:  # noqa: BLE001 - LiteRT raises ValueError/RuntimeError for a corrupt file
                skip(f"{path}: not a loadable TFLite model ({one_line(e)})")
                continue
            for threads in config.threads:
                log(f"{folder.name:<22} {key:<20} threads={threads}")
                res = _run_json(["benchmarks.worker", str(path), "--threads", str(threads),
                                 "--windows", str(config.windows), "--warmup", str(config.warmup)], timeout=600)
                row = {"model_dir": str(folder), "model": doc["name"], "sample_rate": doc["sample_rate"],
                       "format": key, "params": doc.get("params"), "macs": doc.get("macs"),
                       "task": _task(doc), "accuracy": accuracy.get(key), "activation_peak_bytes": act,
                       **res, "threads": threads}
                if "error" not in res:
                    row["gmacs_per_s"] = row["macs"] / (row["latency_ms"]["p50"] / 1e3) / 1e9
                    row["fraction_of_peak"] = fraction_of_peak(row, peak)
                    row["budgets"] = judge_all(row, budgets)
                rows.append(row)
        if config.peers and not (folder / "model.keras").is_file():
            peers_skipped.append(str(folder))  # shipped asset folders carry no Keras model to time
        elif config.peers:
            log(f"{folder.name:<22} peers")
            res = _run_json(["benchmarks.peers", str(folder), "--windows", str(config.peer_windows),
                             "--warmup", str(config.warmup)], timeout=900)
            peers.append({"folder": str(folder), **res})
    return {
        "format": "tinyaudio-benchmarks/1",
        "created_unix": int(started),
        "duration_s": round(time.time() - started, 1),
        "machine": machine,
        "peak": peak,
        "config": {"formats": list(config.formats), "threads": list(config.threads), "windows": config.windows,
                   "warmup": config.warmup, "peers": config.peers, "peer_windows": config.peer_windows},
        "budgets": {n: {"description": b.description,
                        "limits": {k: {"limit": v.value, "source": v.source} for k, v in b.limits.items()}}
                    for n, b in budgets.items()},
        "results": rows,
        "peers": peers,
        "peers_skipped": peers_skipped,
    }
