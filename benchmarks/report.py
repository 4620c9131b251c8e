"""Render a benchmark results document as Markdown and PNG plots (matplotlib, Agg)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

from benchmarks.machine import machine_line
from runtime.cli import ArgumentParser
from runtime.files import atomic_path

SHORT = {"tflite_float32": "tfl-f32", "tflite_float16": "tfl-f16", "tflite_dynamic_int8": "tfl-dyn",
         "tflite_int8": "tfl-int8", "onnx_float32": "onnx-f32", "onnx_int8": "onnx-int8"}


def _ok(rows):
    return [r for r in rows if "error" not in r]


def _label(r: dict) -> str:
    return f"{r['model']}@{r['sample_rate'] / 1000:g}k"


def row_labels(rows: list[dict]) -> dict[str, str]:
    """Export folder -> its name in tables and plots: ``model@rate``, plus the folder's name where two
    folders hold the same model at the same rate (else their rows and bars would merge into one)."""
    folders: dict[str, list[str]] = {}
    for r in rows:
        dirs = folders.setdefault(_label(r), [])
        if r["model_dir"] not in dirs:
            dirs.append(r["model_dir"])
    return {d: base if len(dirs) == 1 else f"{base} ({Path(d).name})" for base, dirs in folders.items() for d in dirs}


def _percent_of_peak(r: dict, peak: dict) -> str:
    # Recomputed, not read from the row: results written before int8 rows were exempted still render right.
    from benchmarks.run import fraction_of_peak

    fraction = fraction_of_peak(r, peak)
    return "–" if fraction is None else f"{100 * fraction:.0f} %"


def _fmt(v, spec: str, dash: str = "–") -> str:
    return dash if v is None else format(v, spec)


def pareto(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Points (latency, accuracy, name) not dominated by a faster-and-at-least-as-accurate one."""
    front, best = [], -1.0
    for lat, acc, name in sorted(points, key=lambda p: (p[0], -p[1])):
        if acc > best:
            front.append((lat, acc, name))
            best = acc
    return front


