"""The declarative layer spec: one :class:`LayerSpec` per layer type.

The palette, the inspector, shape inference, the compiler, the exporters, the docs and the tests
all read these specs; nothing else describes a layer. Specs import no torch: builders resolve their
module class lazily, so that the window can start without loading PyTorch.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

Shape = tuple  # per-sample shape, without the batch dimension


class ShapeError(Exception):
    """Raised by a shape rule; the message is a sentence for the user (the node is added later)."""


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()

# Parameter kinds
INT, FLOAT, BOOL, CHOICE, SIZE, SHAPE, STR, PADDING = (
    "int", "float", "bool", "choice", "size", "shape", "str", "padding")


@dataclass(frozen=True)
class Param:
    """One parameter of a layer: its torch.nn name, kind, default, allowed values and doc."""

    name: str
    kind: str
    default: Any = REQUIRED
    doc: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple = ()
    optional: bool = False  # None is an allowed value
    starter: Any = None  # value the palette fills in for a required parameter
    dims: int = 2  # for SIZE/PADDING: how many entries a tuple has

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def initial(self) -> Any:
        """The value a new node gets from the palette."""
        return self.starter if self.required else self.default

    def check(self, value: Any) -> Any:
        """Return the value normalised (JSON lists to tuples), or raise ValueError with a reason."""
        if value is None:
            if self.optional:
                return None
            raise ValueError("must be set")
        check = _CHECKS[self.kind]
        return check(self, value)


def _is_int(v) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


def _bounded(p: Param, v):
    if p.min is not None and v < p.min:
        raise ValueError(f"must be at least {_fmt(p.min)}; got {_fmt(v)}")
    if p.max is not None and v > p.max:
        raise ValueError(f"must be at most {_fmt(p.max)}; got {_fmt(v)}")
    return v


def _fmt(v) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _check_int(p: Param, v):
    if not _is_int(v):
        raise ValueError(f"must be a whole number; got {v!r}")
    return _bounded(p, int(v))


def _check_float(p: Param, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"must be a number; got {v!r}")
    try:
        value = float(v)
    except OverflowError:  # a JSON integer too large for a float
        raise ValueError("must be a number of reasonable size; got one with "
                         f"{len(str(abs(v)))} digits") from None
    if not math.isfinite(value):
        raise ValueError(f"must be a number; got {v!r}")
    return _bounded(p, value)


def _check_bool(p: Param, v):
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false; got {v!r}")
    return v


def _check_choice(p: Param, v):
    if v not in p.choices:
        raise ValueError(f"must be one of {', '.join(map(str, p.choices))}; got {v!r}")
    return v


def _check_size(p: Param, v):
    if _is_int(v):
        return _bounded(p, int(v))
    if isinstance(v, (list, tuple)) and len(v) == p.dims and all(_is_int(x) for x in v):
        return tuple(_bounded(p, int(x)) for x in v)
    raise ValueError(f"must be a whole number or a list of {p.dims}; got {v!r}")


def _check_padding(p: Param, v):
    if isinstance(v, str):
        if v in ("same", "valid"):
            return v
        raise ValueError(f"must be a number, a list of {p.dims}, 'same' or 'valid'; got {v!r}")
    return _check_size(p, v)


def _check_shape(p: Param, v):
    if isinstance(v, (list, tuple)) and v and all(_is_int(x) for x in v):
        shape = tuple(int(x) for x in v)
        if all(x >= 1 or x == -1 for x in shape) and shape.count(-1) <= 1:
            return shape
    raise ValueError(f"must be a list of positive whole numbers such as [1, 28, 28]; got {v!r}")


def _check_str(p: Param, v):
    if not isinstance(v, str) or not v:
        raise ValueError(f"must be a non-empty text; got {v!r}")
    return v


_CHECKS: dict[str, Callable[[Param, Any], Any]] = {
    INT: _check_int, FLOAT: _check_float, BOOL: _check_bool, CHOICE: _check_choice,
    SIZE: _check_size, SHAPE: _check_shape, STR: _check_str, PADDING: _check_padding,
}


@dataclass(frozen=True)
class InPort:
    name: str
    multi: bool = False  # takes two or more edges, in the order they are listed
    optional: bool = False  # may stay unconnected (MultiheadAttention key/value)


@dataclass(frozen=True)
class Stats:
    params: int = 0
    trainable: int = 0
    macs: int = 0


@dataclass(frozen=True)
class ModuleCall:
    """How to build a node's torch module: a class name and its keyword arguments.

    ``cls`` is ``nn.X`` for torch.nn classes, ``pyg.X`` for torch_geometric.nn classes or the
    bare name of a class in :mod:`engine.layers.modules`. The same data builds the module and writes the exported code.
    """

    cls: str
    kwargs: dict

    def build(self):
        return resolve_class(self.cls)(**self.kwargs)

    def code(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.cls}({args})"


def resolve_class(name: str):
    if name.startswith("nn."):
        import torch.nn as nn

        return getattr(nn, name[3:])
    if name.startswith("pyg."):
        try:
            import torch_geometric.nn as pyg
        except ImportError:
            raise ImportError(f"{name[4:]} needs torch_geometric (pip install "
                              "torch_geometric)") from None
        return getattr(pyg, name[4:])
    from . import modules

    return getattr(modules, name)


InferFn = Callable[[dict, dict], dict]  # (params, {port: [shapes]}) -> {out port: shape}


@dataclass(frozen=True)
class LayerSpec:
    """Everything Layerlab knows about one layer type."""

    type: str
    category: str
    doc: str
    params: tuple[Param, ...] = ()
    inputs: tuple[InPort, ...] = (InPort("in"),)
    outputs: tuple[str, ...] = ("out",)
    infer: InferFn | None = None
    module: Callable[[dict, dict], ModuleCall] | None = None  # (params, in shapes) -> ModuleCall
    stats: Callable[[dict, dict, dict], Stats] | None = None  # (params, ins, outs) -> Stats
    emit: Callable | None = None  # custom fx emission; default: call the module on the inputs
    key_params: tuple[str, ...] = ()
    in_palette: bool = True  # False for a type only tools create (the importer's Opaque)
    extra: dict = field(default_factory=dict)
    # the shape rule in words, for the layer reference (docs/layers, engine.reference): what
    # ``infer`` computes, written once here so that the page and the rule sit side by side
    shape_doc: str = ""

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def in_port(self, name: str) -> InPort | None:
        for port in self.inputs:
            if port.name == name:
                return port
        return None

    def initial_params(self) -> dict:
        """Parameters a node dropped from the palette starts with (required ones filled in)."""
        return {p.name: p.initial() for p in self.params if p.required}

    def resolve(self, given: dict) -> dict:
        """Validate ``given`` against the spec and fill in defaults.

        Raises :class:`ShapeError` with a sentence naming the parameter at fault.
        """
        for name in given:
            if name not in self.param_names and not self.extra.get("open_params"):
                raise ShapeError(self._unknown_param(name))
        out = {k: v for k, v in given.items() if k not in self.param_names}  # open_params
        for p in self.params:
            if p.name not in given:
                if p.required:
                    raise ShapeError(f"{self.type} needs {p.name} ({p.doc.rstrip('.').lower()}); "
                                     "it is not set")
                out[p.name] = p.default
                continue
            try:
                out[p.name] = p.check(given[p.name])
            except ValueError as exc:
                raise ShapeError(f"{p.name} {exc}") from None
        return out

    def _unknown_param(self, name: str) -> str:
        if not self.params:
            return f"{self.type} takes no parameters; got '{name}'"
        close = difflib.get_close_matches(str(name), self.param_names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else \
            f" (it has {', '.join(self.param_names)})"
        return f"{self.type} has no parameter '{name}'{hint}"


class FrameShape(tuple):
    """The shape of one frame inside a per-frame chain (between ``PerFrame`` and
    ``MergeFrames``): the tuple is one frame's shape, ``frames`` the sequence length T.

    Layers in the chain infer their shapes from the frame's shape alone and run on every frame
    (the frames travel in the batch dimension), so their rules need no change.
    """

    frames: int = 0

    @classmethod
    def of(cls, shape, frames: int) -> "FrameShape":
        s = cls(shape)
        s.frames = int(frames)
        return s

    def full(self) -> tuple:
        """The whole tensor's per-sample shape: (T, *frame)."""
        return (self.frames, *self)

    def __reduce__(self):
        return (FrameShape.of, (tuple(self), self.frames))


