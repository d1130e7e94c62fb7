"""Small helpers shared by the shape rules of the catalog."""
from __future__ import annotations

from .spec import ShapeError, Stats, fmt_shape, prod


class In(tuple):
    """An input shape that remembers which node it came from (for messages)."""

    src: str = "?"
    frames: int | None = None  # T when the shape is one frame of a per-frame chain
    graph: str | None = None  # 'nodes' / 'edges' for a graph's fields (NodeShape, EdgeShape)
    nodes: int = 0
    edges: int = 0

    @classmethod
    def of(cls, shape, src: str) -> "In":
        s = cls(shape)
        s.src = src
        s.frames = getattr(shape, "frames", None) or None
        s.graph = getattr(shape, "graph", None)
        s.nodes = getattr(shape, "nodes", 0)
        s.edges = getattr(shape, "edges", 0)
        return s


def one(ins: dict, port: str = "in") -> tuple:
    return ins[port][0]


def need_rank(layer: str, shape: tuple, ranks: tuple[int, ...], what: str, hint: str = "") -> None:
    if len(shape) not in ranks:
        msg = f"{layer} needs {what}; got {fmt_shape(shape)} from {getattr(shape, 'src', '?')}"
        raise ShapeError(msg + (f". {hint}" if hint else ""))


def same_shape(p, ins):
    return {"out": tuple(one(ins))}


def no_stats(p, ins, outs) -> Stats:
    return Stats()


def elementwise_macs(p, ins, outs) -> Stats:
    return Stats(macs=prod(outs["out"]))


def pair(v, n: int = 2) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * n


def torch_dim(layer: str, dim: int, shape: tuple) -> int:
    """Map a torch dim (counting the batch as 0) to an index into the per-sample shape."""
    nd = len(shape) + 1
    full = dim if dim >= 0 else nd + dim
    if not 1 <= full < nd:
        raise ShapeError(f"{layer} dim {dim} does not fit input {fmt_shape(shape)} "
                         f"(dim 0 is the batch; use 1..{nd - 1} or -1..-{nd - 1})")
    return full - 1
