"""Export one Keras model to every format, with metadata inside and beside the files.

    export_model(source, representative, config, test=None) -> metadata dict

Writes into ``config.out_dir``: the artifacts of ``export.config.ARTIFACTS``,
``model.keras`` (the reference for parity), ``labels.txt``, ``metadata.json``
and, when held-out audio is given, ``parity.json`` / ``parity.md``. Every
artifact is converted in memory first and then written atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from runtime.metadata import LABELS_NAME, MetadataError, ModelMetadata

from export import onnx_export, tflite
from export.audio import WindowSet
from export.check import PARITY_JSON, PARITY_MD
from export.config import ARTIFACTS, CALIBRATED_KEYS, ExportConfig, ExportError
from export.files import ensure_writable, save_keras_atomic, sha256, write_atomic
from export.loading import Source
from export.parity import compare, non_finite_windows
from export.quiet import converter_chatter_dropped
from export.sizes import onnx_front_end_bytes, tflite_front_end_bytes

REFERENCE_NAME = "model.keras"
METADATA_NAME = "metadata.json"
RUN_FILES = ("run.json", "result.json", "summary.json")  # what python -m train writes: --out must not be a run


def preprocessing_text(model_config) -> str:
    from train.config import TWO_D
    from train.models import get_entry

    text = f"per-sample RMS normalisation (x / max(rms(x), {model_config.rms_floor:g}))"
    if get_entry(model_config.name).family == TWO_D:
        text += (
            f"; log-mel front end: STFT (n_fft {model_config.n_fft}, hop {model_config.hop_length}, Hann, "
            f"pad_end) -> magnitude -> {model_config.n_mels} mel bands "
            f"({model_config.fmin:g}-{model_config.fmax or model_config.sample_rate / 2:g} Hz) -> "
            f"log(mel + {model_config.mel_log_floor:g})"
        )
    if model_config.name == "rollmix":
        text += f"; {model_config.roll_shifts} fixed circular shifts (k*N/{model_config.roll_shifts})"
    return text


def model_metadata(source: Source, config: ExportConfig) -> ModelMetadata:
    """The metadata every file carries; a value it refuses is an ExportError (export's one-line contract)."""
    window = int(source.model.inputs[0].shape[1])
    try:
        return ModelMetadata(
            name=source.model_config.name,
            labels=source.labels,
            sample_rate=int(source.model_config.sample_rate),
            window_samples=window,
            hop_samples=config.hop_samples or window // 2,
            input_dtype="float32",
            preprocessing=preprocessing_text(source.model_config),
            config=source.model_config.to_dict(),
            version=config.version,
        )
    except MetadataError as e:
        raise ExportError(f"cannot write the model metadata: {e}") from None


def keras_probs(model, x: np.ndarray, batch: int = 16) -> np.ndarray:
    """Keras probabilities (n, C) float32 for windows (n, window) float32."""
    return np.concatenate([np.asarray(model(x[i:i + batch], training=False)) for i in range(0, len(x), batch)])


def _pick(source: Source, probe: np.ndarray, candidates: dict, run, what: str, log) -> tuple[dict, str, dict]:
    """Build each candidate ({name: () -> bytes}), run it on ``probe`` windows with ``run(bytes, x)``
    and keep the one that agrees best with Keras (top-1, then mean probability difference).
    Returns ({name: bytes} of those built, chosen name, {name: measurements or error})."""
    ref = keras_probs(source.model, probe)
    none = np.full(len(probe), -1)
    built, report = {}, {}
    for name, build in candidates.items():
        try:
            data = build()
        except ExportError:
            raise
        except Exception as e:  # converter errors: record, try the other candidate
            report[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
            continue
        stats = compare(ref, run(data, probe), none)
        report[name] = {"bytes": len(data), "top1_agreement": stats["top1_agreement"],
                        "max_prob_diff": stats["max_prob_diff"], "mean_prob_diff": stats["mean_prob_diff"],
                        "non_finite_windows": stats["non_finite_windows"]}
        built[name] = data
        if len(candidates) > 1:
            log(f"  {what}, {name}: agreement {stats['top1_agreement']:.1%}, max diff {stats['max_prob_diff']:.3f}")
    if not built:
        raise ExportError(f"{what} conversion failed: {report}")
    # a candidate with NaN/inf outputs can still "agree" on top-1 (argmax of NaN is 0): never prefer it
    chosen = min(built, key=lambda m: (report[m]["non_finite_windows"] > 0, -report[m]["top1_agreement"],
                                       report[m]["mean_prob_diff"]))
    if report[chosen]["non_finite_windows"]:
        raise ExportError(f"{what}: every candidate ({', '.join(built)}) gives NaN/inf outputs on the calibration "
                          f"windows, though Keras does not")
    return built, chosen, report


def spread(n: int, k: int) -> np.ndarray:
    """At most ``k`` indices of ``range(n)``, evenly spaced from the first to the last. The calibration set
    is in file order (by class, for most datasets): its first 32 windows were FSDD's '0's and '1's only."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


def _full_int8(cf, source: Source, rep: np.ndarray, mode: str, log) -> tuple[bytes, dict]:
    """Full-integer TFLite; in ``auto`` mode both front-end choices are built
    and measured against Keras on the calibration windows."""
    modes = ("int8", "float") if mode == "auto" else (mode,)
    probe = rep[spread(len(rep), 32)]
    candidates = {m: (lambda m=m: tflite.convert_full_int8(cf, rep, float_front_end=(m == "float"))) for m in modes}
    built, chosen, report = _pick(source, probe, candidates, tflite.run_tflite, "full-int8 front end", log)
    for m, data in built.items():
        report[m]["float_ops"] = sorted(set(tflite.float_ops(data)))
    return built[chosen], {"mode": mode, "chosen": chosen, "measured_on": f"{len(probe)} calibration windows",
                              "candidates": report}


def _onnx_int8(onnx_float: bytes, source: Source, rep: np.ndarray, mode: str, log) -> tuple[bytes, dict]:
    """Static int8 ONNX; in ``auto`` mode percentile and min-max calibration are both built and
    measured against Keras on all calibration windows (onnxruntime is quick; TFLite's probe uses 32).
    Neither calibration wins on every model (benchmarks/results/quant_probe_*.md), hence both."""
    methods = onnx_export.CALIBRATIONS if mode == "auto" else (mode,)
    candidates = {m: (lambda m=m: onnx_export.convert_int8(onnx_float, rep, calibration=m)) for m in methods}
    built, chosen, report = _pick(source, rep, candidates, onnx_export.run_onnx, "int8 ONNX calibration", log)
    return built[chosen], {"mode": mode, "chosen": chosen, "measured_on": f"{len(rep)} calibration windows",
                              "candidates": report}


def convert_all(source: Source, meta: ModelMetadata, rep: np.ndarray, config: ExportConfig, log=print):
    """All selected artifacts as {key: bytes} (with metadata inside) and notes per artifact."""
    window = meta.window_samples
    cf = tflite.frozen_function(source.model, window)
    out, notes = {}, {}
    onnx_float = tflite_float = None
    for a in config.artifacts:
        t0 = time.perf_counter()
        note = {}
        with converter_chatter_dropped():  # their routine notices; real warnings and failures pass
            if a.key == "tflite_float32":
                data = tflite_float = tflite.convert_float32(cf)
            elif a.key == "tflite_float16":
                data = tflite.convert_float16(cf)
            elif a.key == "tflite_dynamic_int8":
                data = tflite.convert_dynamic_int8(cf, tflite_float)  # reuses the float32 weights when converted
            elif a.key == "tflite_int8":
                data, note["front_end"] = _full_int8(cf, source, rep, config.front_end, log)
                note["float_ops"] = sorted(set(tflite.float_ops(data)))
            elif a.key in ("onnx_float32", "onnx_int8"):
                onnx_float = onnx_float or onnx_export.convert_float32(source.model, window, config.opset)
                if a.key == "onnx_float32":
                    data = onnx_float
                else:
                    data, note["calibration"] = _onnx_int8(onnx_float, source, rep, config.onnx_calibration, log)
            else:  # pragma: no cover - ExportConfig validates keys
                raise ExportError(f"unknown artifact {a.key}")
            if a.kind == "tflite":
                note["front_end_constant_bytes"] = tflite_front_end_bytes(data)
                data = _tflite_meta(data, meta, a.description)
            else:
                note["front_end_constant_bytes"] = onnx_front_end_bytes(data)
                data = onnx_export.add_metadata(data, meta, a.description)
        note["convert_seconds"] = round(time.perf_counter() - t0, 2)
        out[a.key], notes[a.key] = data, note
        log(f"  {a.filename}: {len(data):,} bytes ({note['convert_seconds']} s)")
    return out, notes


def _tflite_meta(data: bytes, meta: ModelMetadata, description: str) -> bytes:
    from export.tflite_metadata import add_metadata

    return add_metadata(data, meta, description)


def export_model(source: Source, representative: WindowSet | None, config: ExportConfig,
                 test: WindowSet | None = None, data_info: dict | None = None, log=print) -> dict:
    """Export ``source`` as configured; returns the metadata.json dict.

    ``representative``: calibration windows (n, window) float32 from the
    model's training data; ``None`` when no format needs calibration
    (:data:`CALIBRATED_KEYS`). ``test``: held-out windows for the parity check
    (run when ``config.check``). Raises :class:`ExportError` (one line).
    """
    from train.macs import count_macs
    from train.models import get_entry, trainable_params

    run_file = next((n for n in RUN_FILES if (Path(config.out_dir) / n).is_file()), None)
    if run_file:  # model.keras there is a training checkpoint: the export's stripped copy would replace it
        raise ExportError(f"{config.out_dir} holds a training run ({run_file}): exporting there would overwrite "
                          "its model.keras; give another --out")
    if Path(source.path).resolve() == (Path(config.out_dir) / REFERENCE_NAME).resolve():
        raise ExportError(f"{source.path} is the model being exported: exporting into its folder would overwrite "
                          "it with the export's copy; give another --out")
    out_dir = ensure_writable(config.out_dir)
    written = [a.filename for a in ARTIFACTS] + [REFERENCE_NAME, LABELS_NAME, METADATA_NAME, PARITY_JSON, PARITY_MD]
    folders = [n for n in written if (out_dir / n).is_dir()]
    if folders:  # found now, not as an IsADirectoryError after minutes of conversion
        raise ExportError(f"{out_dir / folders[0]} is a folder, where the export writes a file: move it or give "
                          "another --out")
    meta = model_metadata(source, config)
    for name, ws in (("representative", representative), ("test", test)):
        if ws is not None and ws.x.shape[1] != meta.window_samples:
            raise ExportError(f"{name} windows have {ws.x.shape[1]} samples, the model wants {meta.window_samples}")
    calibrated = sorted(CALIBRATED_KEYS & {a.key for a in config.artifacts})
    if representative is None and calibrated:
        raise ExportError(f"{', '.join(calibrated)} need(s) representative audio for calibration")
    if representative is not None and len(representative) == 0:
        raise ExportError("the representative set is empty")
    if representative is None:  # float formats only: the divergence check below still gets varied windows
        from runtime.signals import calibration_windows

        rep = calibration_windows(16, meta.window_samples, meta.sample_rate)
    else:
        rep = representative.subset(config.max_representative).x
    # A diverged model (NaN weights) converts without complaint and its files "agree" with Keras
    # (argmax of NaN is 0 everywhere): refuse it before minutes of conversion, --no-check or not.
    bad = non_finite_windows(keras_probs(source.model, rep))
    if bad:
        raise ExportError(f"the model gives NaN/inf outputs on {bad} of {len(rep)} calibration windows "
                          f"({source.path.name}): nothing worth exporting (did training diverge?)")
    log(f"exporting {meta.name} ({meta.window_samples} samples @ {meta.sample_rate} Hz) -> {out_dir}")
    blobs, notes = convert_all(source, meta, rep, config, log)

    # A parity report of an earlier export into this folder judged other files: drop it before
    # the new ones land, so only a check of these artifacts (below, or export.check) vouches for them.
    for stale in (PARITY_JSON, PARITY_MD):
        (out_dir / stale).unlink(missing_ok=True)
    # Formats of an earlier export into this folder that this one does not write would sit beside the
    # new metadata.json, which no longer lists them: files of another model that an app could pick up.
    for a in ARTIFACTS:
        if a not in config.artifacts and (out_dir / a.filename).is_file():
            (out_dir / a.filename).unlink()
            log(f"  removed {a.filename} of an earlier export (not among --formats)")
    for a in config.artifacts:
        write_atomic(out_dir / a.filename, blobs[a.key])
    save_keras_atomic(source.model, out_dir / REFERENCE_NAME)
    write_atomic(out_dir / LABELS_NAME, "\n".join(meta.labels) + "\n")

    entry = get_entry(meta.name)
    files = {a.key: {"file": a.filename, "bytes": (out_dir / a.filename).stat().st_size,
                     "sha256": sha256(out_dir / a.filename), "kind": a.kind, "precision": a.precision,
                     "description": a.description, **notes[a.key]} for a in config.artifacts}
    for key, name in (("reference_keras", REFERENCE_NAME), ("labels", LABELS_NAME)):
        files[key] = {"file": name, "bytes": (out_dir / name).stat().st_size, "sha256": sha256(out_dir / name)}
    doc = {
        **json.loads(meta.to_json()),
        "family": entry.family,
        "input": {"name": "pcm", "shape": [1, meta.window_samples], "dtype": "float32",
                  "range": "[-1, 1] raw mono PCM", "channels": 1},
        "output": {"shape": [1, len(meta.labels)], "dtype": "float32", "meaning": "softmax probabilities"},
        "params": trainable_params(source.model),
        "macs": int(count_macs(source.model)["total"]),
        "training": source.summary or {"note": "no training summary (model file exported directly)"},
        "source_model": str(source.path),
        "data": data_info or {},
        "representative_windows": int(len(rep)) if representative is not None else 0,
        "files": files,
    }
    write_atomic(out_dir / METADATA_NAME, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    if config.check and test is not None:
        from export.check import check_export

        check_export(out_dir, test, config, model=source.model, log=log)
    return doc


if __name__ == "__main__":  # a library module: `python -m` would import it, do nothing and exit 0
    raise SystemExit("error: export.exporter is a library module, not a command (see python -m export --help)")
