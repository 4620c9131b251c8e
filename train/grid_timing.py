"""Record a grid's wall time (``python -m train.grid ... --timing-out FILE.md``).

Entries are kept in FILE.json, one per execution mode (a later grid in the same mode replaces it), and
FILE.md is regenerated from them, so in-process and Ray timings of the same grid sit side by side.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from runtime.files import write_atomic
from train.data import DataError, check_out


def check(path: Path) -> list[dict]:
    """The entries already in FILE.json (none when it is absent), after checking that FILE.md and
    FILE.json can be written; DataError (one line) otherwise. Called before the grid runs, so a grid
    of hours never ends with a traceback about where its timing was to go."""
    check_out(path, "--timing-out", siblings=(".json",))
    json_path = path.with_suffix(".json")
    if not json_path.exists():
        return []
    try:
        entries = json.loads(json_path.read_text())["entries"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"--timing-out: cannot read the earlier entries in {json_path} ({type(e).__name__}); "
                        "move it away or give another file") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "mode" in e for e in entries):
        raise DataError(f"--timing-out: {json_path} holds no list of timing entries; move it away or give another file")
    return entries


def record(path: Path, cfg, result: dict, command: str) -> None:
    """Add this grid's entry to FILE.json and rewrite FILE.md; DataError (one line) if they cannot be written."""
    from benchmarks.machine import describe_machine, machine_line

    json_path = path.with_suffix(".json")
    entries = check(path)
    entry = {
        "mode": cfg.mode, "command": command, "wall_seconds": round(result["wall_seconds"], 1),
        "tasks": result["tasks"], "ran": result["ran"], "skipped": result["skipped"], "failed": result["failed"],
        "models": list(cfg.models), "datasets": [d for d, _ in cfg.data], "protocol": cfg.protocol,
        "seeds": list(cfg.seeds), "epochs": cfg.epochs, "cpus_per_task": cfg.cpus_per_task,
        "accuracy": {n: round(s["mean"]["accuracy"], 4) for n, s in result["summaries"].items()},
        "when": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": describe_machine(),
    }
    if result.get("load_average_start") is not None:  # the load when the grid started, not when it ended
        entry["machine"]["load_average_1m"] = round(result["load_average_start"], 2)
    entries = [e for e in entries if e["mode"] != entry["mode"]] + [entry]
    lines = ["# Grid wall time: in-process vs Ray", "",
             "Written by `python -m train.grid ... --timing-out` (one entry per execution mode); do not edit by hand. "
             "Wall time covers the whole grid: dataset listing, decoding, every fold's training and evaluation, "
             "summaries (not the final report). The machine is shared with other jobs, so times are indicative.", "",
             "| mode | tasks run | failed | wall s | s per task | accuracy (mean over folds) | command |",
             "|---|---|---|---|---|---|---|"]
    for e in entries:
        acc = ", ".join(f"{n} {a:.3f}" for n, a in e["accuracy"].items())
        per = e["wall_seconds"] / e["ran"] if e["ran"] else 0.0
        lines.append(f"| {e['mode']} | {e['ran']}/{e['tasks']} | {e['failed']} | {e['wall_seconds']:.0f} | {per:.1f} | {acc} | `{e['command']}` |")
    lines += [""] + [f"- {e['mode']} ({e['when']}): {machine_line(e['machine'])}" for e in entries]
    if len(entries) >= 2:
        base = next((e for e in entries if e["mode"] == "in-process"), None)
        if base:
            lines += [""] + [f"- {e['mode']}: {base['wall_seconds'] / e['wall_seconds']:.2f}× the in-process speed"
                             for e in entries if e is not base and e["wall_seconds"]]
    target = path.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
        for target, text in ((json_path, json.dumps({"entries": entries}, indent=2)), (path, "\n".join(lines))):
            write_atomic(target, text + "\n")
    except OSError as e:  # checked before the grid ran, but a disk can fill meanwhile
        raise DataError(f"--timing-out: cannot write {target} ({e.strerror or type(e).__name__})") from None
    print(f"wrote {path} and {json_path}")
