"""The ``python`` format: a folder of plain PyTorch that needs nothing of Layerlab.

``model.py``  a ``Model(nn.Module)`` whose ``__init__`` builds the same submodules (named by node
              id) and whose ``forward`` is the compiled graph's code; Layerlab's own layer
              classes it uses are copied in verbatim. It imports only torch (torch_geometric
              for graph layers; torchvision where an imported model calls one of the library
              functions ``engine.layers.fx_data.LIBRARY_FUNCTIONS`` names).
``weights.pt`` the weights,
``Model().load_state_dict(torch.load("weights.pt", weights_only=True))``.
``data.pt``   the project's training and validation tensors (so ``train.py`` needs no Layerlab).
``train.py``  trains ``Model`` with the project's task, loss, optimizer and batch size, alone or
              under ``torchrun`` (DistributedDataParallel).
``README.md`` how to use the folder.

A reinforcement-learning project (an ``environment`` instead of a dataset) gets ``play.py``
instead of ``data.pt`` and ``train.py``: it runs the policy in the environment and prints the
returns (:mod:`engine.export.play_template`).

The generated ``model.py`` is executed and compared with the engine's model before anything is
written.
"""
from __future__ import annotations

import ast
import functools
import inspect
import json
import re
import textwrap
import types

from ..errors import DataError, ExportError
from .files import MARKER, staged_folder
from .formats import ExportJob, TOLERANCE, max_difference, plain_state_dict
from .train_template import render_readme, render_train

_ALLOWED_GLOBALS = {"torch", "nn", "inf", "nan"}


def write_python(job: ExportJob, folder) -> dict:
    """Write the folder (staged, replaced atomically); returns the measured difference."""
    import torch

    from .train_template import choose_task, training_config

    config = training_config(job)
    if job.project.environment:
        return _write_policy(job, config, folder)
    if _is_graph_project(job, config):
        return _write_graph_model(job, config, folder)
    dataset = _dataset(job)
    task = choose_task(job, config, dataset)
    classes = {job.name: "Model"}
    partner = _gan_partner(job, task)
    if partner:
        classes[partner] = _class_name(partner)
    source = render_model(job, classes)
    diff = _check_model_source(source, job)
    train = render_train(job, task, classes, config, dataset)
    readme = render_readme(job, task, classes, config)
    with staged_folder(folder) as tmp:
        (tmp / "model.py").write_text(source, encoding="utf-8")
        torch.save(plain_state_dict(job.model), tmp / "weights.pt")
        if partner:
            torch.save(plain_state_dict(job.others[partner][0]), tmp / f"{partner}_weights.pt")
        if dataset is not None:
            torch.save(_training_data(dataset, task), tmp / "data.pt")
        (tmp / "train.py").write_text(train, encoding="utf-8")
        (tmp / "README.md").write_text(readme, encoding="utf-8")
    return {"max_abs_diff": diff, "task": task}


def _write_policy(job: ExportJob, config, folder) -> dict:
    """A reinforcement-learning project: model.py, weights.pt, play.py and README.md."""
    from .play_template import render_play, render_play_readme

    task = config.task or "dqn"
    try:
        play, readme = render_play(job, task), render_play_readme(job, task)
    except DataError as exc:
        raise ExportError(f"python: play.py needs the project's environment: {exc}") from None
    return _write_model_folder(job, folder, task, {"play.py": play, "README.md": readme})


def _write_model_folder(job: ExportJob, folder, task: str, texts: dict) -> dict:
    """model.py (checked against the model), weights.pt and the given text files."""
    import torch

    source = render_model(job, {job.name: "Model"})
    diff = _check_model_source(source, job)
    with staged_folder(folder) as tmp:
        (tmp / "model.py").write_text(source, encoding="utf-8")
        torch.save(plain_state_dict(job.model), tmp / "weights.pt")
        for name, text in texts.items():
            (tmp / name).write_text(text, encoding="utf-8")
    return {"max_abs_diff": diff, "task": task}


GRAPH_TASKS = ("node_classification", "graph_classification")


def _is_graph_project(job: ExportJob, config) -> bool:
    from .formats import is_graph_model

    return config.task in GRAPH_TASKS or (job.shapes is not None
                                          and is_graph_model(job.model, job.shapes))


