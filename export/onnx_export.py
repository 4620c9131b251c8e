"""Keras -> ONNX float32 (tf2onnx) and int8 (onnxruntime static quantization, QDQ).

Input ``pcm`` (1, window_samples) float32, output ``probs`` (1, C) float32.
``metadata_props`` carry the ``tinyaudio`` JSON (``runtime.metadata.ONNX_KEY``)
plus flat readable keys.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from runtime.metadata import ONNX_KEY, ModelMetadata

from export.config import ONNX_CALIBRATIONS, ExportError
from export.quiet import calibration_prints_dropped

INPUT_NAME = "pcm"
OUTPUT_NAME = "probs"


def convert_float32(model, window: int, opset: int = 17) -> bytes:
    """ONNX bytes of ``model`` (checked with ``onnx.checker``)."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    spec = [tf.TensorSpec((1, window), tf.float32, name=INPUT_NAME)]
    fn = tf.function(lambda pcm: {OUTPUT_NAME: model(pcm, training=False)}, input_signature=spec)
    try:
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=opset)
    except Exception as e:  # tf2onnx raises many types for unsupported graphs
        raise ExportError(f"tf2onnx could not convert {model.name}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


class _Reader:
    """onnxruntime CalibrationDataReader over windows (n, window) float32."""

    def __init__(self, windows: np.ndarray):
        self._it = iter([{INPUT_NAME: np.asarray(w, np.float32)[None, :]} for w in windows])

    def get_next(self):
        return next(self._it, None)

    def rewind(self):  # pragma: no cover - not used by quantize_static's default path
        pass


def front_end_nodes(proto) -> list[str]:
    """Nodes of the in-graph preprocessing (RMS normalisation, log-mel front end)."""
    from export.tflite import FRONT_END_PATTERN

    return [n.name for n in proto.graph.node if FRONT_END_PATTERN.search("/" + n.name)]


CALIBRATIONS = tuple(m for m in ONNX_CALIBRATIONS if m != "auto")  # what convert_int8 itself builds


def convert_int8(float_bytes: bytes, representative: np.ndarray, float_front_end: bool = True,
                 calibration: str = "percentile") -> bytes:
    """Static int8 quantization (QDQ, per-channel weights, percentile calibration by default).

    Percentile (99.999 %) rather than MinMax calibration, because a few extreme activations
    otherwise stretch the int8 range; ``float_front_end``: leave the preprocessing nodes
    (RMS normalisation, log-mel) in float. Both choices are measured against their
    alternatives by ``python -m export.quant_probe`` (benchmarks/results/quant_probe_*.md).
    """
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    if len(representative) == 0:
        raise ExportError("the representative set is empty: ONNX static quantization needs calibration audio")
    if calibration not in CALIBRATIONS:
        raise ExportError(f"unknown calibration {calibration!r}; choose from: {', '.join(CALIBRATIONS)}")
    method = {"percentile": CalibrationMethod.Percentile, "minmax": CalibrationMethod.MinMax}[calibration]
    reader = type("Reader", (_Reader, CalibrationDataReader), {})(representative)
    exclude = front_end_nodes(onnx.load_from_string(float_bytes)) if float_front_end else []
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(float_bytes)
        with calibration_prints_dropped():
            quantize_static(
                str(src), str(dst), reader,
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                nodes_to_exclude=exclude,
                calibrate_method=method,
            )
        proto = onnx.load(str(dst))
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def add_metadata(onnx_bytes: bytes, meta: ModelMetadata, description: str) -> bytes:
    """``onnx_bytes`` with ``metadata_props``: ``tinyaudio`` (JSON) and flat keys."""
    import onnx

    proto = onnx.load_from_string(onnx_bytes)
    props = {
        ONNX_KEY: meta.to_json(),
        "name": meta.name,
        "version": meta.version,
        "labels": json.dumps(list(meta.labels)),
        "sample_rate": str(meta.sample_rate),
        "channels": "1",
        "window_samples": str(meta.window_samples),
        "hop_samples": str(meta.hop_samples),
        "input_dtype": meta.input_dtype,
        "preprocessing": meta.preprocessing,
        "description": description,
    }
    del proto.metadata_props[:]
    for k, v in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.doc_string = description
    proto.model_version = int(meta.version) if str(meta.version).isdigit() else 0
    return proto.SerializeToString()


def run_onnx(onnx_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Probabilities (n, C) float32 for windows ``x`` (n, window) float32."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(onnx_bytes, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.asarray([sess.run(None, {name: w[None, :]})[0][0] for w in np.asarray(x, np.float32)], np.float32)


if __name__ == "__main__":  # a library module: `python -m` would import it, do nothing and exit 0
    raise SystemExit("error: export.onnx_export is a library module, not a command (see python -m export --help)")
