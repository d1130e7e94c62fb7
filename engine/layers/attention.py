"""Attention layers: multi-head attention, the Transformer encoder layer, positional encoding."""
from __future__ import annotations

import operator

from .rules import need_rank, one
from .spec import (CHOICE, FLOAT, INT, BOOL, InPort, LayerSpec, ModuleCall, Param, ShapeError,
                   Stats, fmt_shape)

_SEQ = "a sequence shaped (steps, features)"


def _heads(layer, e, heads, what):
    if e % heads:
        raise ShapeError(f"{layer} needs the feature size {e} to be divisible by {what} {heads}")


def _kv(ins):
    q = one(ins, "query")
    k = ins["key"][0] if ins.get("key") else q
    v = ins["value"][0] if ins.get("value") else k
    return q, k, v


def _mha_infer(p, ins):
    q, k, v = _kv(ins)
    for s in (q, k, v):
        need_rank("MultiheadAttention", s, (2,), _SEQ)
    _heads("MultiheadAttention", q[1], p["num_heads"], "num_heads")
    if k[0] != v[0]:
        raise ShapeError(f"MultiheadAttention key and value need the same number of steps; got "
                         f"{fmt_shape(k)} and {fmt_shape(v)}")
    return {"out": q}


def _mha_stats(p, ins, outs):
    q, k, v = _kv(ins)
    e, kd, vd = q[1], k[1], v[1]
    b = p["bias"]
    n = e * e + e * kd + e * vd + (3 * e if b else 0) + e * e + (e if b else 0)
    macs = q[0] * e * e * 2 + k[0] * e * (kd + vd) + 2 * q[0] * k[0] * e
    return Stats(n, n, macs)


def _mha_module(p, ins):
    q, k, v = _kv(ins)
    kw = {"embed_dim": q[1], "num_heads": p["num_heads"], "dropout": p["dropout"],
          "bias": p["bias"], "batch_first": True}
    if k[1] != q[1] or v[1] != q[1]:
        kw.update(kdim=k[1], vdim=v[1])
    return ModuleCall("nn.MultiheadAttention", kw)


def _emit_mha(g, name, args, p):
    q = args["query"][0]
    k = args["key"][0] if args.get("key") else q
    v = args["value"][0] if args.get("value") else k
    res = g.call_module(name, (q, k, v), {"need_weights": False})
    return {"out": g.call_function(operator.getitem, (res, 0))}


def _tel_infer(p, ins):
    s = one(ins)
    need_rank("TransformerEncoderLayer", s, (2,), _SEQ)
    _heads("TransformerEncoderLayer", s[1], p["nhead"], "nhead")
    return {"out": s}


def _tel_stats(p, ins, outs):
    t, e = one(ins)
    f = p["dim_feedforward"]
    n = 4 * e * e + 4 * e + 2 * e * f + f + e + 4 * e
    return Stats(n, n, t * (4 * e * e + 2 * e * f) + 2 * t * t * e)


def _pe_infer(p, ins):
    s = one(ins)
    need_rank("PositionalEncoding", s, (2,), _SEQ)
    if s[0] > p["max_len"]:
        raise ShapeError(f"PositionalEncoding max_len {p['max_len']} is shorter than the "
                         f"sequence ({s[0]} steps)")
    return {"out": s}


SPECS = [
    LayerSpec(
        "MultiheadAttention", "Attention", "Scaled dot-product attention over several heads; "
        "key and value default to the query (self-attention).",
        params=(
            Param("num_heads", INT, doc="Parallel attention heads; must divide the feature size.",
                  min=1, starter=4),
            Param("dropout", FLOAT, 0.0, "Dropout on the attention weights.", min=0.0, max=0.99),
            Param("bias", BOOL, True, "Learn projection biases."),
        ),
        inputs=(InPort("query"), InPort("key", optional=True), InPort("value", optional=True)),
        infer=_mha_infer, stats=_mha_stats, module=_mha_module, emit=_emit_mha,
        shape_doc="query T×E, key S×Eₖ, value S×Eᵥ → T×E; key defaults to the query, value "
                  "to the key; num_heads must divide E.",
        key_params=("num_heads",)),
    LayerSpec(
        "TransformerEncoderLayer", "Attention", "Self-attention plus a feed-forward block, each "
        "with a residual connection and layer norm.",
        params=(
            Param("nhead", INT, doc="Attention heads; must divide the feature size.", min=1,
                  starter=4),
            Param("dim_feedforward", INT, 2048, "Width of the feed-forward block.", min=1),
            Param("dropout", FLOAT, 0.1, "Dropout inside the layer.", min=0.0, max=0.99),
            Param("activation", CHOICE, "relu", "Feed-forward activation.",
                  choices=("relu", "gelu")),
            Param("norm_first", BOOL, False, "Normalize before attention (pre-LN) instead of "
                  "after."),
        ),
        infer=_tel_infer, stats=_tel_stats, key_params=("nhead", "dim_feedforward"),
        shape_doc="T×E → T×E (d_model = E); nhead must divide E.",
        module=lambda p, ins: ModuleCall("nn.TransformerEncoderLayer", {
            "d_model": one(ins)[1], **p, "batch_first": True})),
    LayerSpec(
        "PositionalEncoding", "Attention", "Adds sinusoidal position codes so attention knows "
        "the order of steps.",
        params=(Param("max_len", INT, 5000, "Longest sequence supported.", min=1),),
        infer=_pe_infer, stats=lambda p, ins, outs: Stats(macs=one(ins)[0] * one(ins)[1]),
        shape_doc="T×E → T×E (d_model = E); T must be at most max_len.",
        module=lambda p, ins: ModuleCall("PositionalEncoding", {
            "d_model": one(ins)[1], "max_len": p["max_len"]})),
]
