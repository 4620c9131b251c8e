"""Export: every format, metadata inside the files, bad inputs, thresholds.

Fast subset by default (lv18@8k, sincnet, rollmix, conv2d); the full
12 x 6 sweep is ``pytest -m slow tests/test_export.py``. Untrained models are
fine for conversion; real-audio parity and MediaPipe are in test_export_real.py.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import soundfile as sf

from export.audio import WindowSet, clip_windows
from export.check import check_export
from export.cli import main as export_main
from export.config import ARTIFACTS, ExportConfig, ExportError
from export.exporter import export_model
from export.files import sha256
from export.loading import Source
from export.parity import judge
from export.onnx_export import convert_int8, run_onnx
from export.tflite import _quantized_front_end_weights, convert_dynamic_int8, frozen_function, run_tflite
from export.tflite_metadata import read_model_metadata
from runtime.metadata import JSON_NAME, LABELS_NAME, ONNX_KEY, read_metadata, tflite_associated_files
from train.config import ModelConfig
from train.models import MODEL_NAMES, build, get_entry

FAST = [("lv18", 8000), ("sincnet", 8000), ("rollmix", 8000), ("conv2d", 22050)]
SLOW = [(n, 8000 if get_entry(n).family == "1d" and n != "lv81" else 22050) for n in MODEL_NAMES]


def tones(n: int, window: int, sr: int, seed: int = 0) -> np.ndarray:
    """(n, window) float32: random tones plus noise, peak < 1."""
    rng = np.random.default_rng(seed)
    t = np.arange(window) / sr
    f = rng.uniform(100, sr / 4, size=(n, 1))
    return (0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal((n, window))).astype(np.float32)


def export_untrained(name: str, sr: int, out, head_segments: int = 1, **cfg) -> tuple[dict, Source]:
    config = ModelConfig(name=name, sample_rate=sr, head_segments=head_segments)
    model = build(config)
    window = int(model.inputs[0].shape[1])
    labels = tuple(f"c{i}" for i in range(config.num_classes))
    source = Source(model, config, labels, out / "untrained.keras")
    rep = WindowSet.from_array(tones(8, window, sr))
    doc = export_model(source, rep, ExportConfig(out_dir=out, check=False, **cfg), log=lambda *_: None)
    return doc, source


def assert_export_complete(doc: dict, source: Source, out) -> None:
    window, sr = doc["window_samples"], doc["sample_rate"]
    x = tones(2, window, sr, seed=1)
    ref = np.asarray(source.model(x, training=False))
    silence = np.zeros((1, window), np.float32)
    for a in ARTIFACTS:
        path = out / a.filename
        assert path.is_file(), a.filename
        # float16 once gave NaN here: the RMS floor squared (1e-8) is 0 in float16, and silence became 0 / 0
        on_silence = run_tflite(path.read_bytes(), silence) if a.kind == "tflite" else run_onnx(path.read_bytes(), silence)
        assert np.isfinite(on_silence).all(), a.filename
        assert doc["files"][a.key]["sha256"] == sha256(path)
        meta = read_metadata(path)
        assert meta.name == source.model_config.name and meta.sample_rate == sr and meta.window_samples == window
        assert meta.labels == source.labels
        if a.kind == "tflite":
            data = path.read_bytes()
            files = tflite_associated_files(data)
            assert files[LABELS_NAME].decode().split() == list(source.labels) and JSON_NAME in files
            md = read_model_metadata(data)
            audio = md.subgraphMetadata[0].inputTensorMetadata[0].content.contentProperties
            assert (audio.sampleRate, audio.channels) == (sr, 1)
            assert md.subgraphMetadata[0].outputTensorMetadata[0].associatedFiles[0].name.decode() == LABELS_NAME
            if a.key == "tflite_float32":
                np.testing.assert_allclose(run_tflite(data, x), ref, atol=1e-4)
            if a.key == "tflite_dynamic_int8":  # no hybrid (input-quantizing) op in the front end
                assert _quantized_front_end_weights(data) == []
        else:
            proto = onnx.load(str(path))
            props = {p.key: p.value for p in proto.metadata_props}
            assert json.loads(props[ONNX_KEY])["name"] == source.model_config.name
            assert props["sample_rate"] == str(sr) and json.loads(props["labels"]) == list(source.labels)
    for key in ("params", "macs", "training", "preprocessing", "hop_samples"):
        assert key in doc


@pytest.mark.parametrize("name,sr", FAST)
def test_fast_subset_exports_every_format(name, sr, tmp_path):
    doc, source = export_untrained(name, sr, tmp_path)
    assert_export_complete(doc, source, tmp_path)
    if get_entry(name).family == "1d":
        assert doc["files"]["tflite_int8"]["bytes"] < 100_000
    else:
        assert "logmel" in doc["preprocessing"] or "log-mel" in doc["preprocessing"]
        assert doc["files"]["tflite_float32"]["front_end_constant_bytes"] > 513 * 120 * 4
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob(".*"))


def test_order_aware_head_exports_every_format(tmp_path):
    """--head-segments adds crop, average-pool and flatten layers: every converter takes them, and the
    config inside the files says how the model was built."""
    doc, source = export_untrained("latemix", 8000, tmp_path, head_segments=4)
    assert_export_complete(doc, source, tmp_path)
    assert read_metadata(tmp_path / "model_float32.tflite").config["head_segments"] == 4


def test_dynamic_range_converter_alone_quantizes_the_mel_front_end():
    """Why export keeps the front end float: left alone, the converter makes the mel projection
    a hybrid op with int8 weights (``float_front_end=False`` is how quant_probe measures it)."""
    model = build(ModelConfig(name="conv2d", sample_rate=22050))
    cf = frozen_function(model, int(model.inputs[0].shape[1]))
    assert _quantized_front_end_weights(convert_dynamic_int8(cf, float_front_end=False))


@pytest.mark.parametrize("mode", ["auto", "minmax"])
def test_onnx_calibration_choice_is_built_measured_and_recorded(mode, tmp_path):
    """--onnx-calibration: one method as asked, or (auto) both built and the one closer to Keras on the
    calibration windows kept; metadata.json says which and what each measured."""
    doc, source = export_untrained("lv18", 8000, tmp_path, formats=("onnx_float32", "onnx_int8"),
                                   onnx_calibration=mode)
    note = doc["files"]["onnx_int8"]["calibration"]
    assert note["mode"] == mode and note["measured_on"] == "8 calibration windows"
    assert set(note["candidates"]) == ({"percentile", "minmax"} if mode == "auto" else {"minmax"})
    best = max(note["candidates"].values(), key=lambda c: (c["top1_agreement"], -c["mean_prob_diff"]))
    assert note["candidates"][note["chosen"]] == best
    assert doc["files"]["onnx_int8"]["sha256"] == sha256(tmp_path / "model_int8.onnx")
    with pytest.raises(ExportError, match="onnx_calibration must be one of"):
        ExportConfig(out_dir=tmp_path, onnx_calibration="entropy")


@pytest.mark.parametrize("mode", ["percentile", "auto"])
def test_failing_int8_onnx_names_the_other_calibrations(mode, tmp_path):
    """An int8 ONNX file that loses accuracy: the one-line error says how it was calibrated and what to try
    (after auto, which built both, only the calibration it did not keep)."""
    doc, source = export_untrained("lv42", 8000, tmp_path, formats=("onnx_int8",), onnx_calibration=mode)
    chosen = doc["files"]["onnx_int8"]["calibration"]["chosen"]
    suggested = "auto or minmax" if mode == "percentile" else {"percentile": "minmax", "minmax": "percentile"}[chosen]
    other = build(ModelConfig(name="lv42", sample_rate=8000))
    weights = source.model.get_weights()  # classes rotated by one, as above: the file now loses accuracy
    other.set_weights(weights[:-2] + [np.roll(weights[-2], 1, axis=-1), np.roll(weights[-1], 1)])
    x = tones(20, 8000, 8000, seed=3)
    labels = [source.labels[i] for i in np.argmax(np.asarray(other(x, training=False)), axis=1)]
    with pytest.raises(ExportError, match=rf"model_int8.onnx \(accuracy drop .*\) \(int8 ONNX was calibrated by "
                                          rf"{chosen}: re-export with --onnx-calibration {suggested}\)$"):
        check_export(tmp_path, WindowSet.from_array(x, labels), ExportConfig(out_dir=tmp_path), model=other)


def test_unknown_onnx_calibration_is_refused():
    with pytest.raises(ExportError, match="unknown calibration 'entropy'"):
        convert_int8(b"", np.zeros((1, 8), np.float32), calibration="entropy")


@pytest.mark.slow
@pytest.mark.parametrize("name,sr", SLOW)
def test_all_twelve_export_every_format(name, sr, tmp_path):
    doc, source = export_untrained(name, sr, tmp_path)
    assert_export_complete(doc, source, tmp_path)
    if get_entry(name).family == "1d":
        assert doc["files"]["tflite_int8"]["bytes"] < 100_000


def test_thresholds():
    assert judge("float", {"top1_agreement": 0.996, "accuracy": 0.5}, 0.5, 0.995, 0.01).passed
    assert not judge("float", {"top1_agreement": 0.99, "accuracy": 0.5}, 0.5, 0.995, 0.01).passed
    assert judge("int8", {"top1_agreement": 0.9, "accuracy": 0.795}, 0.80, 0.995, 0.01).passed
    assert not judge("int8", {"top1_agreement": 0.9, "accuracy": 0.78}, 0.80, 0.995, 0.01).passed
    assert judge("int8", {"top1_agreement": 0.9, "accuracy": None}, None, 0.995, 0.01).passed is None


def test_parity_fails_loudly_naming_the_artifact(tmp_path):
    """An artifact that disagrees with Keras makes the check raise, naming its file."""
    doc, source = export_untrained("lv42", 8000, tmp_path, formats=("tflite_float32",))
    # the same model with its classes rotated by one, so every window's top-1 changes: fresh random
    # weights were not enough, two untrained models can put every tone in the same class
    other = build(ModelConfig(name="lv42", sample_rate=8000))
    weights = source.model.get_weights()  # ..., probs/kernel (64, C), probs/bias (C,)
    other.set_weights(weights[:-2] + [np.roll(weights[-2], 1, axis=-1), np.roll(weights[-1], 1)])
    test = WindowSet.from_array(tones(20, 8000, 8000, seed=3))
    with pytest.raises(ExportError, match="model_float32.tflite"):
        check_export(tmp_path, test, ExportConfig(out_dir=tmp_path, float_min_agreement=1.0), model=other)
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["passed"] is False and "FAIL" in (tmp_path / "parity.md").read_text()


def test_parity_check_fails_an_artifact_that_is_nan_on_a_probe(tmp_path, monkeypatch):
    """Held-out audio never holds digital silence: the check also runs probes (silence, noise under the
    RMS floor, tones, ...) through every artifact, and NaN on any of them fails it, naming the probe."""
    import export.check as check

    doc, source = export_untrained("lv42", 8000, tmp_path, formats=("tflite_float32",))
    real = check.run_artifact

    def nan_on_silence(kind, path, x):  # what the float16 file did before the RMS floor moved after the sqrt
        probs = real(kind, path, x)
        probs[~np.abs(x).any(axis=1)] = np.nan
        return probs

    monkeypatch.setattr(check, "run_artifact", nan_on_silence)
    test = WindowSet.from_array(tones(6, 8000, 8000, seed=3))
    with pytest.raises(ExportError, match=r"model_float32.tflite \(NaN/inf outputs on the probe\(s\) silence\)"):
        check_export(tmp_path, test, ExportConfig(out_dir=tmp_path), model=source.model)
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["artifacts"]["tflite_float32"]["non_finite_probes"] == ["silence"]
    assert "noise_under_rms_floor" in report["probes"] and "finite outputs on 11 probe windows" in (tmp_path / "parity.md").read_text()


def test_clip_windows_pads_and_caps():
    w = clip_windows(np.ones(25, np.float32), 10, max_windows=2)
    assert w.shape == (2, 10) and w.sum() == 20
    assert clip_windows(np.ones(3, np.float32), 10, 4).shape == (1, 10)


# ------------------------------------------------------------------ CLI and bad input


def write_clips(folder, n: int, sr: int, seconds: float = 0.5, labels=("a", "b")):
    for i in range(n):
        d = folder / labels[i % len(labels)]
        d.mkdir(parents=True, exist_ok=True)
        sf.write(d / f"{i}.wav", tones(1, int(sr * seconds), sr, seed=i)[0], sr)
    return folder


@pytest.fixture
def run_dir(tmp_path):
    """A run folder as python -m train writes it (one fold), with audio folders."""
    config = ModelConfig(name="lv42", sample_rate=8000, num_classes=2)
    run = tmp_path / "runs" / "lv42"
    (run / "fold0").mkdir(parents=True)
    build(config).save(run / "fold0" / "model.keras")
    write_clips(tmp_path / "train", 6, 8000)
    write_clips(tmp_path / "test", 4, 8000)
    (run / "fold0" / "config.json").write_text(json.dumps({
        "model_config": config.to_dict(), "labels": ["a", "b"],
        "train_dir": str(tmp_path / "train"), "test_dir": str(tmp_path / "test")}))
    (run / "summary.json").write_text(json.dumps({"accuracy": 0.5, "epochs": 1}))
    return run


def test_cli_run_end_to_end_and_standalone_check(run_dir, tmp_path, capsys):
    out = tmp_path / "exports" / "lv42"
    # untrained: int8 accuracy may move by more than a point on 4 windows; float parity must hold
    rc = export_main(["--run", str(run_dir), "--out", str(out),
                      "--formats", "tflite_float32,tflite_float16,onnx_float32"])
    assert rc == 0, capsys.readouterr().err
    doc = json.loads((out / "metadata.json").read_text())
    assert doc["training"] == {"accuracy": 0.5, "epochs": 1} and doc["labels"] == ["a", "b"]
    report = json.loads((out / "parity.json").read_text())
    assert report["passed"] and report["labelled_windows"] == report["windows"] == 4
    from export.check import main as check_main

    assert check_main([str(out)]) == 0


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_missing_run(tmp_path, capsys):
    assert export_main(["--run", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 1
    assert "run folder not found" in one_line_error(capsys)


def test_unknown_custom_layer(tmp_path, capsys):
    import keras

    @keras.saving.register_keras_serializable(package="zz_export_test")
    class Mystery(keras.layers.Layer):
        def call(self, x):
            return x

    inputs = keras.Input((8000,))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(Mystery()(inputs))).save(tmp_path / "m.keras")
    del keras.saving.get_custom_objects()["zz_export_test>Mystery"]
    assert export_main(["--model", str(tmp_path / "m.keras"), "--out", str(tmp_path / "o"),
                        "--rep-data", str(tmp_path), "--no-check"]) == 1
    assert "cannot load m.keras" in one_line_error(capsys)


def test_empty_representative_set_writes_nothing(run_dir, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "o"
    assert export_main(["--run", str(run_dir), "--out", str(out), "--rep-data", str(empty)]) == 1
    assert "no audio files" in one_line_error(capsys)
    assert not out.exists() or not any(out.iterdir())
    source = Source(build(ModelConfig(name="lv42", sample_rate=8000)), ModelConfig(name="lv42", sample_rate=8000),
                    tuple("0123456789"), tmp_path / "x.keras")
    with pytest.raises(ExportError, match="representative set is empty"):
        export_model(source, WindowSet.from_array(np.zeros((0, 8000), np.float32)), ExportConfig(out_dir=out))
    assert not any(p.suffix in (".tflite", ".onnx") for p in out.iterdir())


def test_unwritable_output_folder(run_dir, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert export_main(["--run", str(run_dir), "--out", str(blocker / "sub"), "--no-check"]) == 1
    assert "cannot write to output folder" in one_line_error(capsys)


# ------------------------------------------------------------------ bad input to the three CLIs (one shared export)


@pytest.fixture(scope="module")
def small_export(tmp_path_factory):
    """An untrained lv42 export (float32 + full-int8 TFLite, classes a/b) standing in for a checked one,
    and a folder of a/ b/ clips. Tests that might change the export copy it first."""
    root = tmp_path_factory.mktemp("small_export")
    config = ModelConfig(name="lv42", sample_rate=8000, num_classes=2)
    source = Source(build(config), config, ("a", "b"), root / "lv42.keras")
    out = root / "export"
    export_model(source, WindowSet.from_array(tones(8, 8000, 8000)),
                 ExportConfig(out_dir=out, formats=("tflite_float32", "tflite_int8"), check=False),
                 log=lambda *_: None)
    files = json.loads((out / "metadata.json").read_text())["files"]
    rows = {k: {"file": files[k]["file"], "sha256": files[k]["sha256"], "passed": True}
            for k in ("tflite_float32", "tflite_int8")}
    (out / "parity.json").write_text(json.dumps({"passed": True, "labelled_windows": 4, "artifacts": rows}))
    (out / "parity.md").write_text("# Parity: lv42\n\nResult: all artifacts pass.\n")
    return out, write_clips(root / "clips", 4, 8000)


def copy_export(src, dst):
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def snapshot(folder) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_numbers_below_one_are_refused(small_export, tmp_path, capsys):
    from export.check import main as check_main

    exp, clips = small_export
    assert export_main(["--model", str(exp / "model.keras"), "--sample-rate", "-8000", "--rep-data", str(clips),
                        "--out", str(tmp_path / "o")]) == 1
    assert one_line_error(capsys) == "error: --sample-rate must be >= 1, got -8000"
    for n in ("-1", "0"):  # 0 used to mean "no limit" silently
        assert check_main([str(exp), "--data", str(clips), "--max-clips", n]) == 1
        assert one_line_error(capsys) == f"error: --max-clips must be >= 1, got {n}"
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_non_finite_audio_is_refused(bad, small_export, tmp_path, capsys):
    exp, _ = small_export
    (tmp_path / "rep").mkdir()
    x = tones(1, 8000, 8000)[0]
    x[100:110] = bad
    sf.write(tmp_path / "rep" / "bad.wav", x, 8000, subtype="FLOAT")
    out = tmp_path / "o"
    assert export_main(["--model", str(exp / "model.keras"), "--sample-rate", "8000", "--rep-data",
                        str(tmp_path / "rep"), "--out", str(out), "--no-check"]) == 1
    assert one_line_error(capsys).startswith("error: audio file has 10 NaN/inf sample(s): ")
    assert not out.exists()


def test_corrupt_keras_file_is_called_corrupt(small_export, tmp_path, capsys):
    from export.check import main as check_main

    exp, clips = small_export
    (tmp_path / "rand.keras").write_bytes(np.random.default_rng(0).bytes(4096))
    assert export_main(["--model", str(tmp_path / "rand.keras"), "--rep-data", str(clips),
                        "--out", str(tmp_path / "o")]) == 1
    err = one_line_error(capsys)
    assert "cannot load rand.keras: unreadable or corrupt" in err and "not found" not in err
    bad = copy_export(exp, tmp_path / "bad")
    (bad / "model.keras").write_bytes(b"not a zip")
    before = snapshot(bad)
    assert check_main([str(bad), "--data", str(clips)]) == 1  # no longer the file the export wrote and hashed
    assert "model.keras in" in (err := one_line_error(capsys)) and "does not match the SHA-256" in err
    assert snapshot(bad) == before


def test_check_that_labels_nothing_keeps_the_parity_report(small_export, tmp_path, capsys):
    """"prefix" on clips named 0.wav, 1.wav labels no window with a class (a, b): the int8
    artifact cannot be judged, so the check must fail rather than pass and replace parity.json."""
    from export.check import main as check_main

    exp, clips = small_export
    exp = copy_export(exp, tmp_path / "exp")
    before = snapshot(exp)
    assert check_main([str(exp), "--data", str(clips), "--label-source", "prefix"]) == 1
    err = one_line_error(capsys)
    assert "cannot judge the int8 artifacts" in err and "labels found: 0, 1, 2, ..." in err and "--label-source" in err
    assert snapshot(exp) == before


def test_android_refuses_bad_exports_and_writes_nothing(small_export, tmp_path, capsys):
    from export.android import main as android_main

    exp, _ = small_export
    before = snapshot(exp)
    assert android_main([str(exp), "--out", str(exp / ".")]) == 2  # out == export folder
    assert "is the export folder itself" in one_line_error(capsys)
    assert snapshot(exp) == before

    def broken(name, file, data, fix_sha=False):
        folder = copy_export(exp, tmp_path / name)
        (folder / file).write_bytes(data)
        if fix_sha:  # metadata agrees with the corrupt file: LiteRT is the one to notice
            doc = json.loads((folder / "metadata.json").read_text())
            doc["files"]["tflite_int8"]["sha256"] = sha256(folder / file)
            (folder / "metadata.json").write_text(json.dumps(doc))
            parity = json.loads((folder / "parity.json").read_text())
            parity["artifacts"]["tflite_int8"]["sha256"] = sha256(folder / file)
            (folder / "parity.json").write_text(json.dumps(parity))
        return folder

    cases = [(broken("meta", "metadata.json", b'{"name": "x"\n'), "metadata.json: unreadable"),
             (broken("parity", "parity.json", b"{passed"), "parity.json: unreadable"),
             (broken("int8", "model_int8.tflite", b"\0" * 64), "does not match the SHA-256"),
             (broken("int8b", "model_int8.tflite", b"\0" * 64, fix_sha=True), "not a loadable TFLite model")]
    for folder, message in cases:
        out = tmp_path / f"{folder.name}_out"
        assert android_main([str(folder), "--out", str(out)]) == 2
        assert message in one_line_error(capsys)
        assert not out.exists()  # no half-written package
    assert not list(tmp_path.glob(".*partial*"))


def test_android_ships_only_what_the_parity_check_judged(small_export, tmp_path, capsys):
    """A parity.json outlives its artifacts when a folder is re-exported with --no-check or a file
    is swapped: export.android must not ship files the passing verdict never saw."""
    from export.android import main as android_main

    exp, _ = small_export
    assert android_main([str(copy_export(exp, tmp_path / "ok")), "--out", str(tmp_path / "ok_out")]) == 0
    capsys.readouterr()

    # Re-export another model into a checked folder without a check: the old report goes.
    again = copy_export(exp, tmp_path / "again")
    config = ModelConfig(name="lv42", sample_rate=8000, num_classes=2)
    other = Source(build(config), config, ("a", "b"), tmp_path / "other.keras")
    export_model(other, WindowSet.from_array(tones(8, 8000, 8000, seed=1)),
                 ExportConfig(out_dir=again, formats=("tflite_float32", "tflite_int8"), check=False),
                 log=lambda *_: None)
    assert not (again / "parity.json").exists() and not (again / "parity.md").exists()
    assert android_main([str(again), "--out", str(tmp_path / "again_out")]) == 2
    assert "has no parity.json" in one_line_error(capsys)

    # The same with the old report put back: its hashes name other files.
    (again / "parity.json").write_bytes((exp / "parity.json").read_bytes())
    assert android_main([str(again), "--out", str(tmp_path / "again_out")]) == 2
    assert "judged another model_float32.tflite" in one_line_error(capsys)

    # A report written before rows carried hashes cannot vouch for any file.
    old = copy_export(exp, tmp_path / "old")
    parity = json.loads((old / "parity.json").read_text())
    for row in parity["artifacts"].values():
        del row["sha256"]
    (old / "parity.json").write_text(json.dumps(parity))
    assert android_main([str(old), "--out", str(tmp_path / "old_out")]) == 2
    assert "predates artifact hashes" in one_line_error(capsys)

    # A passing report that never judged a shipped file.
    partial = copy_export(exp, tmp_path / "partial")
    parity = json.loads((partial / "parity.json").read_text())
    del parity["artifacts"]["tflite_int8"]
    (partial / "parity.json").write_text(json.dumps(parity))
    assert android_main([str(partial), "--out", str(tmp_path / "partial_out")]) == 2
    assert "no passing verdict for model_int8.tflite" in one_line_error(capsys)
    assert not any((tmp_path / f"{n}_out").exists() for n in ("again", "old", "partial"))


def test_int8_threshold_is_an_option_recorded_in_the_report(small_export, tmp_path, capsys):
    """--max-int8-drop POINTS: refused outside 0..100 before anything is read, else used and written
    into parity.json/.md so the report says what it was judged against."""
    from export.check import main as check_main

    exp, clips = small_export
    exp = copy_export(exp, tmp_path / "exp")
    before = snapshot(exp)
    for bad in ("-1", "nan", "101"):
        assert check_main([str(exp), "--data", str(clips), "--max-int8-drop", bad]) == 1
        assert "--max-int8-drop must be between 0 and 100" in one_line_error(capsys)
    assert snapshot(exp) == before
    assert check_main([str(exp), "--data", str(clips), "--max-int8-drop", "100"]) == 0, capsys.readouterr().err
    report = json.loads((exp / "parity.json").read_text())
    assert report["passed"] and report["thresholds"]["int8_max_accuracy_drop"] == 1.0
    assert "lose ≤ 100.0 accuracy points." in (exp / "parity.md").read_text()
    for field, value in (("int8_max_accuracy_drop", 1.5), ("int8_max_accuracy_drop", float("nan")),
                         ("float_min_agreement", 0.0), ("float_min_agreement", 1.2)):
        with pytest.raises(ExportError, match=field):
            ExportConfig(out_dir=tmp_path, **{field: value})
    assert export_main(["--model", str(tmp_path / "m.keras"), "--out", str(tmp_path / "o"), "--no-check",
                        "--max-int8-drop", "2"]) == 1
    assert "with --no-check it has no effect" in one_line_error(capsys)


def test_unnamed_model_outputs_get_a_labels_hint():
    """A bare .keras file (no config.json beside it) has outputs class_0, class_1, ...: held-out audio
    labelled anger/fear can never match them, and the error says to name them with --labels."""
    from export.check import require_labels

    x = tones(4, 800, 8000)
    with pytest.raises(ExportError, match=r"\(class_0, class_1; labels found: anger, fear\); the model's outputs have "
                                          r"no names .*--labels in output order, e\.g\. --labels anger,fear$"):
        require_labels(WindowSet.from_array(x, ["anger", "fear", "anger", "fear"]), ("class_0", "class_1"),
                       ("tflite_int8",))
    with pytest.raises(ExportError, match=r"\(a, b; labels found: anger, fear\); choose the --label-source"):
        require_labels(WindowSet.from_array(x, ["anger", "fear", "anger", "fear"]), ("a", "b"), ("tflite_int8",))


def test_edited_labels_or_a_swapped_reference_are_named(small_export, tmp_path, capsys):
    """labels.txt rewritten to two other names passed export.check and shipped with export.android;
    a swapped model.keras made the check blame every artifact. Both files' hashes are in metadata.json."""
    from export.android import main as android_main
    from export.check import main as check_main

    exp, clips = small_export
    edited = copy_export(exp, tmp_path / "labels")
    (edited / "labels.txt").write_text("dog\ncat\n")
    assert android_main([str(edited), "--out", str(tmp_path / "labels_out")]) == 2
    assert "labels.txt in" in (err := one_line_error(capsys)) and "does not match the SHA-256" in err
    assert check_main([str(edited), "--data", str(clips)]) == 1
    assert "labels.txt in" in one_line_error(capsys) and not (tmp_path / "labels_out").exists()

    swapped = copy_export(exp, tmp_path / "swapped")
    config = ModelConfig(name="lv42", sample_rate=8000, num_classes=2)
    build(config).save(swapped / "model.keras")
    assert check_main([str(swapped), "--data", str(clips)]) == 1
    assert "model.keras in" in one_line_error(capsys)


def test_export_never_overwrites_a_checkpoint_and_drops_stale_formats(run_dir, tmp_path, capsys):
    """--out onto a run's fold folder replaced its training checkpoint with the export's stripped copy;
    an export with fewer --formats into an earlier export left that export's other files beside it."""
    fold = next(run_dir.glob("fold*"))
    (fold / "result.json").write_text("{}")  # a finished fold, as python -m train leaves it
    before = (fold / "model.keras").read_bytes()
    assert export_main(["--model", str(fold / "model.keras"), "--rep-data", str(tmp_path / "train"), "--out", str(fold),
                        "--no-check", "--formats", "tflite_float32"]) != 0
    assert "holds a training run (result.json)" in one_line_error(capsys)
    assert (fold / "model.keras").read_bytes() == before

    doc, _ = export_untrained("lv42", 8000, tmp_path / "e", formats=("tflite_float32", "tflite_float16"))
    assert (tmp_path / "e" / "model_float16.tflite").is_file()
    export_untrained("lv42", 8000, tmp_path / "e", formats=("tflite_float32",))
    assert not (tmp_path / "e" / "model_float16.tflite").exists()