def _write_graph_model(job: ExportJob, config, folder) -> dict:
    """A graph network: model.py, weights.pt and a README that shows how to run it on a
    graph; no train.py (its batching of graphs is torch_geometric's, not plain PyTorch)."""
    task = config.task or "node_classification"
    names = ", ".join(job.model.input_names)
    readme = "\n".join([
        f"# {safe_text(job.project.name)}: model {safe_text(job.name)!r}", "",
        f"Exported by Layerlab: a graph network for {task.replace('_', ' ')}. `model.py` needs "
        "torch and torch_geometric; `weights.pt` holds the trained weights.", "",
        "```python", "import torch", "from model import Model", "",
        "model = Model()", 'model.load_state_dict(torch.load("weights.pt", weights_only=True))',
        "model.eval()",
        f"out = model({names})  # x: (N, F) float, edge_index: (2, E) int64"
        + (", batch: (N,) int64 graph ids" if "batch" in names else ""),
        "```", "",
        "There is no train.py for graph tasks: train the project with `layerlab train`.", ""])
    return _write_model_folder(job, folder, task, {"README.md": readme})


# -- model.py -----------------------------------------------------------------------------------
def render_model(job: ExportJob, classes: dict[str, str]) -> str:
    """The text of model.py: torch imports, the helper classes used, one class per model."""
    models = [(name, job.model if name == job.name else job.others[name][0],
               job.shapes if name == job.name else job.others[name][1]) for name in classes]
    bodies, helpers, needs_math = [], {}, set()
    for name, model, shapes in models:
        init, used = _init_lines(model, job.project.models[name], shapes, helpers)
        forward, names = _forward_code(model)
        helpers.update(used)
        needs_math |= names & {"inf", "nan"}
        bodies.append(_class_text(classes[name], job.project.name, name, init, forward))
    pyg = any(line.split(" = ", 1)[-1].startswith("pyg.") for body in bodies
              for line in body.splitlines())
    texts = list(helpers.values()) + bodies
    libraries = sorted(_library_roots() &
                       set().union(*(_global_names(ast.parse(t)) for t in texts)))
    extra = (["torch_geometric"] if pyg or any("torch_geometric" in text
                                              for text in helpers.values()) else []) + libraries
    needs = f"torch and {' and '.join(extra)}" if extra else "only torch"
    head = [f'"""{safe_text(job.project.name)}: model {safe_text(job.name)!r}, {MARKER}.',
            "", f'Plain PyTorch: needs {needs}.\n"""', "import torch", "import torch.nn as nn"]
    if any("Optional[" in text for text in helpers.values()):
        head[3:3] = ["from typing import Optional", ""]
    if pyg:
        head.append("import torch_geometric.nn as pyg")
    head += [f"import {library}" for library in libraries]
    for text in helpers.values():  # a block's or captured op's forward may use them too
        needs_math |= _global_names(ast.parse(text)) & {"inf", "nan"}
    if needs_math:
        head.insert(3, f"from math import {', '.join(sorted(needs_math))}")
    parts = ["\n".join(head)] + [text.rstrip() for text in helpers.values()]
    return "\n\n\n".join(parts + bodies) + "\n"


def _init_lines(model, graph, shapes, taken: dict) -> tuple[list[str], dict]:
    """``self.fc1 = nn.Linear(...)`` per submodule, and the helper classes they need."""
    from ..layers import modules
    from ..layers.opaque import OpaqueCall, live_module

    from ..layers.block import BlockCall

    nodes = {a: n for n, a in model.node_attrs.items()}
    lines, used = [], {}
    for attr, child in model.named_children():
        node = graph.node(nodes[attr])
        info = shapes.info[node.id]
        call = node.spec.module(info.params, info.in_shapes)
        if isinstance(call, BlockCall):
            name = _block_class(call, child, {**taken, **used}, used)
            lines.append(f"self.{attr} = {name}()")
            continue
        live = live_module(info.params) if isinstance(call, OpaqueCall) else None
        if _is_graph_module(live):
            name = _helper_name(node.id, {**taken, **used})
            used[name] = _captured_class(name, node.id, live)
            lines.append(f"self.{attr} = {name}()")
            continue
        lines.append(f"self.{attr} = {_code(call, node.id)}")
        if not isinstance(call, OpaqueCall) and not call.cls.startswith(("nn.", "pyg.")):
            used[call.cls] = inspect.getsource(getattr(modules, call.cls))
    return lines, used


def _block_class(call, module, taken: dict, used: dict) -> str:
    """The class written for a Block node: one per block and set of its parameters (``Residual``,
    ``Residual2`` for another channel count), after the classes it uses itself."""
    found = call.found
    args = ", ".join(f"{k}={v!r}" for k, v in found.args.items())
    inputs = " and ".join("×".join(map(str, found.shapes.info[i].out_shape or ())) or "scalar"
                          for i in found.block.inputs)
    marker = f"# block {found.block.name!r}" + (f" ({args})" if args else "") + \
        f", input {inputs}\n"
    for name, text in taken.items():  # the same block and values: one class, in any model
        if text.startswith(marker):
            return name
    base, i = _class_name(found.block.name), 1
    name = base
    while name in taken or name in used:
        i += 1
        name = f"{base}{i}"
    init, inner_used = _init_lines(module, found.graph, found.shapes, {**taken, **used})
    used.update(inner_used)
    forward, _ = _forward_code(module)
    doc = f"Block {found.block.name!r} of the Layerlab project" + \
        (f": {found.block.description}" if found.block.description else ".")
    used[name] = marker + _class_text(name, "", "", init, forward, doc=doc)
    return name


