"""``python -m train.grid``: run an experiment grid, one task per (model, dataset, fold, seed).

Tasks run in this process one after another (default), or on Ray (``--ray``: a local instance;
``--ray-address``: an existing cluster). Each run of the grid lands in the same layout as
``python -m train`` (``OUT/<model>_<dataset>[_seed<N>]/fold_K/...`` + ``summary.json``), so
``python -m train.report OUT/*`` reads a grid like any run. Finished folds are skipped, so
re-running after a crash finishes only what is missing. See docs/grid.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from runtime.cli import ArgumentParser
from train.__main__ import (MAX_SEED, TRAINING_FIELDS, RunPlan, TrainConfig, add_training_arguments, claim, finished_folds, plan,
                            training_fields, write_summary)
from train.data import LOADERS, DataError, data_pair, unwritable
from train.grid_task import Task, clean_parts, run_task
from train.protocols import PROTOCOLS


DEFAULT_NAME = "{model}_{dataset}"  # a run's folder in the grid, before any _seed<N> (run_name)


class GridError(ValueError):
    """A grid that cannot start; the message is one line."""


@dataclass(frozen=True)
class GridConfig:
    """One ``python -m train.grid`` invocation (see ``--help`` for each field)."""

    models: tuple[str, ...]
    data: tuple[tuple[str, str], ...]  # (dataset name, folder) per dataset
    protocol: str
    out: str
    seeds: tuple[int, ...] = (0,)
    # TrainConfig fields shared by every run (epochs, lr, schedule, augmentation, ...); the rest keep
    # TrainConfig's defaults. The CLI fills this from the same options as python -m train.
    training: Mapping[str, Any] = field(default_factory=dict)
    max_folds: int | None = None
    ray: bool = False
    ray_address: str | None = None
    num_cpus: int | None = None
    cpus_per_task: int = 1
    gpus_per_task: float = 0.0
    max_retries: int = 3
    jobs: int = 1  # > 1: that many worker processes on this machine, without Ray
    # Each run's folder under ``out``: {model} and {dataset} filled in, ``_seed<N>`` added for seeds other than 0.
    name: str = DEFAULT_NAME
    # Decoded, resampled audio kept here across tasks, workers and later grids (python -m train's
    # --cache-dir); None: each worker process decodes its datasets once, in memory.
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.training) - set(TRAINING_FIELDS))
        if unknown:
            raise GridError(f"not a per-run training setting: {', '.join(unknown)}")
        if self.max_folds is not None and self.max_folds < 1:  # [:0] is every fold, [:-1] all but the last
            raise GridError(f"--max-folds must be at least 1, got {self.max_folds}")
        bad = [s for s in self.seeds if not 0 <= s <= MAX_SEED]
        if bad:  # else run.json is written and every task then fails on the seed
            raise GridError(f"--seeds must be between 0 and {MAX_SEED}, got {', '.join(map(str, bad))}")
        check_names(self)

    @property
    def epochs(self) -> int:
        return self.training.get("epochs", TrainConfig.epochs)

    @property
    def mode(self) -> str:
        if self.ray_address:
            return f"ray cluster {self.ray_address}"
        if self.ray:
            return f"ray local, {self.num_cpus or 'all'} CPUs"
        return f"local, {self.jobs} processes" if self.jobs > 1 else "in-process"


def run_name(model: str, dataset: str, seed: int, template: str = DEFAULT_NAME) -> str:
    """A run's folder name: ``template`` with {model} and {dataset} filled in, plus ``_seed<N>`` unless the seed is 0.

    Seed 0 has no suffix, so adding seeds to a grid later keeps its existing folders; and a template such as
    ``{dataset}_{model}_seg4_e100`` names grid runs as hand-started runs are named
    (``emodb_sincnet_seg4_e100``, ``emodb_sincnet_seg4_e100_seed1``), so the two series sit side by side.
    """
    return template.format(model=model, dataset=dataset) + (f"_seed{seed}" if seed else "")


def check_names(cfg: GridConfig) -> None:
    """GridError (one line) unless ``cfg.name`` gives every run of the grid its own plain folder name."""
    try:
        names = {(m, d, s): run_name(m, d, s, cfg.name) for d, _ in cfg.data for m in cfg.models for s in cfg.seeds}
    except (KeyError, IndexError, AttributeError, ValueError) as e:  # {seed}, {0}, {model.x}, a lone brace
        raise GridError(f"--name {cfg.name!r}: only {{model}} and {{dataset}} can be filled in ({type(e).__name__}: {e})")
    for n in names.values():
        # A separator would put runs outside OUT or in folders the report's OUT/* does not list; a leading dot
        # would hide the run like the grid's own temporary .fold_K.part-* folders.
        if not n or n.startswith(".") or "/" in n or os.sep in n:
            raise GridError(f"--name {cfg.name!r} gives {n!r}: a run folder name must be non-empty, without a path "
                            "separator, and not start with a dot")
    seen: dict[str, tuple] = {}
    for key, n in names.items():
        if n in seen:  # two runs would train into one folder and refuse each other's run.json
            raise GridError(f"--name {cfg.name!r} gives two runs the folder {n!r} ({seen[n][0]} on {seen[n][1]} and "
                            f"{key[0]} on {key[1]}): add {{model}} or {{dataset}}")
        seen[n] = key


def expand(cfg: GridConfig) -> tuple[dict[str, RunPlan], list[Task]]:
    """Every run's plan (validates models, rates, data, protocol) and every fold task, in order."""
    plans, tasks = {}, []
    out = Path(cfg.out).resolve()  # Ray workers do not share the driver's working directory
    cache = str(Path(cfg.cache_dir).resolve()) if cfg.cache_dir is not None else None
    for dataset, folder in cfg.data:
        for model in cfg.models:
            for seed in cfg.seeds:
                run = TrainConfig(model=model, dataset=dataset, data=str(Path(folder).resolve()), protocol=cfg.protocol,
                                  out=str(out / run_name(model, dataset, seed, cfg.name)), seed=seed, progress=False, cache_dir=cache,
                                  **cfg.training)
                p = plan(run)
                plans[Path(run.out).name] = p
                folds = p.folds[: cfg.max_folds] if cfg.max_folds else p.folds
                tasks += [Task(run, f.index) for f in folds]
    return plans, tasks