class NodeShape(tuple):
    """The features of every node of a graph: the tuple is one node's shape (``(F,)`` for node
    features, ``()`` for a node's label or graph id), ``nodes`` the node count N (0 when it
    varies, as in a batch of many small graphs).

    The nodes travel in the batch dimension, so a Linear, an activation or a Dropout on node
    features runs per node with its rules unchanged; wires read ``N×F``.
    """

    graph = "nodes"
    nodes: int = 0

    @classmethod
    def of(cls, shape, nodes: int | None = 0) -> "NodeShape":
        s = cls(shape)
        s.nodes = int(nodes or 0)
        return s

    def __reduce__(self):
        return (NodeShape.of, (tuple(self), self.nodes))


class EdgeShape(tuple):
    """A graph's ``edge_index``: 2 rows (source, target) of E edges (``edges``; 0 when it
    varies). It feeds only the ``edge_index`` port of a graph layer."""

    graph = "edges"
    edges: int = 0

    @classmethod
    def of(cls, edges: int | None = 0) -> "EdgeShape":
        s = cls((2,))
        s.edges = int(edges or 0)
        return s

    def __reduce__(self):
        return (EdgeShape.of, (self.edges,))


def graph_level(shape) -> str | None:
    """'nodes' for per-node features, 'edges' for an edge_index, None for anything else
    (also for a rule's :class:`~engine.layers.rules.In`, which copies the marks)."""
    return getattr(shape, "graph", None)


