"""``layerlab examples [--json]``: the example projects that ship with Layerlab, with the name
that every command accepts in place of a project file (``layerlab train mlp_spirals``)."""
from __future__ import annotations

import json


def add_parser(sub, command: str) -> None:
    p = sub.add_parser(command, help="list the bundled example projects (their names work as "
                       "PROJECT in every command)")
    p.add_argument("--json", action="store_true", help="one JSON object per example per line")


def run(args) -> int:
    from .examples import EXAMPLES_DIR, list_examples

    rows = [{"name": e.slug, "title": e.name, "task": e.task, "description": e.description,
             "path": str(e.path)} for e in list_examples()]
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    for row in rows:
        print(f"{row['name']:<{width}}  {row['title']}")
    print(f"\n{len(rows)} examples in {EXAMPLES_DIR}; copy one to edit it, or open it in the "
          "window (File → Examples).")
    return 0
