"""``python main.py import SOURCE --out PROJECT [--input-shape [NAME=]D,D,...] [--weights FILE]``.

Traces a PyTorch ``nn.Module`` (``path/to/file.py:ClassName`` or ``package.module:ClassName``)
into a project file, and writes its weights beside it as ``{"model": state_dict}`` (the form
``export --weights`` reads). Exit codes: 0 written; 1 the model cannot be imported (one line
saying why); 2 the command is misused.
"""
from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub, command: str) -> None:
    p = sub.add_parser(command, help="import a PyTorch nn.Module as a project (torch.fx)",
                       description="Trace a PyTorch model with torch.fx and write it as a "
                       "Layerlab project; modules without a catalog layer become Opaque nodes.")
    p.add_argument("source", help="path/to/file.py:ClassName, package.module:ClassName or a "
                   "factory with literal arguments, e.g. 'file.py:Net(width=32)' or "
                   "'torchvision.models:resnet18(num_classes=10)'")
    p.add_argument("--out", required=True, help="the project file to write (.layerlab.json)")
    p.add_argument("--input-shape", action="append", default=[], metavar="[NAME=]D,D,...",
                   help="shape of one input sample without the batch, e.g. 1,28,28 (repeat "
                   "with NAME= for several inputs); with it the import is checked")
    p.add_argument("--weights", help="a state_dict of the model (.pt or .safetensors)")
    p.add_argument("--weights-out", help="where the mapped weights go (default: beside the "
                   "project, NAME.weights.pt)")
    p.add_argument("--flat", action="store_true", help="keep every layer on the top level "
                   "(by default, submodules holding several layers become nested blocks)")


def run(args) -> int:
    from .importer import import_module
    from .project import atomic_write, save_project

    try:
        shapes = _parse_shapes(args.input_shape)
    except ValueError as exc:
        print(f"--input-shape: {exc}", file=sys.stderr)
        return 2
    project, state = import_module(args.source, shapes, args.weights, blocks=not args.flat)
    out = Path(args.out)
    weights_out = Path(args.weights_out) if args.weights_out else _weights_path(out)
    atomic_write(weights_out, _torch_bytes({"model": state}))
    save_project(project, out)
    for note in project.extra["imported_from"]["notes"]:
        print(f"note: {note}", file=sys.stderr)
    _warn_reopen(project)
    graph = project.models["model"]
    opaque = len(graph.nodes_of_type("Opaque")) + sum(
        len(b.graph.nodes_of_type("Opaque")) for b in project.blocks.values())
    blocks = f", {len(project.blocks)} block definitions" if project.blocks else ""
    print(f"imported {project.name}: {len(graph)} nodes{blocks} ({opaque} Opaque) -> {out}; "
          f"weights -> {weights_out}")
    return 0


def _parse_shapes(specs: list[str]):
    if not specs:
        return None
    shapes = {}
    for spec in specs:
        name, _, dims = spec.rpartition("=")
        try:
            shape = [int(d) for d in dims.split(",") if d.strip()]
        except ValueError:
            raise ValueError(f"'{spec}' is not a shape such as 1,28,28") from None
        if not shape:
            raise ValueError(f"'{spec}' is not a shape such as 1,28,28")
        shapes[name or len(shapes)] = shape
    if all(isinstance(k, int) for k in shapes):
        return list(shapes.values()) if len(shapes) > 1 else shapes[0]
    if any(isinstance(k, int) for k in shapes):
        raise ValueError("name every input (NAME=D,D) when giving several")
    return shapes


def _weights_path(project_path: Path) -> Path:
    name = project_path.name
    stem = name[:-len(".layerlab.json")] if name.endswith(".layerlab.json") else \
        project_path.stem
    return project_path.with_name(f"{stem}.weights.pt")


def _torch_bytes(obj) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _warn_reopen(project) -> None:
    from .importer import reopen_warnings

    for line in reopen_warnings(project):
        print(f"warning: {line}", file=sys.stderr)
