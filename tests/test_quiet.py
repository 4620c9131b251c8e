"""TensorFlow's C++ start-up banner stays off stderr, and nothing else is hidden (train.quiet).

Each case runs in a fresh interpreter: the banner is written to file descriptor 2
on the first import only, and pytest's own capture replaces that descriptor.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *(["-c", code] if code else []), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300,
                          env={"PYTHONPATH": f"{ROOT}:{cwd}", "PATH": "/usr/bin:/bin", **(env or {})})


def test_banner_lines_dropped_other_lines_kept(tmp_path):
    (tmp_path / "noisy.py").write_text(
        "import os\nos.write(2, b'I0000 port.cc:153] oneDNN custom operations are on. You may see...\\n'"
        " b'a real warning\\n')\nVALUE = 7\n")
    r = run_python("from train.quiet import quiet_import; import sys\n"
                   "m = quiet_import('noisy'); assert quiet_import('noisy') is m\n"
                   "print(m.VALUE); sys.stderr.write('after\\n')", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "7\n"
    assert r.stderr == "a real warning\nafter\n"
    debug = run_python("from train.quiet import quiet_import\nquiet_import('noisy')", tmp_path,
                       env={"TINYAUDIO_NATIVE_STDERR": "1"})
    assert debug.returncode == 0 and "oneDNN custom operations are on" in debug.stderr


def test_failed_import_replays_everything(tmp_path):
    (tmp_path / "broken.py").write_text(
        "import os\nos.write(2, b'oneDNN custom operations are on\\nwhy it broke\\n')\nraise ImportError('no luck')\n")
    r = run_python("from train.quiet import quiet_import\nquiet_import('broken')", tmp_path)
    assert r.returncode == 1
    assert r.stderr.startswith("oneDNN custom operations are on\nwhy it broke\n")
    assert "ImportError: no luck" in r.stderr


def test_keras_imports_without_banner(tmp_path):
    r = run_python("from train.quiet import import_keras; import sys\n"
                   "k = import_keras(); import tensorflow\nsys.stderr.write(k.backend.backend() + '\\n')", tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "tensorflow\n"


def test_export_error_after_tensorflow_loads_is_one_line(tmp_path):
    # A zip that is no .keras file: the error comes from Keras, after TensorFlow has loaded.
    import zipfile

    with zipfile.ZipFile(tmp_path / "bad.keras", "w") as z:
        z.writestr("config.json", "{not json")
    (tmp_path / "rep").mkdir()
    t = np.arange(8000) / 8000
    sf.write(tmp_path / "rep" / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    r = run_python("", tmp_path, "-m", "export", "--model", str(tmp_path / "bad.keras"), "--rep-data",
                   str(tmp_path / "rep"), "--out", str(tmp_path / "o"))
    assert r.returncode == 1
    assert r.stderr.startswith("error: cannot load bad.keras") and r.stderr.count("\n") == 1, r.stderr


def test_zoo_modules_import_keras_without_banner(tmp_path):
    # train.layers / models / macs / fit import Keras at module level; whichever comes first
    # (the train CLI reaches train.models before anything else) must go through train.quiet.
    r = run_python("", tmp_path, "-m", "train.models", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert '"lv24"' in r.stdout
    for module in ("train.fit", "train.macs", "train.layers"):
        r = run_python(f"import sys, {module}; assert 'tensorflow' in sys.modules", tmp_path)
        assert r.returncode == 0 and r.stderr == "", (module, r.stderr)


_EXPORT = """
from train.quiet import import_keras
keras = import_keras()
import numpy as np
from export.audio import WindowSet
from export.config import ExportConfig
from export.exporter import export_model
from export.loading import Source
from train.config import ModelConfig
from train.models import build
config = ModelConfig(name="lv18", sample_rate=8000, num_classes=2)
x = np.random.default_rng(0).uniform(-0.3, 0.3, (8, 8000)).astype(np.float32)
export_model(Source(build(config), config, ("a", "b"), __import__("pathlib").Path("m.keras")), WindowSet.from_array(x),
             ExportConfig(out_dir="out", formats=("tflite_float32", "tflite_int8", "onnx_float32", "onnx_int8"),
                          check=False))
"""


def test_export_output_is_the_exporters_own_lines(tmp_path):
    """TFLite's converter, its quantization debugger and onnxruntime's quantizer printed some twenty
    routine lines per export (absl advice, "fully_quantize: 0, ...", the XNNPACK notice, two Python
    warnings, onnxruntime's calibration progress on stdout): export.quiet drops exactly those."""
    from export.quiet import CALIBRATION_PRINTS, CONVERTER_NOISE

    r = run_python(_EXPORT, tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    for noise in CONVERTER_NOISE + CALIBRATION_PRINTS + ("warnings.warn(", "UserWarning"):
        assert noise not in r.stdout + r.stderr, noise
    lines = r.stdout.splitlines()
    assert lines[0].startswith("exporting lv18") and all(line.startswith("  ") for line in lines[1:]), r.stdout
    assert sum(".tflite:" in line or ".onnx:" in line for line in lines) == 4
    assert r.stderr == "", r.stderr