class Progress:
    """One line per finished task: done / running / failed counts and an estimate of the time left."""

    def __init__(self, total: int, skipped: int, slots: int) -> None:
        self.total, self.skipped, self.slots = total, skipped, slots
        self.done = self.failed = 0
        self.start = time.perf_counter()

    def _line(self, what: str) -> str:
        finished = self.done + self.failed
        left = self.total - self.skipped - finished
        elapsed = time.perf_counter() - self.start
        eta = f"~{_clock(elapsed / finished * left)} left" if finished and left else ("finished" if not left else "~? left")
        running = min(left, self.slots)
        return (f"[grid {self.skipped + self.done}/{self.total} done, {running} running, {self.failed} failed, "
                f"{_clock(elapsed)} elapsed, {eta}] {what}")

    def ok(self, task: Task, r: dict) -> None:
        self.done += 1
        print(self._line(f"{task.key}: accuracy {r['accuracy']:.3f}, macro F1 {r['f1']:.3f} ({r['seconds']:.0f} s)"),
              file=sys.stderr, flush=True)

    def fail(self, task: Task, message: str) -> None:
        self.failed += 1
        print(self._line(f"{task.key}: FAILED: {message}"), file=sys.stderr, flush=True)


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def _one_line(e: BaseException) -> str:
    cause = getattr(e, "cause", None) or e  # Ray wraps a task's exception; show the original
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[0] if text else ''}"


def _in_process(cfg: GridConfig, tasks: list[Task], progress: Progress, finished) -> None:
    for t in tasks:
        try:
            r = run_task(t, threads=cfg.cpus_per_task)
        except Exception as e:  # one task's error must not stop the grid; reported in one line
            progress.fail(t, _one_line(e))
            continue
        progress.ok(t, r)
        finished(t)


