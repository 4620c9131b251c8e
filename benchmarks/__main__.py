"""python -m benchmarks: latency, memory, size and MACs of exported models against mobile budgets."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from benchmarks.run import FORMATS, BenchConfig, BenchmarkError, run_benchmarks
from runtime.cli import ArgumentParser
from runtime.files import cannot_write, write_atomic

DESCRIPTION = """\
Benchmark every exported model (default: every export folder under android_demo_assets/ and
exports/ — make untrained ones of the whole zoo with `python -m benchmarks.zoo`) in every format
(TFLite float32/float16/dynamic/int8, ONNX float32/int8) at 1 thread and all cores.

Each measurement runs in its own fresh process (latency p50/p95/p99 after warm-up, windows/s, load
time, peak RSS); MACs per window come from the export's metadata, and achieved GMAC/s is compared
with this machine's single-core peak measured in the same run. Every result is judged against the
budget profiles in runtime/budgets.json (phones and Hello Edge microcontroller classes), and the
same models are timed in Keras, TF's TFLite interpreter, onnxruntime and MediaPipe for comparison.

Writes OUT/latest.json, OUT/latest.md, OUT/latest_latency.png and OUT/latest_pareto.png (accuracy vs latency,
for exports that carry a parity report)."""


RESULTS, QUICK_OUT = Path("benchmarks/results"), Path("runs/benchmarks_quick")

# --formats, --threads and --models take several values and so swallow folders given after them:
# the usage line and the example put the folders first.
EPILOG = """\
Give the folders first: options that take several values take everything after them, e.g.
  python -m benchmarks exports/zoo --formats tflite_int8 onnx_float32 --threads 1"""


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m benchmarks", description=DESCRIPTION, epilog=EPILOG,
                       usage="%(prog)s [ROOT ...] [options]",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("roots", nargs="*", type=Path, metavar="ROOT", help="folders to search for exports "
                   "(default: android_demo_assets exports)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"results folder (default {RESULTS}; with --quick {QUICK_OUT}, so a smoke test never "
                        "replaces the committed results)")
    p.add_argument("--formats", nargs="+", default=None, choices=FORMATS, metavar="FMT",
                   help=f"formats to time (default all: {' '.join(FORMATS)})")
    p.add_argument("--threads", nargs="+", type=int, default=None, help="thread counts (default: 1 and all cores)")
    p.add_argument("--models", nargs="+", default=[], help="only these export folder names")
    p.add_argument("--windows", type=int, default=None, help="timed windows per measurement (default 100)")
    p.add_argument("--warmup", type=int, default=None, help="untimed windows first (default 10)")
    p.add_argument("--runtime-only", action="store_true",
                   help="measure with the base install only (no TensorFlow): skips the peer comparison; "
                        "for phones, Raspberry Pis and other devices; writes the same JSON")
    p.add_argument("--quick", action="store_true",
                   help="smoke test in under a minute: one model, float32 and int8 TFLite, 1 thread, 20 windows, "
                        "no peers (so not with --formats, --threads, --windows or --warmup)")
    p.add_argument("--name", default="latest", help="base name of the output files in --out, without a folder "
                   "(default latest)")
    return p


def config_from_args(args) -> BenchConfig:
    roots = tuple(args.roots) or (Path("android_demo_assets"), Path("exports"))
    if args.quick:
        # --quick fixes these itself; taking them silently would time something other than what was asked.
        given = [flag for flag, value in (("--formats", args.formats), ("--threads", args.threads),
                                          ("--windows", args.windows), ("--warmup", args.warmup)) if value is not None]
        if given:
            raise BenchmarkError(f"--quick sets its own formats, threads, windows and warmup; drop {', '.join(given)} "
                                 "or --quick")
        return BenchConfig(roots=roots, formats=("tflite_float32", "tflite_int8"), threads=(1,), windows=20,
                           warmup=3, peers=False, models=tuple(args.models), max_models=1)
    threads = tuple(args.threads) if args.threads else (1, os.cpu_count() or 1)
    return BenchConfig(roots=roots, formats=tuple(args.formats or FORMATS), threads=threads,
                       windows=100 if args.windows is None else args.windows,
                       warmup=10 if args.warmup is None else args.warmup,
                       peers=not args.runtime_only, models=tuple(args.models))


def results_folder(args) -> Path:
    """--out, else the committed results folder, else (--quick) a scratch folder under runs/."""
    if args.out is not None:
        return args.out
    return QUICK_OUT if args.quick else RESULTS


PLOTS = ("latency", "pareto")


def plot_files(out: Path, name: str) -> dict[str, Path]:
    """The plots a run named ``name`` draws in ``out``, by kind."""
    return {kind: out / f"{name}_{kind}.png" for kind in PLOTS}


def output_files(out: Path, name: str, plots: bool) -> dict[str, Path]:
    """The files a run writes, each checked before any measuring (BenchmarkError, one line, if one
    cannot be written): a full run takes minutes and must not end with nowhere to put it."""
    if not name or name != Path(name).name or name.startswith("."):
        raise BenchmarkError(f"--name must be a plain file name without folders (put those in --out), got {name!r}")
    files = {"json": out / f"{name}.json", "md": out / f"{name}.md"}
    if plots:  # plots need matplotlib, which the base install (--runtime-only) does not have
        files |= plot_files(out, name)
    problem = cannot_write(*files.values())
    if problem:
        raise BenchmarkError(problem)
    return files


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.out = results_folder(args)
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    try:
        config = config_from_args(args)
        files = output_files(args.out, args.name, plots=not args.runtime_only)
        doc = run_benchmarks(config, log=lambda m: print(m, file=sys.stderr))
    except (BenchmarkError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: nothing written; results in {args.out} left as they were", file=sys.stderr)
        return 130
    failed = [r for r in doc["results"] if "error" in r]
    broken = ", ".join(dict.fromkeys(str(Path(r.get("file") or r["model_dir"])) for r in failed))
    if len(failed) == len(doc["results"]):  # nothing measured: keep the previous results rather than an empty table
        reasons = list(dict.fromkeys(r["error"].removeprefix("error: ") for r in failed)) or ["no export found"]
        more = f" (and {len(reasons) - 1} more, above)" if len(reasons) > 1 else ""
        print(f"error: nothing could be measured: {reasons[0]}{more}; results in {args.out} left as they were",
              file=sys.stderr)
        return 1
    from benchmarks.report import plot_latency, plot_pareto, render_markdown

    doc["command"] = command.strip()
    try:  # checked up front; a disk can still fill up
        args.out.mkdir(parents=True, exist_ok=True)
        write_atomic(files["json"], json.dumps(doc, indent=1) + "\n")
        write_atomic(files["md"], render_markdown(doc, doc["command"]))
        written = [files["json"], files["md"]]
        if "latency" in files:  # a plot with nothing to show (no parity accuracy: no Pareto front) is not drawn
            written += [p for p in (plot_latency(doc, files["latency"]), plot_pareto(doc, files["pareto"])) if p]
        # A plot of the same name not drawn this time (or --runtime-only, which draws none) is the previous
        # run's: left beside the new JSON it would be read as this run's.
        stale = [png for png in plot_files(args.out, args.name).values() if png not in written and png.exists()]
        for path in stale:
            path.unlink()
    except OSError as e:
        print(f"error: cannot write the results to {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"wrote {', '.join(map(str, written))}" + (f"; removed the previous run's {', '.join(map(str, stale))}"
                                                       if stale else ""))
    peer_failed = [p["folder"] for p in doc["peers"] if "error" in p]
    if peer_failed:  # measured and written, but a comparison asked for is missing
        print(f"error: the peer comparison failed for {', '.join(peer_failed)}; details in {files['md']}",
              file=sys.stderr)
    if failed:  # the rest was measured and written; still, a broken export must not pass as a clean run
        print(f"error: {len(failed)} of {len(doc['results'])} measurements failed ({broken}); "
              f"details in {files['md']}", file=sys.stderr)
    return 1 if failed or peer_failed else 0


if __name__ == "__main__":
    sys.exit(main())
