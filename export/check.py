"""Parity check: every exported artifact against the Keras model on held-out audio.

    python -m export.check exports/NAME [--data FOLDER] [--label-source prefix]

Writes ``parity.json`` and ``parity.md`` into the export folder. Float
artifacts must agree with Keras (top-1) on >= 99.5 % of windows; int8
artifacts may lose <= 1 accuracy point. A failure names the artifact, exits 1.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from export.audio import LABEL_SOURCES, WindowSet, load_folder
from export.config import ARTIFACT_KEYS, ONNX_CALIBRATIONS, ExportConfig, ExportError, artifact, require_positive
from export.files import sha256, write_atomic
from export.parity import Verdict, compare, judge, label_indices, non_finite_rows
from runtime.cli import ArgumentParser

PARITY_JSON = "parity.json"
PARITY_MD = "parity.md"
INT8_DROP_POINTS = ExportConfig.int8_max_accuracy_drop * 100  # --max-int8-drop's default


def read_json(path: Path) -> dict:
    """A JSON object file; a corrupt or non-object file is an ExportError, not a traceback."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ExportError(f"{path}: unreadable ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("files", {}), dict):
        raise ExportError(f"{path}: unreadable (not the JSON object an export writes)")
    return data


def read_export(out_dir: Path) -> dict:
    path = Path(out_dir) / "metadata.json"
    if not path.is_file():
        raise ExportError(f"not an export folder (no metadata.json): {out_dir}")
    doc = read_json(path)
    # what the check reads from it, named here rather than met as a KeyError halfway through
    for key, kind in (("sample_rate", int), ("window_samples", int), ("labels", list), ("files", dict)):
        value = doc.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (kind is int and value < 1):
            raise ExportError(f"{path}: no valid {key!r} (an edited or foreign metadata.json? export again)")
    return doc


def require_labels(test: WindowSet, classes, artifact_keys) -> None:
    """Int8 artifacts are judged on the accuracy they lose, which needs labelled windows.
    A label source that labels nothing (e.g. "parent" on a flat folder) would otherwise
    report "all artifacts pass" with int8 "not judged", and replace a real parity report."""
    if not any(artifact(k).precision == "int8" for k in artifact_keys if k in ARTIFACT_KEYS):
        return
    if (label_indices(test.labels, classes) >= 0).any():
        return
    found = sorted({v for v in test.labels if v is not None})
    seen = f"labels found: {_first(found)}" if found else "no labels"
    classes = [str(c) for c in classes]
    if found and all(c == f"class_{i}" for i, c in enumerate(classes)):  # export.loading's names for unnamed outputs
        remedy = (f"the model's outputs have no names (no config.json beside it): give them with --labels "
                  f"in output order, e.g. --labels {','.join(found[:len(classes)])}")
    else:
        remedy = "choose the --label-source that names the classes (parent folder or file-name prefix)"
    raise ExportError(f"cannot judge the int8 artifacts: none of the {len(test)} parity windows is labelled with "
                      f"one of the model's classes ({_first(classes)}; {seen}); {remedy}")


def _first(names, n: int = 3) -> str:
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")


def run_artifact(kind: str, path: Path, x):
    if kind == "tflite":
        from export.tflite import run_tflite

        return run_tflite(path.read_bytes(), x)
    from export.onnx_export import run_onnx

    return run_onnx(path.read_bytes(), x)


def probe_windows(window: int, sample_rate: int) -> tuple[list[str], np.ndarray]:
    """The golden-vector probes (silence, noise, sines, chirps, a click, a square) plus noise under the
    models' RMS floor: inputs held-out audio never holds, where a converter's rounding shows as NaN
    (a float16 file once gave NaN on every class for silence). Names and (n, window) float32."""
    from runtime.signals import noise, probe_set

    probes = probe_set(window, sample_rate)
    probes["noise_under_rms_floor"] = noise(window, 1e-5, seed=3)  # PerSampleNormalization floors the RMS at 1e-4
    return list(probes), np.stack(list(probes.values()))


