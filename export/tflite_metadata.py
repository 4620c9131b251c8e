"""Standard TFLite Model Metadata for an audio classifier, plus tinyaudio's files.

Written with MediaPipe's generated flatbuffer classes for the metadata schema
(the schema TFLite Support used), so MediaPipe Tasks' AudioClassifier loads the file
unchanged: model name/version/description, input tensor with AudioProperties
(sample rate, channels), output tensor with ``labels.txt`` as its
TENSOR_AXIS_LABELS file. ``tinyaudio.json`` (``runtime.metadata.ModelMetadata``)
is a model-level associated file. Populating is done here, the way
``MetadataPopulator`` does it (metadata buffer named ``TFLITE_METADATA`` in the
model's ``metadata`` list, associated files appended as a zip archive that
``runtime.metadata.read_metadata`` reads back): mediapipe 1.2's Python
populator needs a native module its wheel no longer ships.
"""

from __future__ import annotations

import io
import zipfile

from runtime.metadata import JSON_NAME, LABELS_NAME, ModelMetadata, tflite_associated_files

from export.config import ExportError

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
TFLITE_IDENTIFIER = b"TFL3"
# metadata_schema.fbs: AudioProperties were added in 1.3.0.
MIN_PARSER_VERSION = "1.3.0"


def _metadata_buffer(meta: ModelMetadata, description: str) -> bytes:
    import flatbuffers
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb

    audio = fb.AudioPropertiesT()
    audio.sampleRate = int(meta.sample_rate)
    audio.channels = 1
    inp = fb.TensorMetadataT()
    inp.name = "audio_clip"
    inp.description = (
        f"Raw mono PCM in [-1, 1], float32, {meta.window_samples} samples at {meta.sample_rate} Hz. "
        f"The graph does: {meta.preprocessing}."
    )
    inp.content = fb.ContentT()
    inp.content.contentProperties = audio
    inp.content.contentPropertiesType = fb.ContentProperties.AudioProperties

    labels = fb.AssociatedFileT()
    labels.name = LABELS_NAME
    labels.description = "Class names, one per line, in output order."
    labels.type = fb.AssociatedFileType.TENSOR_AXIS_LABELS
    out = fb.TensorMetadataT()
    out.name = "probability"
    out.description = f"Softmax probabilities over {len(meta.labels)} classes."
    out.content = fb.ContentT()
    out.content.contentProperties = fb.FeaturePropertiesT()
    out.content.contentPropertiesType = fb.ContentProperties.FeatureProperties
    out.stats = fb.StatsT()
    out.stats.max = [1.0]
    out.stats.min = [0.0]
    out.associatedFiles = [labels]

    info = fb.AssociatedFileT()
    info.name = JSON_NAME
    info.description = "tinyaudio model metadata (runtime.metadata.ModelMetadata as JSON)."
    info.type = fb.AssociatedFileType.DESCRIPTIONS

    subgraph = fb.SubGraphMetadataT()
    subgraph.inputTensorMetadata = [inp]
    subgraph.outputTensorMetadata = [out]
    model = fb.ModelMetadataT()
    model.name = meta.name
    model.description = description
    model.version = meta.version
    model.author = "tinyaudio"
    model.subgraphMetadata = [subgraph]
    model.minParserVersion = MIN_PARSER_VERSION
    model.associatedFiles = [info]

    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), METADATA_IDENTIFIER)
    return bytes(b.Output())


def add_metadata(model_bytes: bytes, meta: ModelMetadata, description: str) -> bytes:
    """``model_bytes`` with Model Metadata and the associated files
    ``labels.txt`` and ``tinyaudio.json`` (any existing ones are replaced)."""
    import flatbuffers
    from mediapipe.tasks.metadata import schema_py_generated as schema

    try:
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(model_bytes), 0))
    except Exception as e:  # flatbuffers raises assorted errors on garbage
        raise ExportError(f"not a TFLite flatbuffer, cannot write metadata for {meta.name}: {e}") from None
    buffer = schema.BufferT()
    buffer.data = list(_metadata_buffer(meta, description))
    model.buffers = model.buffers or []
    model.metadata = [m for m in (model.metadata or []) if m.name.decode() != METADATA_NAME]
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata.append(entry)
    b = flatbuffers.Builder(0)
    b.Finish(model.Pack(b), TFLITE_IDENTIFIER)
    out = io.BytesIO(bytes(b.Output()))
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", compression=zipfile.ZIP_STORED) as z:
        z.writestr(LABELS_NAME, "\n".join(meta.labels) + "\n")
        z.writestr(JSON_NAME, meta.to_json())
    return out.getvalue()


def read_model_metadata(model_bytes: bytes):
    """The ``ModelMetadataT`` inside a ``.tflite`` (None if absent), for tests and inspection."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    from mediapipe.tasks.metadata import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(bytearray(model_bytes), 0)
    for i in range(model.MetadataLength()):
        if model.Metadata(i).Name().decode() == METADATA_NAME:
            data = model.Buffers(model.Metadata(i).Buffer()).DataAsNumpy().tobytes()
            return fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(data, 0))
    return None


def associated_files(model_bytes: bytes) -> dict[str, bytes]:
    return tflite_associated_files(model_bytes)


if __name__ == "__main__":  # a library module: `python -m` would import it, do nothing and exit 0
    raise SystemExit("error: export.tflite_metadata is a library module, not a command (see python -m export --help)")
