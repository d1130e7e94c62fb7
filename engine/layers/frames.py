"""Per-frame chains: run a sub-network (say a CNN) on every frame of a sequence.

``PerFrame`` takes a sequence of frames, per sample ``(T, C, H, W)`` (or any ``(T, ...)``), and
starts a chain in which each layer sees one frame: its rules infer from the frame's shape and
its module runs on all frames of the batch at once (the frames travel in the batch dimension,
as Keras' ``TimeDistributed`` does). ``MergeFrames`` ends the chain and gives the sequence of
per-frame results, ``(T, F)``, to a recurrent layer, attention or a pooling. Wires inside the
chain read the whole tensor, ``T×C×H×W`` ... ``T×F``; the shape engine
(:mod:`engine.shapes`) keeps T beside each frame's shape (:class:`FrameShape`).
"""
from __future__ import annotations

from .rules import need_rank, no_stats, one
from .spec import FrameShape, LayerSpec, ModuleCall, ShapeError, fmt_shape


def _per_frame_infer(p, ins):
    s = one(ins)
    if getattr(s, "frames", None):
        raise ShapeError(f"PerFrame is already inside a per-frame chain (the input from {s.src} "
                         "is one frame); end that chain with MergeFrames first")
    need_rank("PerFrame", s, tuple(range(2, 8)),
              "a sequence of frames (steps, ...) such as (T, C, H, W)")
    return {"out": FrameShape.of(s[1:], s[0])}


def _merge_frames_infer(p, ins):
    s = one(ins)
    frames = getattr(s, "frames", None)
    if not frames:
        raise ShapeError(f"MergeFrames ends a per-frame chain, but its input {fmt_shape(s)} "
                         f"from {s.src} is not inside one; start the chain with PerFrame")
    return {"out": (frames, *s)}


SPECS = [
    LayerSpec(
        "PerFrame", "Recurrent", "Starts a per-frame chain: the layers after it run on every "
        "frame of a (T, C, H, W) sequence, until MergeFrames.",
        infer=_per_frame_infer, stats=no_stats, extra={"frames": "start"},
        shape_doc="T×d₁×…×dₖ (k ≥ 1) → d₁×…×dₖ per frame: the layers up to MergeFrames see "
                  "one frame and infer from it, T travels along (their wires read T×…); not "
                  "inside another chain.",
        module=lambda p, ins: ModuleCall("FoldFrames", {})),
    LayerSpec(
        "MergeFrames", "Recurrent", "Ends a per-frame chain: the per-frame results become a "
        "(T, features) sequence for LSTM, GRU or attention.",
        infer=_merge_frames_infer, stats=no_stats, extra={"frames": "end"},
        shape_doc="d₁×…×dₖ per frame, inside a chain of T frames → T×d₁×…×dₖ, a whole "
                  "tensor again.",
        module=lambda p, ins: ModuleCall("UnfoldFrames", {"frames": one(ins).frames})),
]
