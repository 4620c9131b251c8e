"""tinyaudio.export: Keras zoo models -> TFLite (float32, float16, dynamic int8, full int8) and
ONNX (float32, int8), metadata inside every file, parity-checked against Keras.

    python -m export --run runs/NAME --out exports/NAME
    python -m export.check exports/NAME

TensorFlow is imported lazily, by the functions that need it.
"""

from export.config import ARTIFACTS, ExportConfig, ExportError

__all__ = ["ARTIFACTS", "ExportConfig", "ExportError", "export_model", "check_export"]


def export_model(*args, **kwargs):
    from export.exporter import export_model as _export

    return _export(*args, **kwargs)


def check_export(*args, **kwargs):
    from export.check import check_export as _check

    return _check(*args, **kwargs)
