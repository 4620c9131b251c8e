"""The model zoo reproduces the papers' architectures (issue 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from train.config import TWO_D, ModelConfig
from train.layers import CircularShifts, LogMelSpectrogram, SincConv1D
from train.macs import count_macs, frame_receptive_field
from train.models import MODEL_NAMES, REGISTRY, build, build_model, depth, describe, layer_count, trainable_params

# shared/docs/model-spec.md and the papers' tables, 10 classes.
SPEC_PARAMS = {
    "lv18": 72_842, "lv24": 72_842, "lv42": 72_842, "lv81": 72_842,
    "earlymix": 73_363, "latemix": 72_258, "rollmix": 73_610, "sincnet": 72_618,
    "conv2d": 93_656, "convdf": 93_656, "convdt": 87_256, "convdb": 96_856,
}
# 1D paper Table 1 (layers/depth, Input excluded); 2D paper Table 1 lists 18 layers after Input.
SPEC_LAYERS = {
    "lv18": (13, 13), "lv24": (13, 13), "lv42": (13, 13), "lv81": (13, 13),
    "earlymix": (18, 14), "latemix": (34, 14), "rollmix": (14, 14), "sincnet": (14, 14),
    "conv2d": (18, 18), "convdf": (18, 18), "convdt": (18, 18), "convdb": (18, 18),
}
# 2D paper, Table 1: output shapes of conv1, pool1, conv2, pool2, conv3, pool3, conv4, pool4, flatten.
TABLE1_2D = {
    "conv2d": [(343, 118, 4), (171, 59, 4), (169, 57, 8), (84, 28, 8), (82, 26, 16), (41, 13, 16), (39, 11, 32), (9, 3, 32), (864,)],
    "convdf": [(343, 118, 4), (171, 59, 4), (169, 55, 8), (84, 27, 8), (82, 19, 16), (41, 19, 16), (39, 3, 32), (9, 3, 32), (864,)],
    "convdt": [(343, 118, 4), (171, 59, 4), (167, 57, 8), (83, 28, 8), (75, 26, 16), (37, 13, 16), (21, 11, 32), (5, 5, 32), (800,)],
    "convdb": [(343, 118, 4), (171, 118, 4), (167, 114, 8), (83, 57, 8), (75, 49, 16), (37, 24, 16), (21, 8, 32), (7, 4, 32), (896,)],
}
# 1D model spec: sequence lengths conv -> pool x 3 at 22.05 kHz.
LENGTHS_1D = {
    "lv18": [22043, 2755, 2748, 343, 336, 42],
    "lv24": [11022, 2755, 1374, 343, 168, 42],
    "lv42": [5511, 2755, 687, 343, 84, 42],
    "lv81": [2756, 2756, 344, 344, 43, 43],
}


def _supported():
    return [(name, sr) for name, e in REGISTRY.items() for sr in e.sample_rates]


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()


def test_registry_names():
    assert MODEL_NAMES == ("lv18", "lv24", "lv42", "lv81", "earlymix", "latemix", "rollmix", "sincnet",
                           "conv2d", "convdf", "convdt", "convdb")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_params_layers_depth_match_papers(name):
    model = build_model(name)
    assert trainable_params(model) == SPEC_PARAMS[name]
    assert (layer_count(model), depth(model)) == SPEC_LAYERS[name]


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if REGISTRY[n].family == "1d" and n != "lv81"])
def test_8khz_models_keep_params(name):
    model = build_model(name, sample_rate=8000)
    assert model.input_shape == (None, 8000)
    assert trainable_params(model) == SPEC_PARAMS[name]


@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if REGISTRY[n].family == "1d"])
@pytest.mark.parametrize("seconds", [2, 3, 4])
def test_1d_models_take_other_windows(name, seconds):
    # --window reaches every 1D model; global pooling keeps the weights the same at any length.
    # 3 s (66,150 samples) once broke EarlyMix: its "same"-padded branches came out 8268/8268/8269 long.
    samples = 22050 * seconds
    model = build_model(name, input_samples=samples)
    assert model.input_shape == (None, samples)
    assert trainable_params(model) == SPEC_PARAMS[name]
    probs = model.predict(np.random.default_rng(0).normal(0, 0.1, (2, samples)).astype("float32"), verbose=0)
    assert probs.shape == (2, 10) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_earlymix_trims_only_when_its_branches_disagree():
    paper = build_model("earlymix")
    assert not [layer.name for layer in paper.layers if layer.name.endswith("_trim")]
    odd = build_model("earlymix", input_samples=66150)
    assert [layer.name for layer in odd.layers if layer.name.endswith("_trim")] == ["branch4_trim"]
    assert odd.get_layer("concat").output.shape[1:] == (8268, 33)


@pytest.mark.parametrize("name", sorted(LENGTHS_1D))
def test_1d_sequence_lengths(name):
    model = build_model(name)
    lengths = [model.get_layer(f"block{i}_{k}").output.shape[1] for i in (1, 2, 3) for k in ("conv", "pool")]
    assert lengths == LENGTHS_1D[name]


def test_lv24_8khz_pool_halved():
    model = build_model("lv24", sample_rate=8000)
    assert [model.get_layer(f"block{i}_pool").pool_size[0] for i in (1, 2, 3)] == [2, 2, 2]


def test_lv81_at_8khz_is_a_clear_error():
    with pytest.raises(ValueError, match="lv81 cannot run at 8000 Hz"):
        build_model("lv81", sample_rate=8000)


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "lv18", "sample_rate": 16000}, "1D models are defined at"),
    ({"name": "conv2d", "sample_rate": 8000}, "2D models are defined at"),
    ({"name": "nosuch"}, "unknown model 'nosuch'"),
    # a window shorter than the layers need: Keras' shape error, said in terms of the window
    ({"name": "convdb", "input_samples": 22050}, r"convdb: a 22050-sample window \(1 s at 22050 Hz\) is too short"),
    ({"name": "lv24", "sample_rate": 8000, "input_samples": 100}, "100-sample window .* too short"),
    ({"name": "convdf", "head_segments": 4}, "head_segments is for the 1D models"),
    ({"name": "lv24", "sample_rate": 8000, "head_segments": 0}, "head_segments must be >= 1"),
    ({"name": "lv24", "sample_rate": 8000, "head_segments": 200}, "head_segments=200 needs at least 200 feature frames"),
])
def test_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model(kwargs.pop("name"), **kwargs)


@pytest.mark.parametrize("name", sorted(TABLE1_2D))
def test_2d_shapes_equal_paper_table1(name):
    model = build_model(name)
    assert model.input_shape == (None, 88200)
    assert tuple(model.get_layer("logmel").output.shape[1:]) == (345, 120, 1)
    assert tuple(model.get_layer("mel_bn").output.shape[1:]) == (345, 120, 1)
    names = [n for i in (1, 2, 3, 4) for n in (f"conv{i}", f"pool{i}")] + ["flatten"]
    shapes = [tuple(model.get_layer(n).output.shape[1:]) for n in names]
    assert shapes == TABLE1_2D[name]
    for i in (1, 2, 3, 4):
        assert model.get_layer(f"drop{i}").output.shape == model.get_layer(f"conv{i}").output.shape


def test_macs_lv18_hand_count():
    # conv: out_len * out_ch * kernel * in_ch; dense: in * out (spec lengths above).
    hand = 22043 * 32 * 8 * 1 + 2748 * 64 * 8 * 32 + 336 * 96 * 8 * 64 + 96 * 64 + 64 * 10
    assert hand == 67_188_096
    assert count_macs(build_model("lv18"))["total"] == hand


def test_macs_conv2d_hand_count():
    n_fft, frames, bins, mels = 1024, 345, 513, 120
    front_end = frames * (n_fft * 10 + 2 * bins + bins * mels)  # log2(1024) = 10
    convs = (343 * 118 * 4 * 9 * 1 + 169 * 57 * 8 * 9 * 4 + 82 * 26 * 16 * 9 * 8 + 39 * 11 * 32 * 9 * 16)
    dense = 864 * 100 + 100 * 10
    macs = count_macs(build_model("conv2d"))
    assert macs["layers"]["logmel"] == front_end
    assert macs["total"] == front_end + convs + dense


def _probes(samples: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    click = np.zeros(samples, np.float32)
    click[samples // 2] = 1.0
    return {
        "silence": np.zeros(samples, np.float32),
        "full_scale_noise": rng.uniform(-1, 1, samples).astype(np.float32),
        "click": click,
    }


@pytest.mark.parametrize("name, sr", _supported())
def test_finite_outputs_on_probes(name, sr):
    model = build_model(name, sample_rate=sr)
    probes = _probes(model.input_shape[1])
    out = model(np.stack(list(probes.values())), training=False).numpy()
    assert out.shape == (3, 10)
    assert np.isfinite(out).all(), dict(zip(probes, out))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)


def test_output_of_one_example_does_not_depend_on_batch():
    model = build_model("conv2d")
    probes = _probes(88200)
    alone = model(probes["click"][None], training=False).numpy()
    batched = model(np.stack(list(probes.values())), training=False).numpy()[2:3]
    np.testing.assert_allclose(alone, batched, atol=1e-5)


@pytest.mark.parametrize("rate, samples, kwargs", [
    (22050, 88200, {}), (22050, 22051, {}), (8000, 8000, {}),
    (22050, 25600, {}),  # a whole number of hops
    (22050, 300, {}),  # shorter than one FFT frame
    (8000, 8000, {"n_fft": 256, "hop_length": 400, "n_mels": 40}),  # hop longer than a frame: samples skipped
])
def test_portable_front_end_matches_tf_signal(rate, samples, kwargs):
    """The keras.ops front end (JAX/PyTorch backends) computes what the exported tf.signal graph does.

    The two FFTs round differently, by ~1e-7 of a frame's peak: equal to 5e-4 in the log (0.05 %) where a
    bin holds real energy, and to 1e-6 of the example's peak energy everywhere (in the log, bins of
    FFT leakage near the floor, mel energy ~1e-6, may differ by a few hundredths)."""
    layer = LogMelSpectrogram(sample_rate=rate, **kwargs)
    rng = np.random.default_rng(0)
    t = np.arange(samples) / rate
    x = np.stack([np.zeros(samples), rng.uniform(-1, 1, samples), 0.5 * np.sin(2 * np.pi * 440 * t),
                  1e-3 * rng.standard_normal(samples)]).astype(np.float32)[..., None]
    reference, portable = layer(x).numpy(), keras.ops.convert_to_numpy(layer.portable(x))
    assert portable.shape == reference.shape == (4, layer.frames(samples), layer.n_mels, 1)
    signal = reference > np.log(1e-3)
    assert signal.mean() > 0.25  # noise and the sine fill most bins; silence and the faint noise none
    np.testing.assert_allclose(portable[signal], reference[signal], atol=5e-4)
    energy, energy_ref = np.exp(portable), np.exp(reference)
    peak = energy_ref.max(axis=(1, 2, 3), keepdims=True)
    assert (np.abs(energy - energy_ref) <= 1e-6 * peak).all()
    np.testing.assert_array_equal(portable[0], reference[0])  # silence: exactly the floor


def test_sincnet_gradients_reach_cutoffs():
    model = build_model("sincnet", sample_rate=8000)
    sinc = model.get_layer("sinc")
    x = tf.random.stateless_uniform((2, 8000), seed=(1, 2), minval=-1, maxval=1)
    y = tf.one_hot([1, 3], 10)
    with tf.GradientTape() as tape:
        loss = keras.losses.categorical_crossentropy(y, model(x, training=True))
    grads = tape.gradient(loss, [sinc.low_hz, sinc.band_hz])
    for g in grads:
        assert g is not None
        assert np.isfinite(g.numpy()).all() and np.abs(g.numpy()).sum() > 0
    # and a training step really moves them (filters are recomputed in call()).
    before = sinc.kernel().numpy()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    model.train_on_batch(x, y)
    assert not np.allclose(before, sinc.kernel().numpy())


def _cutoff_drift(hz_per_unit: float, steps: int = 5) -> float:
    """Largest cut-off change (Hz) after ``steps`` Adam(1e-3) steps, the training default."""
    model = build_model("sincnet", sample_rate=8000, sinc_hz_per_unit=hz_per_unit)
    sinc = model.get_layer("sinc")
    x = tf.random.stateless_uniform((4, 8000), seed=(3, 4), minval=-1, maxval=1)
    y = tf.one_hot([1, 3, 5, 7], 10)
    before = np.concatenate([t.numpy() for t in sinc.cutoffs_hz()])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    for _ in range(steps):
        model.train_on_batch(x, y)
    return float(np.abs(np.concatenate([t.numpy() for t in sinc.cutoffs_hz()]) - before).max())


def test_sincnet_cutoffs_move_only_in_sample_rate_units():
    # At the default lr an Adam step moves a weight by ~1e-3: in plain Hz (the default) that leaves a
    # fixed mel filter bank after a whole run; in units of the sample rate it is ~lr * sr = 8 Hz a step.
    assert _cutoff_drift(1.0) < 0.05
    assert _cutoff_drift(8000.0) > 5.0


def test_sincnet_units_round_trip_and_old_files_read_as_hz(tmp_path):
    model = build_model("sincnet", sample_rate=8000)  # default units: the sample rate
    sinc = model.get_layer("sinc")
    assert sinc.hz_per_unit == 8000.0
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path, safe_mode=True).get_layer("sinc")
    assert again.hz_per_unit == 8000.0
    for a, b in zip(sinc.cutoffs_hz(), again.cutoffs_hz()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # a layer or model config written before the units existed was trained in Hz
    old = {k: v for k, v in sinc.get_config().items() if k != "hz_per_unit"}
    assert SincConv1D.from_config(old).hz_per_unit == 1.0
    assert ModelConfig.from_dict({"name": "sincnet"}).sinc_hz_per_unit == 1.0
    assert ModelConfig.from_dict(ModelConfig(name="sincnet").to_dict()).sinc_hz_per_unit is None
    # both parameterisations start from the same mel-spaced filters
    in_hz = build_model("sincnet", sample_rate=8000, sinc_hz_per_unit=1.0).get_layer("sinc")
    np.testing.assert_allclose(in_hz.kernel().numpy(), sinc.kernel().numpy(), atol=1e-5)


def test_rollmix_random_in_training_fixed_at_inference():
    layer = CircularShifts(shifts=4, seed=3)
    x = np.arange(2 * 16, dtype=np.float32).reshape(2, 16, 1)
    a = layer(x, training=False).numpy()
    b = layer(x, training=False).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a[0, :, 1], np.roll(x[0, :, 0], -4))  # fixed shifts 0, N/4, N/2, 3N/4
    t1 = layer(x, training=True).numpy()
    t2 = layer(x, training=True).numpy()
    assert not np.array_equal(t1, t2)
    # every training channel is a circular shift of the input, chosen independently per example
    for ex in range(2):
        for ch in range(4):
            shift = int(np.flatnonzero(t1[ex, :, ch] == x[ex, 0, 0])[0])
            np.testing.assert_array_equal(np.roll(t1[ex, :, ch], -shift), x[ex, :, 0])


def test_rollmix_model_deterministic_at_inference():
    model = build_model("rollmix", sample_rate=8000)
    x = _probes(8000)["full_scale_noise"][None]
    np.testing.assert_array_equal(model(x, training=False).numpy(), model(x, training=False).numpy())


@pytest.mark.parametrize("name", ["sincnet", "rollmix", "convdb"])
def test_save_and_load_in_safe_mode(name, tmp_path):
    model = build_model(name)
    x = _probes(model.input_shape[1])["full_scale_noise"][None]
    path = tmp_path / f"{name}.keras"
    model.save(path)
    keras.backend.clear_session()
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    np.testing.assert_allclose(loaded(x, training=False).numpy(), model(x, training=False).numpy(), atol=1e-6)


def test_config_round_trip():
    cfg = ModelConfig(name="lv24", sample_rate=8000, num_classes=5)
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="unknown ModelConfig fields: bogus"):
        ModelConfig.from_dict({"name": "lv24", "bogus": 1})


def test_describe_matches_build():
    row = describe(ModelConfig(name="lv42", sample_rate=8000))
    assert row == {"name": "lv42", "sample_rate": 8000, "input_samples": 8000, "params": 72_842,
                   "macs": row["macs"], "layers": 13, "depth": 13, "frame_receptive_field": 148}
    assert row["macs"] > 0


def test_cli_json_lists_every_model_at_every_rate():
    out = subprocess.run([sys.executable, "-m", "train.models", "--json"], capture_output=True, text=True,
                         check=True, timeout=300)
    rows = json.loads(out.stdout)
    assert [(r["name"], r["sample_rate"]) for r in rows] == _supported()
    for r in rows:
        assert set(r) == {"name", "sample_rate", "input_samples", "params", "macs", "layers", "depth",
                          "frame_receptive_field"}
        assert (r["frame_receptive_field"] is None) == (REGISTRY[r["name"]].family == TWO_D)
        assert r["params"] == SPEC_PARAMS[r["name"]]
        assert (r["layers"], r["depth"]) == SPEC_LAYERS[r["name"]]
    assert len(rows) == 19  # 12 at 22.05 kHz + 7 at 8 kHz (no LV-81, no 2D)


@pytest.mark.parametrize("name", ["lv24", "latemix", "sincnet"])  # a chain, parallel branches, the sinc front end
def test_frame_receptive_field_equals_gradient_support(name):
    """The computed span equals the samples one averaged frame depends on: the union, over random
    inputs (max pooling routes each gradient to one sample), of the nonzero gradient of the middle
    frame of every branch before global pooling, taken after the whole-window RMS normalisation."""
    model = build(ModelConfig(name=name, sample_rate=8000))
    pooled = [layer.input for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling1D)]
    frames = keras.Model(model.layers[1].output, pooled)
    x = tf.Variable(np.random.default_rng(0).standard_normal((16, 8000, 1)).astype("float32"))
    with tf.GradientTape() as tape:
        outs = frames(x, training=False)
        outs = outs if isinstance(outs, list) else [outs]
        total = sum(tf.reduce_sum(o[:, o.shape[1] // 2, :]) for o in outs)
    hit = np.flatnonzero(np.any(tape.gradient(total, x).numpy()[..., 0] != 0, axis=0))
    assert frame_receptive_field(model) == hit.max() - hit.min() + 1


def test_frame_receptive_field_with_a_trimmed_branch():
    """EarlyMix at 3 s (66,150 samples) trims one branch by a step (Cropping1D): train.report and
    train.order_probe stopped on 'no rule for layer branch4_trim'. A trim moves no step's span."""
    model = build(ModelConfig(name="earlymix", sample_rate=22050, input_samples=66150))
    assert any(isinstance(layer, keras.layers.Cropping1D) for layer in model.layers)
    assert frame_receptive_field(model) == frame_receptive_field(build(ModelConfig(name="earlymix", sample_rate=22050)))


