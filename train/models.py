"""The model zoo: twelve architectures from the two papers, in one registry.

    >>> from train.models import build_model
    >>> model = build_model("lv24", sample_rate=8000, num_classes=10)

Every model takes raw PCM, float32, shape (batch, samples), and does its own
per-sample RMS normalisation (and, for the 2D family, its own log-mel front
end) inside the graph, so training, export and the runtime share one
preprocessing. Layer-by-layer reference: shared/docs/model-spec.md.

``python -m train.models`` prints the zoo as a table (``--json`` for JSON).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Callable

import numpy as np

from runtime.cli import ArgumentParser
from train.config import ONE_D, ONE_D_RATES, TWO_D, TWO_D_RATES, ModelConfig
from train.layers import CircularShifts, LogMelSpectrogram, PerSampleNormalization, SincConv1D
from train.macs import count_macs, frame_receptive_field
from train.quiet import import_keras

keras = import_keras()  # without TensorFlow's start-up banner (train.quiet)
layers = keras.layers

# Layers that are preprocessing, not part of the papers' layer tables.
PREPROCESSING_LAYERS = (keras.layers.InputLayer, PerSampleNormalization)

FILTERS_1D = (32, 64, 96)
FILTERS_2D = (4, 8, 16, 32)
KERNEL_1D = 8


@dataclass(frozen=True)
class ZooEntry:
    """One registry entry: how to build a model and where it comes from."""

    name: str
    family: str  # ONE_D or TWO_D
    builder: Callable[[ModelConfig], keras.Model]
    description: str

    @property
    def sample_rates(self) -> tuple[int, ...]:
        if self.family == TWO_D:
            return TWO_D_RATES
        if self.name == "lv81":  # pool 1 cannot be halved (1D paper, FSDD)
            return (22050,)
        return tuple(ONE_D_RATES)


# --------------------------------------------------------------------- 1D family


def _pool(pool: int, config: ModelConfig, model_name: str) -> int:
    """The paper's pool size at ``config.sample_rate`` (halved at 8 kHz)."""
    if config.sample_rate not in ONE_D_RATES:
        raise ValueError(
            f"{model_name}: 1D models are defined at {sorted(ONE_D_RATES)} Hz, "
            f"got sample_rate={config.sample_rate}; resample the audio first"
        )
    factor = ONE_D_RATES[config.sample_rate]
    if pool % factor:
        raise ValueError(
            f"{model_name} cannot run at {config.sample_rate} Hz: its pool size {pool} "
            f"cannot be divided by {factor} (the 1D paper reports no 8 kHz result for it)"
        )
    return pool // factor


def _cpd(x, filters: int, stride: int, pool: int, dropout: float, name: str, padding: str = "valid"):
    """The 1D paper's block: Conv1D(k=8, ReLU, stride) -> MaxPool1D(pool) -> Dropout."""
    x = layers.Conv1D(filters, KERNEL_1D, strides=stride, padding=padding, activation="relu", name=f"{name}_conv")(x)
    x = layers.MaxPooling1D(pool, name=f"{name}_pool")(x)
    return layers.Dropout(dropout, name=f"{name}_drop")(x)


def _input_1d(config: ModelConfig):
    samples = config.window_samples(ONE_D)
    inputs = keras.Input(shape=(samples,), dtype="float32", name="pcm")
    return inputs, PerSampleNormalization(config.rms_floor, name="normalize")(inputs)


def _pool_time(x, config: ModelConfig, prefix: str = ""):
    """(batch, frames, channels) -> (batch, features): the papers' global average pooling, or with
    ``config.head_segments`` = S > 1 the mean of each of S equal runs of frames, in order, flattened
    to S * channels features (trailing frames that do not fill a segment are cropped)."""
    s = config.head_segments
    if s == 1:
        return layers.GlobalAveragePooling1D(name=f"{prefix}gap")(x)
    frames = x.shape[1]
    if frames < s:
        raise ValueError(f"{config.name}: head_segments={s} needs at least {s} feature frames, the window "
                         f"leaves {frames}; use fewer segments or a longer window")
    width = frames // s
    if frames % s:
        x = layers.Cropping1D((0, frames - s * width), name=f"{prefix}segments_crop")(x)
    x = layers.AveragePooling1D(width, name=f"{prefix}segments")(x)
    return layers.Flatten(name=f"{prefix}segments_flat")(x)


