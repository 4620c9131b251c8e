"""``python -m export``: argparse -> ExportConfig -> export_model."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from export.audio import LABEL_SOURCES, load_folder
from export.check import INT8_DROP_POINTS, add_int8_drop_option, int8_drop_fraction
from export.config import (ARTIFACT_KEYS, CALIBRATED_KEYS, FRONT_END_MODES, ONNX_CALIBRATIONS, ExportConfig,
                           ExportError, require_positive)
from export.loading import FOLD_HELP
from runtime.cli import ArgumentParser
from runtime.limits import MAX_WINDOW_SECONDS
from runtime.metadata import MetadataError

DESCRIPTION = """\
Export a trained model to TFLite (float32, float16, dynamic-range int8,
full-integer int8) and ONNX (float32, int8), with metadata inside every file,
metadata.json (hashes, params, MACs, training summary) beside them, and a
parity check against the Keras model on held-out audio.

examples:
  python -m export --run runs/lv18_fsdd --data ../shared/data/fsdd --out exports/lv18_fsdd
  python -m export --run runs/lv18_fsdd --fold fold_2 --data ../shared/data/fsdd --out exports/lv18_f2
  python -m export --model lv18.keras --rep-data data/train --test-data data/test \\
      --label-source prefix --labels 0,1,2,3,4,5,6,7,8,9 --out exports/lv18
