"""python -m export --run RUN --data ROOT: calibration and parity audio from the run's own folds."""

from __future__ import annotations

import json

import pytest

from export.cli import main as export_main
from export.quant_probe import main as quant_probe_main
from export.run_data import run_windows
from test_training import _generate
from train.__main__ import main as train_main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    data = _generate(root / "gen", per_class=10)
    out = root / "runs" / "tiny"
    args = ["--model", "lv42", "--dataset", "folders", "--data", str(data), "--protocol", "kfold", "--k", "2",
            "--out", str(out), "--epochs", "1", "--max-folds", "1", "--quiet", "--sample-rate", "8000", "--final"]
    assert train_main(args) == 0
    return out, data


def test_fold_checkpoint_uses_its_train_and_test_clips(tiny_run):
    out, data = tiny_run
    rep, test, info = run_windows(out, out / "fold_0" / "model.keras", data, max_per_clip=2)
    assert info["fold"].startswith("group")
    assert "never seen in training" in info["parity_audio"]
    assert info["representative_clips"] + info["parity_clips"] <= 30
    assert set(test.labels) <= {"high", "low", "mid"} and test.x.shape[1] == 8000
    assert not set(rep.sources) & set(test.sources)


def test_final_checkpoint_is_marked_as_seen(tiny_run):
    out, data = tiny_run
    rep, test, info = run_windows(out, out / "final" / "model.keras", data, max_per_clip=1)
    assert info["fold"] == "all data" and "optimistic" in info["parity_audio"]
    assert info["representative_clips"] == 30


def test_cli_exports_and_checks_a_fold(tiny_run, tmp_path):
    out, data = tiny_run
    dest = tmp_path / "exp"
    code = export_main(["--run", str(out), "--fold", "fold_0", "--data", str(data), "--out", str(dest),
                        "--formats", "tflite_float32,tflite_int8"])
    parity = json.loads((dest / "parity.json").read_text())
    assert set(parity["artifacts"]) == {"tflite_float32", "tflite_int8"}
    assert parity["artifacts"]["tflite_float32"]["top1_agreement"] >= 0.995
    meta = json.loads((dest / "metadata.json").read_text())
    assert meta["data"]["fold"].startswith("group") and code in (0, 1)  # int8 of a 1-epoch model may miss
    assert code == (0 if parity["passed"] else 1)


