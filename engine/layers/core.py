"""I/O and core layers: Input, Output, Linear, Flatten, Reshape, Dropout, Embedding."""
from __future__ import annotations

from .rules import no_stats, one, same_shape, torch_dim, need_rank
from .spec import (BOOL, FLOAT, INT, SHAPE, STR, LayerSpec, ModuleCall, Param,
                   ShapeError, Stats, fmt_shape, prod)


def _linear_infer(p, ins):
    s = one(ins)
    need_rank("Linear", s, tuple(range(1, 8)), "an input with at least one dimension")
    return {"out": s[:-1] + (p["out_features"],)}


def _linear_stats(p, ins, outs):
    s = one(ins)
    n = s[-1] * p["out_features"] + (p["out_features"] if p["bias"] else 0)
    return Stats(n, n, s[-1] * p["out_features"] * prod(s[:-1]))


def _flatten_span(p, s):
    start = torch_dim("Flatten", p["start_dim"], s)
    end = torch_dim("Flatten", p["end_dim"], s)
    if start > end:
        raise ShapeError(f"Flatten start_dim {p['start_dim']} comes after end_dim {p['end_dim']} "
                         f"for input {fmt_shape(s)}")
    return start, end


def _flatten_infer(p, ins):
    s = one(ins)
    start, end = _flatten_span(p, s)
    return {"out": s[:start] + (prod(s[start:end + 1]),) + s[end + 1:]}


def _reshape_infer(p, ins):
    s, target = one(ins), p["shape"]
    total, known = prod(s), prod(x for x in target if x != -1)
    if -1 in target:
        if total % known:
            raise ShapeError(f"Reshape cannot fit {total} values of {fmt_shape(s)} into "
                             f"{fmt_shape(target)}")
        target = tuple(total // known if x == -1 else x for x in target)
    if prod(target) != total:
        raise ShapeError(f"Reshape needs {prod(target)} values for {fmt_shape(target)}; "
                         f"input {fmt_shape(s)} has {total}")
    return {"out": tuple(target)}


def _embedding_stats(p, ins, outs):
    n = p["num_embeddings"] * p["embedding_dim"]
    return Stats(n, n, 0)


def _emit_embedding(g, name, args, p):
    (x,) = args["in"]
    return {"out": g.call_module(name, (g.call_method("long", (x,)),))}


SPECS = [
    LayerSpec(
        "Input", "I/O", "Feeds a field of the dataset (or noise, for a generator) into the model.",
        params=(
            Param("shape", SHAPE, None, "Sample shape without the batch; taken from the dataset "
                  "when empty.", optional=True),
            Param("key", STR, "x", "Which dataset field this input reads."),
        ),
        inputs=(), key_params=("shape",),
        shape_doc="nothing → shape, or the per-sample shape of the dataset field key when shape "
                  "is empty (no −1 entries; a graph field stays N×F or 2×E)."),
    LayerSpec("Output", "I/O", "Marks a model output; the task's loss compares it with targets.",
              outputs=(), shape_doc="any shape S → no wire: S is the shape of the model's "
                                    "output (not one frame of a per-frame chain)."),
    LayerSpec(
        "Linear", "Core", "Fully connected layer: y = x·Wᵀ + b over the last dimension.",
        params=(
            Param("out_features", INT, doc="Number of output units.", min=1, starter=32),
            Param("bias", BOOL, True, "Learn an additive bias."),
        ),
        infer=_linear_infer, stats=_linear_stats, key_params=("out_features",),
        shape_doc="… × in → … × out_features: acts on the last axis (in = its size) and keeps "
                  "every axis before it; the input needs at least one axis.",
        module=lambda p, ins: ModuleCall("nn.Linear", {
            "in_features": one(ins)[-1], "out_features": p["out_features"], "bias": p["bias"]})),
    LayerSpec(
        "Flatten", "Core", "Flattens dimensions start_dim..end_dim into one (keeps the batch).",
        params=(
            Param("start_dim", INT, 1, "First dimension to flatten (0 is the batch)."),
            Param("end_dim", INT, -1, "Last dimension to flatten."),
        ),
        infer=_flatten_infer, stats=no_stats,
        shape_doc="d₁×…×dₙ → the axes start_dim..end_dim multiplied into one, the others kept "
                  "(torch numbering: 0 is the batch, which stays; negative counts from the end); "
                  "with the defaults C×H×W → C·H·W.",
        module=lambda p, ins: ModuleCall("nn.Flatten", {
            "start_dim": p["start_dim"], "end_dim": p["end_dim"]})),
    LayerSpec(
        "Reshape", "Core", "Reshapes each sample to the given shape (the batch is kept).",
        params=(Param("shape", SHAPE, doc="Target sample shape, e.g. [1, 8, 8]; one entry may "
                      "be -1.", starter=[-1]),),
        infer=_reshape_infer, stats=no_stats, key_params=("shape",),
        shape_doc="any shape of n values → shape, whose product must be n; one −1 entry "
                  "becomes n ÷ (the product of the others).",
        module=lambda p, ins: ModuleCall("Reshape", {"shape": tuple(p["shape"])})),
    LayerSpec(
        "Dropout", "Core", "Zeroes random elements with probability p while training.",
        params=(Param("p", FLOAT, 0.5, "Probability of dropping an element.", min=0.0, max=0.99),),
        infer=same_shape, stats=no_stats, key_params=("p",),
        shape_doc="any shape → the same shape.",
        module=lambda p, ins: ModuleCall("nn.Dropout", {"p": p["p"]})),
    LayerSpec(
        "Embedding", "Core", "Looks up a learned vector for each integer token.",
        params=(
            Param("num_embeddings", INT, doc="Vocabulary size (largest token + 1).", min=1,
                  starter=100),
            Param("embedding_dim", INT, doc="Length of each token's vector.", min=1, starter=32),
        ),
        infer=lambda p, ins: {"out": one(ins) + (p["embedding_dim"],)},
        stats=_embedding_stats, emit=_emit_embedding,
        shape_doc="… (integer tokens) → … × embedding_dim: one vector per token, e.g. "
                  "T → T×embedding_dim.",
        key_params=("num_embeddings", "embedding_dim"),
        module=lambda p, ins: ModuleCall("nn.Embedding", {
            "num_embeddings": p["num_embeddings"], "embedding_dim": p["embedding_dim"]})),
]
