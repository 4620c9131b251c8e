"""Keep the converters' routine chatter out of an export's output.

TensorFlow's converter, its quantization debugger and onnxruntime's quantizer each print
something on every export that says nothing about it: absl deprecation advice, the MLIR
quantizer's settings line, LiteRT's delegate notice, onnxruntime's pre-processing advice on
stderr and its calibration progress on stdout. An export printed some twenty such lines around
its own eight. These helpers drop exactly those (substring matches), pass everything else
through, and hide nothing when the wrapped call fails (``train.quiet.filtered_stderr``).
``TINYAUDIO_NATIVE_STDERR=1`` shows them all again.
"""

from __future__ import annotations

import contextlib
import io
import sys
import warnings

from train.quiet import filtered_stderr

CONVERTER_NOISE = (
    "Please consider providing the trackable_obj argument",  # absl, TFLiteConverter.from_concrete_functions
    "fully_quantize: ",  # the MLIR quantizer's settings, printed by C++
    "Created TensorFlow Lite XNNPACK delegate",
    "Please consider to run pre-processing before quantization",  # onnxruntime quantize_static
    "Please consider pre-processing before quantization",
)
CALIBRATION_PRINTS = (  # onnxruntime's calibrator, print()ed to stdout
    "Collecting tensor data and making histogram",
    "Finding optimal threshold for each tensor",
    "Number of tensors :",
    "Number of histogram bins :",
    "Percentile :",
)


@contextlib.contextmanager
def converter_chatter_dropped():
    """Converter notices off stderr, and the two Python warnings TensorFlow gives on every
    full-integer conversion (its own interpreter's deprecation, inside the quantization debugger;
    input statistics that float32 inputs do not need)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        with filtered_stderr(CONVERTER_NOISE):
            yield


@contextlib.contextmanager
def calibration_prints_dropped():
    """onnxruntime's calibration progress lines off stdout; anything else printed is passed on."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        kept = [line for line in buffer.getvalue().splitlines(keepends=True) if not line.startswith(CALIBRATION_PRINTS)]
        if kept:
            sys.stdout.write("".join(kept))
            sys.stdout.flush()


if __name__ == "__main__":  # a library module: `python -m` would import it, do nothing and exit 0
    raise SystemExit("error: export.quiet is a library module, not a command (see python -m export --help)")
