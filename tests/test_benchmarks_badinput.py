"""Bad input to the benchmark commands: one ``error: ...`` line on stderr and a non-zero exit, never a
traceback, a NaN in a table, a hang or a silent exit 0. Fast: no TensorFlow; the committed
``android_demo_assets/spoken_digit`` export stands in for a real one."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPORT = ROOT / "android_demo_assets" / "spoken_digit"


def _run(module: str, args: list[str], env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in {**os.environ, **(env or {})}.items() if k != "TINYAUDIO_NATIVE_STDERR"}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def no_tensorflow(tmp_path) -> dict:
    """Environment in which ``import tensorflow`` and ``import keras`` fail (the base install), as in
    test_benchmarks.test_runtime_only_needs_no_tensorflow."""
    blocker = tmp_path / "blocker"
    for mod in ("tensorflow", "keras"):
        (blocker / mod).mkdir(parents=True)
        (blocker / mod / "__init__.py").write_text(f"raise ImportError('{mod} is blocked in this test')\n")
    return {"PYTHONPATH": f"{blocker}{os.pathsep}{ROOT}"}


@pytest.fixture
def export_root(tmp_path) -> Path:
    """A copy of a real export folder, to break in each test."""
    shutil.copytree(EXPORT, tmp_path / "root" / EXPORT.name)
    return tmp_path / "root"


# ---------------------------------------------------------------- benchmarks.soak


@pytest.mark.parametrize("args,message", [
    (["--hours", "1e308"], "error: --hours must be at most 1000.0, got 1e+308"),
    (["--hop", "1e308"], "error: --hop must be at most 3600.0, got 1e+308"),
    (["--bucket", "1e308"], "error: --bucket must be at most 3600000.0, got 1e+308"),
    (["--hop", "1e-9"], "error: --hop must be at least one sample at --rate 16000 Hz"),
    (["--rate", "1000000000"], "error: --rate must be at most 768000, got 1000000000"),  # runtime.live's bound
    (["--block", "100000000"], "error: --block must be at most 65536"),
    (["--seed", "-1"], "error: --seed must be >= 0, got -1"),
    (["--rate", "1"], "error: --rate must be at least 1000, got 1"),
    (["--bucket", "1e-9"], "error: --bucket must be at least one --hop"),  # was a ZeroDivisionError at the end
])
def test_soak_refuses_out_of_range_values_before_any_work(args, message, tmp_path, capsys):
    from benchmarks.soak import main

    assert main([*args, "--out", str(tmp_path / "soak.json")]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith(message)


@pytest.mark.parametrize("module", ["benchmarks.soak", "benchmarks.reliability"])
def test_long_runs_check_every_output_file_first(module, tmp_path, capsys):
    """The soak's .png (or the report itself) being a folder ended hours of work in an IsADirectoryError."""
    import importlib

    out = tmp_path / ("soak.json" if module.endswith("soak") else "rel.md")
    blocked = out.with_suffix(".png") if module.endswith("soak") else out
    blocked.mkdir()
    assert importlib.import_module(module).main(["--model", str(EXPORT / "model_int8.tflite"), "--out", str(out)]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith(f"error: cannot write {blocked}: it is a folder")


def test_soak_refuses_a_hop_under_one_model_sample(tmp_path, capsys):
    # 3e-5 s is 1.4 samples at 48 kHz but 0.24 at the model's 8 kHz: refused, not rounded up to 1 sample.
    from benchmarks.soak import main

    assert main(["--model", str(EXPORT / "model_int8.tflite"), "--rate", "48000", "--hop", "3e-5", "--hours", "0.001",
                 "--out", str(tmp_path / "soak.json")]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith(
        "error: --hop must be at least one sample at the model's 8000 Hz")
    assert not (tmp_path / "soak.json").exists()


@pytest.mark.parametrize("module", ["benchmarks.soak", "benchmarks.reliability"])
def test_default_model_without_tensorflow_is_one_readable_line(module, no_tensorflow, tmp_path):
    proc = _run(module, ["--out", str(tmp_path / "out.json")], env=no_tensorflow)
    assert proc.returncode != 0
    line = _one_error_line(proc.stderr)
    assert line.startswith("error: building the soak model failed: ImportError: ")
    assert "['" not in line and "pip install -e '.[export]'" in line and "--model" in line


# ---------------------------------------------------------------- python -m benchmarks


def _edit_json(path: Path, **changes) -> None:
    doc = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            del doc[k]
        else:
            doc[k] = v
    path.write_text(json.dumps(doc))


def test_metadata_without_name_is_named(export_root, tmp_path, capsys):
    from benchmarks.__main__ import main

    meta = export_root / EXPORT.name / "metadata.json"
    _edit_json(meta, name=None)
    assert main([str(export_root), "--runtime-only", "--out", str(tmp_path / "o")]) == 2
    assert _one_error_line(capsys.readouterr().err) == f'error: {meta}: no model "name"'


def test_garbage_parity_report_is_named(export_root, tmp_path, capsys):
    from benchmarks.__main__ import main

    parity = export_root / EXPORT.name / "parity.json"
    parity.write_text("{not json")
    assert main([str(export_root), "--runtime-only", "--out", str(tmp_path / "o")]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith(f"error: {parity}: not a parity report (JSONDecodeError")


def test_export_with_every_model_file_missing_is_an_error(export_root, tmp_path, capsys):
    from benchmarks.__main__ import main

    for f in (export_root / EXPORT.name).glob("*.tflite"):
        f.unlink()
    assert main([str(export_root), "--runtime-only", "--out", str(tmp_path / "o")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("error: nothing to measure: every model file listed is missing (") and "model_int8.tflite" in line
    assert not (tmp_path / "o" / "latest.md").exists()


def test_one_missing_file_is_a_failed_row_and_nothing_from_litert_on_stderr(export_root, tmp_path):
    missing = export_root / EXPORT.name / "model_int8.tflite"
    missing.unlink()
    out = tmp_path / "o"
    proc = _run("benchmarks", [str(export_root), "--runtime-only", "--out", str(out), "--threads", "1",
                               "--windows", "2", "--warmup", "0"])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "XNNPACK" not in proc.stderr  # LiteRT's banner from activation_peak_bytes is silenced
    assert f"warning: {missing}: file missing" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: 1 of 2 measurements failed ({missing}); details in {out / 'latest.md'}")


def test_nothing_measured_leaves_previous_results_alone(export_root, tmp_path, capsys):
    from benchmarks.__main__ import main

    bad = export_root / EXPORT.name / "model_float32.tflite"
    bad.write_bytes(b"not a flatbuffer" * 64)
    out = tmp_path / "o"
    out.mkdir()
    (out / "latest.md").write_text("previous run\n")
    assert main([str(export_root), "--runtime-only", "--out", str(out), "--formats", "tflite_float32",
                 "--threads", "1", "--windows", "2", "--warmup", "0"]) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]  # says why, not only which file
    assert last.startswith(f"error: nothing could be measured: {bad}: not a loadable TFLite model (")
    assert last.endswith(f"; results in {out} left as they were")
    assert (out / "latest.md").read_text() == "previous run\n"


@pytest.mark.parametrize("args,message", [
    (["--windows", "0"], "error: --windows must be 1 to 1000000, got 0"),
    (["--windows", "100000000000000000000"], "error: --windows must be 1 to 1000000, got 100000000000000000000"),
    (["--warmup", "-1"], "error: --warmup must be 0 to 1000000, got -1"),
    (["--threads", "1", "0", "-2"], "error: --threads must be 1 to 64, got 0"),
    (["--threads", "100000"], "error: --threads must be 1 to 64, got 100000"),  # was "nothing could be measured"
])
def test_bad_counts_name_the_option(args, message, export_root, tmp_path, capsys):
    from benchmarks.__main__ import main

    assert main([str(export_root), "--out", str(tmp_path / "o"), *args]) == 2
    assert _one_error_line(capsys.readouterr().err) == message


@pytest.mark.parametrize("args,message", [
    (["--quick", "--windows", "0"], "error: --quick sets its own formats, threads, windows and warmup; drop --windows or --quick"),
    (["--quick", "--formats", "onnx_float32", "--threads", "7"], "drop --formats, --threads or --quick"),
    (["--name", "a/b"], "error: --name must be a plain file name without folders (put those in --out), got 'a/b'"),
    (["--name", ""], "error: --name must be a plain file name"),
    (["--name", "../up"], "error: --name must be a plain file name"),
])
def test_options_are_checked_before_measuring(args, message, export_root, tmp_path, capsys):
    """--quick took other options silently; --name with a folder failed only after every measurement."""
    from benchmarks.__main__ import main

    assert main([str(export_root), "--runtime-only", "--out", str(tmp_path / "o"), *args]) == 2
    assert message in _one_error_line(capsys.readouterr().err)


def test_a_blocked_plot_is_refused_before_measuring(export_root, tmp_path, capsys):
    from benchmarks.__main__ import main

    (tmp_path / "o" / "latest_latency.png").mkdir(parents=True)
    assert main([str(export_root), "--out", str(tmp_path / "o")]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith(
        f"error: cannot write {tmp_path / 'o' / 'latest_latency.png'}: it is a folder")
    assert not (tmp_path / "o" / "latest.json").exists()


def test_report_checks_its_outputs_first(tmp_path, capsys):
    from benchmarks.report import main

    path = _results_with(tmp_path, 1.0)
    (tmp_path / "r_pareto.png").mkdir()
    assert main([str(path)]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith(f"error: cannot write {tmp_path / 'r_pareto.png'}: it is a folder")
    assert not path.with_suffix(".md").exists()


def test_help_puts_the_folders_first(capsys):
    from benchmarks.__main__ import parser

    with pytest.raises(SystemExit):
        parser().parse_args(["--help"])
    text = capsys.readouterr().out
    assert text.startswith("usage: python -m benchmarks [ROOT ...] [options]")
    assert "python -m benchmarks exports/zoo --formats tflite_int8 onnx_float32 --threads 1" in text
    # the documented order keeps working
    args = parser().parse_args(["exports/zoo", "--formats", "tflite_int8", "onnx_float32", "--threads", "1"])
    assert args.roots == [Path("exports/zoo")] and args.formats == ["tflite_int8", "onnx_float32"]


# ---------------------------------------------------------------- benchmarks.runtime_live


@pytest.mark.parametrize("seconds", ["nan", "-5", "inf", "0"])
def test_runtime_live_refuses_bad_seconds(seconds, tmp_path, capsys):
    from benchmarks.runtime_live import main

    assert main(["--data", str(tmp_path), "--seconds", seconds, "--out", str(tmp_path / "r.md")]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith("error: --seconds must be a positive number")


@pytest.mark.parametrize("out,message", [
    ("/proc/nope/x.md", "error: --out /proc/nope/x.md: cannot create files in /proc: "),
    (".", "error: --out .: it is a folder"),
    ("r.json", "error: --out r.json: the .json written beside it would overwrite it"),  # it did, and said "wrote"
])
def test_runtime_live_checks_the_output_before_measuring(out, message, tmp_path, capsys):
    from benchmarks.runtime_live import main

    # --data holds no clips: had the recordings been made first, that would be the error.
    assert main(["--data", str(tmp_path), "--out", out]) == 2
    assert _one_error_line(capsys.readouterr().err).startswith(message)


# ---------------------------------------------------------------- without TensorFlow


def test_probe_build_without_tensorflow(no_tensorflow):
    proc = _run("benchmarks.probe", ["--build"], env=no_tensorflow)
    assert proc.returncode == 2
    assert proc.stderr == "error: --build needs TensorFlow (pip install -e '.[train]')\n"


def test_zoo_help_and_errors_without_tensorflow(no_tensorflow, tmp_path):
    proc = _run("benchmarks.zoo", ["--help"], env=no_tensorflow)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: python -m benchmarks.zoo") and proc.stderr == ""
    proc = _run("benchmarks.zoo", ["--out", str(tmp_path / "z")], env=no_tensorflow)
    assert proc.returncode == 2
    assert _one_error_line(proc.stderr).startswith("error: python -m benchmarks.zoo needs TensorFlow")


# ---------------------------------------------------------------- benchmarks.report, worker, peers


def _results_with(tmp_path: Path, value: float) -> Path:
    doc = json.loads((ROOT / "benchmarks" / "results" / "shipped.json").read_text())
    doc["results"][0]["latency_ms"]["p50"] = value
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))  # json writes NaN/Infinity, and reads them back
    return path


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_report_refuses_non_finite_numbers(value, tmp_path, capsys):
    from benchmarks.report import main

    path = _results_with(tmp_path, value)
    row = json.loads(path.read_text())["results"][0]
    assert main([str(path)]) == 2
    assert _one_error_line(capsys.readouterr().err) == (
        f"error: {path}: results[0].latency_ms.p50 is {value} ({row['model']} {row['format']} "
        f"threads={row['threads']}); not a measured value")
    assert not path.with_suffix(".md").exists()


def test_report_description_is_whole(capsys):
    from benchmarks.report import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "from a results file OUT/NAME.json written by python -m benchmarks (no measuring)" in text


def test_worker_names_the_file_once(tmp_path):
    (tmp_path / "model.txt").write_text("x")
    proc = _run("benchmarks.worker", [str(tmp_path / "model.txt")])
    assert proc.returncode == 2
    line = _one_error_line(proc.stderr)
    assert line.count("model.txt") == 1 and "unknown model format" in line


def test_worker_bad_count_names_the_option(capsys):
    from benchmarks.worker import main

    assert main([str(EXPORT / "model_int8.tflite"), "--warmup", "-1"]) == 2
    assert _one_error_line(capsys.readouterr().err) == "error: --warmup must be 0 to 1000000, got -1"


@pytest.mark.parametrize("module", ["benchmarks.worker", "benchmarks.peers"])
def test_threads_and_warmup_have_help(module, capsys):
    import importlib

    with pytest.raises(SystemExit):
        importlib.import_module(module).main(["--help"])
    text = capsys.readouterr().out
    for option in ("--threads", "--warmup"):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(option))
        assert "(default" in line, line
