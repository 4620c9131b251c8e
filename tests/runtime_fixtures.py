"""Small model files for the runtime tests, made here until ``export`` lands.

Each helper converts a model to ``.tflite`` (``TFLiteConverter.from_concrete_functions``
with a fixed ``(1, N)`` float32 signature) and writes ``metadata.json`` beside it.
TensorFlow is imported inside the helpers only, so importing this module is cheap.
Files are cached for the whole test process (building one costs seconds).

When ``export`` exists, :func:`zoo_tflite` should call its API instead.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np

from runtime.metadata import ModelMetadata

_CACHE = Path(tempfile.mkdtemp(prefix="tinyaudio-runtime-tests-"))
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

TONE_LABELS = ("low", "high")
TONE_FREQS = (440.0, 1760.0)  # Hz: "low", "high" (two octaves apart)
TONE_RATE = 16000
TONE_WINDOW = 4000  # 0.25 s
TONE_FRAME = 400  # 25 ms analysis frames inside the tone model


def _quiet_tf():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    return tf


def _convert(tf, concrete, path: Path, int8_dataset=None) -> None:
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if int8_dataset is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[np.newaxis, :]] for x in int8_dataset)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    path.write_bytes(converter.convert())


def _write(path: Path, meta: ModelMetadata) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "metadata.json").write_text(meta.to_json())
    return path


@functools.cache
def zoo_tflite(name: str = "lv24", sample_rate: int = 22050, window: int = 22050, hop: int = 2205, classes: int = 5) -> Path:
    """An untrained zoo model as ``.tflite`` + ``metadata.json``.

    The last layer's weights are scaled by 20 so the softmax is far from
    uniform and window-to-window differences are visible in the tests.
    """
    tf = _quiet_tf()
    import keras

    from train.models import build_model

    keras.utils.set_random_seed(0)  # the same weights every time: the tests' tolerances assume them
    keras_model = build_model(name, sample_rate=sample_rate, input_samples=window, num_classes=classes)
    dense = keras_model.get_layer("probs")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 20.0, bias])
    fn = tf.function(lambda x: keras_model(x, training=False), input_signature=[tf.TensorSpec([1, window], tf.float32)])
    path = _CACHE / f"{name}_{sample_rate}_{window}_{classes}" / "model.tflite"
    path.parent.mkdir(parents=True)
    _convert(tf, fn.get_concrete_function(), path)
    labels = tuple(f"class{i}" for i in range(classes))
    return _write(path, ModelMetadata(name=name, labels=labels, sample_rate=sample_rate, window_samples=window, hop_samples=hop))


def _tone_function(tf):
    """Hand-made two-tone detector: energy in a Hann-windowed cos/sin pair at
    each of ``TONE_FREQS`` over 25 ms frames, normalised to sum to 1.

    Output ``(1, 2)``: [share of "low", share of "high"]; silence gives 0.5/0.5.
    Deterministic, no training: the microphone test needs a model whose label
    is known to follow which tone is playing.
    """
    t = np.arange(TONE_FRAME) / TONE_RATE
    hann = np.hanning(TONE_FRAME)
    basis = np.stack(
        [w(2 * np.pi * f * t) * hann for f in TONE_FREQS for w in (np.cos, np.sin)], axis=1
    ).astype(np.float32)  # (frame, 4)
    combine = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], np.float32)

    @tf.function(input_signature=[tf.TensorSpec([1, TONE_WINDOW], tf.float32, name="pcm")])
    def tone(x):
        frames = tf.reshape(x, [TONE_WINDOW // TONE_FRAME, TONE_FRAME])
        energy = tf.reduce_mean(tf.square(tf.matmul(frames, basis)), axis=0, keepdims=True)  # (1, 4)
        per_tone = tf.matmul(energy, combine) + 1e-9
        return per_tone / tf.reduce_sum(per_tone, axis=1, keepdims=True)

    return tone


@functools.cache
def tone_tflite(int8: bool = False) -> Path:
    """The two-tone detector as ``.tflite`` (float32, or full-integer int8 IO)."""
    tf = _quiet_tf()
    path = _CACHE / ("tone_int8" if int8 else "tone") / "model.tflite"
    path.parent.mkdir(parents=True)
    dataset = None
    if int8:
        t = np.arange(TONE_WINDOW) / TONE_RATE
        rng = np.random.default_rng(0)
        dataset = [
            (a * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3))).astype(np.float32)
            for f in TONE_FREQS
            for a in (0.1, 0.5, 0.9)
        ]
    _convert(tf, _tone_function(tf).get_concrete_function(), path, int8_dataset=dataset)
    meta = ModelMetadata(
        name="tone2", labels=TONE_LABELS, sample_rate=TONE_RATE, window_samples=TONE_WINDOW,
        hop_samples=TONE_WINDOW // 2, input_dtype="int8" if int8 else "float32",
    )
    return _write(path, meta)


@functools.cache
def bad_output_tflite(kind: str) -> Path:
    """A two-tone-shaped model whose output is not probabilities: ``"nan"`` (log of a negative
    number), ``"inf"`` (division by zero) or ``"logits"`` (scores of 100 and -100, no softmax)."""
    tf = _quiet_tf()

    @tf.function(input_signature=[tf.TensorSpec([1, TONE_WINDOW], tf.float32)])
    def model(x):
        level = tf.reduce_mean(tf.abs(x), axis=1, keepdims=True)  # (1, 1): depends on the input, so not folded away
        if kind == "nan":
            one = tf.math.log(-1.0 - level)
        elif kind == "inf":
            one = (1.0 + level) / (level * 0.0)
        else:
            one = 100.0 + level
        return tf.concat([one, -one], axis=1)

    path = _CACHE / f"bad_{kind}" / "model.tflite"
    path.parent.mkdir(parents=True)
    _convert(tf, model.get_concrete_function(), path)
    meta = ModelMetadata(name=f"bad_{kind}", labels=TONE_LABELS, sample_rate=TONE_RATE, window_samples=TONE_WINDOW,
                         hop_samples=TONE_WINDOW // 2)
    return _write(path, meta)


@functools.cache
def tone_onnx() -> Path:
    """The two-tone detector as ``.onnx`` with the metadata in ``metadata_props`` (no sidecar)."""
    tf = _quiet_tf()
    import onnx
    import tf2onnx

    from runtime.metadata import ONNX_KEY

    proto, _ = tf2onnx.convert.from_function(
        _tone_function(tf), input_signature=[tf.TensorSpec([1, TONE_WINDOW], tf.float32, name="pcm")], opset=13
    )
    meta = ModelMetadata(name="tone2", labels=TONE_LABELS, sample_rate=TONE_RATE, window_samples=TONE_WINDOW, hop_samples=TONE_WINDOW // 2)
    entry = proto.metadata_props.add()
    entry.key, entry.value = ONNX_KEY, meta.to_json()
    path = _CACHE / "tone_onnx" / "model.onnx"
    path.parent.mkdir(parents=True)
    onnx.save(proto, str(path))
    return path


def tone_signal(segments: list[tuple[str | None, float]], rate: int, amplitude: float = 0.5, channels: int = 1) -> np.ndarray:
    """Concatenated segments of ``("low"|"high"|None=silence, seconds)`` at ``rate``;
    ``float32 (samples,)`` or ``(samples, channels)`` (the same signal on each channel)."""
    parts = []
    for label, seconds in segments:
        n = int(round(seconds * rate))
        if label is None:
            parts.append(np.zeros(n))
        else:
            f = TONE_FREQS[TONE_LABELS.index(label)]
            parts.append(amplitude * np.sin(2 * np.pi * f * np.arange(n) / rate))
    x = np.concatenate(parts).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x
