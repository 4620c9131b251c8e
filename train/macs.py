"""Multiply-accumulate counts per window, computed from a built model's layer shapes.

Counted (one MAC = one multiply + one add, biases not counted):
  * Conv1D / SincConv1D: out_len * out_ch * kernel * in_ch
  * Conv2D (any dilation): out_h * out_w * out_ch * kh * kw * in_ch
  * Dense: in_features * units
  * LogMelSpectrogram: per frame, an FFT estimated at n_fft * log2(n_fft) real
    MACs (the usual order of a real FFT), the magnitude (2 per bin) and the mel
    projection (bins * n_mels).
Not counted: normalisation, BatchNorm, pooling, activations, dropout, concat —
element-wise work that is small beside the above and that converters often fuse.
"""

from __future__ import annotations

import math

import numpy as np

from train.layers import LogMelSpectrogram, SincConv1D
from train.quiet import import_keras

keras = import_keras()


def _shape(t) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape[1:])


def _first(value) -> int:
    """A 1D layer's kernel size, stride or dilation: Keras keeps a 1-tuple, a custom layer an int."""
    return int(value[0] if isinstance(value, (tuple, list)) else value)


def layer_macs(layer) -> int:
    """MACs of one layer of a built functional model (0 for uncounted layers)."""
    if isinstance(layer, (keras.layers.Conv1D, SincConv1D)):
        (_, in_ch), (out_len, out_ch) = _shape(layer.input), _shape(layer.output)
        return out_len * out_ch * _first(layer.kernel_size) * in_ch
    if isinstance(layer, keras.layers.Conv2D):
        in_ch = _shape(layer.input)[-1]
        out_h, out_w, out_ch = _shape(layer.output)
        kh, kw = layer.kernel_size
        return out_h * out_w * out_ch * kh * kw * in_ch
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(_shape(layer.input))) * layer.units
    if isinstance(layer, LogMelSpectrogram):
        frames = _shape(layer.output)[0]
        bins = layer.n_fft // 2 + 1
        fft = int(layer.n_fft * math.log2(layer.n_fft))
        return frames * (fft + 2 * bins + bins * layer.n_mels)
    return 0


def count_macs(model: keras.Model) -> dict:
    """``{"total": int, "layers": {layer_name: macs}}`` for one window (batch 1)."""
    per_layer = {layer.name: layer_macs(layer) for layer in model.layers}
    per_layer = {k: v for k, v in per_layer.items() if v}
    return {"total": int(sum(per_layer.values())), "layers": per_layer}


# Layers that keep every time step where it is (element-wise, per-channel or whole-window scalars).
# PerSampleNormalization divides by the window's RMS: one scalar, not a view of neighbouring samples.
# CircularShifts (RollMix) stacks rotated copies as channels; each copy is read locally after that.
# Cropping1D (EarlyMix's branch trim at some window lengths) drops end steps; the rest keep their span.
_TIME_PRESERVING = ("InputLayer", "PerSampleNormalization", "CircularShifts", "Dropout", "Activation",
                    "BatchNormalization", "ReLU", "Cropping1D")


def _time_step(layer) -> tuple[int, int, int] | None:
    """(kernel, stride, dilation) of a layer along time, or None if it leaves time alone."""
    if isinstance(layer, (keras.layers.Conv1D, SincConv1D)):
        return _first(layer.kernel_size), _first(layer.strides), _first(getattr(layer, "dilation_rate", 1))
    if isinstance(layer, keras.layers.MaxPooling1D | keras.layers.AveragePooling1D):
        return _first(layer.pool_size), _first(layer.strides), 1
    return None


def frame_receptive_field(model: keras.Model) -> int | None:
    """Input samples behind one time step of the features a 1D model's head averages.

    The 1D zoo ends in GlobalAveragePooling1D: the classifier sees the mean of
    frame features, each computed from this many consecutive samples, and not
    their order. Returns that span (the largest over parallel branches), or None
    when the head sees the whole window in order (the 2D models flatten their
    feature map into a Dense layer); ValueError for a layer it has no rule for.
    Walks the functional graph: each conv or pooling layer of kernel k, stride s,
    dilation d widens the span by (k - 1) * d * jump and multiplies the jump (input
    samples per step) by s.
    """
    if any(isinstance(layer, keras.layers.Flatten) for layer in model.layers):
        return None
    span: dict[str, tuple[int, int]] = {}  # layer name -> (receptive field, jump), both in input samples
    head = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            span[layer.name] = (1, 1)
            continue
        # A layer reused by another model (a sub-model built on this one) has nodes there too: keep ours.
        parents = [p.operation.name for node in layer._inbound_nodes for p in node.parent_nodes
                   if p.operation.name in span]
        rf, jump = max(span[p] for p in parents)
        step = _time_step(layer)
        if step is not None:
            k, s, d = step
            span[layer.name] = (rf + (k - 1) * d * jump, jump * s)
        elif isinstance(layer, keras.layers.GlobalAveragePooling1D | keras.layers.GlobalMaxPooling1D):
            head.append(rf)
            span[layer.name] = (rf, jump)
        elif head and isinstance(layer, keras.layers.Dense):  # the head: on pooled features
            span[layer.name] = (rf, jump)
        elif type(layer).__name__ in _TIME_PRESERVING or isinstance(layer, keras.layers.Concatenate):
            span[layer.name] = (rf, jump)
        else:
            raise ValueError(f"receptive field: no rule for layer {layer.name} ({type(layer).__name__})")
    return max(head) if head else None
