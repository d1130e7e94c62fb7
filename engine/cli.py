"""The command line: ``python main.py COMMAND PROJECT ...`` (see the design's contract).

Exit codes: 0 success, 1 the project has problems (one ``node_id: message`` line each on
stderr), 2 the file cannot be read or the command is misused. User mistakes never print a
traceback.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys

from .errors import LayerlabError

# command -> module with add_parser(subparsers) and run(args) -> int; imported only when used
COMMANDS = {
    "check": "engine.cli",
    "summary": "engine.cli",
    "train": "engine.training_cli",
    "export": "engine.export_cli",
    "import": "engine.import_cli",
    "runs": "engine.runs_cli",
    "sweep": "engine.sweep_cli",
    "explain": "engine.explain_cli",
    "examples": "engine.examples_cli",
}

# shown under every command's --help; `layerlab` is the installed command, `python main.py` the
# same from a checkout
EXAMPLES = {
    "check": ["layerlab check mlp_spirals", "layerlab check my_net.layerlab.json"],
    "summary": ["layerlab summary cnn_digits", "layerlab summary my_net.layerlab.json --json"],
    "train": ["layerlab train mlp_spirals --epochs 5 --out runs/spirals",
              "layerlab train cnn_digits --device cuda --seed 1 --tensorboard",
              "layerlab train my_net.layerlab.json --resume runs/my_net/checkpoint.pt",
              "torchrun --standalone --nproc_per_node 2 -m layerlab train cnn_digits "
              "--distributed"],
    "export": ["layerlab export mlp_spirals --weights runs/spirals/weights.pt --format onnx "
               "--out spirals.onnx",
               "layerlab export cnn_digits --weights W.pt --format python --out cnn_pytorch/",
               "layerlab export gan_ring --weights W.pt --model generator --format "
               "torchscript --out generator.pt"],
    "import": ["layerlab import torchvision.models:resnet18 --input-shape 3,224,224 "
               "--out resnet18.layerlab.json",
               "layerlab import my_model.py:Net --weights net.pt --out net.layerlab.json"],
    "runs": ["layerlab runs my_net.layerlab.json", "layerlab runs my_net.layerlab.json --json"],
    "sweep": ["layerlab sweep mlp_spirals --param training.optimizer.lr=float:1e-4:1e-1:log "
              "--trials 20",
              "layerlab sweep mlp_spirals --param fc1.out_features=int:8:64 "
              "--param a1.type=choice:ReLU,Tanh --jobs 2 --epochs 5"],
    "explain": ["layerlab explain cnn_digits --weights W.pt --sample 0 --method ig "
                "--out ig.png",
                "layerlab explain cnn_digits --weights W.pt --sample 3 --method gradcam "
                "--node conv2 --out cam.json"],
    "examples": ["layerlab examples", "layerlab examples --json"],
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="layerlab", description="Layerlab command line: "
                                     "layerlab COMMAND --help shows each command's options "
                                     "and examples.")
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for command, module_name in COMMANDS.items():
        if argv and argv[0] != command:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        modules[command] = module
        module.add_parser(sub, command)
    for command, subparser in sub.choices.items():
        subparser.formatter_class = argparse.RawDescriptionHelpFormatter
        lines = EXAMPLES.get(command)
        if lines:
            takes_project = any(a.dest == "project" for a in subparser._actions)
            subparser.epilog = "examples:\n" + "\n".join("  " + line for line in lines) + (
                "\n\nPROJECT is a .layerlab.json file or the name of a bundled example "
                "(layerlab examples)." if takes_project else "")
    args = parser.parse_args(argv)
    if isinstance(getattr(args, "project", None), str):
        args.project = resolve_project(args.project)
    try:
        return modules[args.command].run(args)
    except LayerlabError as exc:
        for line in str(exc).splitlines() or ["error"]:
            print(line, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head`
        sys.stderr.close()
        return 0


def resolve_project(text: str) -> str:
    """A PROJECT argument: the file if there is one, else the bundled example of that name,
    else the text unchanged (loading it then says what is wrong: missing, a folder...)."""
    from pathlib import Path

    from .examples import find_example

    if Path(text).is_file():
        return text
    example = find_example(text)
    return str(example) if example is not None else text


def add_parser(sub, command: str) -> None:
    if command == "check":
        p = sub.add_parser("check", help="check a project; exit 1 with one line per problem")
        p.add_argument("project")
    else:
        p = sub.add_parser("summary", help="per-layer shapes and parameter counts")
        p.add_argument("project")
        p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    return _check(args) if args.command == "check" else _summary(args)


def load_or_exit(path: str):
    """Load a project; on failure print its problems and return (None, exit code)."""
    from .project import ProjectError, load_project

    try:
        return load_project(path), 0
    except ProjectError as exc:
        if exc.unreadable:
            where, msg = exc.problems[0]
            print(f"{path}: {where + ': ' if where else ''}{msg}", file=sys.stderr)
            return None, 2
        for where, msg in exc.problems:
            print(f"{where}: {msg}" if where else f"{path}: {msg}", file=sys.stderr)
        return None, 1


def _check(args) -> int:
    from .analysis import analyze

    project, code = load_or_exit(args.project)
    if project is None:
        return code
    _, problems = analyze(project)
    from .training.config import training_problems

    problems += training_problems(project.training)  # what train would refuse
    for where, msg in problems:
        print(f"{where}: {msg}", file=sys.stderr)
    if not problems:
        total = sum(len(g) for g in project.models.values())
        print(f"{args.project}: OK ({len(project.models)} model(s), {total} nodes)")
    return 1 if problems else 0


def _summary(args) -> int:
    from .analysis import analyze

    project, code = load_or_exit(args.project)
    if project is None:
        return code
    results, problems = analyze(project)
    report = {"models": {name: _model_summary(project.models[name], shapes)
                         for name, shapes in results.items()}}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    for where, msg in problems:
        print(f"{where}: {msg}", file=sys.stderr)
    return 1 if problems else 0


def _model_summary(graph, shapes) -> dict:
    from .layers.spec import full_shape, graph_full_shape

    def whole(shape):
        return graph_full_shape(shape) or list(full_shape(shape))

    layers = []
    for node in graph.nodes():
        info = shapes.info[node.id]
        shape = info.out_shape
        layer = {"id": node.id, "type": node.type,
                 "output_shape": whole(shape) if shape is not None else None,
                 "params": info.stats.params, "trainable_params": info.stats.trainable,
                 "macs": info.stats.macs}
        if node.type == "Block":
            layer["block"] = node.params.get("block")
        if len(info.out_shapes) > 1:
            layer["output_shapes"] = {p: whole(s) for p, s in info.out_shapes.items()}
        if info.error:
            layer["error"] = info.error
        layers.append(layer)
    total, trainable = shapes.totals()
    return {"layers": layers, "total_params": total, "trainable_params": trainable,
            "macs": sum(i.stats.macs for i in shapes.info.values())}


def _print_table(report: dict) -> None:
    from .layers import fmt_shape

    for name, model in report["models"].items():
        rows = [("id", "type", "output shape", "params", "MACs")]
        for layer in model["layers"]:
            shape = layer["output_shape"]
            kind = f"Block {layer['block']}" if layer.get("block") else layer["type"]
            rows.append((layer["id"], kind,
                         fmt_shape(tuple(shape)) if shape is not None else "?",
                         f"{layer['params']:,}", f"{layer['macs']:,}"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        print(f"model '{name}'")
        for r in rows:
            print("  " + "  ".join(c.ljust(w) if i < 3 else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths))))
        print(f"  total {model['total_params']:,} parameters, "
              f"{model['trainable_params']:,} trainable, {model['macs']:,} multiply-adds\n")