def _code(call, node_id: str) -> str:
    try:
        return call.code()
    except ValueError as exc:
        raise ExportError(f"{node_id}: the python format cannot write this node as plain "
                          f"PyTorch: {exc}; export as onnx or torchscript instead") from None


def _is_graph_module(module) -> bool:
    import torch.fx as fx

    return isinstance(module, fx.GraphModule)


def _helper_name(node_id: str, taken: dict) -> str:
    base = "Op" + _class_name(node_id).removeprefix("Model")
    name, i = base, 1
    while name in taken or name == "Model":
        i += 1
        name = f"{base}{i}"
    return name


def _captured_class(name: str, node_id: str, gm) -> str:
    """A class for an operation captured from an imported model (a small GraphModule)."""
    init = []
    for attr, p in gm.named_parameters(recurse=False):
        frozen = ", requires_grad=False" if not p.requires_grad else ""
        init.append(f"self.{attr} = nn.Parameter({_empty(p)}{frozen})")
    init += [f"self.register_buffer({attr!r}, {_empty(b)})"
             for attr, b in gm.named_buffers(recurse=False)]
    for attr, sub in gm.named_children():
        init.append(f"self.{attr} = {_plain_module(sub, node_id)}")
    forward, _ = _forward_code(gm)
    lines = [f"class {name}(nn.Module):",
             f'    """Node {safe_text(node_id)!r}: an operation of the imported model."""', ""]
    if init:
        lines += ["    def __init__(self):", "        super().__init__()"]
        lines += [wrap(line, 8) for line in init] + [""]
    lines += [f"    {line}" if line else "" for line in forward.splitlines()]
    return "\n".join(lines)


def _empty(tensor) -> str:
    dtype = "" if str(tensor.dtype) == "torch.float32" else f", dtype={tensor.dtype}"
    return f"torch.empty({tuple(tensor.shape)}{dtype})"


def _plain_module(module, node_id: str) -> str:
    import torch.nn as nn

    from ..importer.opaque import recover_init

    name = type(module).__name__
    init = recover_init(module) if getattr(nn, name, None) is type(module) else None
    if init is None:
        raise ExportError(f"{node_id}: the python format cannot write this node as plain "
                          f"PyTorch: it uses a {name}, which is not a torch.nn class with known "
                          "arguments; export as onnx or torchscript instead")
    kwargs = ", ".join(f"{k}={v!r}" for k, v in json.loads(init).items())
    return f"nn.{name}({kwargs})"


def _forward_code(model) -> tuple[str, set[str]]:
    """The GraphModule's forward, tidied: no ``x = None`` frees, ``[:, -1]`` slices."""
    tree = ast.parse(model.code)
    tree = ast.fix_missing_locations(_Tidy().visit(tree))
    code = ast.unparse(tree)
    names = _global_names(tree)
    unknown = names - _ALLOWED_GLOBALS - _library_roots()
    if unknown:
        raise ExportError(f"python: the model's code uses {', '.join(sorted(unknown))}, which "
                          "plain PyTorch code cannot name; export as onnx or torchscript instead")
    return code, names


def _library_roots() -> set[str]:
    """The packages plain code imports for the library functions (``torchvision``)."""
    return {name.split(".", 1)[0] for name in _library_names().values()}


@functools.cache
def _library_names() -> dict[str, str]:
    """fx's global name for each library function a capture may call (``torchvision_ops_
    stochastic_depth_stochastic_depth``) -> the name plain code calls it by."""
    from ..layers.fx_data import LIBRARY_FUNCTIONS

    return {re.sub(r"[^0-9a-zA-Z_]", "_", path): name for path, name in LIBRARY_FUNCTIONS.items()}


class _Tidy(ast.NodeTransformer):
    def visit_Expr(self, node):
        call = node.value
        func = call.func if isinstance(call, ast.Call) else None
        name = func.id if isinstance(func, ast.Name) else \
            func.attr if isinstance(func, ast.Attribute) else None
        if name == "wrap":  # fx's torch.fx.wrap("...") for a traced library function
            return None
        return self.generic_visit(node)

    def visit_Name(self, node):
        name = _library_names().get(node.id)
        if name and isinstance(node.ctx, ast.Load):
            return ast.copy_location(ast.parse(name, mode="eval").body, node)
        return node

    def visit_Assign(self, node):
        if isinstance(node.value, ast.Constant) and node.value.value is None and all(
                isinstance(t, ast.Name) for t in node.targets):
            return None  # fx frees intermediate tensors early; plain code need not
        return self.generic_visit(node)

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "slice" and not node.keywords:
            bounds = [None if isinstance(a, ast.Constant) and a.value is None else a
                      for a in node.args]
            if len(bounds) == 1:
                bounds = [None, bounds[0]]
            return ast.Slice(*(bounds + [None] * (3 - len(bounds))))
        return node


