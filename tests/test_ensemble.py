"""train.ensemble: the arithmetic of combining members, and the command on real finished runs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from benchmarks.train_faults import make_data
from test_train_badinput import _one_line
from train.__main__ import main as train_main
from train.ensemble import combine, main


def test_combine_averages_probabilities_and_counts_any_member_right():
    labels = np.array([0, 0, 1])
    a = np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])  # right on clip 0 only
    b = np.array([[0.6, 0.4], [0.9, 0.1], [0.45, 0.55]])  # right on all three
    s = combine([a, b], labels)
    assert s["members"] == [pytest.approx(1 / 3), 1.0]
    # mean: [.75 .25], [.65 .35], [.525 .475] -> 0, 0, 0: worse than member b alone
    assert s["accuracy"] == pytest.approx(2 / 3)
    assert s["confusion"] == [[2, 0], [1, 0]]
    assert s["macro_f1"] == pytest.approx(0.4)  # class 0: P 2/3, R 1 -> 0.8; class 1 never predicted -> 0
    assert s["any_right"] == 1.0


def test_combine_mean_can_be_right_where_every_member_is_wrong():
    """Three members, each sure of another wrong class, all giving the true class 0.4: the mean's
    argmax is the true class although no member's is (so "any member right" is no bound on it)."""
    members = [np.array([[0.4, 0.5, 0.1, 0.0]]), np.array([[0.4, 0.1, 0.5, 0.0]]), np.array([[0.4, 0.0, 0.1, 0.5]])]
    s = combine(members, np.array([0]))
    assert s["members"] == [0.0, 0.0, 0.0] and s["any_right"] == 0.0
    assert s["accuracy"] == 1.0 and s["confusion"][0] == [1, 0, 0, 0]


def test_combine_refuses_members_that_do_not_match_the_labels():
    with pytest.raises(ValueError, match="do not match 2 labels"):
        combine([np.full((3, 2), 0.5), np.full((3, 2), 0.5)], np.array([0, 1]))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Finished runs: a and b on the same kfold folds (lv42 both folds, lv18 the first only); c and d
    under the fixed split with seeds 3 and 4, whose one fold has the same name and other test clips."""
    root = tmp_path_factory.mktemp("ens")
    data = make_data(root / "gen", per_class=6)
    out = {}
    for name, model, protocol, seed, folds in (("a", "lv42", "kfold", 3, "2"), ("b", "lv18", "kfold", 3, "1"),
                                               ("c", "lv42", "split", 3, "1"), ("d", "lv42", "split", 4, "1")):
        out[name] = root / name
        k = ["--k", "2"] if protocol == "kfold" else []
        assert train_main(["--model", model, "--dataset", "folders", "--data", str(data), "--protocol", protocol, *k,
                           "--sample-rate", "8000", "--epochs", "1", "--seed", str(seed),
                           "--max-folds", folds, "--quiet", "--out", str(out[name])]) == 0
    return data, out


def test_ensemble_scores_members_as_their_results_and_writes_table_json_and_chart(runs, tmp_path, capsys):
    data, run = runs
    md = tmp_path / "res" / "ens.md"
    assert main([str(run["a"]), str(run["b"]), "--data", str(data), "--out", str(md), "--quiet"]) == 0
    out = capsys.readouterr()
    assert "warning" not in out.err, out.err  # each member rescored as its result.json has it
    doc = json.loads(md.with_suffix(".json").read_text())
    assert [m["model"] for m in doc["members"]] == ["lv42", "lv18"]
    (fold,) = doc["folds"]
    results = [json.loads((run[k] / "fold_0" / "result.json").read_text()) for k in ("a", "b")]
    assert fold["fold"] == results[0]["name"]
    second = json.loads((run["a"] / "fold_1" / "result.json").read_text())["name"]
    assert doc["left_out"] == [second]  # run b finished only the first fold
    assert fold["members"] == [pytest.approx(r["accuracy"]) for r in results]
    assert max(fold["members"]) <= fold["any_right"] <= 1.0
    params = sum(m["params"] for m in doc["members"])
    text = md.read_text()
    assert f"| **ensemble** (mean probability) | | | {params:,} |" in text
    assert "Left out (not finished by every run): " in text
    assert md.with_suffix(".png").stat().st_size > 0
    assert "1 fold(s): best member" in out.out


def test_ensemble_of_a_run_and_its_copy_scores_as_the_run(runs, tmp_path, capsys):
    """Two identical members: the ensemble's accuracy, macro F1 and any member right are the run's own
    (its result.json), so the mean is taken against the right labels, clip by clip."""
    data, run = runs
    copy = tmp_path / "copy"
    shutil.copytree(run["a"], copy)
    md = tmp_path / "same.md"
    assert main([str(run["a"]), str(copy), "--data", str(data), "--out", str(md), "--quiet"]) == 0
    doc = json.loads(md.with_suffix(".json").read_text())
    assert doc["left_out"] == []
    for k, fold in enumerate(doc["folds"]):
        result = json.loads((run["a"] / f"fold_{k}" / "result.json").read_text())
        assert fold["fold"] == result["name"] and fold["clips"] == result["n_test"]
        assert fold["accuracy"] == pytest.approx(result["accuracy"]) == fold["any_right"]
        assert fold["macro_f1"] == pytest.approx(result["f1"])


def test_ensemble_refuses_runs_whose_folds_test_other_clips(runs, tmp_path, capsys):
    """The fixed split's one fold has one name whatever the seed, and another seed draws other test
    clips: averaged in, run d would score clips it trained on as run c's test."""
    data, run = runs
    assert main([str(run["c"]), str(run["d"]), "--data", str(data), "--out", str(tmp_path / "e.md"), "--quiet"]) == 2
    assert "tests other clips than" in _one_line(capsys)
    assert not list(tmp_path.glob("e.*"))


