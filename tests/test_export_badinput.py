"""Bad input to ``python -m export`` / ``export.check`` found by a probe review: each answered
with one ``error:`` line and a non-zero exit, never a traceback or a pass.

Fixtures are the small ones of test_export.py (an untrained 2-class lv42 at 8 kHz) and
test_export_run.py (a 1-epoch run on generated tones); run single tests with ``-k``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from export.audio import load_folder
from export.check import check_export
from export.check import main as check_main
from export.cli import main as export_main
from export.config import ExportConfig, ExportError
from export.files import sha256
from export.parity import compare, judge
from test_export import copy_export, one_line_error, run_dir, small_export  # noqa: F401  (fixtures)
from train.config import ModelConfig
from train.models import build

# ------------------------------------------------------------------ NaN outputs never pass parity


def lv42_with_head(kernel: float, bias=(0.0, 0.0)):
    """The fixture's lv42 (2 classes) with its output layer's kernel set to ``kernel`` everywhere:
    NaN gives a model whose every output is NaN; 0 with bias (5, 0) one that always says class 0,
    which is what argmax makes of a NaN row."""
    model = build(ModelConfig(name="lv42", sample_rate=8000, num_classes=2))
    weights = model.get_weights()  # ..., probs/kernel (64, 2), probs/bias (2,)
    model.set_weights(weights[:-2] + [np.full_like(weights[-2], kernel), np.asarray(bias, np.float32)])
    return model


def nan_float_export(exp, folder):
    """A copy of the small export whose only artifact is a float32 TFLite file of the NaN model
    (metadata.json's hash updated to match): what exporting a diverged model used to produce."""
    from export.tflite import convert_float32, frozen_function

    folder = copy_export(exp, folder)
    nan = lv42_with_head(np.nan)
    (folder / "model_float32.tflite").write_bytes(convert_float32(frozen_function(nan, 8000)))
    (folder / "model_int8.tflite").unlink()
    doc = json.loads((folder / "metadata.json").read_text())
    doc["files"].pop("tflite_int8")
    doc["files"]["tflite_float32"]["sha256"] = sha256(folder / "model_float32.tflite")
    (folder / "metadata.json").write_text(json.dumps(doc))
    return folder, nan


def test_nan_rows_are_counted_and_fail_the_verdict():
    """argmax of an all-NaN row is 0 in both arrays: 100 % "agreement", which used to pass."""
    ref = np.tile(np.float32([0.9, 0.1]), (4, 1))
    stats = compare(ref, np.full((4, 2), np.nan, np.float32), np.zeros(4, np.int64))
    assert stats["top1_agreement"] == 1.0 and stats["non_finite_windows"] == 4
    for precision in ("float", "int8"):
        verdict = judge(precision, stats, 1.0, 0.995, 0.01)
        assert verdict.passed is False and verdict.reason == "NaN/inf outputs on 4 of 4 windows"
    assert compare(ref, ref, np.zeros(4, np.int64))["non_finite_windows"] == 0


def test_check_fails_when_keras_or_an_artifact_gives_nan(small_export, tmp_path, capsys):
    exp, clips = small_export
    folder, nan = nan_float_export(exp, tmp_path / "nan")
    test = load_folder(clips, 8000, 8000, "parent", max_windows_per_clip=1)
    # a finite Keras model that always says class 0, against an artifact that says NaN
    with pytest.raises(ExportError, match=r"model_float32\.tflite \(NaN/inf outputs on 4 of 4 windows\)$"):
        check_export(folder, test, ExportConfig(out_dir=folder), model=lv42_with_head(0.0, (5.0, 0.0)),
                     log=lambda *_: None)
    report = json.loads((folder / "parity.json").read_text())  # strict JSON: no bare NaN
    assert report["passed"] is False and report["artifacts"]["tflite_float32"]["max_prob_diff"] is None
    assert "| NaN/inf |" in (folder / "parity.md").read_text()
    # python -m export.check on the folder whose model.keras is the NaN model too (the probe's case)
    nan.save(folder / "model.keras")
    doc = json.loads((folder / "metadata.json").read_text())  # as if the export had written this model.keras
    doc["files"]["reference_keras"]["sha256"] = sha256(folder / "model.keras")
    (folder / "metadata.json").write_text(json.dumps(doc))
    assert check_main([str(folder), "--data", str(clips)]) == 1
    err = one_line_error(capsys)
    assert "model.keras (the Keras reference gives NaN/inf outputs on 4 of 4 windows" in err
    assert json.loads((folder / "parity.json").read_text())["passed"] is False  # not the copied "passed"


def test_export_refuses_a_nan_model_before_converting(small_export, tmp_path, capsys):
    _, clips = small_export
    lv42_with_head(np.nan).save(tmp_path / "nan.keras")
    out = tmp_path / "o"
    for extra in ([], ["--no-check"]):
        assert export_main(["--model", str(tmp_path / "nan.keras"), "--sample-rate", "8000", "--rep-data", str(clips),
                            "--test-data", str(clips), "--formats", "tflite_float32", "--out", str(out), *extra]) == 1
        assert "the model gives NaN/inf outputs on 4 of 4 calibration windows (nan.keras)" in one_line_error(capsys)
        assert not list(out.glob("*.tflite")) and not (out / "metadata.json").exists()


# ------------------------------------------------------------------ --run: a damaged run folder


def test_truncated_run_json_is_one_line(run_dir, tmp_path, capsys):
    """A run killed while writing run.json (or edited by hand): used to be a JSONDecodeError traceback."""
    (run_dir / "run.json").write_text('{"model": "lv42", "dataset": "fol')
    out = tmp_path / "o"
    assert export_main(["--run", str(run_dir), "--data", str(tmp_path / "train"), "--out", str(out)]) == 1
    err = one_line_error(capsys)
    assert err.startswith(f"error: {run_dir / 'run.json'}: unreadable JSON (")
    assert not (out / "metadata.json").exists()


# ------------------------------------------------------------------ values the model metadata refuses


@pytest.mark.parametrize("extra,message", [
    (["--hop", "100000000"], "error: --hop 100000000 samples is longer than 600 s at the model's 8000 Hz "
                             "(at most 4800000)"),
    (["--labels", ","], "error: --labels: empty class name in ',' (comma-separated names, e.g. --labels yes,no)"),
    (["--labels", ""], "error: --labels: empty class name in '' (comma-separated names, e.g. --labels yes,no)"),
    (["--labels", "b, b"], "error: --labels: repeated class name(s) b: each name labels one output"),
], ids=["hop", "empty-names", "empty", "repeated"])
def test_metadata_values_are_refused_naming_the_option(small_export, tmp_path, capsys, extra, message):
    """These reached ModelMetadata, whose MetadataError export's CLI did not catch: a 22-line traceback."""
    exp, clips = small_export
    out = tmp_path / "o"
    assert export_main(["--model", str(exp / "model.keras"), "--sample-rate", "8000", "--rep-data", str(clips),
                        "--no-check", "--out", str(out), *extra]) == 1
    assert one_line_error(capsys) == message
    assert not out.exists()


def test_metadata_error_from_config_json_is_one_line(run_dir, tmp_path, capsys):
    """Repeated labels in the checkpoint's config.json (not an option to check up front)."""
    cfg = run_dir / "fold0" / "config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "labels": ["a", "a"]}))
    assert export_main(["--run", str(run_dir), "--out", str(tmp_path / "o"), "--no-check"]) == 1
    assert one_line_error(capsys) == ("error: cannot write the model metadata: metadata labels must be distinct "
                                      "(each names one output)")
    assert not (tmp_path / "o" / "metadata.json").exists()


# ------------------------------------------------------------------ which checkpoint --run exports


def test_crash_leftover_partial_checkpoint_is_never_picked(run_dir):
    """A save killed midway leaves .model.keras.XXXX.partial.keras beside the checkpoint; it sorts
    first, so without --fold it used to be the one exported (or refused as corrupt)."""
    from export.loading import from_run

    (run_dir / "fold0" / ".model.keras.abc123.partial.keras").write_bytes(b"half a zip")
    assert from_run(run_dir).path == run_dir / "fold0" / "model.keras"


def test_fold_exact_name_wins_and_ambiguity_is_an_error(tmp_path):
    from export.loading import pick_checkpoint

    run = tmp_path / "run"
    for folder in ("aborted_fold_1", "fold_1", "fold_10", "fold_2", "final"):
        (run / folder).mkdir(parents=True)
        (run / folder / "model.keras").write_bytes(b"")
    assert pick_checkpoint(run, "fold_1", {}) == run / "fold_1" / "model.keras"  # not aborted_fold_1, not fold_10
    assert pick_checkpoint(run, "fold_2/model.keras", {}) == run / "fold_2" / "model.keras"
    assert pick_checkpoint(run, "_10", {}) == run / "fold_10" / "model.keras"  # one substring match is fine
    with pytest.raises(ExportError) as e:
        pick_checkpoint(run, "old", {})  # no exact name: "old" is in aborted_fold_1 and fold_1 .. fold_2
    assert str(e.value) == (f"--fold 'old' matches 4 checkpoints in {run}: aborted_fold_1/model.keras, "
                            "fold_1/model.keras, fold_10/model.keras, fold_2/model.keras; give one folder exactly "
                            "(e.g. --fold aborted_fold_1)")
    with pytest.raises(ExportError, match=r"^--fold 'fold_3' matches no checkpoint in .* \(checkpoints: "
                                          r"aborted_fold_1/model.keras, final/model.keras, "):
        pick_checkpoint(run, "fold_3", {})
    (run / "aborted_fold_1" / "model.keras").unlink()
    assert pick_checkpoint(run, None, {}) == run / "final" / "model.keras"  # as --help says
    assert pick_checkpoint(run, None, {"best": "fold_2/model.keras"}) == run / "fold_2" / "model.keras"


def test_ambiguous_fold_on_the_command_line(run_dir, tmp_path, capsys):
    (run_dir / "fold1").mkdir()
    (run_dir / "fold1" / "model.keras").write_bytes((run_dir / "fold0" / "model.keras").read_bytes())
    assert export_main(["--run", str(run_dir), "--fold", "fold", "--out", str(tmp_path / "o"), "--no-check"]) == 1
    assert "--fold 'fold' matches 2 checkpoints in " in one_line_error(capsys)
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ options that would be silently ignored


def test_sample_rate_must_match_the_runs_model(run_dir, tmp_path, capsys):
    """With --run the rate comes from the checkpoint's config.json: --sample-rate 22050 was ignored (exit 0).
    The same rate as the model's is accepted (it says nothing new)."""
    out = tmp_path / "o"
    base = ["--run", str(run_dir), "--out", str(out), "--no-check", "--formats", "tflite_float32"]
    assert export_main([*base, "--sample-rate", "22050"]) == 1
    assert one_line_error(capsys) == ("error: --sample-rate 22050 disagrees with the model's 8000 Hz "
                                      "(config.json beside it): leave --sample-rate out")
    assert not (out / "model_float32.tflite").exists()
    assert export_main([*base, "--sample-rate", "8000"]) == 0
    assert json.loads((out / "metadata.json").read_text())["sample_rate"] == 8000


def test_labels_must_match_the_ones_the_run_was_trained_with(run_dir, tmp_path, capsys):
    """--labels replaced config.json's labels without a word: reversed digits passed every check ("Keras
    accuracy 0.00 %") and shipped. The same list as the run's says nothing new and is accepted."""
    out = tmp_path / "o"
    base = ["--run", str(run_dir), "--out", str(out), "--no-check", "--formats", "tflite_float32"]
    assert export_main([*base, "--labels", "b,a"]) == 1
    assert one_line_error(capsys) == ("error: --labels b,a disagree with the labels the model was trained with "
                                      "(a,b, config.json beside it): leave --labels out")
    assert not out.exists()
    assert export_main([*base, "--labels", "a,b"]) == 0
    assert json.loads((out / "metadata.json").read_text())["labels"] == ["a", "b"]


def test_a_2d_model_keeps_the_rate_its_front_end_was_built_for(tmp_path, capsys):
    """Without config.json, --sample-rate 16000 was written into a Conv2D built for 22050 Hz: its mel
    filterbank stayed at 22050 Hz while every file told MediaPipe to feed it 16 kHz."""
    model = tmp_path / "m" / "model.keras"
    model.parent.mkdir()
    build(ModelConfig(name="conv2d", sample_rate=22050, num_classes=2, input_samples=22050)).save(model)
    base = ["--model", str(model), "--out", str(tmp_path / "o"), "--no-check", "--formats", "tflite_float32"]
    assert export_main([*base, "--sample-rate", "16000"]) == 1
    assert one_line_error(capsys) == ("error: --sample-rate 16000 disagrees with the 22050 Hz conv2d's front end "
                                      "was built for: leave --sample-rate out")
    assert export_main(base) == 0  # no audio either: a float-only export needs no calibration
    doc = json.loads((tmp_path / "o" / "metadata.json").read_text())
    assert doc["sample_rate"] == 22050 and doc["representative_windows"] == 0
    assert doc["data"]["representative_dir"] is None


def test_only_the_calibrated_formats_need_calibration_audio(small_export, tmp_path, capsys):
    model = small_export[0] / "model.keras"
    out = tmp_path / "o"
    assert export_main(["--model", str(model), "--out", str(out), "--no-check", "--formats", "tflite_int8,onnx_float32",
                        "--labels", "a,b"]) == 1
    assert one_line_error(capsys) == ("error: no representative audio to calibrate tflite_int8: pass --data "
                                      "DATASET_FOLDER (with --run) or --rep-data FOLDER, or leave those formats out "
                                      "of --formats")


def test_a_folder_where_the_export_writes_a_file_is_refused_before_converting(run_dir, tmp_path, capsys):
    out = tmp_path / "o"
    (out / "parity.json").mkdir(parents=True)
    assert export_main(["--run", str(run_dir), "--out", str(out), "--no-check", "--formats", "tflite_float32"]) == 1
    assert one_line_error(capsys) == (f"error: {out / 'parity.json'} is a folder, where the export writes a file: "
                                      "move it or give another --out")
    assert not (out / "model_float32.tflite").exists()


def test_check_names_a_metadata_json_without_what_it_reads(small_export, tmp_path, capsys):
    exp = copy_export(small_export[0], tmp_path / "e")
    doc = json.loads((exp / "metadata.json").read_text())
    del doc["sample_rate"]
    (exp / "metadata.json").write_text(json.dumps(doc))
    assert check_main([str(exp), "--data", str(tmp_path)]) == 1
    assert one_line_error(capsys) == (f"error: {exp / 'metadata.json'}: no valid 'sample_rate' (an edited or "
                                      "foreign metadata.json? export again)")


@pytest.mark.parametrize("args,message", [
    (["--model", "m.keras", "--fold", "fold_0"], "error: --fold picks a checkpoint of --run; with --model it has no "
                                                 "effect: leave it out"),
    (["--model", "m.keras", "--data", "d"], "error: --data is the dataset of --run; with --model give --rep-data "
                                            "(and --test-data)"),
    (["--run", "r", "--data", "d", "--test-data", "t", "--label-source", "prefix"],
     "error: --test-data, --label-source with --data: the run's own folds give the audio and labels; leave them out "
     "(or drop --data)"),
    (["--model", "m.keras", "--formats", "tflite_float32", "--front-end", "float"],
     "error: --front-end shapes tflite_int8, which --formats leaves out: leave --front-end out (or add tflite_int8)"),
    (["--model", "m.keras", "--formats", "tflite_int8", "--onnx-calibration", "auto"],
     "error: --onnx-calibration shapes onnx_int8, which --formats leaves out: leave --onnx-calibration out "
     "(or add onnx_int8)"),
    (["--model", "m.keras", "--version", "2.1"],
     "error: --version must be a whole number (ONNX's model_version is one), got '2.1'"),
    (["--model", "m.keras", "--version", ""],
     "error: --version must be a whole number (ONNX's model_version is one), got ''"),
], ids=["fold-with-model", "data-with-model", "test-data-with-data", "front-end-unused", "onnx-calibration-unused",
        "version-not-whole", "version-empty"])
def test_ignored_option_combinations_are_refused(tmp_path, capsys, args, message):
    assert export_main([*args, "--out", str(tmp_path / "o")]) == 1
    assert one_line_error(capsys) == message
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ --help


@pytest.mark.parametrize("columns", ["60", "80", "100"])
def test_help_keeps_format_names_whole_and_names_the_default_checkpoint(monkeypatch, columns):
    """argparse wraps help at spaces and breaks longer runs: the comma-joined --formats default
    came out as "tflite_float 16" and "onnx_i nt8"."""
    from export.cli import parser
    from export.config import ARTIFACT_KEYS

    monkeypatch.setenv("COLUMNS", columns)
    text = parser().format_help()
    words = set(text.replace(",", " ").replace(":", " ").split())
    assert set(ARTIFACT_KEYS) <= words
    flat = " ".join(text.split())
    assert "Without --fold: the checkpoint summary.json names as best if any, else the first in path order, i.e. " \
           "final/model.keras when the run was trained with --final, else fold_0/model.keras" in flat


def test_library_modules_refuse_to_run_as_commands():
    """`python -m export.run_data --help` imported the module, did nothing and exited 0."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    library = sorted(p.stem for p in (root / "export").glob("*.py")
                     if p.stem not in ("__init__", "__main__") and "def main(" not in p.read_text())
    assert {"run_data", "config", "parity", "exporter", "loading"} <= set(library)
    for name in library:
        r = subprocess.run([sys.executable, "-m", f"export.{name}", "--help"], cwd=root, capture_output=True, text=True)
        assert (r.returncode, r.stdout, r.stderr) == (
            1, "", f"error: export.{name} is a library module, not a command (see python -m export --help)\n"), name


def test_the_front_end_probe_spans_the_calibration_set():
    """--front-end auto was measured on the first 32 calibration windows, which in file order were two of
    FSDD's ten digits; the probe now takes windows from the whole set."""
    from export.exporter import spread

    labels = np.repeat(np.arange(10), 20)  # 200 windows, in class order as the folders give them
    assert len(set(labels[spread(200, 32)])) == 10 and len(set(labels[:32])) == 2
    assert list(spread(5, 32)) == [0, 1, 2, 3, 4] and spread(200, 32)[[0, -1]].tolist() == [0, 199]