def _non_finite_probes(names: list[str], probs) -> list[str]:
    return [name for name, bad in zip(names, non_finite_rows(probs)) if bad]


def verify_side_files(out_dir: Path, doc: dict, keys=("labels", "reference_keras")) -> None:
    """ExportError unless labels.txt and model.keras are the bytes metadata.json recorded. A labels.txt
    edited to other names would ship (the artifacts carry their own copy, an app reads this one), and a
    swapped model.keras made every artifact "disagree" with a reference that was never exported."""
    for key in keys:
        info = doc["files"].get(key)
        if not isinstance(info, dict) or "sha256" not in info:
            continue  # an export from before these entries: nothing recorded to compare with
        path = Path(out_dir) / str(info.get("file"))
        if not path.is_file():
            raise ExportError(f"{path.name} is missing from {out_dir}: not a complete export")
        if sha256(path) != info["sha256"]:
            raise ExportError(f"{path.name} in {out_dir} does not match the SHA-256 in metadata.json "
                              "(changed after the export): export again")


def check_export(out_dir: Path, test: WindowSet, config: ExportConfig | None = None,
                 model=None, log=print) -> dict:
    """Run every artifact of the export at ``out_dir`` on ``test`` windows;
    write parity.json / parity.md; raise ExportError naming failing artifacts."""
    from export.exporter import REFERENCE_NAME, keras_probs
    from export.loading import load_keras

    out_dir = Path(out_dir)
    config = config or ExportConfig(out_dir=out_dir)
    doc = read_export(out_dir)
    if len(test) == 0:
        raise ExportError("the parity set is empty")
    if test.x.shape[1] != doc["window_samples"]:
        raise ExportError(f"parity windows have {test.x.shape[1]} samples, the model wants {doc['window_samples']}")
    require_labels(test, doc["labels"], doc["files"])  # before anything is written
    verify_side_files(out_dir, doc, ("labels",) if model is not None else ("labels", "reference_keras"))
    model = model if model is not None else load_keras(out_dir / REFERENCE_NAME)
    truth = label_indices(test.labels, doc["labels"])
    probe_names, probes = probe_windows(doc["window_samples"], doc["sample_rate"])
    # Each model runs once on the held-out windows followed by the probes (one load of each file).
    n, x = len(test), np.concatenate([test.x, probes])
    ref, ref_probes = np.split(keras_probs(model, x), [n])
    keras_stats = compare(ref, ref, truth)
    keras_bad_probes = _non_finite_probes(probe_names, ref_probes)
    rows, failures = {}, []
    if keras_bad_probes:
        failures.append(f"{REFERENCE_NAME} (the Keras reference gives NaN/inf outputs on the probe(s) "
                        f"{', '.join(keras_bad_probes)}: the model itself is broken)")
    if keras_stats["non_finite_windows"]:
        # Nothing to compare against: every artifact would "agree" with NaN (argmax 0 == argmax 0).
        # The failed report is still written, so a passing parity.json of an earlier export into
        # this folder cannot let export.android ship this model.
        keras_stats["accuracy"] = None
        failures.append(f"{REFERENCE_NAME} (the Keras reference gives NaN/inf outputs on "
                        f"{keras_stats['non_finite_windows']} of {len(test)} windows: the model itself is broken)")
    for key, info in doc["files"].items() if not failures else ():
        if info.get("kind") not in ("tflite", "onnx"):
            continue
        path = out_dir / info["file"]
        if not path.is_file():
            raise ExportError(f"{key}: artifact missing: {path}")
        if sha256(path) != info["sha256"]:
            raise ExportError(f"{key}: {path.name} does not match the SHA-256 in metadata.json")
        probs, probe_probs = np.split(run_artifact(info["kind"], path, x), [n])
        stats = _finite_or_none(compare(ref, probs, truth))
        verdict = judge(artifact(key).precision, stats, keras_stats["accuracy"],
                        config.float_min_agreement, config.int8_max_accuracy_drop)
        bad_probes = _non_finite_probes(probe_names, probe_probs)
        if bad_probes and verdict.passed is not False:
            verdict = Verdict(False, f"NaN/inf outputs on the probe(s) {', '.join(bad_probes)}")
        rows[key] = {"file": info["file"], "bytes": path.stat().st_size, "sha256": info["sha256"],
                     "precision": info["precision"],
                     **stats, "non_finite_probes": bad_probes, "passed": verdict.passed, "verdict": verdict.reason}
        log(f"  {info['file']}: {verdict.reason}, max prob diff {_diff(stats['max_prob_diff'])}")
        if verdict.passed is False:
            failures.append(f"{info['file']} ({verdict.reason})")
    report = {
        "model": doc["name"],
        "audio": (doc.get("data") or {}).get("parity_audio"),
        "probes": probe_names,
        "windows": int(len(test)),
        "labelled_windows": int((truth >= 0).sum()),
        "keras_accuracy": keras_stats["accuracy"],
        "thresholds": {"float_min_top1_agreement": config.float_min_agreement,
                       "int8_max_accuracy_drop": config.int8_max_accuracy_drop},
        "artifacts": rows,
        "passed": not failures,
        "failures": failures,
    }
    write_atomic(out_dir / PARITY_JSON, json.dumps(report, indent=2) + "\n")
    write_atomic(out_dir / PARITY_MD, render_markdown(report))
    if failures:
        hint = ""
        if any(f.startswith(artifact("onnx_int8").filename) for f in failures):
            calibration = doc["files"].get("onnx_int8", {}).get("calibration") or {}
            used = calibration.get("chosen", ExportConfig.onnx_calibration)
            tried = {used, calibration.get("mode", used)}  # "auto" already built both: suggest only the other one
            others = " or ".join(m for m in ONNX_CALIBRATIONS if m not in tried)
            hint = f" (int8 ONNX was calibrated by {used}: re-export with --onnx-calibration {others})"
        raise ExportError(f"parity check failed for {doc['name']}: " + "; ".join(failures) + hint)
    return report