def _in_pool(cfg: GridConfig, tasks: list[Task], progress: Progress, finished) -> None:
    """--jobs N: N worker processes on this machine, each task in one of them. Workers are spawned,
    not forked (TensorFlow and JAX must start in a fresh process), and keep their framework loaded
    from task to task. Several workers can share one GPU (with JAX, set
    XLA_PYTHON_CLIENT_PREALLOCATE=false so each takes only what it needs). A worker that dies
    breaks the pool: its task and the ones still queued are reported failed, finished folds stay,
    and re-running the command does the rest."""
    import concurrent.futures as cf
    import multiprocessing as mp

    progress.slots = cfg.jobs
    pool = cf.ProcessPoolExecutor(max_workers=cfg.jobs, mp_context=mp.get_context("spawn"))
    try:
        pending = {pool.submit(run_task, t, cfg.cpus_per_task): t for t in tasks}
        for future in cf.as_completed(pending):
            t = pending[future]
            try:
                r = future.result()
            except Exception as e:  # the task's own error, or BrokenProcessPool: one line each, the grid goes on
                progress.fail(t, _one_line(e))
                continue
            progress.ok(t, r)
            finished(t)
    finally:  # Ctrl-C: drop the queued tasks at once (workers get the signal too); finished folds are kept
        pool.shutdown(wait=True, cancel_futures=True)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise GridError("Ray is not installed: pip install 'tinyaudio[grid]' (or run without --ray/--ray-address)") from None
    return ray


