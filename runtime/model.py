"""One wrapper for ``.tflite`` (LiteRT) and ``.onnx`` (onnxruntime) classifiers.

    >>> model = load_model("android_demo_assets/spoken_digit/model_int8.tflite", threads=2)
    >>> probs = model.predict(window)        # float32 (window_samples,) -> float32 (classes,)

Labels, sample rate and window come from the metadata inside the file
(``runtime.metadata.read_metadata``; ``metadata.json`` beside it as the fallback).
For full-integer models the input/output scale and zero point are read from the
interpreter, never assumed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.errors import InferenceError, InputTypeError, ModelLoadError, one_line, quiet_native_stderr
from runtime.files import not_a_file
from runtime.metadata import ONNX_KEY, MetadataError, ModelMetadata, parse_metadata, read_metadata


def litert_interpreter_class():
    """LiteRT's Interpreter; ``tflite_runtime`` as the fallback for older devices."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise ModelLoadError("no TFLite interpreter: pip install ai-edge-litert") from None
    return Interpreter


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of one tensor: ``real = scale * (q - zero_point)``.
    ``scale == 0`` means the tensor is not quantized (float)."""

    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """``float32`` -> this tensor's dtype (rounded, clipped to its range)."""
        if not self.quantized:
            return x.astype(self.dtype, copy=False)
        info = np.iinfo(self.dtype)
        q = np.round(x / self.scale) + self.zero_point
        return np.clip(q, info.min, info.max).astype(self.dtype)

    @property
    def top_score(self) -> float:
        """The highest probability this tensor can hold: 1.0 for a float tensor; for an int8 softmax
        (scale 1/256, zero point -128, the TFLite converter's fixed choice) 255/256, one step short
        of 1."""
        if not self.quantized:
            return 1.0
        return min(1.0, float(self.dequantize(np.array([np.iinfo(self.dtype).max], self.dtype))[0]))

    def dequantize(self, q: np.ndarray) -> np.ndarray:
        """This tensor's dtype -> ``float32``."""
        if not self.quantized:
            return q.astype(np.float32, copy=False)
        return ((q.astype(np.float32) - np.float32(self.zero_point)) * np.float32(self.scale)).astype(np.float32)


# How far a score may stray outside [0, 1] and still be a probability: float16 softmax outputs
# round to within 1e-3 of the range, int8 ones dequantize into it exactly.
PROBABILITY_SLACK = 1e-3


