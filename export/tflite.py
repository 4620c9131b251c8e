"""Keras -> TFLite bytes: float32, float16, dynamic-range int8, full-integer int8.

Every variant is converted from one frozen concrete function with the fixed
input signature (1, window_samples) float32 named ``pcm`` (MediaPipe's audio
classifier wants a [1, N] input). Freezing turns variables into constants, so
SincNet's filters fold into one constant convolution.

Full-integer: int8 weights and activations, float32 input and output (the
converter adds QUANTIZE/DEQUANTIZE at the edges) so MediaPipe and the runtime
feed raw PCM unchanged; ``ModelMetadata.input_dtype`` stays ``"float32"``.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

import numpy as np

from export.config import ExportError

# Tensor names of the in-graph preprocessing (Keras layer names in the zoo).
FRONT_END_PATTERN = re.compile(r"/(normalize|logmel)(_\d+)?/")


def frozen_function(model, window: int):
    """The model as a frozen ``ConcreteFunction``: pcm (1, window) float32 -> probs (1, C) float32."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(
        lambda pcm: model(pcm, training=False),
        input_signature=[tf.TensorSpec((1, window), tf.float32, name="pcm")],
    )
    return convert_variables_to_constants_v2(fn.get_concrete_function())


def _converter(cf):
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_concrete_functions([cf])


def _dataset(windows: np.ndarray) -> Callable[[], Iterable[list[np.ndarray]]]:
    if len(windows) == 0:
        raise ExportError("the representative set is empty: full-integer quantization needs calibration audio")

    def gen():
        for w in windows:
            yield [np.asarray(w, dtype=np.float32)[None, :]]

    return gen


def convert_float32(cf) -> bytes:
    return bytes(_converter(cf).convert())


def convert_float16(cf) -> bytes:
    import tensorflow as tf

    c = _converter(cf)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.target_spec.supported_types = [tf.float16]
    return bytes(c.convert())


def convert_dynamic_int8(cf, float32: bytes | None = None, float_front_end: bool = True) -> bytes:
    """Dynamic-range int8: int8 weights, float activations — except the front end, kept float.

    The converter would turn the log-mel projection into a hybrid FULLY_CONNECTED, which
    quantizes its *input* (the power spectrum, spanning ~10 orders of magnitude) to int8 per
    call: every quiet bin becomes 0 and its log is garbage (measured by ``python -m
    export.quant_probe``, benchmarks/results/quant_probe_*.md). The front end's weights are
    therefore put back to their float32 values (``float_front_end_weights``), taken from
    ``float32`` (the float32 conversion of ``cf``, converted here when not given).
    ``float_front_end=False`` returns the converter's own file, for that measurement.
    """
    import tensorflow as tf

    c = _converter(cf)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    drq = bytes(c.convert())
    if not float_front_end:
        return drq
    names = _quantized_front_end_weights(drq)
    return float_front_end_weights(drq, float32 or convert_float32(cf), names) if names else drq


_INT8, _FLOAT32 = 9, 0  # tflite schema TensorType values


def _quantized_front_end_weights(model_bytes: bytes) -> list[str]:
    """Names of int8 constant tensors feeding front-end ops (hybrid front-end ops)."""
    from tensorflow.lite.tools import flatbuffer_utils as fu

    model = fu.read_model_from_bytearray(bytearray(model_bytes))
    found = []
    for g in model.subgraphs:
        for op in g.operators:
            if not any(FRONT_END_PATTERN.search("/" + g.tensors[o].name.decode()) for o in op.outputs):
                continue
            for i in op.inputs:
                t = g.tensors[i] if i >= 0 else None
                if t is not None and t.type == _INT8 and model.buffers[t.buffer].data is not None:
                    found.append(t.name.decode())
    return found