def graph_label(shape) -> str | None:
    """``N×F`` / ``34×16`` for node features, ``2×E`` / ``2×156`` for an edge_index; None for
    another shape."""
    level = graph_level(shape)
    if level == "nodes":
        return "×".join([str(shape.nodes or "N"), *map(str, shape)])
    if level == "edges":
        return f"2×{shape.edges or 'E'}"
    return None


def frames_of(shape) -> int | None:
    """T when ``shape`` is one frame of a per-frame chain, else None."""
    return getattr(shape, "frames", None) or None


def full_shape(shape) -> tuple | None:
    """The per-sample shape of the whole tensor: T in front inside a per-frame chain."""
    if shape is None:
        return None
    frames = frames_of(shape)
    return (frames, *shape) if frames else tuple(shape)


def graph_full_shape(shape) -> list | None:
    """The whole tensor of a graph field as a JSON list: ``[N, F]`` (``"N"`` when N varies),
    ``[2, E]``; None for a shape that is not a graph's."""
    level = graph_level(shape)
    if level == "nodes":
        return [shape.nodes or "N", *shape]
    if level == "edges":
        return [2, shape.edges or "E"]
    return None


def fmt_shape(shape: Shape | None) -> str:
    """A shape as the user reads it: ``(16,)``, ``(1, 28, 28)``; inside a per-frame chain
    ``(1, 28, 28) per frame``; a graph's node features ``34×16``, its edges ``2×E``."""
    if shape is None:
        return "?"
    label = graph_label(shape)
    if label is not None:
        return label
    text = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    return f"{text} per frame" if frames_of(shape) else text


def prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
