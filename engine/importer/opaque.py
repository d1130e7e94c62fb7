"""Opaque nodes for what the catalog cannot express: a module as it is, or a captured call.

A module the catalog does not know keeps its class path and, when they can be read back from
the instance, its constructor arguments (so that a saved project can rebuild it). A traced
operation (``x.transpose(1, 2)``, ``torch.mean(x, 1)``, a module called with extra arguments)
is captured with the size arithmetic and constants it needs into a small ``GraphModule`` that
lives in this session.
"""
from __future__ import annotations

import copy
import inspect
import json
import operator

import torch
import torch.fx as fx
import torch.nn as nn
from torch.fx.node import map_arg

from ..layers.opaque import FUNCTION_PREFIX, loaded_file


def class_path(cls) -> str:
    """``torch.nn.PReLU``, ``path/to/file.py:Class`` or ``package.module:Class``."""
    if getattr(nn, cls.__name__, None) is cls:
        return f"torch.nn.{cls.__name__}"
    file = loaded_file(cls.__module__)
    return f"{file or cls.__module__}:{cls.__qualname__}"


def recover_init(module) -> str | None:
    """The constructor arguments as JSON, if the instance's attributes give them back exactly."""
    cls = type(module)
    derive = _DERIVED.get(cls.__name__) if getattr(nn, cls.__name__, None) is cls else None
    if derive is not None:
        kwargs = derive(module)
        return json.dumps(kwargs) if kwargs is not None and _rebuilds(module, kwargs) else None
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return None
    kwargs = {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in ("device", "dtype"):
            continue
        value = getattr(module, p.name, p.default)
        if _jsonable(value):
            kwargs[p.name] = list(value) if isinstance(value, tuple) else value
        elif p.default is p.empty:
            return None
    return json.dumps(kwargs) if _rebuilds(module, kwargs) else None


def _transformer_layer(m) -> dict | None:
    """nn.TransformerEncoderLayer / DecoderLayer keep no constructor arguments; read them off
    their parts."""
    import torch.nn.functional as F

    activation = {F.relu: "relu", F.gelu: "gelu"}.get(getattr(m, "activation", None))
    if activation is None:
        return None
    attn = m.self_attn
    return {"d_model": attn.embed_dim, "nhead": attn.num_heads,
            "dim_feedforward": m.linear1.out_features, "dropout": m.dropout.p,
            "activation": activation, "layer_norm_eps": m.norm1.eps,
            "batch_first": attn.batch_first, "norm_first": m.norm_first,
            "bias": m.linear1.bias is not None}


_DERIVED = {"TransformerEncoderLayer": _transformer_layer,
            "TransformerDecoderLayer": _transformer_layer}


def _jsonable(value) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_jsonable(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def _rebuilds(module, kwargs: dict) -> bool:
    try:
        with torch.random.fork_rng():
            rebuilt = type(module)(**kwargs)
    except Exception:  # any constructor may refuse: then the arguments are unknown
        return False
    same_shapes = {k: v.shape for k, v in rebuilt.state_dict().items()} == \
        {k: v.shape for k, v in module.state_dict().items()}
    return same_shapes and repr(rebuilt) == repr(module)


def capture(nodes: list[fx.Node], owner: fx.GraphModule, tensor_of) -> tuple:
    """A GraphModule computing ``nodes[-1]`` from the tensors it reads.

    ``tensor_of(value)`` returns the importer's tensor for a traced value already on the canvas
    (or None). Returns (module, [traced input values], {new state key: original state key},
    description).
    """
    g, root = fx.Graph(), nn.Module()
    env, inputs, keys, by_port = {}, [], {}, {}

    def arg(value: fx.Node):
        if value not in env:
            port = tensor_of(value)
            if port is not None:
                if port not in by_port:
                    by_port[port] = g.placeholder(f"in_{len(inputs)}")
                    inputs.append(value)
                env[value] = by_port[port]
            elif value.op == "get_attr":
                env[value] = _copy_attr(g, root, owner, value.target, keys)
            else:  # size arithmetic and the like: recomputed inside
                env[value] = g.node_copy(value, arg)
        return env[value]

    modules: dict[str, str] = {}  # owner's submodule -> its name here: m, m1, m2...
    for node in nodes:
        if node.op == "call_module":  # a copy: probing it must not switch the model's mode
            if node.target not in modules:
                name = modules[node.target] = "m" if not modules else f"m{len(modules)}"
                root.add_module(name, copy.deepcopy(owner.get_submodule(node.target)))
                keys.update({f"{name}.{k}": f"{node.target}.{k}"
                             for k in owner.get_submodule(node.target).state_dict()})
            env[node] = g.call_module(modules[node.target], map_arg(node.args, arg),
                                      map_arg(node.kwargs, arg))
        else:
            env[node] = g.node_copy(node, arg)
    g.output(env[nodes[-1]])
    for node in list(g.nodes):  # token ids arrive as floats on the canvas, as every value does
        if node.op == "call_module" and isinstance(root.get_submodule(node.target),
                                                   nn.Embedding) and node.args:
            with g.inserting_before(node):
                ids = g.call_method("long", (node.args[0],))
            node.args = (ids, *node.args[1:])
    module = fx.GraphModule(root, g, class_name="Captured")
    text = describe(nodes) if len(nodes) <= 2 or all(
        n.target is operator.getitem for n in nodes[1:]) else describe_stretch(nodes)
    return module, inputs, keys, FUNCTION_PREFIX + text


def _copy_attr(g: fx.Graph, root: nn.Module, owner, target: str, keys: dict) -> fx.Node:
    name = f"p{sum(1 for _ in root.named_parameters()) + sum(1 for _ in root.named_buffers())}"
    value = owner.get_parameter(target) if _is_param(owner, target) else _get(owner, target)
    if isinstance(value, nn.Parameter):
        root.register_parameter(name, nn.Parameter(value.detach().clone(), value.requires_grad))
        keys[name] = target
    elif isinstance(value, torch.Tensor):
        root.register_buffer(name, value.detach().clone())
        keys[name] = target
    else:
        setattr(root, name, value)
    return g.get_attr(name)


def _is_param(owner, target: str) -> bool:
    try:
        owner.get_parameter(target)
        return True
    except AttributeError:
        return False


def _get(obj, target: str):
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def describe(nodes: list[fx.Node]) -> str:
    """One line of code for a captured call, as the inspector shows it."""
    node = nodes[0]
    args = ", ".join([_text(a) for a in node.args[1 if node.op == "call_method" else 0:]] +
                     [f"{k}={_text(v)}" for k, v in node.kwargs.items()])
    if node.op == "call_method":
        text = f"{_text(node.args[0])}.{node.target}({args})"
    elif node.op == "call_module":
        text = f"self.{node.target}({args})"
    else:
        text = f"{_function_name(node.target)}({args})"
    return text + "".join(f"[{_text(n.args[1])}]" for n in nodes[1:])


def describe_stretch(nodes: list[fx.Node]) -> str:
    """One line for several operations captured together (a stretch with the batch moved)."""
    names = []
    for node in nodes:
        name = node.target if node.op in ("call_method", "call_module") else \
            getattr(node.target, "__name__", str(node.target))
        if name not in names:
            names.append(str(name))
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"{len(nodes)} operations where the batch is not first ({shown})"


def _function_name(fn) -> str:
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__name__", str(fn))
    if module == "_operator":
        return f"operator.{name}"
    if module.startswith("torch.nn.functional"):
        return f"F.{name}"
    if module == "torch" or module.startswith("torch."):
        return f"torch.{name}"
    return f"{module}.{name}" if module else name


def _text(value) -> str:
    if isinstance(value, fx.Node):
        return value.name
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_text(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, slice):
        parts = [_text(p) if p is not None else "" for p in (value.start, value.stop)]
        return ":".join(parts) + (f":{_text(value.step)}" if value.step is not None else "")
    return repr(value)
