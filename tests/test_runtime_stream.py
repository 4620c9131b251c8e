"""The model wrapper and the streaming engine against offline references."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soxr

from runtime import EngineConfig, StreamingEngine, load_model
from runtime.engine import offline_windows
from runtime.errors import InputTypeError, MetadataError, ModelLoadError
from runtime.metadata import ModelMetadata
from runtime_fixtures import TONE_RATE, TONE_WINDOW, tone_onnx, tone_signal, tone_tflite, zoo_tflite

# Streaming and offline feed the same float32 samples to the same interpreter,
# so at equal rates they must agree to float32 rounding of identical work: 1e-6.
SAME_RATE_ATOL = 1e-6
# soxr.ResampleStream with the same quality is bit-identical to soxr.resample
# of the whole file (checked here for every block size); the model then sees
# identical windows. 1e-5 leaves room for a different soxr build's SIMD path.
RESAMPLED_ATOL = 1e-5

MODEL_RATE = 22050
HOP = 2205  # 0.1 s
BLOCKS = (1, 160, 1000, 4096)


@pytest.fixture(scope="module")
def zoo_model():
    return load_model(zoo_tflite("lv24", MODEL_RATE, 22050, HOP), threads=1)


def _test_audio(rate: int, seconds: float) -> np.ndarray:
    """Speech-like test signal: chirp + noise bursts + silence, float32 (samples,)."""
    rng = np.random.default_rng(7)
    t = np.arange(int(rate * seconds)) / rate
    x = 0.3 * np.sin(2 * np.pi * (200 + 900 * t) * t) * (t % 0.7 < 0.5)
    x += 0.05 * rng.standard_normal(t.size) * (t > seconds / 2)
    return x.astype(np.float32)


def _stream(model, signal: np.ndarray, rate: int, block: int, channels: int = 1) -> np.ndarray:
    engine = StreamingEngine(model, EngineConfig(hop_samples=HOP, smooth=1), input_rate=rate)
    if channels > 1:
        signal = np.repeat(signal[:, None], channels, axis=1)
    results = []
    for i in range(0, signal.shape[0], block):
        results += engine.push(signal[i : i + block])
    results += engine.flush()
    assert [r.index for r in results] == list(range(len(results)))
    assert all(r.latency_s > 0 and r.invoke_s > 0 for r in results)
    return np.stack([r.probs for r in results])


@pytest.mark.parametrize("block", BLOCKS)
def test_streaming_equals_offline_at_the_model_rate(zoo_model, block):
    x = _test_audio(MODEL_RATE, 2.0)
    offline = offline_windows(zoo_model, x, HOP)
    assert offline.shape == (11, 5)
    assert np.ptp(offline, axis=0).max() > 0.05  # the windows really differ, so the comparison means something
    np.testing.assert_allclose(_stream(zoo_model, x, MODEL_RATE, block), offline, rtol=0, atol=SAME_RATE_ATOL)


@pytest.mark.parametrize("rate", [44100, 48000])
@pytest.mark.parametrize("block", BLOCKS)
def test_streaming_resampled_equals_offline_soxr(zoo_model, rate, block):
    x = _test_audio(rate, 1.5)
    reference = soxr.resample(x, rate, MODEL_RATE, quality="HQ").astype(np.float32)
    offline = offline_windows(zoo_model, reference, HOP)
    streamed = _stream(zoo_model, x, rate, block, channels=2 if block == 160 else 1)  # stereo downmix too
    assert streamed.shape == offline.shape == (6, 5)
    np.testing.assert_allclose(streamed, offline, rtol=0, atol=RESAMPLED_ATOL)


def test_engine_reset_restarts_the_stream(zoo_model):
    x = _test_audio(MODEL_RATE, 1.2)
    engine = StreamingEngine(zoo_model, EngineConfig(hop_samples=HOP, smooth=1))
    first = [r.probs for r in engine.push(x)]
    engine.reset()
    second = [r.probs for r in engine.push(x)]
    np.testing.assert_array_equal(np.stack(first), np.stack(second))
    with pytest.raises(InputTypeError):
        engine.push(x.astype(np.float64))


def test_smoothing_threshold_and_events():
    model = load_model(tone_tflite())
    x = tone_signal([("low", 1.0), ("high", 1.0)], TONE_RATE)
    engine = StreamingEngine(model, EngineConfig(smooth=3, threshold=0.9, top_k=2))
    results = engine.push(x)
    events = [(r.index, r.event) for r in results if r.event]
    assert [e for _, e in events] == ["low", "high"]
    # 3-window smoothing delays the switch: the first all-"high" window is
    # index 8 (ends at 1.25 s, hop 0.125 s); the mean of 3 reaches 0.9 at index 10.
    high_idx = events[1][0]
    assert 9 <= high_idx <= 10, events
    np.testing.assert_allclose(results[high_idx].smoothed, np.mean([r.probs for r in results[high_idx - 2 : high_idx + 1]], axis=0))
    assert len(results[0].top) == 2


# ---------------------------------------------------------------- model wrapper


def test_int8_model_uses_the_interpreters_scales():
    float_model = load_model(tone_tflite())
    int8_model = load_model(tone_tflite(int8=True), threads=2)
    details = int8_model._interp.get_input_details()[0]
    assert int8_model.input_quant.quantized and int8_model.input_quant.dtype == np.int8
    assert (int8_model.input_quant.scale, int8_model.input_quant.zero_point) == pytest.approx(details["quantization"])
    out = int8_model._interp.get_output_details()[0]
    assert (int8_model.output_quant.scale, int8_model.output_quant.zero_point) == pytest.approx(out["quantization"])
    for label in ("low", "high"):
        x = tone_signal([(label, TONE_WINDOW / TONE_RATE)], TONE_RATE, amplitude=0.3)
        np.testing.assert_allclose(int8_model.predict(x), float_model.predict(x), atol=0.02)  # one int8 output step is 1/255


def test_onnx_matches_tflite_and_reads_metadata_from_the_file():
    onnx_model = load_model(tone_onnx(), threads=1)
    assert onnx_model.backend == "onnxruntime" and onnx_model.labels == ("low", "high")
    assert not (tone_onnx().parent / "metadata.json").exists()
    tfl = load_model(tone_tflite())
    x = tone_signal([("low", 0.1), ("high", 0.15)], TONE_RATE)
    np.testing.assert_allclose(onnx_model.predict(x), tfl.predict(x), atol=1e-5)


def test_model_metadata_comes_from_beside_the_file(tmp_path):
    src = tone_tflite()
    shutil.copy(src, tmp_path / "m.tflite")
    with pytest.raises(MetadataError):
        load_model(tmp_path / "m.tflite")
    meta = ModelMetadata(name="x", labels=("a", "b", "c"), sample_rate=TONE_RATE, window_samples=TONE_WINDOW, hop_samples=100)
    (tmp_path / "metadata.json").write_text(meta.to_json())
    with pytest.raises(ModelLoadError, match="3 labels"):  # the file has 2 outputs
        load_model(tmp_path / "m.tflite")
    (tmp_path / "metadata.json").write_text(meta.__class__(**{**meta.__dict__, "labels": ("a", "b")}).to_json())
    model = load_model(tmp_path / "m.tflite")
    assert model.labels == ("a", "b") and model.metadata.hop_samples == 100


@pytest.mark.parametrize("content,suffix", [(b"\x00garbage" * 100, ".tflite"), (b"not onnx", ".onnx"), (b"x", ".pt")])
def test_not_a_model_is_a_clear_error(tmp_path, content, suffix):
    path = tmp_path / f"m{suffix}"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError) as e:
        load_model(path)
    assert "\n" not in str(e.value)
    with pytest.raises(ModelLoadError, match="threads"):
        load_model(tone_tflite(), threads=0)


def test_bad_metadata_inside_an_onnx_file_is_named(tmp_path):
    """The .tflite and metadata.json paths named the file; inside an .onnx it was only 'metadata sample_rate ...'."""
    import json

    import onnx

    from runtime.model import MetadataError

    proto = onnx.load(str(tone_onnx()))
    (entry,) = [p for p in proto.metadata_props if p.key == "tinyaudio"]
    meta = json.loads(entry.value)
    meta["sample_rate"] = 0
    entry.value = json.dumps(meta)
    bad = tmp_path / "bad.onnx"
    onnx.save(proto, str(bad))
    with pytest.raises(MetadataError, match=r"^bad\.onnx \(the metadata inside\): metadata sample_rate must be a "
                                            r"positive whole number, got 0$"):
        load_model(bad)