def _on_ray(cfg: GridConfig, tasks: list[Task], progress: Progress, finished) -> None:
    ray = _import_ray()
    started = not ray.is_initialized()  # a caller (e.g. a test) may have started Ray already
    if started:
        try:
            if cfg.ray_address:
                ray.init(address=cfg.ray_address, log_to_driver=False)
            else:
                ray.init(num_cpus=cfg.num_cpus, include_dashboard=False, log_to_driver=False)
        except Exception as e:  # ConnectionError, RuntimeError, ...: one line, no traceback
            raise GridError(f"cannot start or reach Ray: {_one_line(e)}") from None
    try:
        cpus = ray.cluster_resources().get("CPU", 1)
        progress.slots = max(1, int(cpus // cfg.cpus_per_task))
        # max_retries: Ray re-runs a task whose worker process died (killed, out of memory, node lost);
        # exceptions raised by the task itself are not retried (they would fail again).
        remote = ray.remote(run_task).options(num_cpus=cfg.cpus_per_task, num_gpus=cfg.gpus_per_task,
                                              max_retries=cfg.max_retries, retry_exceptions=False)
        pending = {remote.remote(t, cfg.cpus_per_task): t for t in tasks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                t = pending.pop(ref)
                try:
                    r = ray.get(ref)
                except ray.exceptions.RayError as e:
                    progress.fail(t, _one_line(e))
                    continue
                progress.ok(t, r)
                finished(t)
    finally:
        if started:
            ray.shutdown()


def run_grid(cfg: GridConfig) -> dict:
    """Run every unfinished task, write each run's summary.json and the grid's report. Returns counts."""
    start = time.perf_counter()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None  # other jobs at start: recorded with timings
    if cfg.ray or cfg.ray_address:
        _import_ray()  # fail at once, before TensorFlow loads or any folder is written
    plans, tasks = expand(cfg)
    by_run: dict[str, list[Task]] = {}
    for t in tasks:
        by_run.setdefault(Path(t.run.out).name, []).append(t)
    for name, p in plans.items():
        claim(p.cfg)  # run.json: refuses a folder holding a run with other settings
        clean_parts(Path(p.cfg.out))  # leftovers of attempts killed in an earlier, crashed grid
        # The folds on disk checked now, as python -m train's resume does: a fold trained on other clips
        # (new files in the data folder) was found only after the other tasks had trained beside it.
        finished_folds(p)
    todo = [t for t in tasks if not t.done()]
    progress = Progress(len(tasks), len(tasks) - len(todo), 1)
    print(f"grid: {len(plans)} run(s), {len(tasks)} task(s), {len(tasks) - len(todo)} done before; "
          f"running {len(todo)} ({cfg.mode}) → {cfg.out}", file=sys.stderr, flush=True)

    def finished(task: Task) -> None:  # a run's summary as soon as its last fold is in
        run_tasks = by_run[Path(task.run.out).name]
        if all(t.done() for t in run_tasks):
            p = plans[Path(task.run.out).name]
            write_summary(p, list(finished_folds(p).values()))

    if todo:
        runner = _on_ray if cfg.ray or cfg.ray_address else _in_pool if cfg.jobs > 1 else _in_process
        runner(cfg, todo, progress, finished)
    summaries = {}
    for name, p in plans.items():
        clean_parts(Path(p.cfg.out))
        results = list(finished_folds(p).values())  # every result.json on disk, checked as on resume
        if results:
            summaries[name] = write_summary(p, results)
    wall = time.perf_counter() - start
    return {"runs": len(plans), "tasks": len(tasks), "ran": progress.done, "skipped": progress.skipped,
            "failed": progress.failed, "wall_seconds": wall, "load_average_start": load, "summaries": summaries}


def report(cfg: GridConfig, summaries: dict) -> None:
    """Per-run accuracy lines, and OUT/report.md (+ .json, .png) by train.report."""
    from train.report import main as report_main

    for name, s in summaries.items():
        m, sd = s["mean"], s["std"]
        print(f"{name}: {s['folds_done']}/{s['folds_total']} folds, accuracy {m['accuracy']:.3f} ± {sd['accuracy']:.3f}, "
              f"macro F1 {m['f1']:.3f}")
    if summaries:
        report_main([str(Path(cfg.out) / n) for n in summaries] + ["--out", str(Path(cfg.out) / "report.md")])


def parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m train.grid",
        description=textwrap.fill(  # filled here: the raw formatter keeps the examples' lines as written
            "Run an experiment grid: one task per (model, dataset, fold, seed), in this process one "
            "after another (default), in N local worker processes (--jobs N) or on Ray. Results land as "
            "OUT/<model>_<dataset>[_seed<N>]/ (or as --name says) in the layout of python -m train (fold folders, summary.json), so "
            "python -m train.report reads them. Finished folds are skipped: re-run the same command after a crash "
            "to finish what is missing. Ends with an accuracy report (OUT/report.md). Ray is optional: "
            "pip install 'tinyaudio[grid]'.", 79, break_on_hyphens=False),
        epilog="examples:\n"
        "  python -m train.grid --models lv42 lv24 --datasets fsdd --data fsdd=../shared/data/fsdd --protocol loso --out runs/grid\n"
        "  python -m train.grid ... --jobs 2                    # two worker processes here, no Ray\n"
        "  KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false python -m train.grid ... --jobs 12  # share one GPU\n"
        "  python -m train.grid ... --ray --num-cpus 2          # local Ray, two single-CPU workers\n"
        "  python -m train.grid ... --ray-address HEAD_IP:6379  # a cluster started with `ray start --head` (docs/grid.md)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("grid")
    g.add_argument("--models", nargs="+", required=True, metavar="MODEL", help="zoo models, e.g. lv42 lv24 sincnet")
    g.add_argument("--datasets", nargs="+", required=True, metavar="NAME", choices=sorted(LOADERS),
                   help=f"dataset layouts: {' '.join(sorted(LOADERS))}")
    g.add_argument("--data", action="append", required=True, metavar="NAME=PATH",
                   help="folder of each dataset, e.g. --data fsdd=/data/fsdd --data emodb=/data/emodb (repeat per "
                   "dataset; a bare PATH is allowed with one dataset). On a cluster, every worker must see this path.")
    g.add_argument("--protocol", required=True, choices=PROTOCOLS, help="evaluation protocol for every dataset (see python -m train --help)")
    g.add_argument("--out", required=True, help="grid folder, e.g. runs/GRID; on a cluster, on storage every worker sees")
    g.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="SEED",
                   help="one run per seed (default: 0); runs other than seed 0 get a _seed<N> suffix")
    g.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="keep decoded, resampled audio here, shared by every task, worker and later grid or python -m "
                   "train run that names it (default: each worker decodes in memory, once per process). On a cluster, "
                   "on storage every worker sees")
    g.add_argument("--name", default=DEFAULT_NAME, metavar="TEMPLATE",
                   help="each run's folder under --out, with {model} and {dataset} filled in and _seed<N> added for "
                   "seeds other than 0 (default: %(default)s); e.g. '{dataset}_{model}_seg4_e100' names runs as "
                   "hand-started ones, emodb_sincnet_seg4_e100[_seed1]")
    t = p.add_argument_group("training (as python -m train)")
    add_training_arguments(t)
    t.add_argument("--max-folds", type=int, default=None, help="only the first N folds of each run (quick grids)")
    r = p.add_argument_group("execution")
    r.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="run N tasks at once in worker processes on this machine, without Ray; on a GPU machine "
                   "they share the GPU (default: 1, one after another in this process)")
    r.add_argument("--ray", action="store_true", help="run the tasks on a local Ray instance started here")
    r.add_argument("--ray-address", default=None, metavar="ADDR", help="run on an existing Ray cluster (e.g. HEAD_IP:6379, or auto)")
    r.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray instance (default: all)")
    r.add_argument("--cpus-per-task", type=int, default=1,
                   help="CPUs each task asks Ray for, and TensorFlow threads inside a task, in-process too, so both "
                   "modes compute identical results for the same seeds (default: 1)")
    r.add_argument("--gpus-per-task", type=float, default=0.0, help="GPUs each task asks Ray for; fractions share a GPU (default: 0)")
    r.add_argument("--max-retries", type=int, default=3, help="re-runs of a task whose Ray worker died (default: 3)")
    r.add_argument("--timing-out", default=None, metavar="FILE.md",
                   help="add this grid's wall time (with the machine description) to FILE.md and FILE.json")
    return p


