"""Merge layers (Add, Multiply, Concat) and the VAE's Reparameterize."""
from __future__ import annotations

import operator

from .rules import elementwise_macs, no_stats, torch_dim
from .spec import INT, InPort, LayerSpec, ModuleCall, Param, ShapeError, fmt_shape


def _describe(shapes) -> str:
    parts = [f"{fmt_shape(s)} from {getattr(s, 'src', '?')}" for s in shapes]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _two_or_more(layer, ins):
    shapes = ins["in"]
    if len(shapes) < 2:
        raise ShapeError(f"{layer} needs two or more inputs; got {len(shapes)}")
    return shapes


def _same_infer(layer):
    def infer(p, ins):
        shapes = _two_or_more(layer, ins)
        if any(tuple(s) != tuple(shapes[0]) for s in shapes):
            raise ShapeError(f"{layer} needs inputs of one shape; got {_describe(shapes)}")
        return {"out": tuple(shapes[0])}
    return infer


def _concat_infer(p, ins):
    shapes = _two_or_more("Concat", ins)
    first = shapes[0]
    if any(len(s) != len(first) for s in shapes):
        raise ShapeError(f"Concat needs inputs with the same number of dimensions; got "
                         f"{_describe(shapes)}")
    d = torch_dim("Concat", p["dim"], first)
    for s in shapes:
        if any(a != b for i, (a, b) in enumerate(zip(s, first)) if i != d):
            raise ShapeError(f"Concat along dim {p['dim']} needs the other dimensions to match; "
                             f"got {_describe(shapes)}")
    return {"out": first[:d] + (sum(s[d] for s in shapes),) + first[d + 1:]}


def _emit_fold(op):
    def emit(g, name, args, p):
        xs = args["in"]
        acc = xs[0]
        for x in xs[1:]:
            acc = g.call_function(op, (acc, x))
        return {"out": acc}
    return emit


def _emit_concat(g, name, args, p):
    import torch

    return {"out": g.call_function(torch.cat, (list(args["in"]),), {"dim": p["dim"]})}


def _reparam_infer(p, ins):
    mu, logvar = ins["mu"][0], ins["logvar"][0]
    if tuple(mu) != tuple(logvar):
        raise ShapeError(f"Reparameterize needs mu and logvar of one shape; got "
                         f"{_describe([mu, logvar])}")
    return {"out": tuple(mu)}


SPECS = [
    LayerSpec("Add", "Merge", "Adds its inputs element by element (residual connections).",
              inputs=(InPort("in", multi=True),), infer=_same_infer("Add"),
              shape_doc="two or more inputs of one shape S → S.",
              stats=elementwise_macs, emit=_emit_fold(operator.add)),
    LayerSpec("Multiply", "Merge", "Multiplies its inputs element by element (gating).",
              inputs=(InPort("in", multi=True),), infer=_same_infer("Multiply"),
              shape_doc="two or more inputs of one shape S → S.",
              stats=elementwise_macs, emit=_emit_fold(operator.mul)),
    LayerSpec("Concat", "Merge", "Joins its inputs along dim, in the order the wires were "
              "connected.",
              params=(Param("dim", INT, 1, "Dimension to join along (0 is the batch; 1 is "
                            "features or channels)."),),
              inputs=(InPort("in", multi=True),), infer=_concat_infer,
              shape_doc="two or more inputs of one rank that agree on every axis but dim → "
                        "that shape with the dim sizes added (torch numbering: 0 is the batch, "
                        "1 the first axis), e.g. 32 and 16 → 48.",
              stats=no_stats, emit=_emit_concat, key_params=("dim",)),
    LayerSpec("Reparameterize", "Generative", "VAE sampling z = mu + ε·exp(logvar/2) while "
              "training; the mean at evaluation.",
              inputs=(InPort("mu"), InPort("logvar")), infer=_reparam_infer,
              shape_doc="mu S and logvar S (one shape) → S.",
              stats=elementwise_macs,
              module=lambda p, ins: ModuleCall("Reparameterize", {})),
]
