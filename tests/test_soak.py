"""The soak benchmark, short: 2 minutes of generated audio through the engine with the
int8 lv24 @ 8 kHz model (the 10-hour run: ``python -m benchmarks.soak --hours 10``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.soak import SignalGenerator, blocks, make_int8_model, soak

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def int8_model(tmp_path_factory) -> Path:
    return make_int8_model(tmp_path_factory.mktemp("soak") / "lv24_int8.tflite")


def test_two_minutes_no_window_lost(int8_model):
    r = soak(int8_model, 120.0, rate=16000, block=1024, bucket_s=60.0)
    assert r["config"]["backend"] == "litert" and r["config"]["model_rate"] == 8000
    assert r["model_samples"] == r["model_samples_expected"] == 960000
    assert r["windows"] == r["windows_expected"] == 1191 and r["windows_dropped"] == 0 and r["hop_gaps"] == 0
    assert r["nonfinite_windows"] == 0
    assert len(r["latency_per_bucket"]) == 2 and all(b["windows"] > 500 for b in r["latency_per_bucket"])
    assert r["rss"]["peak_growth_after_1_min_mib"] < 8  # the 10-hour run measures flatness properly


def test_generator_is_deterministic_and_bounded():
    a = [b.copy() for b in blocks(SignalGenerator(16000, seed=3), 50000, 1000)]
    b = [b.copy() for b in blocks(SignalGenerator(16000, seed=3), 50000, 1000)]
    assert sum(x.shape[0] for x in a) == 50000 and all((x == y).all() for x, y in zip(a, b))
    assert max(abs(x).max() for x in a) <= 1.0


@pytest.mark.slow
def test_soak_cli_one_hour(int8_model, tmp_path):
    out = tmp_path / "soak.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--hours", "1", "--bucket", "600", "--model", str(int8_model), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["windows_dropped"] == 0 and r["nonfinite_windows"] == 0 and out.with_suffix(".png").is_file()


def test_soak_cli_checks_the_output_folder_first(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--hours", "1", "--out", str(tmp_path / "no" / "such" / "soak.json")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: output folder does not exist")
