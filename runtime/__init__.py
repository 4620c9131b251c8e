"""tinyaudio.runtime: the on-device streaming engine (no TensorFlow, no Keras).

    from runtime import load_model, StreamingEngine, EngineConfig
    model = load_model("model.tflite", threads=2)
    engine = StreamingEngine(model, EngineConfig(smooth=3), input_rate=48000)
    for result in engine.push(block):      # block: float32 (frames,) or (frames, channels)
        print(result.top, result.latency_s)

CLI: ``python -m runtime.live --help``. Design notes: docs/runtime.md.
"""

from runtime.engine import EngineConfig, StreamingEngine, WindowResult
from runtime.errors import AudioSourceError, ConfigError, InferenceError, InputTypeError, MetadataError, ModelLoadError, RuntimeFailure
from runtime.metadata import ModelMetadata, read_metadata
from runtime.model import Model, load_model

__all__ = [
    "AudioSourceError",
    "ConfigError",
    "EngineConfig",
    "InferenceError",
    "InputTypeError",
    "MetadataError",
    "Model",
    "ModelLoadError",
    "ModelMetadata",
    "RuntimeFailure",
    "StreamingEngine",
    "WindowResult",
    "load_model",
    "read_metadata",
]
