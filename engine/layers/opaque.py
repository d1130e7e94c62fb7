"""The Opaque layer: any torch module Layerlab has no layer for, run as it is.

An imported model (``engine.importer``) turns the modules and operations it cannot map onto the
catalog into Opaque nodes. Such a node names its module by import path (``torch.nn.PReLU``,
``my_pkg.blocks:Fancy`` or ``path/to/file.py:Fancy``) with its constructor arguments as JSON
(``init``), and may keep a reference (``ref``) to the live module object of the session that
imported it. It compiles to a deep copy of that live module, or, when the session that imported
it is gone, to a module rebuilt from its class path and ``init``: that class must then be
importable. An operation captured from a traced ``forward`` (``x[:, :8]``, ``torch.cat(...)``)
keeps its torch.fx nodes as data in ``graph`` (:mod:`engine.layers.fx_data`) and is rebuilt from
them; only one whose nodes could not be written as data lives in the session that imported it.

Nothing here imports torch at module level (the catalog must load without it).
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import importlib.util
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .spec import INT, STR, InPort, LayerSpec, ModuleCall, Param, ShapeError, Stats, fmt_shape

FUNCTION_PREFIX = "fx: "  # `module` of an operation captured from a traced forward
_LIVE: dict[str, Any] = {}  # ref -> live module of this session
_SHAPES: dict[tuple, tuple] = {}  # (module key, input shapes) -> output shape
_FILES: dict[str, str] = {}  # name in sys.modules -> the .py file it was loaded from


def register_module(module, ref: str | None = None) -> str:
    """Keep ``module`` for this session; returns the ``ref`` an Opaque node names it by."""
    if ref is None:
        import uuid

        ref = f"opaque-{uuid.uuid4().hex[:12]}"
    _LIVE[ref] = module
    return ref


def live_module(params: dict):
    """The module an Opaque node stands for (shared; callers copy it before training it)."""
    key = _key(params)
    if key not in _LIVE:
        if params.get("graph") and params["module"].startswith(FUNCTION_PREFIX):
            _LIVE[key] = rebuild_captured(params["module"], params["graph"])
        elif params.get("ref") and params.get("init") is None and \
                not params["module"].startswith(FUNCTION_PREFIX):
            raise ShapeError(f"the module {params['module']} was imported, but its constructor "
                             "arguments could not be read back from it, so a saved copy "
                             "cannot rebuild it; import the model again")
        else:
            _LIVE[key] = rebuild_module(params["module"], params.get("init"),
                                        params.get("output_index"))
    return _LIVE[key]


def _key(params: dict) -> str:
    ref = params.get("ref")
    if ref and ref in _LIVE:
        return ref
    if params.get("graph"):
        digest = hashlib.sha1(params["graph"].encode()).hexdigest()
        return f"captured:{params['module']}:{digest}"
    return f"rebuilt:{params['module']}:{params.get('init')}:{params.get('output_index')}"


def rebuild_captured(path: str, graph: str):
    """A captured operation's GraphModule from the data in its ``graph`` parameter."""
    from .fx_data import NotEncodable, decode

    try:
        return decode(graph)
    except (ValueError, NotEncodable, KeyError, TypeError, AttributeError,
            RuntimeError) as exc:  # RuntimeError: torch refusing a tensor's bytes or shape
        raise ShapeError(f"the operation `{path[len(FUNCTION_PREFIX):]}` cannot be rebuilt "
                         f"from its graph: {_first_line(exc)}") from None


def rebuild_module(path: str, init: str | None, output_index: int | None = None):
    """A fresh module from its class path and JSON keyword arguments; ShapeError if impossible."""
    if path.startswith(FUNCTION_PREFIX):
        raise ShapeError(f"the operation `{path[len(FUNCTION_PREFIX):]}` was captured from an "
                         "imported model and lives only in the session that imported it; "
                         "import the model again")
    kwargs = parse_init(init)
    cls = resolve_class_path(path)
    try:
        module = cls(**kwargs)
    except Exception as exc:  # the user's constructor may raise anything
        raise ShapeError(f"cannot create {path}({_kwargs_text(kwargs)}): {_first_line(exc)}") \
            from None
    return select_output(module, output_index) if output_index is not None else module


def parse_init(init: str | None) -> dict:
    if init is None:
        return {}
    try:
        kwargs = json.loads(init)
    except json.JSONDecodeError as exc:
        raise ShapeError(f"init is not valid JSON ({exc.msg}); write the keyword arguments as "
                         "an object, e.g. {\"num_parameters\": 4}") from None
    if not isinstance(kwargs, dict):
        raise ShapeError("init must be a JSON object of keyword arguments, e.g. "
                         "{\"num_parameters\": 4}")
    return kwargs


def resolve_class_path(path: str):
    """The class named by ``pkg.mod.Class``, ``pkg.mod:Class`` or ``file.py:Class``."""
    import torch.nn as nn

    try:
        if ":" in path:
            where, qualname = path.rsplit(":", 1)
            owner = load_file(where) if where.endswith(".py") else importlib.import_module(where)
        else:
            where, qualname = path.rsplit(".", 1) if "." in path else ("", path)
            owner = importlib.import_module(where) if where else None
        obj = owner
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, OSError, SyntaxError, ValueError) as exc:
        raise ShapeError(f"cannot load the module class {path} ({_first_line(exc)}); it must be "
                         "importable when the project is opened") from None
    except Exception as exc:  # importing user code runs it
        raise ShapeError(f"loading {path} failed: {_first_line(exc)}") from None
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise ShapeError(f"{path} is not a torch.nn.Module class")
    return obj


def loaded_file(module_name: str) -> str | None:
    """The file a module was loaded from by :func:`load_file`, if it was."""
    return _FILES.get(module_name)


