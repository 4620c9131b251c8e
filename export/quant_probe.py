"""The exporter's quantization choices, each measured against its alternative.

    python -m export.quant_probe --run runs/us8k_acc_conv2d_recipe_ema --fold fold_0 \\
        --data ../shared/data/urbansound8k --out benchmarks/results/quant_probe_conv2d_us8k.md

``python -m export`` makes three choices about int8 that the converters would not make
on their own (docs/export.md, "Quantization choices"):

* dynamic-range TFLite: the front end's weights (the mel matrix) are put back to float, because
  the converter's hybrid kernel quantizes that op's *input*, the power spectrum;
* ONNX int8: the preprocessing nodes (RMS normalisation, log-mel) stay float;
* ONNX int8: calibration by the 99.999th percentile, not the min-max range, by default
  (``--onnx-calibration minmax`` or ``auto`` choose otherwise: neither wins on every model).

Full-integer TFLite measures its two front-end choices at every export (``--front-end auto``);
they are built here too, on more windows. Each file is built in memory from one fold
checkpoint of a training run and scored, like the parity check, against the Keras model on
that fold's held-out windows (``export.run_data``). Nothing is written but the report: a
Markdown table and the same rows as JSON beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from export.config import ExportError, require_positive
from runtime.cli import ArgumentParser


@dataclass(frozen=True)
class Variant:
    """One way to build a file. ``default``: what ``python -m export`` ships."""

    format: str
    choice: str
    default: str
    build: Callable[[], bytes]
    runner: str  # "tflite" or "onnx"


def variants(source, rep: np.ndarray) -> list[Variant]:
    """The files to compare, float32 references first; converters run lazily, in order."""
    from export import onnx_export, tflite

    window = int(source.model.inputs[0].shape[1])
    cf = tflite.frozen_function(source.model, window)
    cache: dict[str, bytes] = {}

    def once(key: str, fn: Callable[[], bytes]) -> Callable[[], bytes]:
        def build() -> bytes:
            if key not in cache:
                cache[key] = fn()
            return cache[key]
        return build

    tfl32 = once("tfl32", lambda: tflite.convert_float32(cf))
    onnx32 = once("onnx32", lambda: onnx_export.convert_float32(source.model, window))
    return [
        Variant("tflite float32", "reference", "yes", tfl32, "tflite"),
        Variant("onnx float32", "reference", "yes", onnx32, "onnx"),
        Variant("tflite dynamic-range int8", "front-end weights float", "yes",
                lambda: tflite.convert_dynamic_int8(cf, tfl32()), "tflite"),
        Variant("tflite dynamic-range int8", "converter's own (front-end weights int8)", "no",
                lambda: tflite.convert_dynamic_int8(cf, float_front_end=False), "tflite"),
        Variant("tflite full int8", "front end float", "auto",
                lambda: tflite.convert_full_int8(cf, rep, float_front_end=True), "tflite"),
        Variant("tflite full int8", "front end int8", "auto",
                lambda: tflite.convert_full_int8(cf, rep, float_front_end=False), "tflite"),
        Variant("onnx int8", "front end float, percentile calibration", "yes",
                lambda: onnx_export.convert_int8(onnx32(), rep), "onnx"),
        Variant("onnx int8", "front end int8, percentile calibration", "no",
                lambda: onnx_export.convert_int8(onnx32(), rep, float_front_end=False), "onnx"),
        Variant("onnx int8", "front end float, min-max calibration", "no",
                lambda: onnx_export.convert_int8(onnx32(), rep, calibration="minmax"), "onnx"),
    ]


def score(variant_list: list[Variant], reference: np.ndarray, x: np.ndarray, truth: np.ndarray,
          progress: Callable[[str], None] = lambda s: None) -> list[dict]:
    """Build and run each variant on windows ``x`` (n, window) float32; rows of numbers.
    ``reference``: the Keras probabilities (n, C) the files are compared with."""
    from export.onnx_export import run_onnx
    from export.parity import accuracy, compare
    from export.quiet import converter_chatter_dropped
    from export.tflite import run_tflite

    keras_acc = accuracy(reference, truth)
    rows, seen = [], {}
    for v in variant_list:
        progress(f"{v.format}: {v.choice}")
        t0 = time.perf_counter()
        try:
            with converter_chatter_dropped():  # the same routine notices `python -m export` drops
                data = v.build()
        except ExportError:
            raise
        except Exception as e:  # a converter failing on one variant is a result, not a crash
            rows.append({"format": v.format, "choice": v.choice, "default": v.default,
                         "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"})
            continue
        build_s = time.perf_counter() - t0
        with converter_chatter_dropped():
            probs = run_tflite(data, x) if v.runner == "tflite" else run_onnx(data, x)
        stats = compare(reference, probs, truth)
        same_as = seen.get(hash(data))
        seen.setdefault(hash(data), v.choice)
        rows.append({
            "format": v.format, "choice": v.choice, "default": v.default, "bytes": len(data),
            "accuracy": stats["accuracy"],
            "accuracy_change": None if keras_acc is None or stats["accuracy"] is None else stats["accuracy"] - keras_acc,
            "top1_agreement": stats["top1_agreement"], "max_prob_diff": stats["max_prob_diff"],
            "finite": bool(np.isfinite(probs).all()), "build_seconds": round(build_s, 1),
            "same_file_as": same_as if same_as != v.choice else None,
        })
    return rows


def _pct(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "—"
    return f"{v * 100:+.1f}" if signed else f"{v * 100:.1f}"


def render_markdown(doc: dict) -> str:
    d = doc["data"]
    lines = [
        f"# Quantization choices, measured: {doc['model']} ({doc['checkpoint']})",
        "",
        f"Generated by `{doc['command']}`",
        "",
        f"Machine: {doc['machine']}.",
        "",
        f"Audio: {d['parity_windows']} windows of {d['parity_clips']} clips, {d['parity_audio']} "
        f"({d['dataset']}, {d['protocol']}); calibration: {doc['representative_windows']} windows of the "
        f"fold's training clips. Keras accuracy on these windows: **{_pct(doc['keras_accuracy'])} %**.",
        "",
        "Default: what `python -m export` ships (`auto`: it builds both and keeps the one that agrees "
        "better with Keras on 32 calibration windows). Change: accuracy points against Keras; "
        "agreement: top-1 agreement with Keras; max |Δp|: largest probability difference.",
        "",
        "| format | choice | default | accuracy % | change | agreement % | max \\|Δp\\| | KiB |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in doc["rows"]:
        if "error" in r:
            lines.append(f"| {r['format']} | {r['choice']} | {r['default']} | conversion failed: {r['error']} | | | | |")
            continue
        same = f" (same file as: {r['same_file_as']})" if r.get("same_file_as") else ""
        finite = "" if r["finite"] else " **non-finite output**"
        lines.append(f"| {r['format']} | {r['choice']}{same}{finite} | {r['default']} | {_pct(r['accuracy'])} | "
                     f"{_pct(r['accuracy_change'], signed=True)} | {_pct(r['top1_agreement'])} | "
                     f"{r['max_prob_diff']:.3f} | {r['bytes'] / 1024:.1f} |")
    return "\n".join(lines) + "\n"


def probe(run: Path, data: Path, fold: str | None, max_clips: int | None, max_rep: int, max_per_clip: int,
          progress: Callable[[str], None] = lambda s: None) -> dict:
    """Build every variant for one fold checkpoint of ``run`` and score it; the report dict."""
    from benchmarks.machine import describe_machine, machine_line
    from export.exporter import keras_probs
    from export.loading import from_run
    from export.parity import accuracy, label_indices
    from export.run_data import FINAL_FOLD, run_windows

    source = from_run(run, fold)
    if source.info.get("fold") == FINAL_FOLD:
        raise ExportError(f"{source.path} is a --final checkpoint: it has no held-out audio; pick a fold (--fold)")
    rep, test, info = run_windows(run, source.path, data, max_per_clip, max_clips)
    rep_x = rep.subset(max_rep).x
    truth = label_indices(test.labels, source.labels)
    progress(f"Keras on {len(test)} windows")
    reference = keras_probs(source.model, test.x)
    rows = score(variants(source, rep_x), reference, test.x, truth, progress)
    return {
        "model": source.model_config.name, "run": str(run), "checkpoint": str(source.path.relative_to(run)),
        "machine": machine_line(describe_machine()),
        "data": {**info, "parity_windows": len(test)},
        "representative_windows": int(len(rep_x)), "keras_accuracy": accuracy(reference, truth),
        "rows": rows,
    }


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m export.quant_probe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, required=True, help="training run folder (runs/NAME)")
    p.add_argument("--data", type=Path, required=True, help="the dataset folder the run was trained on")
    p.add_argument("--fold", help="the checkpoint in the run folder named FOLD (e.g. fold_0), else the one whose path "
                                  "contains FOLD; several matches are an error. Without --fold: as python -m export, "
                                  "so final/model.keras when the run has one, which has no held-out audio and is "
                                  "refused: give a fold")
    p.add_argument("--out", type=Path, required=True, help="Markdown report to write (JSON beside it)")
    p.add_argument("--max-clips", type=int, default=None, help="use at most this many test / calibration clips")
    p.add_argument("--max-rep", type=int, default=200, help="most calibration windows (default 200, as the exporter)")
    p.add_argument("--max-windows-per-clip", type=int, default=4, help="as the exporter (default 4)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parser().parse_args(argv)
    from runtime.files import write_atomic

    def progress(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    try:
        require_positive(("--max-clips", args.max_clips), ("--max-rep", args.max_rep),
                         ("--max-windows-per-clip", args.max_windows_per_clip))
        if args.out.suffix != ".md":
            raise ExportError(f"--out must be a .md file (the JSON goes beside it), got {args.out}")
        doc = probe(args.run, args.data, args.fold, args.max_clips, args.max_rep, args.max_windows_per_clip, progress)
        doc["command"] = "python -m export.quant_probe " + " ".join(argv if argv is not None else sys.argv[1:])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out.with_suffix(".json"), json.dumps(doc, indent=2, sort_keys=True) + "\n")
        write_atomic(args.out, render_markdown(doc))
    except (ExportError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    from runtime.cli import exit_with

    exit_with(main, "python -m export.quant_probe")
