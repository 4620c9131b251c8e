"""The committed android_demo_assets/ (issue 4): complete, consistent, and replayable.

Replays every golden vector through this project's runtime (LiteRT) and through
MediaPipe's AudioClassifier, checks the SHA-256 of every file against
metadata.json, the parity verdict, and the 100 KB limit for 1D int8 models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.files import sha256
from runtime.model import load_model

ASSETS = Path(__file__).resolve().parents[1] / "android_demo_assets"
FOLDERS = sorted(p.parent for p in ASSETS.glob("*/metadata.json"))


def test_every_shipped_model_is_present():
    assert {p.name for p in FOLDERS} == {"spoken_digit", "spoken_digit_conv2d", "environmental"}


@pytest.fixture(params=FOLDERS, ids=lambda p: p.name)
def folder(request) -> Path:
    return request.param


def test_files_match_metadata_and_parity_passed(folder):
    meta = json.loads((folder / "metadata.json").read_text())
    for info in meta["files"].values():
        assert sha256(folder / info["file"]) == info["sha256"], info["file"]
    parity = json.loads((folder / "parity.json").read_text())
    assert parity["passed"] and parity["labelled_windows"] > 0
    assert (folder / "parity.md").read_text().strip()
    assert (folder / "labels.txt").read_text().split("\n")[: len(meta["labels"])] == meta["labels"]
    if meta["family"] == "1d":
        assert (folder / "model_int8.tflite").stat().st_size < 100_000


def test_golden_vectors_replay_in_the_runtime(folder):
    golden = json.loads((folder / "golden" / "expected.json").read_text())
    for key, name in (("tflite_float32", "model_float32.tflite"), ("tflite_int8", "model_int8.tflite")):
        model = load_model(folder / name, threads=1)
        assert model.sample_rate == golden["sample_rate"] and list(model.labels) == golden["labels"]
        for probe, case in golden["cases"].items():
            x = np.fromfile(folder / "golden" / case["input"], dtype="<f4")
            want = np.asarray(case["outputs"][key]["probabilities"])
            got = model.predict(x)
            np.testing.assert_allclose(got, want, atol=max(golden["tolerance_max_abs_probability"][name], 1e-5),
                                       err_msg=f"{folder.name}/{name} on {probe}")


def test_mediapipe_loads_the_files_unchanged(folder):
    from mediapipe.tasks.python import audio
    from mediapipe.tasks.python.components.containers.audio_data import AudioData
    from mediapipe.tasks.python.core.base_options import BaseOptions

    golden = json.loads((folder / "golden" / "expected.json").read_text())
    for key, name in (("tflite_float32", "model_float32.tflite"), ("tflite_int8", "model_int8.tflite")):
        options = audio.AudioClassifierOptions(base_options=BaseOptions(model_asset_path=str(folder / name)),
                                               max_results=len(golden["labels"]))
        agree = 0
        with audio.AudioClassifier.create_from_options(options) as classifier:
            for case in golden["cases"].values():
                x = np.fromfile(folder / "golden" / case["input"], dtype="<f4")
                (result,) = classifier.classify(AudioData.create_from_array(x, golden["sample_rate"]))
                top = result.classifications[0].categories[0].category_name
                agree += top == case["outputs"][key]["top1"]
        # Ties between near-equal scores on synthetic probes may break differently.
        assert agree >= len(golden["cases"]) - 1, f"{name}: MediaPipe agrees on {agree}/{len(golden['cases'])}"
