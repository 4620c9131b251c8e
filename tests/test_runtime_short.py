"""A stream shorter than one window is classified once, padded exactly as training pads it."""

from __future__ import annotations

import numpy as np

from runtime.engine import EngineConfig, StreamingEngine
from runtime.model import load_model
from runtime.signals import chirp
from runtime_fixtures import zoo_tflite
from train.windows import cut, window_starts


def test_short_stream_gives_one_training_padded_window():
    model = load_model(zoo_tflite("lv42", 8000, 8000, 800, 4))
    clip = chirp(3001, 8000, 200.0, 3000.0)  # 0.375 s, like most FSDD digits
    engine = StreamingEngine(model, EngineConfig(smooth=1))
    results = []
    for start in range(0, len(clip), 160):
        results += engine.push(clip[start:start + 160])
    assert results == []
    results += engine.flush()
    assert len(results) == 1
    (start,) = window_starts(len(clip), 8000, 800)
    np.testing.assert_allclose(results[0].probs, model.predict(cut(clip, int(start), 8000)), atol=1e-6)
    # its span is the clip's audio, not the padded window's (whose end, 1.0 s, was after the clip's)
    assert (results[0].start_sample, results[0].end_sample) == (0, len(clip))
    assert results[0].time_s == len(clip) / 8000


def test_no_padding_without_pad_short_or_after_full_windows():
    model = load_model(zoo_tflite("lv42", 8000, 8000, 800, 4))
    engine = StreamingEngine(model)
    engine.push(chirp(3000, 8000, 200.0, 3000.0))
    assert engine.flush(pad_short=False) == []
    engine.reset()
    first = engine.push(chirp(8500, 8000, 200.0, 3000.0))
    assert len(first) == 1 and engine.flush() == []