def test_ensemble_refuses_one_run_other_protocols_and_no_common_fold(runs, tmp_path, capsys):
    data, run = runs
    out = ["--data", str(data), "--out", str(tmp_path / "e.md"), "--quiet"]
    assert main([str(run["a"]), *out]) == 2
    assert "at least two different run folders" in _one_line(capsys)
    assert main([str(run["a"]), str(run["a"]) + "/", *out]) == 2  # one folder, spelled twice
    assert "at least two different run folders" in _one_line(capsys)
    assert main([str(run["a"]), str(run["c"]), *out]) == 2
    assert "the runs differ in protocol (kfold, split)" in _one_line(capsys)

    empty = tmp_path / "empty"
    shutil.copytree(run["b"], empty)
    (empty / "fold_0" / "result.json").unlink()
    assert main([str(run["a"]), str(empty), *out]) == 2
    assert "no fold is finished by every run" in _one_line(capsys)
    assert main([str(run["a"]), str(tmp_path / "nowhere"), *out]) == 2
    assert "no run.json" in _one_line(capsys)
    (tmp_path / "file").write_text("x")
    assert main([str(run["a"]), str(tmp_path / "file"), *out]) == 2
    assert "no run.json" in _one_line(capsys)

    null = tmp_path / "null"
    shutil.copytree(run["b"], null)
    (null / "run.json").write_text("null")
    assert main([str(run["a"]), str(null), *out]) == 2
    assert "run.json is not a JSON object" in _one_line(capsys)

    nomodel = tmp_path / "nomodel"
    shutil.copytree(run["b"], nomodel)
    (nomodel / "fold_0" / "model.keras").unlink()
    assert main([str(run["a"]), str(nomodel), *out]) == 2
    assert f"no model.keras in {nomodel}/fold_0" in _one_line(capsys)

    badcfg = tmp_path / "badcfg"
    shutil.copytree(run["b"], badcfg)
    (badcfg / "fold_0" / "config.json").write_text("[]")
    assert main([str(run["a"]), str(badcfg), *out]) == 2
    assert "config.json lacks a positive sample_rate" in _one_line(capsys)
    assert not list(tmp_path.glob("e.*"))


def test_ensemble_checks_the_files_beside_out_before_scoring(runs, tmp_path, capsys, monkeypatch):
    """Regression: with OUT.json an existing folder, every fold was scored and the PNG written before
    the JSON failed (exit 1, half the outputs on disk)."""
    import train.ensemble as ens

    data, run = runs
    (tmp_path / "e.json").mkdir()
    monkeypatch.setattr(ens, "ensemble_runs", lambda *a, **k: pytest.fail("scored before the outputs were checked"))
    assert main([str(run["a"]), str(run["b"]), "--data", str(data), "--out", str(tmp_path / "e.md"), "--quiet"]) == 2
    assert "e.json, written beside it, is a folder" in _one_line(capsys)
    assert not (tmp_path / "e.png").exists() and not (tmp_path / "e.md").exists()
