"""Fuzzing every path that reads audio: the seeded corpus of broken and unusual files
from ``benchmarks.reliability`` plus hypothesis-generated signals and byte mutations.

Through (a) the dataset loaders' decode path (``folders`` layout + ``decode``),
(b) ``FileSource`` -> ``StreamingEngine`` and (c) ``python -m runtime.live --json``,
each input must end ``ok`` (finite outputs) or ``error`` (one-line project error;
for the CLI one ``error:`` line, exit != 0, no traceback) — never ``nonfinite``,
``crash`` or ``hang``. The counted table: ``python -m benchmarks.reliability``.
"""

from __future__ import annotations

import io
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.reliability import GOOD, make_corpus, run_cli, run_data, run_runtime
from runtime_fixtures import zoo_tflite

CORPUS = {c.name: c for c in make_corpus()}
# The CLI costs a process start (~1-2 s) per input: a cross-section by default, all of it in -m slow.
CLI_DEFAULT = [
    "ok_pcm16_8k.wav", "zero_bytes.wav", "zero_frames.flac", "data_cut.flac", "riff_garbage.wav", "rate0.wav",
    "float_some_nan.wav", "float_inf.wav", "one_sample.wav", "rate_192k.wav", "ch6_48k.wav", "pcm24.wav",
]
NONFINITE = [n for n in CORPUS if "nan" in n or "inf" in n]


@pytest.fixture(scope="module")
def model_path() -> Path:
    # float32 lv24 @ 8 kHz: its in-graph RMS normalisation is where NaN would spread.
    return zoo_tflite("lv24", 8000, 8000, 800, 10)


@pytest.fixture(scope="module")
def model(model_path):
    from runtime.model import load_model

    return load_model(model_path, threads=1)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpus")


def _case(name: str, folder: Path) -> Path:
    return CORPUS[name].make(folder)


@pytest.mark.parametrize("name", [c.name for c in make_corpus() if not c.slow])
def test_corpus_data_and_runtime(name, corpus_dir, model, tmp_path):
    path = _case(name, corpus_dir)
    data = run_data(path, tmp_path)
    runtime = run_runtime(path, model)
    assert data[0] in GOOD, data
    assert runtime[0] in GOOD, runtime
    if name in NONFINITE:
        # Training data with NaN is refused (naming the file and why); the runtime replaces them.
        assert data[0] == "error" and "NaN/inf" in data[1] and name in data[1], data
        assert runtime[0] == "ok", runtime
    if name.startswith(("ok_", "pcm", "float32", "double64", "ch6", "rate_1k", "rate_192k")):
        assert data[0] == "ok" and runtime[0] == "ok", (data, runtime)


@pytest.mark.parametrize("name", CLI_DEFAULT)
def test_corpus_cli(name, corpus_dir, model_path):
    outcome, detail = run_cli(_case(name, corpus_dir), model_path, timeout=60)
    assert outcome in GOOD, detail


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in CORPUS if n not in CLI_DEFAULT])
def test_corpus_cli_rest(name, corpus_dir, model_path, tmp_path):
    path = _case(name, corpus_dir)
    assert run_cli(path, model_path, timeout=300)[0] in GOOD
    if CORPUS[name].slow:  # the 10-minute clip: the in-process paths too
        from runtime.model import load_model

        assert run_data(path, tmp_path)[0] == "ok"
        assert run_runtime(path, load_model(model_path))[0] == "ok"


# ---------------------------------------------------------------- hypothesis

