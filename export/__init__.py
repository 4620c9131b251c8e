"""tinyaudio.export: Keras zoo models -> TFLite (float32, float16, dynamic int8, full int8) and
ONNX (float32, int8), metadata inside every file, parity-checked against Keras.

    python -m export --run runs/NAME --out exports/NAME
    python -m export.check exports/NAME

TensorFlow is imported lazily, by the functions that need it.
"""

__all__ = ["ARTIFACTS", "ExportConfig", "ExportError", "export_model", "check_export"]


def export_model(*args, **kwargs):
    from export.exporter import export_model as _export

    return _export(*args, **kwargs)


def check_export(*args, **kwargs):
    from export.check import check_export as _check

    return _check(*args, **kwargs)


def __getattr__(name: str):
    # ARTIFACTS, ExportConfig, ExportError on first use, not at import: a submodule the package
    # had already imported makes `python -m export.config` print a runpy RuntimeWarning
    if name in ("ARTIFACTS", "ExportConfig", "ExportError"):
        from export import config

        return getattr(config, name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")
