"""Loading never executes code from a file: ``.keras`` files go through
``safe_mode=True`` (a Lambda layer is refused), configs and metadata are JSON,
and the code base has no pickle / ``allow_pickle=True`` / eval on loaded data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("runtime", "train", "export", "benchmarks")


def _lambda_model(path: Path) -> Path:
    import keras

    inp = keras.Input((16,))
    out = keras.layers.Lambda(lambda x: x * 2.0, name="evil")(inp)  # saved as marshalled bytecode
    keras.Model(inp, out).save(path)
    return path


def test_keras_lambda_layer_is_refused(tmp_path):
    pytest.importorskip("keras")
    from export.config import ExportError
    from export.loading import load_keras

    path = _lambda_model(tmp_path / "evil.keras")
    with pytest.raises(ExportError) as e:
        load_keras(path)  # the project's loading path (safe_mode=True)
    assert "evil.keras" in str(e.value) and "\n" not in str(e.value)
    import keras

    with pytest.raises(ValueError, match="(?i)lambda"):
        keras.saving.load_model(path, safe_mode=True, compile=False)


def _sources():
    for pkg in PACKAGES:
        yield from sorted((ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize(
    "pattern",
    [r"\bimport pickle\b", r"\bpickle\.", r"allow_pickle\s*=\s*True", r"\bmarshal\.", r"\bdill\b", r"\bcloudpickle\b",
     r"\beval\(", r"\bexec\(", r"yaml\.load\(", r"torch\.load\(", r"safe_mode\s*=\s*False", r"enable_unsafe_deserialization"],
)
def test_no_unsafe_deserialisation_in_the_code(pattern):
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in _sources() for i, line in enumerate(p.read_text().splitlines(), 1)
            if re.search(pattern, line) and not line.lstrip().startswith("#")]
    assert hits == [], hits


def test_every_np_load_refuses_pickles(tmp_path):
    """No ``np.load`` in the project allows pickles (its default refuses them; the decode cache says so
    explicitly), and a poisoned cache entry is never executed: it is a cache miss, decoded again."""
    from train.data import AudioCache

    calls = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in _sources()
             for i, line in enumerate(p.read_text().splitlines(), 1) if "np.load(" in line]
    assert calls and not [c for c in calls if "allow_pickle=True" in c], calls
    # A poisoned cache entry (an object array, i.e. a pickle) is not loaded: the file is decoded again.
    cache = AudioCache(tmp_path / "cache")
    wav = tmp_path / "a.wav"
    import soundfile as sf

    sf.write(wav, np.full(800, 0.25, np.float32), 8000)
    entry = cache._disk_path(wav, 8000)
    entry.parent.mkdir(parents=True)
    np.save(entry, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    audio = cache.get(wav, 8000)
    assert audio.dtype == np.float32 and audio.shape == (800,) and np.allclose(audio, 0.25, atol=1e-4)
    assert np.load(entry).dtype == np.float32  # replaced by the decoded audio, loadable without pickles


def test_model_metadata_is_json_only(tmp_path):
    from runtime.metadata import MetadataError, read_metadata

    model = tmp_path / "m.tflite"
    model.write_bytes(b"\x00" * 64)
    (tmp_path / "metadata.json").write_bytes(b"\x80\x04\x95cos\nsystem\n.")  # a pickle, not JSON
    with pytest.raises(MetadataError, match="not valid JSON"):  # was a UnicodeDecodeError traceback
        read_metadata(model, model_bytes=model.read_bytes())
    (tmp_path / "metadata.json").write_text("[" * 100000)
    with pytest.raises(MetadataError):
        read_metadata(model, model_bytes=model.read_bytes())