def load_file(file: str):
    """Import a Python file by path (once per session); its folder is importable meanwhile."""
    path = Path(file).expanduser().resolve()
    name = "layerlab_user_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or not path.is_file():
        raise ImportError(f"no such file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))  # so that the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        sys.path.remove(str(path.parent))
    _FILES[name] = str(path)
    return module


def select_output(module, index: int):
    """Wrap a module that returns a tuple so that only its ``index``-th result comes out."""
    import operator

    import torch.fx as fx
    import torch.nn as nn

    g = fx.Graph()
    res = g.call_module("m", (g.placeholder("x"),))
    g.output(g.call_function(operator.getitem, (res, index)))
    root = nn.Module()
    root.add_module("m", module)
    return fx.GraphModule(root, g, class_name="SelectOutput")


def _kwargs_text(kwargs: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# -- shape rule, stats, module ----------------------------------------------------------------
def _infer(p, ins):
    shapes = [tuple(s) for s in ins.get("in", [])]
    if not shapes:
        raise ShapeError("Opaque needs an input; nothing is connected to it")
    key = (_key(p), tuple(shapes))
    if key not in _SHAPES:
        _SHAPES[key] = _probe(live_module(p), shapes, p["module"])
    return {"out": _SHAPES[key]}


def _probe(module, shapes: list[tuple], name: str) -> tuple:
    """Run the module on zeros (batch 2, evaluation mode) to learn its output shape."""
    import torch

    was_training = module.training
    module.eval()
    try:
        # a failing torch.fx GraphModule prints a traceback to stderr before raising; the
        # ShapeError below says what went wrong in one sentence
        with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
            out = _call_zeros(module, shapes, torch.float32, name)
    finally:
        module.train(was_training)
    if not isinstance(out, torch.Tensor):
        raise ShapeError(f"{name} returns {type(out).__name__}; an Opaque node passes on one "
                         "tensor")
    if out.dim() == 0 or out.shape[0] != 2:
        raise ShapeError(f"{name} does not keep the batch dimension (batch 2 in, "
                         f"{tuple(out.shape)} out)")
    return tuple(out.shape[1:])


def _call_zeros(module, shapes, dtype, name):
    import torch

    try:
        return module(*[torch.zeros(2, *s, dtype=dtype) for s in shapes])
    except Exception as exc:  # user code
        if dtype is torch.float32:  # an embedding inside wants integer tokens
            try:
                return _call_zeros(module, shapes, torch.long, name)
            except ShapeError:
                pass
        got = " and ".join(fmt_shape(s) for s in shapes)
        raise ShapeError(f"{name} fails on input {got}: {_first_line(exc)}") from None


def _stats(p, ins, outs) -> Stats:
    module = live_module(p)
    params = list(module.parameters())
    return Stats(sum(t.numel() for t in params),
                 sum(t.numel() for t in params if t.requires_grad), 0)


@dataclass(frozen=True)
class OpaqueCall(ModuleCall):
    """Builds an Opaque node's module: a deep copy of its live module."""

    params: tuple = ()

    def build(self):
        return copy.deepcopy(live_module(dict(self.params)))

    def code(self) -> str:
        """``nn.X(...)`` for a torch.nn class with known arguments; ValueError otherwise."""
        import torch.nn as nn

        p = dict(self.params)
        name = p["module"].rsplit(".", 1)[-1]
        if p["module"].startswith(FUNCTION_PREFIX):
            raise ValueError(f"it is an operation captured from an imported model "
                             f"(`{p['module'][len(FUNCTION_PREFIX):]}`)")
        if p.get("output_index") is not None:
            raise ValueError(f"it uses one result of {p['module']}, which returns several")
        cls = live_module(p).__class__
        if getattr(nn, name, None) is not cls or (p.get("init") is None and _needs_args(cls)):
            raise ValueError(f"it is an instance of {p['module']}, which is not a torch.nn "
                             "class with known arguments")
        return f"nn.{name}({_kwargs_text(self.kwargs)})"


def _needs_args(cls) -> bool:
    import inspect

    sig = inspect.signature(cls.__init__)
    return any(p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               for name, p in sig.parameters.items() if name != "self")


def _module(p, ins) -> OpaqueCall:
    return OpaqueCall(p["module"], parse_init(p.get("init")), tuple(sorted(p.items())))


def _emit(g, name, args, p):
    return {"out": g.call_module(name, tuple(args.get("in", ())))}


SPECS = [
    LayerSpec(
        "Opaque", "Core", "Any PyTorch module, run as it is: what an imported model's unknown "
        "modules become; a class path such as torch.nn.PReLU works too.",
        params=(
            Param("module", STR, "torch.nn.Identity", "Module class: torch.nn.PReLU, "
                  "my_pkg.mod:Class or path/to/file.py:Class (it must be importable when the "
                  "project opens)."),
            Param("init", STR, None, "Constructor keyword arguments as a JSON object, e.g. "
                  "{\"num_parameters\": 4}.", optional=True),
            Param("output_index", INT, None, "For a module that returns a tuple: which result "
                  "to pass on.", min=0, optional=True),
            Param("ref", STR, None, "The live module of the session that imported it "
                  "(set by the importer).", optional=True),
            Param("graph", STR, None, "An operation captured from an imported model, as "
                  "data: its torch.fx nodes and tensors (set by the importer).",
                  optional=True),
        ),
        inputs=(InPort("in", multi=True),), infer=_infer, stats=_stats, module=_module,
        emit=_emit, key_params=("module",), in_palette=False,
        shape_doc="one or more inputs → whatever the module returns, found by running it once "
                  "on zeros (batch 2, evaluation mode); it must return one tensor that keeps "
                  "the batch."),
]