def _head(x, config: ModelConfig, pool_first: bool = True):
    if pool_first:
        x = _pool_time(x, config)
    x = layers.Dense(64, activation="relu", name="fc")(x)
    x = layers.Dropout(config.dropout, name="fc_drop")(x)
    return layers.Dense(config.num_classes, activation="softmax", name="probs")(x)


def _flat(stride: int, pool: int, roll: bool = False) -> Callable[[ModelConfig], keras.Model]:
    """LV-Flat: three CPD blocks with one stride/pool pair, then the head."""

    def build(config: ModelConfig) -> keras.Model:
        p = _pool(pool, config, config.name)
        inputs, x = _input_1d(config)
        if roll:
            x = CircularShifts(config.roll_shifts, name="roll")(x)
        for i, f in enumerate(FILTERS_1D):
            x = _cpd(x, f, stride, p, config.dropout, f"block{i + 1}")
        return keras.Model(inputs, _head(x, config), name=config.name)

    return build


MIX_BRANCHES = ((1, 8), (2, 4), (4, 2))  # the (stride, pool) pairs of LV-18, LV-24, LV-42


def _early_mix(config: ModelConfig) -> keras.Model:
    """Three parallel first convolutions (11 filters each, "same" padding so the
    branch lengths agree), concatenated, then two 2/4 CPD blocks."""
    inputs, x = _input_1d(config)
    branches = []
    for s, pool in MIX_BRANCHES:
        b = layers.Conv1D(11, KERNEL_1D, strides=s, padding="same", activation="relu", name=f"branch{s}_conv")(x)
        branches.append(layers.MaxPooling1D(_pool(pool, config, config.name), name=f"branch{s}_pool")(b))
    # "same" padding rounds each stride's output length up, so windows that are not a multiple of
    # stride x pool leave a branch one step longer (66,150 samples: 8268/8268/8269); trim its tail.
    # The papers' windows (1 s at 8 and 22.05 kHz) agree exactly and get no extra layer.
    shortest = min(b.shape[1] for b in branches)
    branches = [b if b.shape[1] == shortest else
                layers.Cropping1D((0, b.shape[1] - shortest), name=f"branch{s}_trim")(b)
                for (s, _), b in zip(MIX_BRANCHES, branches)]
    x = layers.Concatenate(name="concat")(branches)
    x = layers.Dropout(config.dropout, name="concat_drop")(x)
    p = _pool(4, config, config.name)
    x = _cpd(x, 64, 2, p, config.dropout, "block2")
    x = _cpd(x, 96, 2, p, config.dropout, "block3")
    return keras.Model(inputs, _head(x, config), name=config.name)


def _late_mix(config: ModelConfig) -> keras.Model:
    """Three complete LV-Flat stacks (24/48/32 filters) with global pooling each,
    concatenated (96 features) into one head."""
    inputs, x = _input_1d(config)
    branches = []
    for s, pool in MIX_BRANCHES:
        p = _pool(pool, config, config.name)
        b = x
        for i, f in enumerate((24, 48, 32)):
            b = _cpd(b, f, s, p, config.dropout, f"branch{s}_block{i + 1}")
        branches.append(_pool_time(b, config, f"branch{s}_"))
    x = layers.Concatenate(name="concat")(branches)
    return keras.Model(inputs, _head(x, config, pool_first=False), name=config.name)


def _sincnet(config: ModelConfig) -> keras.Model:
    """SincNet front layer (32 band-pass filters, 251 taps, stride 2), then LV-24's rest."""
    inputs, x = _input_1d(config)
    p = _pool(4, config, config.name)
    x = SincConv1D(
        config.sinc_filters,
        config.sinc_length,
        config.sinc_stride,
        config.sample_rate,
        config.sinc_min_low_hz,
        config.sinc_min_band_hz,
        config.sinc_hz_per_unit,
        name="sinc",
    )(x)
    x = layers.Activation("relu", name="sinc_relu")(x)
    x = layers.MaxPooling1D(p, name="sinc_pool")(x)
    x = layers.Dropout(config.dropout, name="sinc_drop")(x)
    x = _cpd(x, 64, 2, p, config.dropout, "block2")
    x = _cpd(x, 96, 2, p, config.dropout, "block3")
    return keras.Model(inputs, _head(x, config), name=config.name)


