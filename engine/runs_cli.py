"""``python main.py runs PROJECT [--json]``: the project's recorded runs, oldest first.

A table (id, name, status, source, the settings that differ between runs, best and final
metric, time) or, with ``--json``, one JSON object per run per line (``run.json`` without the
project snapshot, plus ``dir``). See :mod:`engine.runs` for what a run records.
"""
from __future__ import annotations

import json

from .cli import load_or_exit


def add_parser(sub, command: str) -> None:
    p = sub.add_parser("runs", help="list the recorded training runs of a project")
    p.add_argument("project")
    p.add_argument("--json", action="store_true", help="one JSON object per run per line")


def run(args) -> int:
    from .runs import differing_settings, flat_settings, list_runs

    project, code = load_or_exit(args.project)
    if project is None:
        return code
    runs = list_runs(project)
    if args.json:
        for r in runs:
            print(json.dumps({k: v for k, v in r.items() if k != "project"}))
        return 0
    if not runs:
        print(f"no runs recorded for {args.project}")
        return 0
    differ = differing_settings(runs)
    monitor = runs[-1].get("monitor") or "val_loss"
    head = ["id", "name", "status", "source", *differ, f"best {monitor}", f"final {monitor}", "s"]
    rows = []
    for r in runs:
        flat = flat_settings(r.get("project", {}))
        rows.append([r["id"], r.get("name", ""), r.get("status", ""), r.get("source", ""),
                     *[_cell(flat.get(k)) for k in differ],
                     _cell((r.get("best") or {}).get(r.get("monitor") or monitor)),
                     _cell((r.get("final") or {}).get(r.get("monitor") or monitor)),
                     _cell(r.get("seconds"))])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for line in [head, *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip())
    return 0


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
