"""``layerlab examples [--json]``: the example projects that ship with Layerlab, with the name
that every command accepts in place of a project file (``layerlab train mlp_spirals``)."""
from __future__ import annotations

import json


def add_parser(sub, command: str) -> None:
    p = sub.add_parser(command, help="list the bundled example projects (their names work as "
                       "PROJECT in every command)")
    p.add_argument("--json", action="store_true", help="one JSON object per example per line")


def run(args) -> int:
    from .examples import example_name, example_paths

    rows = []
    for path in example_paths():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rows.append({"name": example_name(path), "title": str(data.get("name", "")),
                     "task": str((data.get("training") or {}).get("task", "")),
                     "description": str(data.get("description", "")), "path": str(path)})
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    width = max((len(r["name"]) for r in rows), default=4)
    for row in rows:
        print(f"{row['name']:<{width}}  {row['title']}")
    print(f"\n{len(rows)} examples in {rows[0]['path'].rsplit('/', 1)[0] if rows else '-'}; "
          "copy one to edit it, or open it in the window (File → Examples).")
    return 0