SPECIAL = st.sampled_from([math.nan, math.inf, -math.inf, 1e30, -1e30, 0.0, 1.0, -1.0, 5e-324])
SUBTYPES = ["PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "PCM_U8"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    frames=st.integers(0, 12000),
    channels=st.integers(1, 6),
    rate=st.sampled_from([1000, 8000, 11025, 16000, 44100, 48000, 192000]),
    subtype=st.sampled_from(SUBTYPES),
    fmt=st.sampled_from(["WAV", "FLAC"]),
    specials=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), SPECIAL), max_size=8),
    seed=st.integers(0, 2**16),
)
def test_random_files(model, frames, channels, rate, subtype, fmt, specials, seed):
    if fmt == "FLAC" and subtype not in ("PCM_16", "PCM_24"):
        subtype = "PCM_16"  # FLAC holds integers only
    if fmt == "FLAC" and rate > 655350:
        rate = 48000
    x = np.random.default_rng(seed).uniform(-1, 1, (frames, channels)).astype(np.float64)
    for where, value in specials:
        if frames:
            x[int(where * frames), int(where * 997) % channels] = value
    if subtype not in ("FLOAT", "DOUBLE"):
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0).clip(-1, 1)  # integer files cannot hold them (the writer asserts)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"x.{fmt.lower()}"
        with np.errstate(invalid="ignore", over="ignore"):
            sf.write(path, x, rate, subtype=subtype, format=fmt)
        data = run_data(path, Path(tmp))
        runtime = run_runtime(path, model)
        assert data[0] in GOOD, data
        assert runtime[0] in GOOD, runtime
        if frames == 0:
            assert data[0] == "error" and runtime[0] == "error"


def _valid(fmt: str) -> bytes:
    buf = io.BytesIO()
    t = np.arange(9000) / 8000
    sf.write(buf, (0.4 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 8000, subtype="PCM_16" if fmt == "FLAC" else "FLOAT", format=fmt)
    return buf.getvalue()


VALID = {"WAV": _valid("WAV"), "FLAC": _valid("FLAC")}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    fmt=st.sampled_from(["WAV", "FLAC"]),
    keep=st.floats(0, 1),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=12),
    header_bias=st.booleans(),
)
def test_mutated_bytes(model, fmt, keep, edits, header_bias):
    data = bytearray(VALID[fmt][: max(0, int(len(VALID[fmt]) * keep))] if keep < 0.999 else VALID[fmt])
    for where, byte in edits:
        if data:
            span = min(len(data), 64) if header_bias else len(data)  # header fields are where parsers break
            data[int(where * span)] = byte
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"m.{'wav' if fmt == 'WAV' else 'flac'}"
        path.write_bytes(bytes(data))
        data_result = run_data(path, Path(tmp))
        runtime = run_runtime(path, model)
        assert data_result[0] in GOOD, data_result
        assert runtime[0] in GOOD, runtime


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=12),
    specials=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), SPECIAL), max_size=10),
    channels=st.integers(1, 3),
)
def test_engine_blocks_with_nonfinite_samples(model, sizes, specials, channels):
    """Blocks straight into the engine (as a microphone driver would deliver them):
    every window finite; every NaN/inf counted."""
    from runtime.engine import EngineConfig, StreamingEngine

    engine = StreamingEngine(model, EngineConfig(hop_samples=400), input_rate=16000)
    rng = np.random.default_rng(len(sizes))
    total = sum(sizes)
    x = rng.uniform(-1, 1, (total, channels)).astype(np.float32)
    with np.errstate(over="ignore"):
        for where, value in specials:
            x[int(where * total), 0] = value
    mono = x.mean(axis=1, dtype=np.float32) if channels > 1 else x[:, 0]
    with np.errstate(invalid="ignore", over="ignore"):
        expected_bad = int((~np.isfinite(mono)).sum())
    results, pos = [], 0
    for n in sizes:
        with np.errstate(invalid="ignore", over="ignore"):
            results += engine.push(x[pos : pos + n] if channels > 1 else x[pos : pos + n, 0])
        pos += n
    results += engine.flush()
    assert engine.nonfinite_samples == expected_bad
    assert all(np.isfinite(r.probs).all() and np.isfinite(r.smoothed).all() and math.isfinite(r.rms) for r in results)
    assert len(results) == max(0, (engine.samples_seen - 8000) // 400 + 1)


def test_corpus_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    for case in make_corpus():
        if not case.slow:
            x, y = case.make(a), case.make(b)
            if x.read_bytes() != y.read_bytes():  # float WAVs carry a PEAK chunk with a timestamp
                assert np.array_equal(sf.read(x)[0], sf.read(y)[0], equal_nan=True), case.name
    shutil.rmtree(a)
    shutil.rmtree(b)
