"""python -m train.describe: dataset figures from file headers, checked on files of known length,
bad input refused in one line, and the committed benchmarks/results/datasets.json in step with the data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT, SHARED_DATA
from train.data import load_dataset
from train.describe import main, read_headers, summarise


def _write(path: Path, seconds: float, rate: int, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(round(seconds * rate))
    sf.write(str(path), np.zeros((frames, channels), dtype=np.float32), rate, subtype="PCM_16")


def _folders(root: Path) -> Path:
    """Two classes: 'a' with two 0.5 s mono 8 kHz clips, 'b' with 2 s and 5 s stereo 16 kHz ones."""
    _write(root / "a" / "1.wav", 0.5, 8000)
    _write(root / "a" / "2.wav", 0.5, 8000)
    _write(root / "b" / "1.wav", 2.0, 16000, channels=2)
    _write(root / "b" / "2.flac", 5.0, 16000, channels=2)
    return root


def test_summary_of_clips_of_known_length(tmp_path):
    ds = load_dataset("folders", _folders(tmp_path / "set"))
    s = summarise(ds, read_headers([c.path for c in ds.clips], progress=False))
    assert s["clips"] == 4 and s["classes"] == {"a": 2, "b": 2}
    assert s["speakers"] is None and s["folds"] is None and s["sources"] == 4
    assert s["sample_rates"] == {"16000": 2, "8000": 2} and s["channels"] == {"1": 2, "2": 2}
    assert s["formats"] == {"FLAC/PCM_16": 1, "WAV/PCM_16": 3}
    assert s["seconds"] == pytest.approx({"min": 0.5, "median": 1.25, "mean": 2.0, "p90": 4.1, "max": 5.0})
    assert s["within_window"] == {"1": 0.5, "4": 0.75}  # the 1D and 2D default windows
    assert s["hours"] == pytest.approx(8.0 / 3600)


def test_cli_writes_markdown_json_and_png(tmp_path, capsys):
    out = tmp_path / "res" / "datasets.md"
    assert main(["--data", f"folders={_folders(tmp_path / 'set')}", "--out", str(out), "--quiet"]) == 0
    text = out.read_text()
    assert "| clips | 4 |" in text and "| clips ≤ 1 s | 50.0 % |" in text and "| classes | 2 (all 2) |" in text
    figures = json.loads(out.with_suffix(".json").read_text())
    assert figures["datasets"][0]["clips"] == 4 and "durations" not in figures["datasets"][0]
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("case,message", [
    ("corrupt", "unreadable or empty audio file(s)"),
    ("empty", "unreadable or empty audio file(s)"),
    ("no-equals", "expected NAME=PATH"),
    ("unknown", "unknown dataset"),
    ("missing", "folder not found"),
])
def test_bad_input_is_one_line(tmp_path, capsys, case, message):
    root = _folders(tmp_path / "set")
    arg = f"folders={root}"
    if case == "corrupt":
        (root / "b" / "3.wav").write_bytes(b"RIFF....not audio at all")
    elif case == "empty":
        _write(root / "a" / "3.wav", 0.0, 8000)
    elif case == "no-equals":
        arg = str(root)
    elif case == "unknown":
        arg = f"nosuch={root}"
    else:
        arg = f"folders={tmp_path / 'absent'}"
    out = tmp_path / "d.md"
    assert main(["--data", arg, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err
    if case in ("corrupt", "empty"):
        assert "3.wav" in err  # the file is named
    assert not out.exists()


def test_committed_dataset_figures_match_the_data():
    """benchmarks/results/datasets.json holds what the command gives on ../shared/data today."""
    committed = json.loads((ROOT / "benchmarks" / "results" / "datasets.json").read_text())["datasets"]
    checked = 0
    for entry in committed:
        folder = SHARED_DATA / entry["dataset"]
        if not folder.is_dir():
            continue
        ds = load_dataset(entry["dataset"], folder)
        fresh = summarise(ds, read_headers([c.path for c in ds.clips], progress=False))
        del fresh["durations"]
        assert json.loads(json.dumps(fresh)) == entry, entry["dataset"]
        checked += 1
    if not checked:
        pytest.skip(f"no dataset of datasets.json under {SHARED_DATA}")