"""


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m export", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", type=Path, help="training run folder (runs/NAME)")
    src.add_argument("--model", type=Path, help="a .keras model file")
    p.add_argument("--out", type=Path, required=True, help="export folder (exports/NAME)")
    p.add_argument("--fold", help=FOLD_HELP)
    p.add_argument("--data", type=Path,
                   help="--run: the dataset folder the run was trained on; rebuilds the run's folds so int8 "
                        "calibration uses the checkpoint's training clips and the parity check its test clips")
    p.add_argument("--rep-data", type=Path,
                   help="folder of training audio for full-int8 calibration (tflite_int8, onnx_int8; default: "
                        "train_dir in the checkpoint's config.json, which python -m train does not write: with "
                        "--run give --data)")
    p.add_argument("--test-data", type=Path,
                   help="folder of held-out audio for the parity check (default: test_dir in the checkpoint's "
                        "config.json, which python -m train does not write: with --run give --data)")
    p.add_argument("--label-source", choices=LABEL_SOURCES, default=None,
                   help="label of a clip: its parent folder name (default), the file-name prefix before '_', or none")
    p.add_argument("--labels", help="comma-separated class names in output order, for a model without config.json "
                   "(where config.json names them, as in every --run, a different list is refused)")
    p.add_argument("--sample-rate", type=int,
                   help="a model without config.json: its sample rate in Hz (where config.json gives the rate, "
                        "as in every --run, leave it out: a different value is refused)")
    # the names listed with ", " (not the comma-joined default): argparse wraps help at spaces only,
    # and broke the joined list mid-name ("onnx_i nt8")
    p.add_argument("--formats", default=",".join(ARTIFACT_KEYS), metavar="LIST",
                   help=f"comma-separated artifacts to write (default: all): {', '.join(ARTIFACT_KEYS)}")
    p.add_argument("--front-end", choices=FRONT_END_MODES, default="auto",
                   help="full-int8 TFLite: quantize the preprocessing/mel front end (int8), keep it float, "
                        "or measure both and keep the better (auto, default)")
    p.add_argument("--onnx-calibration", choices=ONNX_CALIBRATIONS, default="percentile",
                   help="int8 ONNX activation ranges: 99.999th percentile (default), min-max, or build both and keep "
                        "the one closer to Keras on the calibration windows (auto). Neither wins on every model: "
                        "when model_int8.onnx fails the parity check, try the others")
    p.add_argument("--hop", type=int, help="suggested streaming hop in samples (default: half a window)")
    p.add_argument("--version", default="1", help="model version written into the files: a whole number, as "
                   "ONNX's model_version is (default 1)")
    p.add_argument("--max-rep", type=int, default=200, help="most calibration windows (default 200)")
    p.add_argument("--max-clips", type=int, default=None, help="use at most this many clips per folder")
    p.add_argument("--no-check", action="store_true", help="skip the parity check")
    add_int8_drop_option(p)
    return p


def run(args) -> dict:
    from export.check import require_labels
    from export.exporter import export_model, model_metadata
    from export.loading import from_model_file, from_run

    require_positive(("--sample-rate", args.sample_rate), ("--max-clips", args.max_clips),
                     ("--max-rep", args.max_rep), ("--hop", args.hop))
    labels = parse_labels(args.labels)
    require_used(args)
    config = ExportConfig(out_dir=args.out, formats=tuple(f.strip() for f in args.formats.split(",") if f.strip()),
                          version=args.version, hop_samples=args.hop, max_representative=args.max_rep,
                          front_end=args.front_end, onnx_calibration=args.onnx_calibration,
                          check=not args.no_check, int8_max_accuracy_drop=int8_drop_fraction(args.max_int8_drop))
    source = from_run(args.run, args.fold, labels, args.sample_rate) if args.run else from_model_file(args.model, labels, args.sample_rate)
    require_hop(args.hop, source.model_config.sample_rate)
    model_metadata(source, config)  # labels from config.json, sizes: refused now, not after decoding the audio
    if args.run and args.data:
        from export.run_data import run_windows

        rep, test, data_info = run_windows(args.run, source.path, args.data, config.max_windows_per_clip, args.max_clips)
        return export_model(source, rep, config, test if config.check else None, data_info)
    label_source = args.label_source or source.info.get("label_source", "parent")
    rep_dir = args.rep_data or _dir(source.info.get("train_dir"))
    test_dir = args.test_data or _dir(source.info.get("test_dir"))
    calibrated = sorted(CALIBRATED_KEYS & set(config.formats))
    if rep_dir is None and calibrated:
        raise ExportError(f"no representative audio to calibrate {', '.join(calibrated)}: pass --data DATASET_FOLDER "
                          "(with --run) or --rep-data FOLDER, or leave those formats out of --formats")
    sr, window = source.model_config.sample_rate, int(source.model.inputs[0].shape[1])
    rep = None if rep_dir is None else load_folder(rep_dir, sr, window, label_source, config.max_windows_per_clip,
                                                   args.max_clips)
    test = None
    if config.check:
        if test_dir is None:
            raise ExportError("no held-out audio for the parity check: pass --test-data FOLDER (or --no-check)")
        test = load_folder(test_dir, sr, window, label_source, config.max_windows_per_clip, args.max_clips)
        # fail now, not after minutes of conversion, when the int8 artifacts cannot be judged
        require_labels(test, source.labels, config.formats)
    # absolute: export.check reads test_dir from any folder it runs in
    data_info = {"representative_dir": str(rep_dir.resolve()) if rep_dir else None, "test_dir": str(test_dir.resolve()) if test_dir else None,
                 "label_source": label_source, "max_test_clips": args.max_clips,
                 "max_windows_per_clip": config.max_windows_per_clip}
    return export_model(source, rep, config, test, data_info)


def require_used(args) -> None:
    """Refuse options that this combination would silently ignore (the export would still
    "succeed", just not as asked)."""
    if args.fold is not None and not args.run:
        raise ExportError("--fold picks a checkpoint of --run; with --model it has no effect: leave it out")
    if args.data is not None and not args.run:
        raise ExportError("--data is the dataset of --run; with --model give --rep-data (and --test-data)")
    if args.no_check and args.max_int8_drop != INT8_DROP_POINTS:
        raise ExportError("--max-int8-drop is a parity-check threshold; with --no-check it has no effect: leave it out")
    formats = {f.strip() for f in args.formats.split(",")}
    for option, value, default, key in (("--front-end", args.front_end, "auto", "tflite_int8"),
                                        ("--onnx-calibration", args.onnx_calibration, "percentile", "onnx_int8")):
        if value != default and key not in formats:
            raise ExportError(f"{option} shapes {key}, which --formats leaves out: leave {option} out (or add {key})")
    if not args.version.isdigit():  # ONNX's model_version is an integer: "2.1" was written there as 0
        raise ExportError(f"--version must be a whole number (ONNX's model_version is one), got {args.version!r}")
    if args.run and args.data is not None:
        ignored = [o for o, v in (("--rep-data", args.rep_data), ("--test-data", args.test_data),
                                  ("--label-source", args.label_source)) if v is not None]
        if ignored:
            raise ExportError(f"{', '.join(ignored)} with --data: the run's own folds give the audio and labels; "
                              f"leave {'it' if len(ignored) == 1 else 'them'} out (or drop --data)")


def parse_labels(text: str | None) -> list[str] | None:
    """--labels as a list of class names. Checked here so the message names the option: the
    model metadata refuses empty or repeated names too, but only after the model is loaded
    and with no word of where they came from."""
    if text is None:
        return None
    labels = [s.strip() for s in text.split(",")]
    if not all(labels):
        raise ExportError(f"--labels: empty class name in {text!r} (comma-separated names, e.g. --labels yes,no)")
    repeated = sorted({v for v in labels if labels.count(v) > 1})
    if repeated:
        raise ExportError(f"--labels: repeated class name(s) {', '.join(repeated)}: each name labels one output")
    return labels


def require_hop(hop: int | None, sample_rate: int) -> None:
    """--hop is in samples; the metadata caps it (like the window) at MAX_WINDOW_SECONDS."""
    if hop is not None and hop > MAX_WINDOW_SECONDS * sample_rate:
        raise ExportError(f"--hop {hop} samples is longer than {MAX_WINDOW_SECONDS} s at the model's "
                          f"{sample_rate} Hz (at most {MAX_WINDOW_SECONDS * sample_rate})")


def _dir(value) -> Path | None:
    return Path(value) if isinstance(value, str) and value else None


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = parser().parse_args(argv)
    try:
        doc = run(args)
    except (ExportError, MetadataError) as e:  # MetadataError: ModelMetadata refusing a value (sizes, labels)
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"exported {doc['name']}: {len(doc['files']) - 2} artifacts in {args.out}")
    return 0


if __name__ == "__main__":
    from runtime.cli import exit_with

    exit_with(main, "python -m export")
