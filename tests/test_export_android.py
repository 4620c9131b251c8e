"""export.android: packaging a checked export with golden vectors (issue 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from export.android import package
from export.config import ExportError
from export.files import sha256
from runtime.model import load_model


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    from benchmarks.zoo import export_zoo

    (folder,) = export_zoo(tmp_path_factory.mktemp("exp"), ["lv42"], 8000, calibration=8, log=lambda *_: None)
    return folder


def test_refuses_unchecked_or_failed_exports(export_dir, tmp_path):
    with pytest.raises(ExportError, match="no parity.json"):
        package(export_dir, tmp_path / "a")
    failed = tmp_path / "failed"
    failed.mkdir()
    for f in export_dir.iterdir():
        (failed / f.name).write_bytes(f.read_bytes())
    (failed / "parity.json").write_text(json.dumps({"passed": False}))
    with pytest.raises(ExportError, match="failed its parity check"):
        package(failed, tmp_path / "b")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    with pytest.raises(ExportError, match="not an export folder"):
        package(tmp_path, tmp_path / "c")


def test_golden_vectors_replay(export_dir, tmp_path):
    out = tmp_path / "assets"
    doc = package(export_dir, out, allow_unchecked=True)
    assert set(doc["files"]) == {"tflite_float32", "tflite_int8", "labels"}
    for info in doc["files"].values():
        assert sha256(out / info["file"]) == info["sha256"]
    golden = json.loads((out / "golden" / "expected.json").read_text())
    assert {"silence", "noise_loud", "sine_1khz", "chirp_up", "click"} <= set(golden["cases"])
    for key, name in (("tflite_float32", "model_float32.tflite"), ("tflite_int8", "model_int8.tflite")):
        model = load_model(out / name)
        tol = golden["tolerance_max_abs_probability"][name]
        for case in golden["cases"].values():
            x = np.fromfile(out / "golden" / case["input"], dtype="<f4")
            assert x.shape == (golden["window_samples"],)
            expected = np.asarray(case["outputs"][key]["probabilities"])
            np.testing.assert_allclose(model.predict(x), expected, atol=max(tol, 1e-5))