def _data_pairs(datasets: list[str], data: list[str]) -> tuple[tuple[str, str], ...]:
    if len(data) == 1 and "=" not in data[0] and len(datasets) == 1:
        return ((datasets[0], data[0]),)
    pairs = {}
    for item in data:
        name, path = data_pair(item)
        if name not in datasets:
            raise GridError(f"--data {name}=...: {name} is not in --datasets ({' '.join(datasets)})")
        pairs[name] = path
    missing = [d for d in datasets if d not in pairs]
    if missing:
        raise GridError(f"no --data NAME=PATH for dataset(s): {', '.join(missing)}")
    return tuple((d, pairs[d]) for d in dict.fromkeys(datasets))


def check_grid_folder(out: Path) -> None:
    """GridError (one line) unless ``out`` is, or can be made, a folder that takes files: said before
    any dataset is listed, not as a traceback from the first run folder's mkdir. Creates nothing."""
    why = unwritable(Path(out) / "run.json", siblings=())  # as a run folder's first file would be written
    if why:
        raise GridError(f"--out {out}: {why}; give a grid folder, e.g. runs/GRID")


def config_from_args(args: argparse.Namespace) -> GridConfig:
    if args.cpus_per_task < 1:
        raise GridError("--cpus-per-task must be at least 1")
    if args.gpus_per_task < 0 or args.max_retries < 0:
        raise GridError("--gpus-per-task and --max-retries must not be negative")
    if args.num_cpus is not None and not args.ray:
        raise GridError("--num-cpus sizes a local Ray instance: add --ray")
    if args.jobs < 1:
        raise GridError("--jobs must be at least 1")
    if args.jobs > 1 and (args.ray or args.ray_address):
        raise GridError("--jobs runs worker processes without Ray; with --ray, Ray sizes the workers (--num-cpus)")
    models = tuple(dict.fromkeys(m.lower() for m in args.models))
    return GridConfig(models=models, data=_data_pairs(args.datasets, args.data), protocol=args.protocol, out=args.out,
                      seeds=tuple(dict.fromkeys(args.seeds)), training=training_fields(args, list(models)),
                      max_folds=args.max_folds, ray=args.ray or bool(args.ray_address), ray_address=args.ray_address,
                      num_cpus=args.num_cpus, cpus_per_task=args.cpus_per_task, gpus_per_task=args.gpus_per_task,
                      max_retries=args.max_retries, jobs=args.jobs, name=args.name,
                      cache_dir=args.cache_dir)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
        check_grid_folder(Path(cfg.out))
        if args.timing_out:  # checked now: the grid may take hours before its timing is written
            from train.grid_timing import check

            check(Path(args.timing_out))
        result = run_grid(cfg)
    except (GridError, DataError, ValueError) as e:  # ValueError: the zoo's one-line configuration errors
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: re-run the same command to finish the grid (finished folds are kept)", file=sys.stderr)
        return 130
    report(cfg, result["summaries"])
    print(f"grid: {result['ran']} task(s) run, {result['skipped']} done before, {result['failed']} failed, "
          f"{result['wall_seconds']:.0f} s wall ({cfg.mode})")
    if args.timing_out:
        from train.grid_timing import record

        try:
            record(Path(args.timing_out), cfg, result, "python -m train.grid " + shlex.join(argv))
        except DataError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
