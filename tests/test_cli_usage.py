"""Every ``python -m ...`` command answers a bad argument with one line and exit status 2.

argparse's own answer is its usage block (a screenful for ``python -m train``) with the message
last; the project's rule for bad input is one ``error: ...`` line (runtime/cli.py).
"""

from __future__ import annotations

import importlib
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("train", "export", "runtime", "benchmarks")

# Module whose main(argv) parses the command line -> the ``prog`` it names in --help.
COMMANDS = {
    "train.__main__": "python -m train",
    "train.report": "python -m train.report",
    "train.grid": "python -m train.grid",
    "train.order_probe": "python -m train.order_probe",
    "train.ensemble": "python -m train.ensemble",
    "train.describe": "python -m train.describe",
    "train.sinc_bands": "python -m train.sinc_bands",
    "train.models": "python -m train.models",
    "export.cli": "python -m export",
    "export.check": "python -m export.check",
    "export.quant_probe": "python -m export.quant_probe",
    "export.android": "python -m export.android",
    "runtime.live": "python -m runtime.live",
    "benchmarks.__main__": "python -m benchmarks",
    "benchmarks.report": "python -m benchmarks.report",
    "benchmarks.worker": "python -m benchmarks.worker",
    "benchmarks.zoo": "python -m benchmarks.zoo",
    "benchmarks.peers": "python -m benchmarks.peers",
    "benchmarks.reliability": "python -m benchmarks.reliability",
    "benchmarks.soak": "python -m benchmarks.soak",
    "benchmarks.train_faults": "python -m benchmarks.train_faults",
    "benchmarks.train_malloc": "python -m benchmarks.train_malloc",
    "benchmarks.probe": "python -m benchmarks.probe",
    "benchmarks.runtime_live": "python -m benchmarks.runtime_live",
}


def _sources_with_parsers() -> set[str]:
    """Modules that build an argument parser (runtime/cli.py defines it)."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if path != ROOT / "runtime" / "cli.py" and "ArgumentParser(" in path.read_text():
                found.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


def test_every_command_is_listed_and_uses_the_project_parser():
    """A new CLI cannot slip in with argparse's multi-line errors, nor be missed by the test below."""
    assert _sources_with_parsers() == set(COMMANDS)
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            assert "argparse.ArgumentParser(" not in path.read_text(), f"{path}: use runtime.cli.ArgumentParser"


@pytest.mark.parametrize("module", sorted(COMMANDS))
@pytest.mark.parametrize("argv,words", [(["--no-such-option"], ["unrecognized arguments: --no-such-option"])],
                         ids=["unknown-option"])
def test_usage_error_is_one_line(module, argv, words, capsys):
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and lines[0].endswith(f"(see {COMMANDS[module]} --help)")
    # required arguments are reported first where a command has them; either way the line is argparse's message
    assert "the following arguments are required" in lines[0] or all(w in lines[0] for w in words)


@pytest.mark.parametrize("args,expected", [
    (["-m", "runtime.live", "--smooth", "abc"],
     "error: argument --smooth: invalid int value: 'abc' (see python -m runtime.live --help)"),
    (["-m", "train", "--model", "lv24", "--dataset", "fsdd", "--data", ".", "--protocol", "loso", "--out", "x",
      "--epochs", "ten"],
     "error: argument --epochs: invalid int value: 'ten' (see python -m train --help)"),
    (["-m", "export", "--out", "x"],
     "error: one of the arguments --run --model is required (see python -m export --help)"),
], ids=["runtime-live-type", "train-type", "export-group"])
def test_bad_value_from_the_shell(args, expected):
    """The same through the real entry points: exactly one stderr line, nothing on stdout, status 2."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == expected + "\n"


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    """Ctrl-C in python -m export (or check, android, describe, ...) was a traceback through TensorFlow
    or onnxruntime; runtime.cli.exit_with turns it into one line and the shell's 130."""
    from runtime.cli import exit_with

    def interrupted() -> int:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as e:
        exit_with(interrupted, "python -m export")
    assert e.value.code == 130
    assert capsys.readouterr().err == ("interrupted: python -m export stopped before it finished (Ctrl-C); "
                                       "run it again to redo it\n")


# Commands that catch Ctrl-C themselves, to say how to resume (train) or to keep the summary so far (runtime.live,
# the benchmarks): their __main__ blocks may call main() directly.
OWN_CTRL_C = {"train.__main__", "train.grid", "runtime.live", "benchmarks.__main__", "benchmarks.soak",
              "benchmarks.reliability"}


@pytest.mark.parametrize("module", [m for m in COMMANDS if m.startswith(("train.", "export.")) and m not in OWN_CTRL_C])
def test_commands_end_through_exit_with(module):
    source = (ROOT / (module.replace(".", "/") + ".py")).read_text()
    block = source[source.index('if __name__ == "__main__":'):]
    assert "exit_with(main" in block, f"{module}: its __main__ block should call runtime.cli.exit_with(main, ...)"


@pytest.mark.parametrize("value,expected", [("-1e3", -1000.0), ("-inf", -math.inf), ("-60", -60.0), ("-.5", -0.5),
                                            ("-2.5E+1", -25.0)])
def test_negative_numbers_in_any_spelling_are_values(value, expected):
    """`--silence-db -1e3` and `--silence-db -inf` were "expected one argument": argparse's own pattern
    for a negative number knows neither, and took them for options."""
    from runtime.cli import ArgumentParser

    p = ArgumentParser(prog="x")
    p.add_argument("--level", type=float)
    assert p.parse_args(["--level", value]).level == expected


def test_silence_db_takes_an_exponent(tmp_path):
    from runtime.live import parser

    assert parser().parse_args(["--file", str(tmp_path / "x.wav"), "--silence-db", "-1e2"]).silence_db == -100.0
