"""python -m benchmarks (issue 6): fields of the JSON, runtime-only mode, budgets, Pareto front.
No timing assertions: speed goals live in the benchmark results, not in tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import pareto

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def zoo_export(tmp_path_factory) -> Path:
    from benchmarks.zoo import export_zoo

    out = tmp_path_factory.mktemp("exports")
    (folder,) = export_zoo(out, ["lv42"], 8000, calibration=8, log=lambda *_: None)
    return folder


def _run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, **(env or {})})


def _check_results(doc: dict, formats: set[str]) -> None:
    assert doc["format"] == "tinyaudio-benchmarks/1"
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["cpu"]
    assert doc["peak"]["peak_gmacs"] > 0
    assert {r["format"] for r in doc["results"]} == formats
    for r in doc["results"]:
        assert "error" not in r, r
        assert r["model"] == "lv42" and r["sample_rate"] == 8000 and r["threads"] == 1
        assert set(r["latency_ms"]) >= {"p50", "p95", "p99"}
        assert r["latency_ms"]["p50"] <= r["latency_ms"]["p95"] <= r["latency_ms"]["p99"]
        assert r["windows_per_s"] > 0 and r["load_ms"] > 0 and r["peak_rss_mb"] > r["rss_before_load_mb"] > 0
        assert r["size_bytes"] == Path(r["file"]).stat().st_size
        assert r["macs"] > 0 and r["gmacs_per_s"] > 0
        # int8 kernels have another ceiling than the float probe's: no share of it
        assert (r["fraction_of_peak"] is None) == (r["format"] in {"tflite_int8", "onnx_int8"}), r
        assert r["fraction_of_peak"] is None or r["fraction_of_peak"] > 0
        assert r["output_finite"]
        assert set(r["budgets"]) >= {"low-end-phone", "mid-range-phone", "mcu-small", "mcu-medium", "mcu-large"}
        small = r["budgets"]["mcu-small"]
        assert small["pass"] is False and any("mops_per_window" in x for x in small["reasons"])


def test_quick_writes_json_markdown_and_plot(zoo_export, tmp_path):
    out = tmp_path / "results"
    proc = _run(["--quick", str(zoo_export.parent), "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "latest.json").read_text())
    _check_results(doc, {"tflite_float32", "tflite_int8"})
    md = (out / "latest.md").read_text()
    assert "## Budgets" in md and "lv42@8k" in md and "Hello Edge" in md
    assert (out / "latest_latency.png").stat().st_size > 1000


def test_runtime_only_needs_no_tensorflow(zoo_export, tmp_path):
    # A stand-in 'tensorflow' that refuses to import: the runtime-only path must never touch it.
    blocker = tmp_path / "blocker"
    for mod in ("tensorflow", "keras"):
        (blocker / mod).mkdir(parents=True)
        (blocker / mod / "__init__.py").write_text(f"raise ImportError('{mod} is blocked in this test')\n")
    out = tmp_path / "device"
    out.mkdir()
    for name in ("latest_latency.png", "latest_pareto.png"):  # a previous run's plots, which this one does not draw
        (out / name).write_bytes(b"previous run")
    proc = _run(["--runtime-only", str(zoo_export.parent), "--out", str(out), "--formats", "tflite_int8",
                 "onnx_float32", "--threads", "1", "--windows", "5", "--warmup", "1"],
                env={"PYTHONPATH": f"{blocker}{os.pathsep}{ROOT}"})
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "latest.json").read_text())
    _check_results(doc, {"tflite_int8", "onnx_float32"})
    assert doc["peers"] == []
    assert not list(out.glob("*.png")), "plots of the previous run were left beside this run's results"
    assert "removed the previous run's" in proc.stdout


def test_no_exports_is_a_clear_error(tmp_path):
    proc = _run([str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--quick"])
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: no exported models under")
    assert "Traceback" not in proc.stderr


def test_peers_measure_the_same_model(zoo_export):
    from benchmarks.peers import measure_peers

    doc = measure_peers(zoo_export, n_windows=3, warmup=1)
    peers = doc["peers"]
    assert {"tinyaudio_runtime", "keras_predict", "keras_call", "tf_lite_interpreter", "onnxruntime",
            "tinyaudio_streaming"} <= set(peers)
    assert "mediapipe" in peers or "mediapipe" in doc["errors"]
    assert peers["tinyaudio_runtime"]["ratio_to_runtime"] == 1.0
    assert all(p["p50"] > 0 and p["n"] == 3 for p in peers.values())


def test_peers_name_a_corrupt_keras_model_in_one_line(zoo_export, tmp_path, capsys):
    from benchmarks.peers import main

    broken = tmp_path / zoo_export.name
    shutil.copytree(zoo_export, broken)
    (broken / "model.keras").write_bytes(b"not a zip archive")
    assert main([str(broken), "--windows", "2", "--warmup", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot load model.keras: ") and "\n" not in err


def test_pareto_front():
    pts = [(1.0, 0.5, "a"), (2.0, 0.7, "b"), (3.0, 0.6, "c"), (0.5, 0.4, "d"), (4.0, 0.9, "e")]
    assert [p[2] for p in pareto(pts)] == ["d", "a", "b", "e"]


def test_task_key_separates_folds_and_final_models():
    """Accuracies are compared (Pareto) only within one task: same dataset, protocol and fold."""
    from benchmarks.run import _task

    fold = {"data": {"dataset": "urbansound8k", "protocol": "official", "fold": "fold=1"}}
    final = {"data": {"dataset": "urbansound8k", "protocol": "official", "fold": "all data"}}
    assert _task(fold) == "urbansound8k · official · fold=1" and _task(final) != _task(fold)
    assert _task({"labels": ["a", "b", "c", "d"]}) == "4 classes: a, b, c, …"


# ---------------------------------------------------------------- bad input: one `error:` line, exit != 0


def _corrupt(path: Path) -> Path:
    path.write_bytes(b"not a flatbuffer" * 64)
    return path


def test_broken_export_is_named_and_the_rest_measured(zoo_export, tmp_path):
    shutil.copytree(zoo_export, tmp_path / "root" / zoo_export.name)
    bad = _corrupt(tmp_path / "root" / zoo_export.name / "model_int8.tflite")
    out = tmp_path / "o"
    proc = _run([str(tmp_path / "root"), "--out", str(out), "--runtime-only", "--formats", "tflite_float32",
                 "tflite_int8", "--threads", "1", "--windows", "2", "--warmup", "0"])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"warning: {bad}: not a loadable TFLite model" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: 1 of 2 measurements failed ({bad}); details in {out / 'latest.md'}")
    rows = {r["format"]: r for r in json.loads((out / "latest.json").read_text())["results"]}
    assert "error" not in rows["tflite_float32"] and str(bad) in rows["tflite_int8"]["error"]


def test_unknown_models_name_lists_the_exports(zoo_export, tmp_path):
    proc = _run([str(zoo_export.parent), "--out", str(tmp_path / "o"), "--models", "nosuch"])
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: no export matches --models nosuch under {zoo_export.parent} "
                                   f"(exports found: {zoo_export.name})")


@pytest.mark.parametrize("rate", ["-1", "0"])
def test_zoo_refuses_non_positive_rate(rate, tmp_path, capsys):
    from benchmarks.zoo import main

    assert main(["--rate", rate, "--out", str(tmp_path / "z")]) == 2
    assert capsys.readouterr().err == f"error: --rate must be a positive sample rate in Hz, got {rate}\n"
    assert not (tmp_path / "z").exists()


@pytest.mark.parametrize("flag,value", [("--hours", "nan"), ("--bucket", "nan"), ("--hop", "0"), ("--hours", "inf")])
def test_soak_refuses_bad_numbers(flag, value, tmp_path, capsys):
    from benchmarks.soak import main

    assert main([flag, value, "--out", str(tmp_path / "s.json")]) == 2
    assert capsys.readouterr().err == f"error: {flag} must be a positive finite number, got {float(value)}\n"


@pytest.mark.parametrize("module,args", [("soak", ["--hours", "0.01", "--out", "s.json"]),
                                         ("reliability", ["--quick", "--out", "r.md"])])
def test_corrupt_model_is_one_line(module, args, tmp_path, capsys, monkeypatch):
    import importlib

    monkeypatch.chdir(tmp_path)
    _corrupt(tmp_path / "bad.tflite")
    assert importlib.import_module(f"benchmarks.{module}").main([*args, "--model", "bad.tflite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: bad.tflite is not a loadable TFLite model (") and err.count("\n") == 1
    assert not (tmp_path / args[-1]).exists()


@pytest.mark.parametrize("folder,missing", [("nonexist", "model_float32.tflite"),
                                            ("android_demo_assets/spoken_digit", "model.keras")])
def test_peers_needs_an_export_folder(tmp_path, capsys, folder, missing):
    """A shipped asset folder has no model.keras: that was an ExportError traceback after loading."""
    from benchmarks.peers import main

    path = tmp_path / folder if folder == "nonexist" else ROOT / folder
    assert main([str(path), "--windows", "2", "--warmup", "0"]) == 2
    assert capsys.readouterr().err == (f"error: {path} is not an export folder of python -m export (no {missing}; "
                                       "the peers time Keras on model.keras and the interpreters on "
                                       "model_float32.tflite)\n")


def test_report_refuses_json_of_the_wrong_shape(tmp_path, capsys):
    from benchmarks.report import main

    (tmp_path / "keep.json").write_text("[1, 2]")
    assert main([str(tmp_path / "keep.json")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'keep.json'} is not a results file of python -m "
                                       'benchmarks (no "format": "tinyaudio-benchmarks/1")\n')
    assert not (tmp_path / "keep.md").exists()


def test_worker_refuses_zero_windows(zoo_export, capsys):
    from benchmarks.worker import main

    assert main([str(zoo_export / "model_int8.tflite"), "--windows", "0"]) == 2
    assert capsys.readouterr().err == "error: --windows must be 1 to 1000000, got 0\n"
