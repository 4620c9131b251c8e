"""Bad input to the training-side tools (train.augment, train.data loaders, train.describe,
train.order_probe, train.grid, train.report): one `error: ...` line naming the file, row or option,
a non-zero exit, and nothing written beside a refused --out. Fixtures are a few generated clips."""

from __future__ import annotations

import csv
import errno
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from train.augment import Augment
from train.data import DataError, decode, load_dataset


def _tone(path: Path, sr: int = 8000, seconds: float = 0.2, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sr * seconds)) / sr
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr, **kw)
    return path


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def _folders(root: Path, per_class: int = 2) -> Path:
    for cls in ("a", "b"):
        for i in range(per_class):
            _tone(root / cls / f"{i}.wav")
    return root


# --------------------------------------------------------------------- 1. augmentation bounds


@pytest.mark.parametrize("kw, message", [
    ({"eq_db": math.inf}, "eq must be"),
    ({"eq_db": 1e6}, "eq must be"),
    ({"eq_db": math.nan}, "eq must be"),
    ({"speed": (0.9, math.inf)}, "speed range"),
    ({"speed": (1e-6, 1.0)}, "speed range"),  # a window's resampled copy would be a million windows long
    ({"speed": (math.nan, 1.0)}, "speed range"),
    ({"masks": 1000}, "masks must be"),
    ({"shift": math.inf}, "shift"),
    ({"noise_prob": math.nan}, "noise probability"),
    ({"gain_db": (-math.inf, 6.0)}, "gain range"),
    ({"snr_db": (15.0, math.nan)}, "snr range"),
    ({"snr_db": (40.0, 15.0)}, "snr range"),
])
def test_augment_refuses_non_finite_and_absurd_settings(kw, message):
    with pytest.raises(ValueError, match=message):
        Augment(**kw)


def test_augment_keeps_the_documented_settings():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 800)).astype(np.float32)
    for kw in ({}, {"eq_db": 10.0}, {"speed": (0.85, 1.15)}, {"masks": 2}, {"eq_db": 40.0, "speed": (0.25, 4.0)}):
        assert Augment(**kw)(x, rng).shape == x.shape


def test_train_cli_eq_inf_is_one_line(tmp_path, capsys):
    """Regression: --eq inf passed the check, then rng.uniform raised OverflowError in the first batch."""
    from train.__main__ import main

    data = _folders(tmp_path / "set", per_class=6)  # enough for --protocol split's three sides
    assert main(["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "split",
                 "--out", str(tmp_path / "o"), "--eq", "inf", "--quiet"]) == 2
    assert "eq must be" in _one_line(capsys)
    assert not (tmp_path / "o").exists()