def _global_names(tree) -> set[str]:
    import builtins

    assigned = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Store)}
    args = {a.arg for n in ast.walk(tree) if isinstance(n, ast.arguments) for a in n.args}
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
              and isinstance(n.ctx, ast.Load)}
    return {n for n in loaded - assigned - args if not hasattr(builtins, n)}


def _class_text(cls: str, project: str, model: str, init: list[str], forward: str,
                doc: str | None = None) -> str:
    doc = safe_text(doc) if doc is not None else \
        f"Model {safe_text(model)!r} of the Layerlab project {safe_text(project)!r}."
    lines = [f"class {cls}(nn.Module):",
             '    """' + "\n    ".join(textwrap.wrap(doc, 88)) + '"""',
             "",
             "    def __init__(self):", "        super().__init__()"]
    lines += [wrap(line, 8) for line in init]
    lines.append("")
    lines += [f"    {line}" if line else "" for line in forward.splitlines()]
    return "\n".join(lines)


def wrap(line: str, indent: int, width: int = 99) -> str:
    """Indent ``line``; a long call is broken after commas, aligned under its bracket."""
    pad = " " * indent
    start = line.find("(")
    if len(pad + line) <= width or start < 0 or not line.endswith(")"):
        return pad + line
    parts, depth, quote, last = [], 0, None, start + 1
    for i, ch in enumerate(line[start + 1:-1], start + 1):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(line[last:i + 1].strip())
            last = i + 1
    parts.append(line[last:-1].strip() + ")")
    out, current = [], pad + line[:start + 1]
    hang = " " * len(current)
    for part in parts:
        if len(current) + len(part) + 1 > width and current.strip() != line[:start + 1]:
            out.append(current.rstrip())
            current = hang
        current += part + " "
    return "\n".join(out + [current.rstrip()])


def safe_text(text: str) -> str:
    """Text that can sit inside a triple-quoted docstring."""
    return " ".join(str(text).replace("\\", "/").replace('"', "'").split())


def _class_name(model: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", model) or ["Partner"]
    name = "".join(w[:1].upper() + w[1:] for w in words)
    return name if name[0].isalpha() and name != "Model" else f"Model{name}"


def _check_model_source(source: str, job: ExportJob) -> float:
    """Run the generated model.py in a fresh namespace and compare it with the engine's model."""
    namespace = types.ModuleType("layerlab_python_export_check")
    try:
        exec(compile(source, "model.py", "exec"), namespace.__dict__)
        model = namespace.Model()
        model.load_state_dict(job.model.state_dict())
    except Exception as exc:  # a bug in the generator, reported rather than written
        raise ExportError(f"python: the generated model.py does not work: "
                          f"{type(exc).__name__}: {exc}") from None
    diff = max_difference(model.eval(), job.model, job.make_inputs)
    if not diff <= TOLERANCE["python"]:
        raise ExportError(f"python: the generated model.py gives other outputs than the model "
                          f"(largest difference {diff:.3g})")
    return diff


# -- the training side --------------------------------------------------------------------------
def _gan_partner(job: ExportJob, task: str) -> str | None:
    if task != "gan":
        return None
    others = [n for n in job.project.models if n != job.name]
    if not others:
        raise ExportError("python: a GAN project needs a generator and a discriminator")
    if others[0] not in job.others:
        raise ExportError(f"python: the GAN's model '{others[0]}' does not compile; fix it to "
                          "export train.py")
    return others[0]


def _dataset(job: ExportJob):
    """The project's dataset, as training loads it (None when the project has none)."""
    from ..data import load_dataset

    project = job.project
    if not project.dataset:
        return None
    seed = project.training.get("seed", 0)
    try:
        return load_dataset(project.dataset, seed=seed if isinstance(seed, int) else 0,
                            base_dir=project.base_dir)
    except DataError as exc:
        raise ExportError(f"python: train.py needs the project's data, which cannot be loaded: "
                          f"{exc}") from None


def _training_data(ds, task: str) -> dict:
    """The tensors train.py trains on (written as data.pt)."""
    data = {"x_train": ds.x_train, "x_val": ds.x_val}
    if task not in ("reconstruction", "vae", "gan") and ds.y_train is not None:
        data.update(y_train=ds.y_train, y_val=ds.y_val)
    return {k: v.detach().cpu().contiguous() for k, v in data.items() if v is not None}
