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

import keras
import numpy as np

from train.layers import LogMelSpectrogram, SincConv1D


def _shape(t) -> tuple[int, ...]:
    return tuple(int(d) for d in t.shape[1:])


def layer_macs(layer) -> int:
    """MACs of one layer of a built functional model (0 for uncounted layers)."""
    if isinstance(layer, (keras.layers.Conv1D, SincConv1D)):
        (_, in_ch), (out_len, out_ch) = _shape(layer.input), _shape(layer.output)
        kernel = layer.kernel_size[0] if isinstance(layer.kernel_size, tuple) else layer.kernel_size
        return out_len * out_ch * kernel * in_ch
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