# --------------------------------------------------------------------- 2D family

DILATIONS_2D = {
    "conv2d": (((1, 1), (1, 1), (1, 1), (1, 1)), ((2, 2), (2, 2), (2, 2), (4, 3))),
    "convdf": (((1, 1), (1, 2), (1, 4), (1, 8)), ((2, 2), (2, 2), (2, 1), (4, 1))),
    "convdt": (((1, 1), (2, 1), (4, 1), (8, 1)), ((2, 2), (2, 2), (2, 2), (4, 2))),
    "convdb": (((1, 1), (2, 2), (4, 4), (8, 8)), ((2, 1), (2, 2), (2, 2), (3, 2))),
}


def _dilated_2d(config: ModelConfig) -> keras.Model:
    """Log-mel -> BatchNorm -> 4 x [Conv2D 3x3 (dilated) -> Dropout -> MaxPool] -> Dense(100) -> Dense(C)."""
    if config.sample_rate not in TWO_D_RATES:
        raise ValueError(
            f"{config.name}: 2D models are defined at {list(TWO_D_RATES)} Hz, got {config.sample_rate}"
        )
    dilations, pools = DILATIONS_2D[config.name]
    samples = config.window_samples(TWO_D)
    inputs = keras.Input(shape=(samples,), dtype="float32", name="pcm")
    x = PerSampleNormalization(config.rms_floor, name="normalize")(inputs)
    x = LogMelSpectrogram(
        config.sample_rate, config.n_fft, config.hop_length, config.n_mels, config.fmin, config.fmax,
        config.mel_log_floor, name="logmel",
    )(x)
    x = layers.BatchNormalization(axis=-1, name="mel_bn")(x)
    for i, (f, d, p) in enumerate(zip(FILTERS_2D, dilations, pools)):
        x = layers.Conv2D(f, (3, 3), dilation_rate=d, padding="valid", activation="relu", name=f"conv{i + 1}")(x)
        x = layers.Dropout(config.dropout, name=f"drop{i + 1}")(x)
        x = layers.MaxPooling2D(p, name=f"pool{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(config.dropout, name="flatten_drop")(x)
    x = layers.Dense(100, activation="relu", name="fc")(x)
    outputs = layers.Dense(config.num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name=config.name)


# --------------------------------------------------------------------- registry

REGISTRY: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry("lv18", ONE_D, _flat(1, 8), "LV-Flat, stride 1 / pool 8"),
        ZooEntry("lv24", ONE_D, _flat(2, 4), "LV-Flat, stride 2 / pool 4"),
        ZooEntry("lv42", ONE_D, _flat(4, 2), "LV-Flat, stride 4 / pool 2"),
        ZooEntry("lv81", ONE_D, _flat(8, 1), "LV-Flat, stride 8 / pool 1 (22.05 kHz only)"),
        ZooEntry("earlymix", ONE_D, _early_mix, "LV-Mix, three parallel first convolutions"),
        ZooEntry("latemix", ONE_D, _late_mix, "LV-Mix, three parallel LV-Flat stacks"),
        ZooEntry("rollmix", ONE_D, _flat(2, 4, roll=True), "LV-24 after N circular shifts"),
        ZooEntry("sincnet", ONE_D, _sincnet, "SincNet band-pass front layer + LV-24 blocks"),
        ZooEntry("conv2d", TWO_D, _dilated_2d, "log-mel 2D CNN, square 3x3 kernels"),
        ZooEntry("convdf", TWO_D, _dilated_2d, "log-mel 2D CNN, dilated in frequency"),
        ZooEntry("convdt", TWO_D, _dilated_2d, "log-mel 2D CNN, dilated in time"),
        ZooEntry("convdb", TWO_D, _dilated_2d, "log-mel 2D CNN, dilated in both axes"),
    )
}
MODEL_NAMES = tuple(REGISTRY)


def get_entry(name: str) -> ZooEntry:
    try:
        return REGISTRY[name.lower()]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}") from None