def test_check_rebuilds_the_folds_test_clips_of_a_run_export(tiny_run, tmp_path, capsys):
    """Regression: python -m export.check on an export made with --run found no test_dir recorded and
    asked for --data FOLDER, which it then labelled by parent folder (wrong for FSDD's file-name
    labels). It now rebuilds the same held-out clips of the same fold from the recorded run."""
    from export.check import main as check_main

    out, data = tiny_run
    dest = tmp_path / "exp"
    export_main(["--run", str(out), "--fold", "fold_0", "--data", str(data), "--out", str(dest),
                 "--formats", "tflite_float32", "--max-clips", "5"])
    first = json.loads((dest / "parity.json").read_text())
    meta = json.loads((dest / "metadata.json").read_text())
    assert meta["data"]["run_dir"] == str(out) and meta["data"]["max_clips"] == 5
    (dest / "parity.json").unlink()
    assert check_main([str(dest)]) == 0
    again = json.loads((dest / "parity.json").read_text())
    assert again["windows"] == first["windows"]
    assert again["keras_accuracy"] == first["keras_accuracy"]
    capsys.readouterr()

    # an export from before the run folder was recorded: one line that says what to do
    meta["data"] = {k: v for k, v in meta["data"].items() if k not in ("run_dir", "checkpoint")}
    (dest / "metadata.json").write_text(json.dumps(meta))
    assert check_main([str(dest)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: this export was made from a run before") and "--label-source" in err and "\n" not in err
    # --label-source reads --data as a folder of labelled clips, as for any export
    assert check_main([str(dest), "--data", str(data), "--label-source", "parent"]) == 0


def test_paths_typed_relative_are_recorded_so_check_works_from_anywhere(tiny_run, tmp_path, monkeypatch):
    """The run folder, checkpoint and data root were recorded as typed: `export.check` from another
    folder said "the run this export was made from is gone", though it was not."""
    from export.check import main as check_main

    out, data = tiny_run
    root = out.parent.parent
    monkeypatch.chdir(root)  # give the run and the data relative to it
    dest = tmp_path / "exp"
    assert export_main(["--run", str(out.relative_to(root)), "--fold", "fold_0", "--data", str(data.relative_to(root)),
                        "--out", str(dest), "--formats", "tflite_float32", "--max-clips", "5"]) == 0
    recorded = json.loads((dest / "metadata.json").read_text())["data"]
    assert recorded["run_dir"] == str(out.resolve()) and recorded["data_root"] == str(data.resolve())
    assert recorded["checkpoint"] == str((out / "fold_0" / "model.keras").resolve())
    monkeypatch.chdir(tmp_path)
    (dest / "parity.json").unlink()
    assert check_main([str(dest)]) == 0 and (dest / "parity.json").is_file()


def test_missing_data_root_is_one_line(tiny_run, tmp_path, capsys):
    out, _ = tiny_run
    code = export_main(["--run", str(out), "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("error: cannot rebuild the run's data")
    assert not (tmp_path / "x" / "metadata.json").exists()


def test_quant_probe_scores_every_choice_on_the_fold(tiny_run, tmp_path, capfd):
    """python -m export.quant_probe: every variant built and scored against Keras on held-out windows,
    with the converters' routine notices dropped as in ``python -m export``."""
    from export.quiet import CALIBRATION_PRINTS, CONVERTER_NOISE

    out, data = tiny_run
    report = tmp_path / "probe" / "q.md"
    code = quant_probe_main(["--run", str(out), "--fold", "fold_0", "--data", str(data), "--out", str(report),
                             "--max-clips", "6", "--max-rep", "8", "--quiet"])
    assert code == 0
    doc = json.loads(report.with_suffix(".json").read_text())
    rows = {(r["format"], r["choice"]): r for r in doc["rows"]}
    assert len(rows) == 9 and not any("error" in r for r in rows.values())
    assert all(r["finite"] for r in rows.values())
    for fmt in ("tflite float32", "onnx float32"):  # the float files are the model
        assert rows[(fmt, "reference")]["top1_agreement"] >= 0.995
        assert rows[(fmt, "reference")]["accuracy_change"] == pytest.approx(0, abs=0.02)
    # a 1D model has no front-end weights: the converter's dynamic-range file is the shipped one
    own = rows[("tflite dynamic-range int8", "converter's own (front-end weights int8)")]
    assert own["same_file_as"] == "front-end weights float"
    assert doc["data"]["fold"].startswith("group") and "never seen" in doc["data"]["parity_audio"]
    assert doc["representative_windows"] <= 8 and 0 <= doc["keras_accuracy"] <= 1
    text = report.read_text()
    assert "| onnx int8 | front end float, min-max calibration | no |" in text and "quant_probe" in text
    printed = capfd.readouterr()
    for noise in CONVERTER_NOISE + CALIBRATION_PRINTS:
        assert noise not in printed.out + printed.err, noise


@pytest.mark.parametrize("extra,message", [
    (["--fold", "final"], "is a --final checkpoint"),
    (["--fold", "fold_0", "--max-rep", "0"], "--max-rep"),
])
def test_quant_probe_refuses_in_one_line(tiny_run, tmp_path, capsys, extra, message):
    out, data = tiny_run
    code = quant_probe_main(["--run", str(out), "--data", str(data), "--out", str(tmp_path / "q.md"), "--quiet", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert not (tmp_path / "q.md").exists()
