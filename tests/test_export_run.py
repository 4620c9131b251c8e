"""python -m export --run RUN --data ROOT: calibration and parity audio from the run's own folds."""

from __future__ import annotations

import json

import pytest

from export.cli import main as export_main
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


def test_missing_data_root_is_one_line(tiny_run, tmp_path, capsys):
    out, _ = tiny_run
    code = export_main(["--run", str(out), "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and err[0].startswith("error: cannot rebuild the run's data")
    assert not (tmp_path / "x" / "metadata.json").exists()