def build(config: ModelConfig) -> keras.Model:
    """Build the (uncompiled) Keras model that ``config`` describes."""
    entry = get_entry(config.name)
    if config.name != entry.name:
        config = config.replace(name=entry.name)
    if entry.family == TWO_D and config.head_segments != 1:
        raise ValueError(f"{config.name}: head_segments is for the 1D models; the 2D models already flatten "
                         "their whole feature map in time order")
    try:
        return entry.builder(config)
    except ValueError as e:
        if "zero or negative" not in str(e):  # Keras' words for a convolution or pool longer than its input
            raise
    samples = config.window_samples(entry.family)
    raise ValueError(f"{config.name}: a {samples}-sample window ({samples / config.sample_rate:.3g} s at "
                     f"{config.sample_rate} Hz) is too short for its convolutions and pools; use a longer window")


def build_model(name: str, **overrides) -> keras.Model:
    """Shorthand: ``build_model("lv18", sample_rate=8000)``."""
    return build(ModelConfig(name=name.lower(), **overrides))


# --------------------------------------------------------------------- introspection


def trainable_params(model: keras.Model) -> int:
    """Trainable parameters, as the papers count them (BatchNorm's moving
    statistics are not trainable and not counted)."""
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


def _counted(layer) -> bool:
    return not isinstance(layer, PREPROCESSING_LAYERS)


def _parents(layer) -> list:
    parents = []
    for node in layer._inbound_nodes:
        parents.extend(p.operation for p in node.parent_nodes)
    return parents


def layer_count(model: keras.Model) -> int:
    """Layers as the papers' tables count them: no Input, no normalisation."""
    return sum(1 for layer in model.layers if _counted(layer))


def depth(model: keras.Model) -> int:
    """Counted layers on the longest input-to-output path."""
    memo: dict[int, int] = {}

    def d(layer) -> int:
        key = id(layer)
        if key not in memo:
            parents = _parents(layer)
            memo[key] = int(_counted(layer)) + (max(d(p) for p in parents) if parents else 0)
        return memo[key]

    return max(d(out._keras_history.operation) for out in model.outputs)


def describe(config: ModelConfig, model: keras.Model | None = None) -> dict:
    """Facts about one model: name, sample_rate, input_samples, params, macs, layers, depth, and
    frame_receptive_field (input samples behind each frame a 1D head averages; None: the head sees
    the whole window in order, as the 2D models' Flatten does)."""
    model = model if model is not None else build(config)
    return {
        "name": config.name,
        "sample_rate": config.sample_rate,
        "input_samples": int(model.inputs[0].shape[1]),
        "params": trainable_params(model),
        "macs": count_macs(model)["total"],
        "layers": layer_count(model),
        "depth": depth(model),
        "frame_receptive_field": frame_receptive_field(model),
    }


def zoo_table(num_classes: int = 10) -> list[dict]:
    """``describe`` for every model at every supported sample rate."""
    rows = []
    for entry in REGISTRY.values():
        for sr in entry.sample_rates:
            rows.append(describe(ModelConfig(name=entry.name, num_classes=num_classes, sample_rate=sr)))
            keras.backend.clear_session()
    return rows


def _rf_ms(row: dict) -> str:
    """A describe() row's frame receptive field in ms, or "window" for a head that sees it all."""
    rf = row["frame_receptive_field"]
    return "window" if rf is None else f"{1000 * rf / row['sample_rate']:.1f} ms"


def _format_table(rows: list[dict]) -> str:
    head = (f"{'model':<10}{'rate':>7}{'samples':>9}{'params':>9}{'MACs/window':>14}{'layers':>8}{'depth':>7}"
            f"{'frame RF':>10}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['name']:<10}{r['sample_rate']:>7}{r['input_samples']:>9}{r['params']:>9,}"
            f"{r['macs'] / 1e6:>12.1f} M{r['layers']:>8}{r['depth']:>7}{_rf_ms(r):>10}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m train.models",
        description="Print the model zoo: every architecture at every sample rate it supports, "
        "with trainable parameters, multiply-accumulates per window (computed from the layer "
        "shapes), input samples, layer count and depth as the papers count them, and each 1D "
        "model's frame receptive field: the span of audio behind each frame its global average "
        "pooling averages (2D models flatten the whole window: 'window').",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.add_argument("--classes", type=int, default=10, help="number of output classes (default: 10)")
    args = parser.parse_args(argv)
    if args.classes < 2:
        parser.error("--classes must be at least 2")
    rows = zoo_table(args.classes)
    print(json.dumps(rows, indent=2) if args.json else _format_table(rows))
    return 0


if __name__ == "__main__":
    from runtime.cli import exit_with

    exit_with(main, "python -m train.models")