def test_frame_receptive_field_of_2d_and_unknown_layers():
    assert frame_receptive_field(build(ModelConfig(name="conv2d", sample_rate=22050))) is None  # Flatten: whole window
    x = keras.Input((100, 1))
    odd = keras.Model(x, keras.layers.GlobalAveragePooling1D()(keras.layers.LSTM(4, return_sequences=True)(x)))
    with pytest.raises(ValueError, match="no rule for layer .*LSTM"):
        frame_receptive_field(odd)


ONE_D_MODELS = [n for n, e in REGISTRY.items() if e.family != TWO_D]


@pytest.mark.parametrize("name", ONE_D_MODELS)
def test_head_segments_widen_only_the_first_dense_layer(name):
    """--head-segments S feeds S x 96 features (every 1D model ends in 96 channels, LateMix as 3 x 32)
    to the 64-unit dense layer instead of 96: (S - 1) x 96 x 64 more weights, no more convolution."""
    rate = 22050 if name == "lv81" else 8000
    base = describe(ModelConfig(name=name, sample_rate=rate))
    four = describe(ModelConfig(name=name, sample_rate=rate, head_segments=4))
    assert four["params"] - base["params"] == 3 * 96 * 64
    assert four["macs"] - base["macs"] == 3 * 96 * 64  # the dense layer's MACs; the convolutions are unchanged
    assert base["frame_receptive_field"] is not None and four["frame_receptive_field"] is None  # reads the order