def float_front_end_weights(quantized: bytes, float32: bytes, names: list[str] | None = None) -> bytes:
    """``quantized`` with every int8 weight of a front-end op replaced by the same tensor
    (matched by name and shape) of the ``float32`` model; the op then runs its float kernel.
    ``names``: those tensors, when the caller has already listed them."""
    from tensorflow.lite.tools import flatbuffer_utils as fu

    q = fu.read_model_from_bytearray(bytearray(quantized))
    f = fu.read_model_from_bytearray(bytearray(float32))
    floats = {(t.name, tuple(t.shape)): t for g in f.subgraphs for t in g.tensors if t.type == _FLOAT32}
    wanted = set(names if names is not None else _quantized_front_end_weights(quantized))
    for g in q.subgraphs:
        for t in g.tensors:
            if t.name.decode() not in wanted:
                continue
            src = floats.get((t.name, tuple(t.shape)))
            if src is None or f.buffers[src.buffer].data is None:
                raise ExportError(f"dynamic-range int8: no float32 weights for front-end tensor {t.name.decode()!r}")
            q.buffers[t.buffer].data = f.buffers[src.buffer].data.copy()
            t.type, t.quantization = _FLOAT32, None
    out = bytes(fu.convert_object_to_bytearray(q))
    left = _quantized_front_end_weights(out)
    if left:
        raise ExportError(f"dynamic-range int8: front-end weights still int8: {', '.join(left)}")
    return out


def _int8_converter(cf, representative: np.ndarray):
    import tensorflow as tf

    c = _converter(cf)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = _dataset(representative)
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = tf.float32
    c.inference_output_type = tf.float32
    return c


def convert_full_int8(cf, representative: np.ndarray, float_front_end: bool = False) -> bytes:
    """Full-integer model calibrated on ``representative`` (n, window) float32.

    ``float_front_end``: keep the preprocessing ops (RMS normalisation and the
    log-mel front end) in float32, quantizing everything after it; done with
    the converter's QuantizationDebugger denylist.
    """
    c = _int8_converter(cf, representative)
    if not float_front_end:
        return bytes(c.convert())
    import tensorflow as tf

    nodes = [n for n in tensor_names(convert_float32(cf)) if FRONT_END_PATTERN.search(n)]
    if not nodes:
        raise ExportError("no front-end ops found to keep in float (expected 'normalize'/'logmel' layers)")
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=c,
        debug_dataset=_dataset(representative[:1]),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=nodes),
    )
    return bytes(debugger.get_nondebug_quantized_model())


def tensor_names(model_bytes: bytes) -> list[str]:
    """Names of the output tensors of every op, in execution order."""
    it = interpreter(model_bytes)
    details = {t["index"]: t["name"] for t in it.get_tensor_details()}
    return [details[i] for op in it._get_ops_details() for i in op["outputs"] if i in details]


def op_dtypes(model_bytes: bytes) -> list[tuple[str, str]]:
    """(op name, dtype of its first output) per op: shows which ops run in int8."""
    it = interpreter(model_bytes)
    details = {t["index"]: t for t in it.get_tensor_details()}
    rows = []
    for op in it._get_ops_details():
        if op["op_name"] == "DELEGATE" or not len(op["outputs"]):
            continue
        rows.append((op["op_name"], np.dtype(details[op["outputs"][0]]["dtype"]).name))
    return rows


def float_ops(model_bytes: bytes) -> list[str]:
    """Compute ops (not QUANTIZE/DEQUANTIZE/reshapes) whose output is float: the parts left unquantized."""
    skip = {"QUANTIZE", "DEQUANTIZE", "RESHAPE"}
    return [name for name, dt in op_dtypes(model_bytes) if dt in ("float32", "complex64") and name not in skip]


def interpreter(model_bytes: bytes):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model_bytes)
    it.allocate_tensors()
    return it


def run_tflite(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Probabilities (n, C) float32 for windows ``x`` (n, window) float32, one at a time.

    Quantized inputs/outputs are handled with the scales read from the
    interpreter's tensor details (none are hard-coded).
    """
    it = interpreter(model_bytes)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    rows = []
    for w in np.asarray(x, dtype=np.float32):
        it.set_tensor(inp["index"], _quantize(w[None, :], inp))
        it.invoke()
        rows.append(_dequantize(it.get_tensor(out["index"]), out)[0])
    return np.asarray(rows, dtype=np.float32)


def _quantize(x: np.ndarray, detail) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return x
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])


def _dequantize(y: np.ndarray, detail) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return y
    scale, zero = detail["quantization"]
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)


if __name__ == "__main__":  # a library module: `python -m` would import it, do nothing and exit 0
    raise SystemExit("error: export.tflite is a library module, not a command (see python -m export --help)")
