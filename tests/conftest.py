"""Shared test fixtures.

Real data lives in ``../shared/data`` beside the project (or wherever
``TINYAUDIO_DATA`` points); tests that need it skip with a reason when absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TINYAUDIO_DATA", ROOT.parent / "shared" / "data"))


def shared_dataset(name: str) -> Path:
    """Path of one shared dataset (``fsdd``, ``urbansound8k``, ``emodb``) or skip."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real dataset {name!r} not found at {path} (set TINYAUDIO_DATA)")
    return path


@pytest.fixture
def fsdd_dir() -> Path:
    return shared_dataset("fsdd")


@pytest.fixture
def urbansound_dir() -> Path:
    return shared_dataset("urbansound8k")


@pytest.fixture
def emodb_dir() -> Path:
    return shared_dataset("emodb")
