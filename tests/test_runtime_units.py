"""Unit tests of the runtime's numeric parts, budgets and import hygiene (no model files)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.budgets import BUDGETS_FILE, get_budget, load_budgets
from runtime.dsp import RingBuffer, Smoother, StreamResampler, pcm_to_float32, to_mono, top_k
from runtime.engine import EngineConfig
from runtime.errors import ConfigError, InputTypeError, MetadataError
from runtime.metadata import ModelMetadata
from runtime.model import Quantization
from runtime.sources import truncation_warning

ROOT = Path(__file__).resolve().parents[1]


def test_importing_runtime_never_imports_tensorflow_or_keras():
    modules = sorted(p.stem for p in (ROOT / "runtime").glob("*.py") if p.stem != "__main__")
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module('runtime.' + m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'tensorflow_core'))\n"
        "print(len(sys.modules)); assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert {"live", "engine", "model", "sources", "dsp", "metadata"} <= set(modules)


# ---------------------------------------------------------------- ring buffer


@pytest.mark.parametrize(
    "bad",
    [np.zeros(4, np.int16), np.zeros(4, np.float64), np.zeros((4, 1), np.float32), [0.0, 1.0]],
    ids=["int16", "float64", "2d", "list"],
)
def test_ring_buffer_rejects_wrong_types(bad):
    ring = RingBuffer(8)
    with pytest.raises(InputTypeError):
        ring.write(bad)
    assert ring.total == 0


@settings(max_examples=60, deadline=None)
@given(capacity=st.integers(1, 50), sizes=st.lists(st.integers(0, 120), min_size=1, max_size=12))
def test_ring_buffer_matches_a_plain_concatenation(capacity, sizes):
    ring = RingBuffer(capacity)
    chunks = [np.arange(sum(sizes[:i]), sum(sizes[: i + 1]), dtype=np.float32) for i in range(len(sizes))]
    for c in chunks:
        ring.write(c)
    full = np.concatenate(chunks)
    assert ring.total == full.size
    length = min(capacity, full.size)
    if length:
        np.testing.assert_array_equal(ring.window(full.size, length), full[-length:])
    with pytest.raises(ConfigError):  # older than the buffer holds
        ring.window(full.size + 1, 1)


def test_ring_buffer_reset_and_preallocation():
    ring = RingBuffer(4)
    data_id = id(ring._data)
    ring.write(np.ones(6, np.float32))
    ring.reset()
    assert ring.total == 0 and id(ring._data) == data_id and not ring._data.any()


# ---------------------------------------------------------------- other numeric parts


def test_to_mono_downmixes_and_checks():
    stereo = np.stack([np.ones(5, np.float32), -np.ones(5, np.float32) * 0.5], axis=1)
    np.testing.assert_allclose(to_mono(stereo), 0.25)
    assert to_mono(stereo[:, :1]).shape == (5,)
    with pytest.raises(InputTypeError):
        to_mono(np.zeros(5, np.int16))
    with pytest.raises(InputTypeError):
        to_mono(np.zeros((2, 2, 2), np.float32))


def test_pcm_to_float32_scales():
    np.testing.assert_allclose(pcm_to_float32(np.array([-32768, 0, 16384], np.int16)), [-1.0, 0.0, 0.5])


def test_stream_resampler_passthrough_and_rate_check():
    x = np.arange(10, dtype=np.float32)
    assert StreamResampler(16000, 16000).process(x) is x
    with pytest.raises(ConfigError):
        StreamResampler(0, 16000)


def test_smoother_and_top_k():
    s = Smoother(2, 3)
    s.update(np.array([1, 0, 0], np.float32))
    s.update(np.array([0, 1, 0], np.float32))
    np.testing.assert_allclose(s.update(np.array([0, 1, 0], np.float32)), [0, 1, 0])  # the first fell out
    assert top_k(np.array([0.1, 0.7, 0.2], np.float32), 2) == [(1, pytest.approx(0.7)), (2, pytest.approx(0.2))]
    with pytest.raises(ConfigError):
        Smoother(0, 3)


def test_quantization_round_trip_uses_given_scale():
    q = Quantization(np.dtype(np.int8), scale=0.01, zero_point=-3)
    x = np.array([-2.0, -0.5, 0.0, 0.25, 2.0], np.float32)
    qx = q.quantize(x)
    assert qx.dtype == np.int8 and qx.tolist() == [-128, -53, -3, 22, 127]  # clipped at both ends
    np.testing.assert_allclose(q.dequantize(qx)[1:4], x[1:4], atol=0.005)
    assert not Quantization(np.dtype(np.float32)).quantized
    # the highest score an output can hold: the int8 softmax's fixed 1/256 scale stops one step short of 1
    assert Quantization(np.dtype(np.int8), scale=1 / 256, zero_point=-128).top_score == 255 / 256
    assert Quantization(np.dtype(np.float32)).top_score == 1.0 and q.top_score == 1.0  # 1.3 would be past any probability


@pytest.mark.parametrize("kwargs", [{"hop_samples": 0}, {"smooth": 0}, {"threshold": 1.5}, {"top_k": 0}, {"silence_db": 1.0}, {"silence_db": float("nan")}])
def test_engine_config_rejects_bad_values(kwargs):
    with pytest.raises(ConfigError):
        EngineConfig(**kwargs)


# ---------------------------------------------------------------- budgets


def test_budgets_state_a_source_for_every_limit():
    data = json.loads(BUDGETS_FILE.read_text())["budgets"]
    assert {"low-end-phone", "mid-range-phone", "mcu-small", "mcu-medium", "mcu-large"} <= set(data)
    for budget in data.values():
        limits = [k for k in budget if k != "description"]
        assert limits
        for key in limits:
            assert budget[key]["limit"] > 0 and len(budget[key]["source"]) > 20
    budgets = load_budgets()
    assert budgets["low-end-phone"].peak_rss_mib <= budgets["mid-range-phone"].peak_rss_mib
    mcu = [budgets[f"mcu-{s}"] for s in ("small", "medium", "large")]
    assert [b.limits["ram_kib"].value for b in mcu] == sorted(b.limits["ram_kib"].value for b in mcu)


def test_budget_judge_names_the_failing_limit():
    small = get_budget("mcu-small")
    verdict = small.judge({"ram_kib": 70.0, "mops_per_window": 134.4})
    assert not verdict["pass"]
    assert "mops_per_window 134.4 > 6" in verdict["reasons"]
    assert "ram_kib 70 <= 80" in verdict["reasons"]
    assert small.judge({"ram_kib": 1.0, "mops_per_window": 1.0})["pass"]
    unjudged = small.judge({"ram_kib": 1.0})
    assert not unjudged["pass"] and unjudged["unjudged"] == ["mops_per_window"]
    with pytest.raises(ConfigError):
        get_budget("flip-phone")


def test_runtime_verdict_is_none_when_not_judged():
    """``within``: True / False when judged, None ("not judged") when a limit is missing or unmeasured."""
    from runtime.budgets import _judge_runtime

    phone = get_budget("low-end-phone")
    assert _judge_runtime(phone, 1.0, 10.0)["within"] is True
    assert _judge_runtime(phone, 1e6, 10.0)["within"] is False
    no_windows = _judge_runtime(phone, None, 10.0)
    assert no_windows["within"] is None
    assert "latency_ms_per_window not judged: no windows were timed" in no_windows["reasons"]
    assert _judge_runtime(phone, None, 1e6)["within"] is False  # a measured failure stands
    mcu = _judge_runtime(get_budget("mcu-small"), 1.0, 10.0)
    assert mcu["within"] is None and "sets no latency or RSS limit" in mcu["reasons"][0]


# ---------------------------------------------------------------- microphone callback


def test_mic_callback_never_blocks_and_counts_drops():
    import queue
    import threading
    from types import SimpleNamespace

    from runtime.sources import MicConfig, MicSource

    mic = MicSource.__new__(MicSource)  # no device needed for the callback itself
    mic.config = MicConfig(queue_blocks=2)
    mic._queue = queue.Queue(maxsize=2)
    mic._finished = threading.Event()
    mic.dropped = mic.overflows = 0
    block = np.ones((4, 2), np.float32)
    for i in range(5):
        mic._callback(block, 4, None, SimpleNamespace(input_overflow=(i == 0)))
    assert mic._queue.qsize() == 2 and mic.dropped == 3 and mic.overflows == 1
    queued = mic._queue.get_nowait()
    block[:] = 0
    assert queued.all()  # a copy: PortAudio reuses its buffer after the callback


# ---------------------------------------------------------------- metadata and headers

GOOD_METADATA = {"name": "m", "labels": ["a", "b"], "sample_rate": 8000, "window_samples": 8000, "hop_samples": 4000}


@pytest.mark.parametrize(
    "change,words",
    [
        ({"sample_rate": float("nan")}, ["sample_rate", "whole number", "nan"]),  # json.loads reads NaN
        ({"sample_rate": 8000.0}, ["sample_rate", "whole number"]),
        ({"hop_samples": 0.5}, ["hop_samples", "whole number"]),
        ({"window_samples": True}, ["window_samples", "whole number"]),
        ({"sample_rate": 10**9}, ["sample_rate", "768000"]),  # used to hang resampling into nothing
        ({"window_samples": 8000 * 601}, ["600 s"]),
        ({"labels": "0123456789"}, ["labels", "list"]),  # used to become ten one-letter labels
        ({"labels": ["a", 1]}, ["label 1", "not a non-empty string"]),
        ({"labels": ["a", "b\nc"]}, ["label 'b\\nc'", "line break"]),  # labels.txt would list three classes
        ({"labels": ["a", "b "]}, ["label 'b '", "white space"]),
        ({"labels": ["a", "a"]}, ["distinct"]),
        ({"labels": []}, ["no labels"]),
        ({"name": ""}, ["name"]),
    ],
)
def test_metadata_read_from_a_file_is_type_checked(change, words):
    text = json.dumps({**GOOD_METADATA, **change})
    with pytest.raises(MetadataError) as e:
        ModelMetadata.from_json(text)
    for w in words:
        assert w in str(e.value)
    assert ModelMetadata.from_json(json.dumps(GOOD_METADATA)).labels == ("a", "b")


@pytest.mark.parametrize(
    "log,truncated",
    [
        ("data : 96000 (should be 32000)\n", True),
        ("data : 96000\n", False),
        ("data : 0 (should be 32000)\n", False),  # a streaming writer left the size at 0
        (f"data : {0xFFFFFFFF} (should be 32000)\n", False),  # ... or at its placeholder
        ("", False),
    ],
)
def test_truncation_warning_reads_libsndfiles_header_log(log, truncated):
    warning = truncation_warning("x.wav", "RIFF : 96036\nWAVE\n" + log)
    assert (warning is not None) == truncated
    if truncated:
        assert "x.wav looks truncated" in warning and "96000" in warning and "32000" in warning


def test_a_broken_metadata_json_is_named(tmp_path):
    """'model metadata is not valid JSON' did not say which file, though several models may share a folder."""
    import shutil

    from runtime.model import load_model
    from runtime_fixtures import tone_tflite

    model = tmp_path / "m.tflite"
    shutil.copy(tone_tflite(), model)
    (tmp_path / "metadata.json").write_text('{"name": "tone2", ')
    with pytest.raises(MetadataError) as e:
        load_model(model)
    assert str(e.value).startswith(f"{tmp_path / 'metadata.json'}: model metadata is not valid JSON")
