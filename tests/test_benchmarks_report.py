"""The benchmark report rendered from the committed results (real measurements, no mocks): rows of two
exports of one model stay apart, budget cells name every limit broken, int8 rows get no share of the
float peak, failed or skipped peer comparisons are named; and the run's own bookkeeping (machine read
before measuring, a stuck worker, --quick's folder). No TensorFlow, no timing assertions."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmarks.report import render_markdown, row_labels

ROOT = Path(__file__).resolve().parents[1]
LATEST = ROOT / "benchmarks" / "results" / "latest.json"


@pytest.fixture(scope="module")
def latest() -> dict:
    return json.loads(LATEST.read_text())


def _table_rows(md: str, section: str) -> list[list[str]]:
    """Cells of the Markdown table under the first heading starting with ``section``."""
    lines = md.split(section, 1)[1].split("\n## ", 1)[0].splitlines()
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines if ln.startswith("| ")]
    return rows[1:]  # without the header


def test_two_exports_of_one_model_keep_their_own_rows(latest):
    """android_demo_assets/environmental and exports/us8k_acc_lv81 are both lv81 @ 22.05 kHz: one label
    merged their rows in the tables and drew both into one bar group (first match per format)."""
    labels = row_labels(latest["results"])
    assert len(set(labels.values())) == len(labels) == len({r["model_dir"] for r in latest["results"]})
    assert labels["android_demo_assets/environmental"] == "lv81@22.05k (environmental)"
    assert labels["exports/us8k_acc_lv81"] == "lv81@22.05k (us8k_acc_lv81)"
    assert labels["android_demo_assets/spoken_digit"] == "lv24@8k"  # unambiguous: no folder name
    md = render_markdown(latest, "cmd")
    rows = _table_rows(md, "## Latency, size, memory — 1 thread")
    assert sum(r[0] == "lv81@22.05k (environmental)" for r in rows) == 2  # float32 and int8
    assert sum(r[0] == "lv81@22.05k (us8k_acc_lv81)" for r in rows) == 6


def test_budget_cells_name_every_limit_broken(latest):
    """lv18's int8 file breaks mcu-large's RAM and MOps limits; the cell named only the first."""
    rows = _table_rows(render_markdown(latest, "cmd"), "## Budgets (1 thread)")
    names = list(latest["budgets"])
    (row,) = [r for r in rows if r[:2] == ["lv18@22.05k", "tfl-int8"]]
    cell = row[2 + names.index("mcu-large")]
    assert cell.startswith("✗ ") and "ram_kib 861.6 > 500" in cell and "mops_per_window 134.4 > 80" in cell


def test_int8_rows_get_no_share_of_the_float_peak(latest):
    """int8 kernels ran at up to 2.2x the float probe's peak ('217 %'): they get '–', float rows a share."""
    rows = _table_rows(render_markdown(latest, "cmd"), "## Latency, size, memory — 1 thread")
    share = {(r[0], r[1]): r[11] for r in rows}
    assert share[("lv24@8k", "tfl-int8")] == "–" and share[("lv18@22.05k", "tfl-dyn")] == "–"
    assert share[("lv18@22.05k", "onnx-int8")] == "–"
    floats = [v for (_, fmt), v in share.items() if fmt in ("tfl-f32", "tfl-f16", "onnx-f32")]
    assert floats and all(v.endswith(" %") and 0 < float(v[:-2]) <= 100 for v in floats)


def test_no_single_thread_rows_say_why_nothing_is_judged(latest):
    doc = copy.deepcopy(latest)
    doc["results"] = [r for r in doc["results"] if r["threads"] != 1]
    doc["config"]["threads"] = [2]
    md = render_markdown(doc, "cmd")
    assert "Not judged: this run has no 1-thread measurement" in md
    rows = _table_rows(md, "## Budgets (1 thread)")  # only the table of limits follows: no model rows
    assert rows and all(r[0] in doc["budgets"] for r in rows)


def test_failed_and_skipped_peer_comparisons_are_named(latest):
    doc = copy.deepcopy(latest)
    doc["config"]["peer_windows"] = 30
    doc["peers"] = [{"folder": "exports/broken", "error": "error: cannot load model.keras: corrupt"}]
    doc["peers_skipped"] = ["android_demo_assets/spoken_digit"]
    md = render_markdown(doc, "cmd")
    assert "| exports/broken | error: cannot load model.keras: corrupt |" in md
    assert "| model | peers |" in md  # no peer ran: one column for the errors, not an empty header
    assert "Not compared (no `model.keras`" in md and "`android_demo_assets/spoken_digit`" in md
    assert "over 30 windows after 10 warm-up" in md


def test_the_machine_is_described_before_measuring(monkeypatch, tmp_path):
    """Its load average was read after an hour of measuring and reported as 'at start'."""
    import benchmarks.machine
    import benchmarks.probe
    from benchmarks.run import BenchConfig, BenchmarkError, run_benchmarks

    order = []
    monkeypatch.setattr(benchmarks.machine, "describe_machine", lambda: order.append("machine") or {})

    def stop(*_a, **_k):
        order.append("peak")
        raise BenchmarkError("stop here")

    monkeypatch.setattr(benchmarks.probe, "measure", stop)
    with pytest.raises(BenchmarkError, match="stop here"):
        run_benchmarks(BenchConfig(roots=(ROOT / "android_demo_assets",), peers=False), log=lambda *_: None)
    assert order == ["machine", "peak"]


def test_a_stuck_worker_is_a_failed_row_not_a_traceback():
    from benchmarks.run import _run_json

    res = _run_json(["timeit", "-n", "1", "-r", "1", "import time; time.sleep(30)"], timeout=1)
    assert res == {"error": "error: python -m timeit took over 1 s and was stopped (fewer --windows?)"}


def test_quick_writes_outside_the_committed_results():
    from benchmarks.__main__ import QUICK_OUT, RESULTS, parser, results_folder

    assert results_folder(parser().parse_args(["--quick"])) == QUICK_OUT != RESULTS
    assert results_folder(parser().parse_args([])) == RESULTS
    assert results_folder(parser().parse_args(["--quick", "--out", "x"])) == Path("x")


def test_train_malloc_refuses_a_core_it_cannot_run_on(tmp_path, capsys):
    import os

    from benchmarks.train_malloc import main

    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    bad = max(os.sched_getaffinity(0)) + 1000
    assert main(["--data", str(tmp_path), "--out", str(tmp_path / "m.md"), "--core", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: --core {bad} is not a core this process may run on (allowed: ") and "\n" not in err
    assert not (tmp_path / "m.md").exists()