def _finite_or_none(stats: dict) -> dict:
    """NaN/inf numbers as None: json.dumps would write them as NaN, which strict JSON readers refuse."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in stats.items()}


def _pct(v) -> str:
    return "–" if v is None else f"{v * 100:.2f} %"


def _diff(v) -> str:
    return "NaN/inf" if v is None else f"{v:.4f}"


def render_markdown(report: dict) -> str:
    lines = [
        f"# Parity: {report['model']}",
        "",
        f"{report['windows']} windows ({report['labelled_windows']} labelled) of "
        f"{report.get('audio') or 'held-out audio'}; "
        f"Keras accuracy {_pct(report['keras_accuracy'])}. Thresholds: float artifacts agree (top-1) with Keras "
        f"on ≥ {report['thresholds']['float_min_top1_agreement']:.1%} of windows; int8 artifacts lose ≤ "
        f"{report['thresholds']['int8_max_accuracy_drop'] * 100:.1f} accuracy "
        f"point{'' if report['thresholds']['int8_max_accuracy_drop'] == 0.01 else 's'}."
        + (f" Every artifact must also give finite outputs on {len(report['probes'])} probe windows "
           f"({', '.join(report['probes'])})." if report.get("probes") else ""),
        "",
        "| artifact | size (bytes) | accuracy | top-1 agreement | max prob diff | verdict |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in report["artifacts"].values():
        mark = {True: "pass", False: "**FAIL**", None: "not judged"}[row["passed"]]
        lines.append(f"| {row['file']} | {row['bytes']:,} | {_pct(row['accuracy'])} | {_pct(row['top1_agreement'])} "
                     f"| {_diff(row['max_prob_diff'])} | {mark}: {row['verdict']} |")
    lines += ["", "Result: " + ("all artifacts pass." if report["passed"] else "FAILED: " + "; ".join(report["failures"])), ""]
    return "\n".join(lines)


def run_test_windows(data: dict, root: Path | None, max_clips: int | None) -> WindowSet:
    """The parity windows of an export made with ``python -m export --run``: the same held-out clips
    of the same fold, rebuilt from the run folder and dataset root it recorded (``root`` overrides the
    dataset root). A folder of class sub-folders would label a dataset such as FSDD wrongly, so it is
    used only when asked for with --label-source."""
    from export.run_data import run_windows

    run_dir, checkpoint = data.get("run_dir"), data.get("checkpoint")
    other = "or check against other labelled audio with --data FOLDER --label-source parent|prefix"
    if not isinstance(run_dir, str) or not isinstance(checkpoint, str):
        raise ExportError("this export was made from a run before python -m export recorded the run folder: "
                          f"export it again, {other}")
    if not (Path(checkpoint).parent / "config.json").is_file():
        raise ExportError(f"the run this export was made from is gone ({checkpoint} with its config.json, recorded at "
                          f"export): run the check where the run folder is, {other}")
    root = root or Path(str(data.get("data_root", "")))
    if max_clips is None and isinstance(data.get("max_clips"), int):
        max_clips = data["max_clips"]
    per_clip = data.get("max_windows_per_clip", 4)
    _, test, _ = run_windows(Path(run_dir), Path(checkpoint), root, per_clip if isinstance(per_clip, int) else 4,
                             max_clips, seed=data["seed"] if isinstance(data.get("seed"), int) else 0, representative=False)
    return test


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m export.check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("export_dir", type=Path, help="an export folder written by python -m export")
    p.add_argument("--data", type=Path,
                   help="folder of held-out audio (default: the one recorded at export). For an export made with "
                   "--run: the dataset root, and the check uses the same held-out clips of the run's fold as the "
                   "export did (rebuilt from the recorded run folder)")
    p.add_argument("--label-source", choices=LABEL_SOURCES,
                   help="label of a clip: parent folder name, file-name prefix before '_', or none. Given for an "
                   "export made with --run, --data is read as a plain folder of labelled clips instead of the run's data")
    p.add_argument("--max-clips", type=int, default=None,
                   help="use at most this many clips, >= 1 (random, fixed seed; default: as at export)")
    add_int8_drop_option(p)
    return p


def add_int8_drop_option(p: argparse.ArgumentParser) -> None:
    """--max-int8-drop, shared by python -m export and python -m export.check."""
    p.add_argument("--max-int8-drop", type=float, default=INT8_DROP_POINTS,
                   metavar="POINTS",
                   help="int8 artifacts may lose at most this many accuracy points against Keras on the parity "
                        "windows (default: %(default)s). One window that flips is 100/N points of N: on a "
                        "small parity set or a weakly trained model, allow more rather than trust luck")


def int8_drop_fraction(points: float) -> float:
    """--max-int8-drop POINTS as the fraction ExportConfig wants; ExportError (one line) outside 0..100."""
    if not 0.0 <= points <= 100.0:  # also refuses NaN
        raise ExportError(f"--max-int8-drop must be between 0 and 100 accuracy points, not {points}")
    return points / 100.0


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        require_positive(("--max-clips", args.max_clips))  # 0 is not "no limit": leave the option out
        config = ExportConfig(out_dir=args.export_dir, int8_max_accuracy_drop=int8_drop_fraction(args.max_int8_drop))
        doc = read_export(args.export_dir)
        data = doc.get("data") or {}
        if data.get("fold") is not None and args.label_source is None:
            test = run_test_windows(data, args.data, args.max_clips)  # exported with --run: the run's own test clips
        else:
            folder = args.data or (Path(data["test_dir"]) if data.get("test_dir") else None)
            if folder is None:
                raise ExportError("no held-out audio: pass --data FOLDER")
            test = load_folder(folder, doc["sample_rate"], doc["window_samples"],
                               args.label_source or data.get("label_source", "parent"),
                               max_windows_per_clip=data.get("max_windows_per_clip", 4),
                               max_clips=args.max_clips if args.max_clips is not None else data.get("max_test_clips"))
        report = check_export(args.export_dir, test, config)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"parity ok: {len(report['artifacts'])} artifacts, {report['windows']} windows -> "
          f"{Path(args.export_dir) / PARITY_MD}")
    return 0


if __name__ == "__main__":
    from runtime.cli import exit_with

    exit_with(main, "python -m export.check")