class Model:
    """A loaded classifier. Use :func:`load_model`.

    Attributes:
        path: the model file.
        metadata: its :class:`ModelMetadata`.
        backend: ``"litert"`` or ``"onnxruntime"``.
        threads: thread count asked for (``None``: the backend's default).
        input_quant / output_quant: the input and output tensors' :class:`Quantization`.
        top_score: the highest class score the model can output: 1.0, or 255/256 for an int8
            softmax (``--threshold`` above it could never fire).
        last_invoke_s: seconds the last ``predict`` spent in the backend's invoke alone.
    """

    def __init__(self, path: Path, metadata: ModelMetadata, backend: str, threads: int | None) -> None:
        self.path = path
        self.metadata = metadata
        self.backend = backend
        self.threads = threads
        self.last_invoke_s = 0.0
        self.input_quant = Quantization(np.dtype(np.float32))
        self.output_quant = Quantization(np.dtype(np.float32))
        self.top_score = 1.0

    @property
    def labels(self) -> tuple[str, ...]:
        return self.metadata.labels

    @property
    def sample_rate(self) -> int:
        return self.metadata.sample_rate

    @property
    def window_samples(self) -> int:
        return self.metadata.window_samples

    def predict(self, window: np.ndarray) -> np.ndarray:
        """Class probabilities for one window.

        Args:
            window: ``float32 (window_samples,)``, raw mono PCM in [-1, 1] at ``sample_rate``.
        Returns:
            ``float32 (len(labels),)``, the model's softmax output (dequantized).
        Raises:
            InferenceError: the backend failed, or the output is not probabilities (NaN, inf, or a
                score outside [0, 1]: a broken file, or a model exported without its softmax, whose
                logits would make ``--threshold`` and the smoothing meaningless).
        """
        if window.dtype != np.float32 or window.shape != (self.window_samples,):
            raise InputTypeError(
                f"model input must be float32 ({self.window_samples},), got {window.dtype} {window.shape}"
            )
        q = self.input_quant.quantize(window[np.newaxis, :])
        try:
            out = self._invoke(q)
        except Exception as e:  # LiteRT/onnxruntime raise RuntimeError with kernel details
            raise InferenceError(f"{self.path.name}: inference failed ({one_line(e)})") from None
        probs = self.output_quant.dequantize(out).reshape(-1)
        lo, hi = float(probs.min()), float(probs.max())  # NaN compares False below, so it is caught too
        if not (-PROBABILITY_SLACK <= lo and hi <= 1.0 + PROBABILITY_SLACK):
            bad = next(float(v) for v in probs if not -PROBABILITY_SLACK <= v <= 1.0 + PROBABILITY_SLACK)
            raise InferenceError(f"{self.path.name} gave {bad:g} as a class score: its outputs are not probabilities "
                                 "(a broken file, or a model exported without its softmax)")
        return probs

    def _invoke(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_signature(self, in_shape, out_shape) -> None:
        n, c = self.window_samples, len(self.labels)
        # Dynamic dimensions come back as -1 (LiteRT) or None/strings (ONNX).
        in_shape = [int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in in_shape]
        out_shape = [int(d) if isinstance(d, (int, np.integer)) and d > 0 else None for d in out_shape]
        if len(in_shape) != 2 or in_shape[1] not in (n, None):
            raise ModelLoadError(f"{self.path.name}: input shape {in_shape} does not match the metadata window ({n} samples)")
        if int(np.prod([d for d in out_shape if d is not None])) != c:
            raise ModelLoadError(f"{self.path.name}: output shape {list(out_shape)} does not match the {c} labels in its metadata")


class _LiteRTModel(Model):
    def __init__(self, path: Path, data: bytes, metadata: ModelMetadata, threads: int | None, interpreter) -> None:
        super().__init__(path, metadata, "litert", threads)
        self._interp = interpreter
        inp = interpreter.get_input_details()
        out = interpreter.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise ModelLoadError(f"{path.name}: expected one input and one output tensor, got {len(inp)} and {len(out)}")
        self._in, self._out = inp[0], out[0]
        self._check_signature(list(self._in["shape"]), list(self._out["shape"]))
        if list(self._in["shape"]) != [1, self.window_samples]:
            with quiet_native_stderr():
                interpreter.resize_tensor_input(self._in["index"], [1, self.window_samples])
                interpreter.allocate_tensors()
        self.input_quant = _quant_of(self._in)
        self.output_quant = _quant_of(self._out)
        self.top_score = min(self.output_quant.top_score, _fed_from_top_score(interpreter, self._out["index"]))

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        self._interp.set_tensor(self._in["index"], x)
        t0 = time.perf_counter()
        self._interp.invoke()
        self.last_invoke_s = time.perf_counter() - t0
        return self._interp.get_tensor(self._out["index"])


def _fed_from_top_score(interpreter, output_index: int) -> float:
    """The top score of the one quantized tensor the output is computed from, 1.0 if there is none.

    An int8 export with float IO ends in DEQUANTIZE (or a delegate node doing it) of the int8
    softmax, whose scale 1/256 stops one step short of 1: the float output never exceeds 255/256.
    The op graph is read through LiteRT's private ``_get_ops_details``; where that is missing or
    changes shape, the answer falls back to 1.0 (no check, as before) rather than failing a load.
    """
    try:
        tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
        producer = next(op for op in interpreter._get_ops_details() if output_index in list(op["outputs"]))
        fed = [_quant_of(tensors[i]) for i in producer["inputs"] if i in tensors]
    except Exception:  # noqa: BLE001 - private API: any failure means "unknown", never a failed load
        return 1.0
    return fed[0].top_score if len(fed) == 1 and fed[0].quantized else 1.0


def _quant_of(detail: dict) -> Quantization:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return Quantization(np.dtype(detail["dtype"]), float(scale), int(zero_point))


class _OnnxModel(Model):
    _TYPES = {"tensor(float)": np.float32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8}

    def __init__(self, path: Path, metadata: ModelMetadata, threads: int | None, session) -> None:
        super().__init__(path, metadata, "onnxruntime", threads)
        self._session = session
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) < 1:
            raise ModelLoadError(f"{path.name}: expected one input tensor, got {len(inputs)}")
        self._in_name, self._out_name = inputs[0].name, outputs[0].name
        self._check_signature(list(inputs[0].shape), list(outputs[0].shape))
        if inputs[0].type != "tensor(float)":
            # ONNX carries no scale in the IO signature; export writes float IO (QDQ inside).
            raise ModelLoadError(f"{path.name}: ONNX input type {inputs[0].type} is not supported (float32 only)")

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = self._session.run([self._out_name], {self._in_name: x})[0]
        self.last_invoke_s = time.perf_counter() - t0
        return out