@pytest.mark.parametrize("name", ["lv24", "sincnet"])
def test_head_segments_keep_the_order_the_papers_head_discards(name):
    """The head alone, on a feature map: global average pooling gives the same output whatever the
    order of frames; four segments give the same output when frames move inside a segment and another
    one when the segments swap places."""
    outs = {}
    for segments in (1, 4):
        model = build(ModelConfig(name=name, sample_rate=8000, head_segments=segments))
        features = model.get_layer("block3_drop").output  # (batch, 123 frames, 96) at 8 kHz
        head = keras.Model(features, model.output)
        frames = features.shape[1]
        f = np.random.default_rng(0).standard_normal((1, frames, 96)).astype("float32")
        width = frames // 4
        inside = f.copy()
        for k in range(4):  # reverse the frames inside each segment
            inside[:, k * width:(k + 1) * width] = f[:, k * width:(k + 1) * width][:, ::-1]
        swapped = f.copy()
        swapped[:, :4 * width] = np.concatenate([f[:, k * width:(k + 1) * width] for k in (3, 2, 1, 0)], axis=1)
        outs[segments] = [np.asarray(head(x, training=False)) for x in (f, inside, swapped)]
    as_is, inside, swapped = outs[1]
    np.testing.assert_allclose(inside, as_is, atol=1e-6)
    np.testing.assert_allclose(swapped, as_is, atol=1e-6)
    as_is, inside, swapped = outs[4]
    np.testing.assert_allclose(inside, as_is, atol=1e-6)
    assert np.abs(swapped - as_is).max() > 1e-3


def test_head_segments_survive_save_load_and_are_read_back_without_config(tmp_path):
    from export.loading import infer_config, load_keras

    config = ModelConfig(name="latemix", sample_rate=8000, head_segments=3)
    assert ModelConfig.from_dict(config.to_dict()) == config
    assert ModelConfig.from_dict({"name": "lv24"}).head_segments == 1  # configs from before the field
    model = build(config)
    path = tmp_path / "latemix.keras"
    model.save(path)
    loaded = load_keras(path)
    x = np.random.default_rng(0).standard_normal((2, 8000)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    assert infer_config(loaded, {}, None) == config.replace(input_samples=8000)
    assert infer_config(build(ModelConfig(name="lv24", sample_rate=8000)), {}, None).head_segments == 1
