"""Package a checked export for an Android app, with golden test vectors.

    python -m export.android exports/fsdd_lv24 --out android_demo_assets/spoken_digit

Copies the float32 and full-integer int8 TFLite files (standard TFLite Model
Metadata inside, so MediaPipe's AudioClassifier loads them), ``labels.txt``,
``metadata.json`` (restricted to the shipped files, SHA-256 re-computed) and
``parity.md``; then writes golden vectors: generated inputs (silence, noise,
sines, chirps, a click, a square wave — no dataset audio) as raw little-endian
float32 files, and ``golden/expected.json`` with each model's output on each
input, computed by this project's runtime (LiteRT). An instrumented test on the
phone replays the inputs and compares within the stated tolerance.

The export must have passed its parity check (``parity.json`` with ``passed``)
unless ``--allow-unchecked`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from export.check import PARITY_JSON, PARITY_MD, verify_side_files
from export.config import ExportError
from export.files import ensure_writable, sha256, write_atomic
from runtime.cli import ArgumentParser

SHIPPED = ("tflite_float32", "tflite_int8")
# Different CPUs and delegates (XNNPACK on x86 vs ARM NEON) round differently;
# float32 agrees closely, int8 may move by a few quantisation steps.
TOLERANCE = {"tflite_float32": 1e-3, "tflite_int8": 0.05}


def golden_vectors(folder: Path, files: dict[str, str]) -> dict:
    """Run every shipped model on the probe set; write inputs; return expected.json's dict."""
    from runtime.model import load_model
    from runtime.signals import probe_set

    models = {key: load_model(folder / name, threads=1) for key, name in files.items()}
    any_model = next(iter(models.values()))
    probes = probe_set(any_model.window_samples, any_model.sample_rate)
    inputs = folder / "golden" / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    cases = {}
    for probe, x in probes.items():
        write_atomic(inputs / f"{probe}.f32", x.astype("<f4").tobytes())
        outputs = {}
        for key, model in models.items():
            p = model.predict(x)
            if not np.isfinite(p).all():
                raise ExportError(f"{files[key]} gives non-finite output on the {probe} probe")
            outputs[key] = {"probabilities": [round(float(v), 6) for v in p],
                            "top1": model.labels[int(np.argmax(p))]}
        cases[probe] = {"input": f"inputs/{probe}.f32", "outputs": outputs}
    return {
        "format": "tinyaudio-golden/1",
        "sample_rate": any_model.sample_rate,
        "window_samples": any_model.window_samples,
        "input_encoding": "raw little-endian float32, one window, mono PCM in [-1, 1]",
        "labels": list(any_model.labels),
        "tolerance_max_abs_probability": {files[k]: TOLERANCE[k] for k in files},
        "produced_by": "python -m export.android (runtime.model, LiteRT, 1 thread)",
        "cases": cases,
    }


