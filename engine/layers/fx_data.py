"""An operation captured from an imported model, written as data and rebuilt from it.

The importer captures what the catalog cannot express (``x[:, :8]``, ``torch.cat(...)``,
``x.view(b, 4, -1).permute(0, 2, 1)``) into a small ``torch.fx.GraphModule``. :func:`encode`
writes that module as JSON text that an Opaque node keeps in its ``graph`` parameter: the fx
nodes in order (``op``, ``name``, ``target``, ``args``, ``kwargs``), the tensors it reads by
``get_attr`` and the modules it calls. :func:`decode` builds an equal ``GraphModule`` from the
text, in any later session, so that a saved import compiles, trains and exports like a fresh one.

Targets are written by their import path (``torch.cat``, ``operator.getitem``,
``torch.nn.functional.relu``) and must resolve back to the very same function; arguments are
JSON values, with tagged objects for what JSON lacks: ``{"$node": name}``, ``{"$tuple": [...]}``,
``{"$slice": [start, stop, step]}``, ``{"$dtype": "float32"}``, ``{"$device": "cpu"}``,
``{"$memory_format": "channels_last"}``, ``{"$ellipsis": true}``, ``{"$dict": {...}}``.
Tensors of up to :data:`INLINE_LIMIT` elements are kept in the text (base64 of their bytes);
larger ones keep their shape and dtype, start as a fresh initialization (parameters
normal(0, 0.02), buffers zeros) and take their values from the imported weights.

Nothing here imports torch at module level.
"""
from __future__ import annotations

import base64
import builtins
import importlib
import json
import math

INLINE_LIMIT = 65_536  # elements of a captured tensor kept in the project file
_MODULE_ALIASES = {"_operator": "operator"}


class NotEncodable(Exception):
    """A captured operation holds something that cannot be written as data."""


# -- encode ------------------------------------------------------------------------------------
def encode(gm) -> str | None:
    """JSON text for ``gm`` (a captured GraphModule), or None when part of it is not data."""
    try:
        return json.dumps(_encode(gm), separators=(",", ":"), sort_keys=True)
    except NotEncodable:
        return None


def _encode(gm) -> dict:
    nodes, tensors, constants, modules = [], {}, {}, {}
    for node in gm.graph.nodes:
        entry = {"op": node.op, "name": node.name}
        if node.op == "call_function":
            entry["target"] = function_path(node.target)
        elif node.op in ("call_method", "get_attr", "call_module", "placeholder"):
            entry["target"] = str(node.target)
        if node.op == "get_attr":
            _encode_attr(gm, node.target, tensors, constants)
        if node.op == "call_module" and node.target not in modules:
            modules[node.target] = _encode_module(gm.get_submodule(node.target))
        if node.args:
            entry["args"] = [_value(a) for a in node.args]
        if node.kwargs:
            entry["kwargs"] = {k: _value(v) for k, v in node.kwargs.items()}
        nodes.append(entry)
    data = {"nodes": nodes}
    for key, value in (("tensors", tensors), ("constants", constants), ("modules", modules)):
        if value:
            data[key] = value
    return data


def function_path(fn) -> str:
    """``torch.cat``, ``operator.getitem``: a path that :func:`resolve_function` maps back."""
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if fn is getattr(builtins, getattr(fn, "__name__", ""), None):
        module, name = "builtins", fn.__name__
    if not module or not name:
        raise NotEncodable(f"{fn!r} has no import path")
    candidates = [f"{_MODULE_ALIASES.get(module, module)}.{name}"]
    if module.startswith("torch"):
        candidates += [f"torch.{fn.__name__}", f"torch.nn.functional.{fn.__name__}"]
    for path in candidates:
        try:
            if resolve_function(path) is fn:
                return path
        except NotEncodable:
            continue
    raise NotEncodable(f"{module}.{name} cannot be found again by its name")


def _encode_attr(gm, target: str, tensors: dict, constants: dict) -> None:
    import torch

    value = gm
    for part in target.split("."):
        value = getattr(value, part)
    if isinstance(value, torch.Tensor):
        entry = {"shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch."),
                 "kind": "parameter" if isinstance(value, torch.nn.Parameter) else "buffer"}
        if entry["kind"] == "parameter":
            entry["requires_grad"] = bool(value.requires_grad)
        if value.numel() <= INLINE_LIMIT:
            raw = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
            entry["data"] = base64.b64encode(raw.numpy().tobytes()).decode("ascii")
        tensors[target] = entry
    else:
        constants[target] = _value(value)


def _encode_module(module) -> dict:
    from ..importer.opaque import class_path, recover_init

    init = recover_init(module)
    if init is None:  # defaults would build another module: never guess
        raise NotEncodable(f"{type(module).__name__}'s constructor arguments are unknown")
    from .opaque import resolve_class_path

    entry = {"module": class_path(type(module)), "init": init}
    try:
        found = resolve_class_path(entry["module"])
    except Exception:  # noqa: BLE001 - any failure means the class cannot be found by name
        found = None
    if found is not type(module):
        raise NotEncodable(f"{type(module).__qualname__} cannot be imported by its name")
    return entry


