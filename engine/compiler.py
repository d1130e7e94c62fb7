"""The compiler: a checked graph becomes a ``torch.fx.GraphModule`` of real torch.nn modules.

Submodules are named by node id, so ``model.fc1`` is the node ``fc1``; ``model.code`` is plain,
readable PyTorch. Nothing is interpreted per step: the generated ``forward`` is ordinary Python
calling the same modules a hand-written model would.
"""
from __future__ import annotations

import builtins
import keyword
import re

from .errors import LayerlabError
from .graph import Graph
from .shapes import ShapeInference, infer_shapes


class CompileError(LayerlabError):
    """The graph has problems; ``problems`` lists ``(node id or '', message)``."""

    def __init__(self, model: str, problems: list[tuple[str, str]]):
        self.model = model
        self.problems = problems
        super().__init__("\n".join(f"{n}: {m}" if n else m for n, m in problems))


def attr_name(node_id: str) -> str:
    """A Python identifier for a node id (the submodule's attribute name)."""
    name = re.sub(r"\W", "_", node_id)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = f"n_{name}"
    return name


def check_compilable(graph: Graph, shapes: ShapeInference) -> None:
    problems = [("", m) for m in shapes.model_problems()]
    problems += sorted(shapes.errors().items(), key=lambda kv: graph.node_ids().index(kv[0]))
    if problems:
        raise CompileError(graph.name, problems)


def compile_model(graph: Graph, shapes: ShapeInference | None = None, *,
                  input_shapes: dict | None = None, start: str | None = None,
                  start_port: str = "out"):
    """Compile ``graph`` to a GraphModule.

    ``start`` compiles only what lies downstream of that node: its output becomes the model's
    input (the VAE decoder fed from the prior). The module gets ``input_names``,
    ``output_names`` and ``node_attrs`` (node id -> submodule name) attributes.
    """
    import torch.fx as fx
    import torch.nn as nn

    shapes = shapes or infer_shapes(graph, input_shapes)
    check_compilable(graph, shapes)
    needed = _needed_nodes(graph, start, start_port)
    # a node id such as 'code' or 'graph' must not shadow a GraphModule attribute
    attrs = _unique_attrs(graph.node_ids(), reserved=_reserved_names(),
                          arguments={n.id for n in graph.nodes_of_type("Input")} | {start})
    g, root, env = fx.Graph(), nn.Module(), {}
    inputs, outputs = [], []
    if start is not None:
        env[(start, start_port)] = g.placeholder(attrs[start])
        inputs.append(start)
    for node_id in graph.topological_order():
        if node_id not in needed:
            continue
        node, info = graph.node(node_id), shapes.info[node_id]
        if node.type == "Input":
            env[(node_id, "out")] = g.placeholder(attrs[node_id])
            inputs.append(node_id)
            continue
        args = _args(graph, node_id, env)
        if node.type == "Output":
            outputs.append((node_id, args["in"][0]))
            continue
        spec = node.spec
        if spec.module is not None:
            root.add_module(attrs[node_id], spec.module(info.params, info.in_shapes).build())
        if spec.emit is not None:
            ports = spec.emit(g, attrs[node_id], args, info.params)
        else:
            call_args = tuple(args[p.name][0] for p in spec.inputs if args.get(p.name))
            ports = {"out": g.call_module(attrs[node_id], call_args)}
        for port, fx_node in ports.items():
            suffix = "" if port == "out" and spec.module is None else f"_{port}"
            _rename(fx_node, attrs[node_id] + suffix)
            env[(node_id, port)] = fx_node
    result = outputs[0][1] if len(outputs) == 1 else tuple(o for _, o in outputs)
    g.output(result)
    gm = fx.GraphModule(root, g, class_name=_class_name(graph.name))
    gm.graph.eliminate_dead_code()
    gm.graph.lint()
    gm.recompile()
    gm.input_names = inputs
    gm.output_names = [n for n, _ in outputs]
    gm.node_attrs = {n: attrs[n] for n in needed if hasattr(gm, attrs[n])}
    return gm


def _needed_nodes(graph: Graph, start: str | None, start_port: str = "out") -> set[str]:
    outputs = [n.id for n in graph.nodes_of_type("Output")]
    useful = set(outputs).union(*(graph.ancestors(o) for o in outputs))
    if start is None:
        return useful
    graph.node(start)
    down = graph.descendants(start) & useful
    for node_id in down:
        for edge in graph.in_edges(node_id):
            if edge.src == start and edge.src_port != start_port:
                raise CompileError(graph.name, [(node_id, f"takes {start}'s output "
                                                 f"'{edge.src_port}'; the compiled part starts "
                                                 f"from '{start_port}'")])
            if edge.src != start and edge.src not in down:
                raise CompileError(graph.name, [(node_id, f"takes input from {edge.src}, which "
                                                 f"is not downstream of {start}")])
    return down


def _reserved_names() -> set[str]:
    import torch.fx as fx
    import torch.nn as nn

    return set(dir(fx.GraphModule(nn.Module(), fx.Graph())))


# Names the generated forward() uses itself: an argument called so would shadow them.
_CODE_NAMES = frozenset({"self", "torch", "operator", "fx_pytree", "pytree", "inf", "nan",
                         "NoneType", "device"} | set(dir(builtins)))


def _unique_attrs(node_ids: list[str], reserved: set[str] = frozenset(),
                  arguments: set = frozenset()) -> dict[str, str]:
    """Unique identifiers per node; ``arguments`` (inputs of forward) also avoid _CODE_NAMES."""
    attrs, taken = {}, set(reserved)
    for node_id in node_ids:
        name, i = attr_name(node_id), 1
        while name in taken or (node_id in arguments and name in _CODE_NAMES):
            i += 1
            name = f"{attr_name(node_id)}_{i}"
        attrs[node_id] = name
        taken.add(name)
    return attrs


def _args(graph: Graph, node_id: str, env: dict) -> dict:
    args: dict[str, list] = {}
    for edge in graph.in_edges(node_id):
        args.setdefault(edge.dst_port, []).append(env[(edge.src, edge.src_port)])
    return args


def _rename(fx_node, name: str) -> None:
    if fx_node.op in ("call_function", "call_method") and fx_node.name != name:
        fx_node._rename(name)


def _class_name(model_name: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", model_name) or ["Model"]
    name = "".join(w[:1].upper() + w[1:] for w in words)
    return name if name[0].isalpha() else f"Model{name}"