def render_markdown(doc: dict, command: str) -> str:
    rows = _ok(doc["results"])
    label_of = row_labels(doc["results"])
    threads = doc["config"]["threads"]
    when = dt.datetime.fromtimestamp(doc["created_unix"], dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    peak = doc["peak"]
    out = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` on {when} in {doc['duration_s']:.0f} s.",
        "",
        f"**Machine:** {machine_line(doc['machine'])}. Libraries: "
        + ", ".join(f"{k} {v}" for k, v in doc["machine"]["libraries"].items()) + ".",
        "",
        f"**Compute peak (one core):** {peak['peak_gmacs']:.1f} GMAC/s — LiteRT 3×3 convolution probe "
        f"{_fmt(peak['litert_gmacs'], '.1f')} GMAC/s, numpy BLAS matmul {peak['blas_gmacs']:.1f} GMAC/s "
        "(see `benchmarks/probe.py` for how each is measured; the larger is the peak). `% of peak` is a float row's "
        "GMAC/s over that peak times its threads; int8 rows (tfl-dyn, tfl-int8, onnx-int8) get none, since int8 "
        "kernels have another ceiling that no single probe bounds.",
        "",
        f"Each cell is measured in a fresh process that loads the model through `runtime.model` and times "
        f"{doc['config']['windows']} single windows after {doc['config']['warmup']} warm-up windows. "
        "Latency is per window (batch 1). RSS is the whole Python process's peak.",
        "",
    ]
    for t in threads:
        sel = [r for r in rows if r["threads"] == t]
        if not sel:
            continue
        out += [f"## Latency, size, memory — {t} thread{'s' if t > 1 else ''}", "",
                "| model | format | size KiB | p50 ms | p95 ms | p99 ms | windows/s | load ms | peak RSS MiB | MMACs | GMAC/s | % of peak | accuracy |",
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in sel:
            lat = r["latency_ms"]
            out.append(
                f"| {label_of[r['model_dir']]} | {SHORT[r['format']]} | {r['size_bytes'] / 1024:.1f} | {lat['p50']:.3f} | "
                f"{lat['p95']:.3f} | {lat['p99']:.3f} | {r['windows_per_s']:.0f} | {r['load_ms']:.1f} | "
                f"{r['peak_rss_mb']:.1f} | {r['macs'] / 1e6:.1f} | {r['gmacs_per_s']:.1f} | "
                f"{_percent_of_peak(r, peak)} | {_fmt(r['accuracy'], '.1%')} |")
        out.append("")
    errors = [r for r in doc["results"] if "error" in r]
    if errors:
        out += ["## Measurements that failed", ""] + [
            f"- {label_of[r['model_dir']]} {r['format']} threads={r['threads']}: {r['error']}" for r in errors] + [""]

    names = list(doc["budgets"])
    single = [r for r in rows if r["threads"] == 1]
    out += ["## Budgets (1 thread)", ""]
    if not single:  # the profiles' latency limits are for one core: nothing here to judge them with
        out += ["Not judged: this run has no 1-thread measurement (`--threads` without 1), and the "
                "profiles' latency limits are for the one core a phone gives audio.", ""]
    else:
        out += ["✓ = every limit of the profile holds; ✗ names every limit broken. Limits and their sources "
                "are listed below.", "", "| model | format | " + " | ".join(names) + " |",
                "|---|---|" + "---|" * len(names)]
    for r in single:
        cells = []
        for n in names:
            v = r["budgets"][n]
            if v["pass"]:
                cells.append("✓")
            else:
                broken = [x for x in v["reasons"] if " > " in x] or [f"unjudged: {', '.join(v['unjudged'])}"]
                cells.append("✗ " + "; ".join(broken))
        out.append(f"| {label_of[r['model_dir']]} | {SHORT[r['format']]} | " + " | ".join(cells) + " |")
    out += ["", "| profile | limit | value | source |", "|---|---|---:|---|"]
    for n, b in doc["budgets"].items():
        for k, v in b["limits"].items():
            out.append(f"| {n} | {k} | {v['limit']:g} | {v['source']} |")
    out.append("")

    fronts = pareto_fronts(doc)
    if fronts:
        out += ["## Pareto front per task (accuracy vs p50 latency, 1 thread)", "",
                "Accuracy from each export's parity report (which audio: its `parity.md`; `all data` = a final "
                "model scored on audio it was trained on). A point is on the front when nothing else in its task "
                "is at least as fast and at least as accurate.", ""]
        for task, front in fronts.items():
            out += [f"**{task}**", "", "| model | format | p50 ms | accuracy | size KiB |", "|---|---|---:|---:|---:|"]
            for r in front:
                out.append(f"| {label_of[r['model_dir']]} | {SHORT[r['format']]} | {r['latency_ms']['p50']:.3f} | "
                           f"{_fmt(r['accuracy'], '.1%')} | {r['size_bytes'] / 1024:.1f} |")
            out.append("")

    skipped = doc.get("peers_skipped", [])
    if doc["peers"] or skipped:
        peer_names = []
        for p in doc["peers"]:
            for k in p.get("peers", {}):
                if k not in peer_names:
                    peer_names.append(k)
        columns = peer_names or ["peers"]  # every peer run failed: one column for the errors
        windows = doc["config"].get("peer_windows")
        out += ["## Against what users would run instead (float32, 1 thread)", "",
                "p50 ms per window" + (f" over {windows} windows after {doc['config']['warmup']} warm-up"
                                       if windows else "")
                + ", and in brackets the ratio to this project's runtime on the same "
                "`.tflite` and the same windows (> 1 = slower than ours). See `benchmarks/peers.py`.", ""]
        if skipped:
            out += [f"Not compared (no `model.keras` to time Keras on; shipped asset folders carry none): "
                    f"{', '.join(f'`{s}`' for s in skipped)}.", ""]
        if doc["peers"]:
            out += ["| model | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
        for p in doc["peers"]:
            if "error" in p:
                out.append(f"| {p['folder']} | {p['error']} |" + " |" * (len(columns) - 1))
                continue
            cells = [f"{p['peers'][k]['p50']:.2f} (×{p['peers'][k]['ratio_to_runtime']:.2f})" if k in p["peers"]
                     else "–" for k in peer_names]
            out.append(f"| {p['model']} ({Path(p['folder']).name}) | " + " | ".join(cells) + " |")
            for k, e in p.get("errors", {}).items():
                out.append(f"| ↳ {k} unavailable: {e} |")
        out.append("")
    return "\n".join(out)


def plot_latency(doc: dict, path: Path) -> Path | None:
    """Grouped bars: p50 latency per model and format, one thread, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in _ok(doc["results"]) if r["threads"] == 1]
    if not rows:
        return None
    label_of = row_labels(doc["results"])
    dirs = list(dict.fromkeys(r["model_dir"] for r in rows))
    formats = [f for f in SHORT if any(r["format"] == f for r in rows)]
    width = 0.8 / len(formats)
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(dirs) + 3), 4.5))
    x = np.arange(len(dirs))
    for i, f in enumerate(formats):
        vals = [next((r["latency_ms"]["p50"] for r in rows if r["model_dir"] == d and r["format"] == f), np.nan)
                for d in dirs]
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=SHORT[f])
    ax.set_xticks(x, [label_of[d] for d in dirs], rotation=35, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("p50 latency per window (ms, log)")
    ax.set_title(f"Latency per model and format, 1 thread — {doc['machine']['cpu']}", fontsize=9)
    ax.legend(ncol=3, fontsize=8)
    ax.grid(axis="y", alpha=0.3, which="both")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def _task_rows(doc: dict) -> dict[str, list[dict]]:
    """1-thread results with an accuracy, by task (accuracies compare only within a task)."""
    rows = [r for r in _ok(doc["results"]) if r["threads"] == 1 and r.get("accuracy") is not None]
    return {task: [r for r in rows if r["task"] == task] for task in dict.fromkeys(r["task"] for r in rows)}


def pareto_fronts(doc: dict) -> dict[str, list[dict]]:
    """Per task, the result rows on the accuracy-vs-p50-latency front, fastest first."""
    fronts = {}
    for task, rows in _task_rows(doc).items():
        keep = {name for _, _, name in pareto([(r["latency_ms"]["p50"], r["accuracy"], i) for i, r in enumerate(rows)])}
        fronts[task] = sorted((rows[i] for i in keep), key=lambda r: r["latency_ms"]["p50"])
    return fronts


def plot_pareto(doc: dict, path: Path) -> Path | None:
    """Accuracy against latency, one panel per task: every (model, format) dot, the front joined and named."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = _task_rows(doc)
    if not tasks:
        return None
    fronts = pareto_fronts(doc)
    label_of = row_labels(doc["results"])
    fig, axes = plt.subplots(len(tasks), 1, figsize=(9, 3.6 * len(tasks)), squeeze=False)
    for ax, (task, rows) in zip(axes[:, 0], tasks.items()):
        ax.scatter([r["latency_ms"]["p50"] for r in rows], [100 * r["accuracy"] for r in rows], s=22, alpha=0.45)
        front = fronts[task]
        ax.plot([r["latency_ms"]["p50"] for r in front], [100 * r["accuracy"] for r in front], "-o", ms=6, color="C3")
        for k, r in enumerate(front):  # alternate label offsets so neighbours do not overprint
            ax.annotate(f"{label_of[r['model_dir']]} {SHORT[r['format']]}", (r["latency_ms"]["p50"], 100 * r["accuracy"]), fontsize=7,
                        xytext=(4, 6 if k % 2 == 0 else -10), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_title(f"{task} ({len(rows)} model × format points; red: Pareto front)", fontsize=9)
        ax.set_ylabel("accuracy in parity report (%)", fontsize=8)
        ax.grid(alpha=0.3, which="both")
    axes[-1, 0].set_xlabel("p50 latency per window, 1 thread (ms, log); 'all data' tasks: final models scored on audio they saw")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path


def nonfinite(value, where: str = "") -> str | None:
    """Where in a results document the first NaN or infinity is (JSON allows them; a table must not show them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} is {value}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = nonfinite(item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip("."))
        if found:
            return found
    return None


DESCRIPTION = ("Re-render NAME.md and the plots from a results file OUT/NAME.json written by python -m benchmarks "
               "(no measuring), e.g. after a change to the report's layout.")


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.report OUT/NAME.json`` (see DESCRIPTION)."""
    import json
    import sys

    p = ArgumentParser(prog="python -m benchmarks.report", description=DESCRIPTION)
    p.add_argument("json", type=Path, help="results JSON written by python -m benchmarks")
    args = p.parse_args(argv)
    try:
        doc = json.loads(args.json.read_text())
    except (OSError, ValueError) as e:
        print(f"error: cannot read benchmark results {args.json}: {e}", file=sys.stderr)
        return 2
    if not isinstance(doc, dict) or doc.get("format") != "tinyaudio-benchmarks/1":
        print(f"error: {args.json} is not a results file of python -m benchmarks (no \"format\": "
              "\"tinyaudio-benchmarks/1\")", file=sys.stderr)
        return 2
    bad = nonfinite(doc)
    if bad:  # e.g. a hand-edited file: "nan ms" in the table would read as a measurement
        row = doc["results"][int(bad[8:bad.index("]")])] if bad.startswith("results[") else None
        which = f" ({row.get('model')} {row.get('format')} threads={row.get('threads')})" if isinstance(row, dict) else ""
        print(f"error: {args.json}: {bad}{which}; not a measured value", file=sys.stderr)
        return 2
    try:
        md = render_markdown(doc, doc["command"])
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # right format tag, damaged content
        print(f"error: {args.json}: malformed benchmark results ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    from runtime.files import cannot_write, write_atomic

    stem = args.json.with_suffix("")
    md_path = args.json.with_suffix(".md")
    plots = (stem.with_name(stem.name + "_latency.png"), stem.with_name(stem.name + "_pareto.png"))
    problem = cannot_write(md_path, *plots)  # all checked first, so a failure leaves no half-rendered set behind
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        write_atomic(md_path, md)
        written = [md_path] + [p for p in (plot_latency(doc, plots[0]), plot_pareto(doc, plots[1])) if p]
    except OSError as e:  # checked above; a disk can still fill up
        print(f"error: cannot write {md_path.parent}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