def _value(value):
    import torch
    import torch.fx as fx

    if isinstance(value, fx.Node):
        return {"$node": value.name}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"$float": repr(value)}
    if isinstance(value, tuple):
        return {"$tuple": [_value(v) for v in value]}
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, slice):
        return {"$slice": [_value(value.start), _value(value.stop), _value(value.step)]}
    if value is Ellipsis:
        return {"$ellipsis": True}
    if isinstance(value, torch.dtype):
        return {"$dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"$device": str(value)}
    if isinstance(value, torch.memory_format):
        return {"$memory_format": str(value).removeprefix("torch.")}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$dict": {k: _value(v) for k, v in value.items()}}
    raise NotEncodable(f"a {type(value).__name__} argument ({value!r:.40})")


# -- decode ------------------------------------------------------------------------------------
def decode(text: str):
    """The GraphModule that :func:`encode` wrote; ValueError naming what is wrong."""
    import torch.fx as fx
    import torch.nn as nn

    try:
        data = json.loads(text)
        entries = data["nodes"]
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise ValueError(f"the captured graph is not valid ({exc})") from None
    root = nn.Module()
    for target, entry in data.get("modules", {}).items():
        from .opaque import rebuild_module

        root.add_module(target, rebuild_module(entry["module"], entry.get("init")))
    for target, entry in data.get("tensors", {}).items():
        _set_tensor(root, target, entry)
    for target, value in data.get("constants", {}).items():
        setattr(root, target, _decode_value(value, {}))
    graph, env = fx.Graph(), {}
    for entry in entries:
        op, name = entry.get("op"), entry.get("name")
        args = tuple(_decode_value(a, env) for a in entry.get("args", ()))
        kwargs = {k: _decode_value(v, env) for k, v in entry.get("kwargs", {}).items()}
        if op == "output":
            graph.output(args[0] if args else None)
            continue
        if op not in ("placeholder", "get_attr", "call_function", "call_method", "call_module"):
            raise ValueError(f"the captured graph has a node of unknown kind {op!r}")
        target = resolve_function(entry["target"]) if op == "call_function" else \
            entry["target"]
        _check_node(op, target, args, data)
        env[name] = graph.create_node(op, target, args, kwargs, name=name)
    graph.lint()
    return fx.GraphModule(root, graph, class_name="Captured")


# A project file is data: the functions it may name are tensor and number operations only (no
# file, process or compiler access), so that opening a file cannot run anything else.
_ALLOWED_ROOTS = ("torch.", "math.")
_DENIED = (".save", ".load", ".hub", ".jit", ".compile", ".utils", ".distributed",
           ".multiprocessing", ".cuda", ".backends", ".export", ".onnx", "._dynamo", ".package",
           ".serialization", ".fx", ".library", ".ops", ".classes", ".autograd", "._C",
           "file", "storage", "Storage", ".set_", "_set_", ".from_", "dlpack", "share_memory",
           ".random.", "manual_seed", "set_default", "._")
# functions of model libraries that torch.fx keeps as one call (``torch.fx.wrap``), named one by
# one: tensor operations that the libraries' own models use (torchvision's EfficientNet,
# ConvNeXt, Swin and MaxViT drop residual rows with stochastic_depth while training; Swin's
# window attention). Each maps to the name exported code calls it by.
LIBRARY_FUNCTIONS = {
    "torchvision.ops.stochastic_depth.stochastic_depth": "torchvision.ops.stochastic_depth",
    "torchvision.ops.drop_block.drop_block2d": "torchvision.ops.drop_block2d",
    "torchvision.ops.drop_block.drop_block3d": "torchvision.ops.drop_block3d",
    **{f"torchvision.models.swin_transformer.{name}": f"torchvision.models.swin_transformer.{name}"
       for name in ("shifted_window_attention", "_get_relative_position_bias",
                    "_patch_merging_pad")},
}
# torch's own check of a condition traced code keeps (timm: ``_assert(N == 1 + H * W)``)
_CHECKS = {"torch._assert"}
_BUILTINS = {"getattr", "len", "int", "float", "bool", "slice", "range", "tuple", "list",
             "min", "max", "abs", "round", "sum", "pow", "divmod"}
# operator's arithmetic, comparisons and indexing; never attrgetter, methodcaller or call,
# which reach any attribute or call any object
_OPERATORS = {"getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos",
              "abs", "matmul", "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor",
              "invert", "not_", "truth", "lshift", "rshift"}
# what getattr may read of a value in a saved operation
SIZE_ATTRIBUTES = {"shape", "dtype", "ndim", "T", "mT", "device", "is_cuda", "real", "imag"}


def allowed_function(path: str) -> bool:
    """May a saved captured operation call the function ``path``?"""
    if path.startswith("builtins."):
        return path[len("builtins."):] in _BUILTINS
    if path.startswith(("operator.", "_operator.")):
        return path.split(".", 1)[1] in _OPERATORS
    if path in LIBRARY_FUNCTIONS or path in _CHECKS:
        return True
    return path.startswith(_ALLOWED_ROOTS) and not any(d in path for d in _DENIED) and \
        "__" not in path


def resolve_function(path: str):
    """The function named ``torch.cat`` / ``operator.getitem`` / ``builtins.getattr``; only
    those :func:`allowed_function` admits."""
    if not allowed_function(path):
        raise NotEncodable(f"{path} is not a tensor operation a project file may call")
    if path in LIBRARY_FUNCTIONS:
        library = path.split(".", 1)[0]
        try:
            importlib.import_module(library)
        except Exception:  # noqa: BLE001 - not installed, or installed but not loading
            raise NotEncodable(f"{path} needs {library}, which cannot be imported here "
                               f"(pip install {library})") from None
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
        except AttributeError:
            break
        if callable(obj):
            return obj
        break
    raise NotEncodable(f"no function {path}")


# Tensor methods that take a function or reach outside the tensor's values
_DENIED_METHODS = {"apply_", "map_", "map2_", "register_hook", "backward",
                   "register_post_accumulate_grad_hook", "share_memory_", "pin_memory",
                   "storage", "untyped_storage", "data_ptr", "tolist", "numpy", "cuda",
                   "to_sparse", "set_", "resize_", "storage_offset", "from_file"}


def _check_node(op: str, target, args: tuple, data: dict) -> None:
    """Refuse a node that is not a plain tensor operation on the graph's own values."""
    import torch

    if op == "call_method":
        if not isinstance(target, str) or target.startswith("_") or \
                target in _DENIED_METHODS or not callable(getattr(torch.Tensor, target, None)):
            raise ValueError(f"the captured graph calls {target!r}, which is not a tensor "
                             "method a project file may call")
    elif op == "call_function" and target is getattr:
        if len(args) < 2 or args[1] not in SIZE_ATTRIBUTES:
            raise ValueError("the captured graph reads an attribute a project file may not "
                             f"read ({args[1:2]!r})")
    elif op == "get_attr":
        known = {*data.get("tensors", {}), *data.get("constants", {})}
        if target not in known:
            raise ValueError(f"the captured graph reads {target!r}, which it does not hold")
    elif op == "call_module" and target not in data.get("modules", {}):
        raise ValueError(f"the captured graph calls the module {target!r}, which it does not "
                         "hold")


def _set_tensor(root, target: str, entry: dict) -> None:
    import numpy as np
    import torch

    dtype = getattr(torch, str(entry["dtype"]), None)
    if not isinstance(dtype, torch.dtype) or str(entry["dtype"]).startswith("_"):
        raise ValueError(f"the captured tensor {target} has no dtype {entry['dtype']!r}")
    shape = tuple(int(d) for d in entry["shape"])
    if "data" in entry:
        raw = np.frombuffer(base64.b64decode(entry["data"]), dtype=np.uint8).copy()
        value = torch.from_numpy(raw).view(dtype).reshape(shape).clone() if raw.size else \
            torch.zeros(shape, dtype=dtype)
    elif entry["kind"] == "parameter" and dtype.is_floating_point:
        value = torch.randn(shape, dtype=dtype) * 0.02
    else:
        value = torch.zeros(shape, dtype=dtype)
    owner, _, name = target.rpartition(".")
    holder = root.get_submodule(owner) if owner else root
    if entry["kind"] == "parameter":
        holder.register_parameter(name, torch.nn.Parameter(value, entry.get("requires_grad",
                                                                            True)))
    else:
        holder.register_buffer(name, value)


def _decode_value(value, env: dict):
    import torch

    if isinstance(value, list):
        return [_decode_value(v, env) for v in value]
    if not isinstance(value, dict):
        return value
    (tag, inner), = value.items()
    if tag == "$node":
        if inner not in env:
            raise ValueError(f"the captured graph uses {inner} before it is computed")
        return env[inner]
    if tag == "$tuple":
        return tuple(_decode_value(v, env) for v in inner)
    if tag == "$slice":
        return slice(*(_decode_value(v, env) for v in inner))
    if tag == "$ellipsis":
        return Ellipsis
    if tag == "$float":
        return float(inner)
    if tag in ("$dtype", "$memory_format"):
        kind = torch.dtype if tag == "$dtype" else torch.memory_format
        found = getattr(torch, inner, None) if isinstance(inner, str) and \
            not inner.startswith("_") else None
        if not isinstance(found, kind):
            raise ValueError(f"the captured graph names {inner!r} as a {tag[1:]}; it is not one")
        return found
    if tag == "$device":
        return torch.device(inner)
    if tag == "$dict":
        return {k: _decode_value(v, env) for k, v in inner.items()}
    raise ValueError(f"the captured graph has an unknown value tag {tag!r}")


