"""Record a grid's wall time (``python -m train.grid ... --timing-out FILE.md``).

Entries are kept in FILE.json, one per execution mode (a later grid in the same mode replaces it), and
FILE.md is regenerated from them, so in-process and Ray timings of the same grid sit side by side.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from runtime.files import write_atomic


def record(path: Path, cfg, result: dict, command: str) -> None:
    from benchmarks.machine import describe_machine, machine_line

    json_path = path.with_suffix(".json")
    entries = json.loads(json_path.read_text())["entries"] if json_path.is_file() else []
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
    path.parent.mkdir(parents=True, exist_ok=True)
    for p, text in ((json_path, json.dumps({"entries": entries}, indent=2)), (path, "\n".join(lines))):
        write_atomic(p, text + "\n")
    print(f"wrote {path} and {json_path}")