def package(export_dir: Path, out: Path, allow_unchecked: bool = False) -> dict:
    """Copy the shipped artifacts of ``export_dir`` into ``out`` and write golden vectors.

    Everything is checked first and built in a hidden folder beside ``out``, then moved
    in, so a failure never leaves ``out`` half-written."""
    from export.check import read_export, read_json

    export_dir, out = Path(export_dir), Path(out)
    doc = read_export(export_dir)
    if out.resolve() == export_dir.resolve():  # would replace the export's metadata.json with the shipped-only one
        raise ExportError(f"--out is the export folder itself ({export_dir}): choose another folder")
    parity_path = export_dir / PARITY_JSON
    parity = None
    if not allow_unchecked:
        if not parity_path.is_file():
            raise ExportError(f"{export_dir} has no parity.json: run python -m export.check first")
        parity = read_json(parity_path)
        if not parity.get("passed"):
            raise ExportError(f"{export_dir} failed its parity check: refusing to ship it")
    missing = [k for k in SHIPPED if k not in doc.get("files", {})]
    if missing:
        raise ExportError(f"{export_dir} lacks {', '.join(missing)}: export with all TFLite formats")
    for key in SHIPPED:  # ship only what the export wrote (and the parity check ran on)
        path = export_dir / str(doc["files"][key].get("file"))
        if not path.is_file():
            raise ExportError(f"{key}: artifact missing: {path}")
        if sha256(path) != doc["files"][key].get("sha256"):
            raise ExportError(f"{key}: {path.name} does not match the SHA-256 in metadata.json (corrupt or changed)")
    if parity is not None:
        _parity_covers(export_dir, parity, doc)
    if not (export_dir / "labels.txt").is_file():
        raise ExportError(f"{export_dir} has no labels.txt: not a complete export")
    verify_side_files(export_dir, doc, ("labels",))  # an app reads labels.txt: it must be the exported one
    if out.exists():
        ensure_writable(out)  # a file in the way, or no permission: say so before any work
    staging = Path(tempfile.mkdtemp(dir=ensure_writable(out.parent), prefix=f".{out.name}.partial-"))
    try:
        new_doc = _build(export_dir, doc, staging)
        _move_into(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return new_doc


def _parity_covers(export_dir: Path, parity: dict, doc: dict) -> None:
    """Raise ExportError unless the passing ``parity`` report judged exactly the files about to ship.

    A parity.json outlives the artifacts it judged when a folder is re-exported with --no-check
    or a file is replaced by hand; the SHA-256 each row records ties the verdict to the bytes."""
    rows = parity.get("artifacts") if isinstance(parity.get("artifacts"), dict) else {}
    for key in SHIPPED:
        row = rows.get(key)
        name = doc["files"][key].get("file")
        if not isinstance(row, dict) or row.get("passed") is False:
            raise ExportError(f"{export_dir}/parity.json has no passing verdict for {name}: "
                              f"run python -m export.check {export_dir} --data FOLDER")
        if "sha256" not in row:
            raise ExportError(f"{export_dir}/parity.json predates artifact hashes, so it cannot show it judged "
                              f"{name}: run python -m export.check {export_dir} --data FOLDER again")
        if row["sha256"] != doc["files"][key].get("sha256"):
            raise ExportError(f"{export_dir}/parity.json judged another {name} than the one in the folder "
                              f"(re-exported with --no-check?): run python -m export.check {export_dir} --data FOLDER")


def _build(export_dir: Path, doc: dict, out: Path) -> dict:
    """Write the package into the (empty) folder ``out``; returns its metadata.json dict."""
    from runtime.errors import RuntimeFailure, one_line

    files = {}
    for key in SHIPPED:
        name = doc["files"][key]["file"]
        write_atomic(out / name, (export_dir / name).read_bytes())
        files[key] = name
    for extra in ("labels.txt", PARITY_MD, PARITY_JSON):
        if (export_dir / extra).is_file():
            write_atomic(out / extra, (export_dir / extra).read_bytes())
    try:
        golden = golden_vectors(out, files)
    except RuntimeFailure as e:  # e.g. a model LiteRT cannot load: one line, not a traceback
        raise ExportError(one_line(e, 500)) from None
    write_atomic(out / "golden" / "expected.json", json.dumps(golden, indent=1) + "\n")
    shipped = {k: {**doc["files"][k], "sha256": sha256(out / files[k]), "bytes": (out / files[k]).stat().st_size}
               for k in SHIPPED}
    shipped["labels"] = {"file": "labels.txt", "sha256": sha256(out / "labels.txt"),
                         "bytes": (out / "labels.txt").stat().st_size}
    new_doc = {**doc, "files": shipped, "source_export": str(export_dir),
               "golden": {"file": "golden/expected.json", "cases": len(golden["cases"]),
                          "sha256": sha256(out / "golden" / "expected.json")}}
    write_atomic(out / "metadata.json", json.dumps(new_doc, indent=2, sort_keys=True, default=str) + "\n")
    return new_doc


def _move_into(staging: Path, out: Path) -> None:
    """A new ``out`` is one rename; into an existing one each file is replaced (os.replace),
    leaving files this package does not write alone."""
    if not out.exists():
        os.replace(staging, out)
        return
    for src in sorted(p for p in staging.rglob("*") if p.is_file()):
        dst = out / src.relative_to(staging)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)


def main(argv: list[str] | None = None) -> int:
    p = ArgumentParser(prog="python -m export.android", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("export_dir", type=Path, help="a folder written by python -m export (with parity.json)")
    p.add_argument("--out", type=Path, required=True, help="destination, e.g. android_demo_assets/spoken_digit")
    p.add_argument("--allow-unchecked", action="store_true", help="ship even without a passed parity check")
    args = p.parse_args(argv)
    try:
        doc = package(args.export_dir, args.out, args.allow_unchecked)
    except (ExportError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {', '.join(f['file'] for f in doc['files'].values())}, golden/ ({doc['golden']['cases']} cases)")
    return 0


if __name__ == "__main__":
    from runtime.cli import exit_with

    exit_with(main, "python -m export.android")
