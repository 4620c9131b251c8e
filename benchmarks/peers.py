"""What users would run instead, timed on the same model and the same windows.

For one export folder (``python -m export`` layout), in one process, single
threaded where the engine allows it, batch 1, after a warm-up:

* ``keras_predict``: ``model.predict(x, verbose=0)`` — what a researcher calls;
* ``keras_call``: ``model(x, training=False)`` — eager call;
* ``tf_lite_interpreter``: the TFLite interpreter inside TensorFlow (``tf.lite.Interpreter``);
* ``onnxruntime``: a plain ``InferenceSession`` on ``model_float32.onnx``;
* ``mediapipe``: MediaPipe Tasks' ``AudioClassifier`` on ``model_float32.tflite``;
* ``tinyaudio_runtime``: this project's ``runtime.model`` on the same float32 file (the reference);
* ``tinyaudio_streaming``: the streaming engine end to end (ring buffer, smoothing,
  top-k; hop = window so each window is classified once), per window.

Ratios in the results are each peer's p50 over the reference's p50 (> 1: slower
than ours). Run as ``python -m benchmarks.peers DIR`` (prints JSON); needs the
``export`` extra (TensorFlow, onnxruntime, mediapipe).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from runtime.cli import ArgumentParser

REFERENCE = "tinyaudio_runtime"


def _time_each(fn, windows: np.ndarray, warmup: int) -> list[float]:
    for i in range(warmup):
        fn(windows[i % len(windows)])
    times = []
    for w in windows:
        t0 = time.perf_counter()
        fn(w)
        times.append(time.perf_counter() - t0)
    return times


def _stats(times: list[float]) -> dict:
    ms = np.asarray(times) * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "n": int(ms.size)}


def peer_runners(folder: Path, threads: int = 1) -> dict:
    """name -> callable(window float32 (N,)) for every peer that can load here."""
    from runtime.model import load_model

    tfl, onx = folder / "model_float32.tflite", folder / "model_float32.onnx"
    ours = load_model(tfl, threads=threads)
    runners = {REFERENCE: ours.predict}

    from train.quiet import quiet_import

    tf = quiet_import("tensorflow")  # without its start-up banner on stderr

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    except RuntimeError:  # TF already initialised in this process (tests): keep its default
        pass
    from export.loading import load_keras  # registers the zoo layers, safe mode on

    keras_model = load_keras(folder / "model.keras")
    runners["keras_predict"] = lambda w: keras_model.predict(w[None], verbose=0)
    runners["keras_call"] = lambda w: keras_model(w[None], training=False)

    tf_interp = tf.lite.Interpreter(model_path=str(tfl), num_threads=threads)
    tf_interp.allocate_tensors()
    i_in, i_out = tf_interp.get_input_details()[0]["index"], tf_interp.get_output_details()[0]["index"]

    def tf_lite(w):
        tf_interp.set_tensor(i_in, w[None])
        tf_interp.invoke()
        return tf_interp.get_tensor(i_out)

    runners["tf_lite_interpreter"] = tf_lite

    if onx.is_file():
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        sess = ort.InferenceSession(str(onx), opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        runners["onnxruntime"] = lambda w: sess.run(None, {name: w[None]})

    try:
        from mediapipe.tasks.python import audio
        from mediapipe.tasks.python.components.containers.audio_data import AudioData
        from mediapipe.tasks.python.core.base_options import BaseOptions

        options = audio.AudioClassifierOptions(base_options=BaseOptions(model_asset_path=str(tfl)), max_results=3)
        classifier = audio.AudioClassifier.create_from_options(options)
        rate = ours.sample_rate
        runners["mediapipe"] = lambda w: classifier.classify(AudioData.create_from_array(w, rate))
    except Exception as e:  # report, don't fail: MediaPipe is one peer among several
        runners["mediapipe_error"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return runners


def streaming_times(folder: Path, windows: np.ndarray, threads: int, warmup: int) -> list[float]:
    """Per-window wall time of the streaming engine fed one window-sized block at a time."""
    from runtime.engine import EngineConfig, StreamingEngine
    from runtime.model import load_model

    model = load_model(folder / "model_float32.tflite", threads=threads)
    engine = StreamingEngine(model, EngineConfig(hop_samples=model.window_samples))
    for i in range(warmup):
        engine.push(windows[i % len(windows)])
    times = []
    for w in windows:
        t0 = time.perf_counter()
        results = engine.push(w)
        times.append(time.perf_counter() - t0)
        assert len(results) == 1, "one window per pushed window when hop == window"
    return times


def measure_peers(folder: Path, n_windows: int = 30, warmup: int = 5, threads: int = 1) -> dict:
    from runtime.metadata import read_metadata
    from runtime.signals import calibration_windows

    meta = read_metadata(folder / "model_float32.tflite")
    windows = calibration_windows(n_windows, meta.window_samples, meta.sample_rate, seed=7)
    runners = peer_runners(folder, threads)
    results, errors = {}, {}
    for name, fn in runners.items():
        if isinstance(fn, str):
            errors[name.removesuffix("_error")] = fn
            continue
        results[name] = _stats(_time_each(fn, windows, warmup))
    results["tinyaudio_streaming"] = _stats(streaming_times(folder, windows, threads, warmup))
    ref = results[REFERENCE]["p50"]
    for r in results.values():
        r["ratio_to_runtime"] = r["p50"] / ref
    return {"folder": str(folder), "model": meta.name, "threads": threads, "peers": results, "errors": errors}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    p = ArgumentParser(prog="python -m benchmarks.peers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", type=Path, help="an export folder (python -m export layout)")
    p.add_argument("--windows", type=int, default=30, help="timed windows per peer (default 30)")
    p.add_argument("--warmup", type=int, default=5, help="untimed windows per peer first (default 5)")
    p.add_argument("--threads", type=int, default=1, help="threads per engine, where it can be set (default 1)")
    args = p.parse_args(argv)
    from benchmarks.worker import bad_counts
    from runtime.errors import USER_ERRORS, one_line

    # Every peer times model_float32.tflite (and .onnx where present) of the folder, and Keras its
    # model.keras, which python -m export writes but the shipped asset folders do not carry: check both first.
    for name in ("model_float32.tflite", "model.keras"):
        if not (args.folder / name).is_file():
            print(f"error: {args.folder} is not an export folder of python -m export (no {name}; the peers time "
                  "Keras on model.keras and the interpreters on model_float32.tflite)", file=sys.stderr)
            return 2
    bad = bad_counts(args.windows, args.warmup, args.threads)
    if bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    from export.config import ExportError

    try:
        doc = measure_peers(args.folder, args.windows, args.warmup, args.threads)
    except (*USER_ERRORS, ExportError) as e:  # a corrupt model file (.tflite, .keras) or metadata
        print(f"error: {one_line(e, 500)}", file=sys.stderr)
        return 2
    print(json.dumps(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