def max_threads() -> int:
    """Most backend threads :func:`load_model` accepts: 64, or the core count if larger.

    Threads beyond the cores only contend (phones have at most ~12), so 64 leaves
    room to try oversubscription, and never refuses "all cores" (benchmarks ask for
    ``os.cpu_count()``). Without a bound, LiteRT segfaults on absurd counts (100000).
    """
    return max(64, os.cpu_count() or 1)


def load_model(path: str | Path, threads: int | None = None) -> Model:
    """Load a ``.tflite`` or ``.onnx`` classifier with its metadata.

    Args:
        path: model file.
        threads: CPU threads for the backend (1 to :func:`max_threads`), or ``None`` for its default.
    Raises:
        ModelLoadError: missing file, unknown suffix, not a model, signature
            that does not match the metadata.
        MetadataError: no readable metadata inside or beside the file.
    """
    path = Path(path)
    if threads is not None and not 1 <= threads <= max_threads():
        raise ModelLoadError(f"threads must be between 1 and {max_threads()} on this machine, got {threads}")
    problem = not_a_file(path, "model file")
    if problem:
        raise ModelLoadError(problem)
    if path.stat().st_size == 0:  # LiteRT would answer "model_path or model_content must be specified"
        raise ModelLoadError(f"{path.name} is empty (0 bytes)")
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        data = path.read_bytes()
        Interpreter = litert_interpreter_class()
        try:
            with quiet_native_stderr():
                interp = Interpreter(model_content=data, num_threads=threads)
                interp.allocate_tensors()
        except Exception as e:  # LiteRT raises ValueError/RuntimeError with multi-line text
            raise ModelLoadError(f"{path.name} is not a loadable TFLite model ({one_line(e)})") from None
        metadata = read_metadata(path, model_bytes=data)
        return _LiteRTModel(path, data, metadata, threads, interp)
    if suffix == ".onnx":
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelLoadError("ONNX models need onnxruntime: pip install onnxruntime") from None
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: warnings would break the one-line error contract
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ModelLoadError(f"{path.name} is not a loadable ONNX model ({one_line(e)})") from None
        text = session.get_modelmeta().custom_metadata_map.get(ONNX_KEY)
        metadata = parse_metadata(text, f"{path.name} (the metadata inside)") if text is not None else read_metadata(path)
        return _OnnxModel(path, metadata, threads, session)
    raise ModelLoadError(f"{path.name}: unknown model format {suffix or '(no suffix)'}; expected .tflite or .onnx")



__all__ = ["MetadataError", "Model", "ModelLoadError", "Quantization", "load_model"]
