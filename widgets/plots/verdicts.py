"""When a gradient norm counts as vanishing or exploding (no Qt, no pyqtgraph: the canvas
overlay reads these without loading the plots)."""
from __future__ import annotations

import math

VANISHING = 1e-6  # a layer whose gradient norm stays below this learns nothing
EXPLODING = 1e2  # above this a step throws the weights far


def gradient_verdict(norm: float) -> str | None:
    """'vanishing', 'exploding' or None for a (recent, typical) gradient norm."""
    if not math.isfinite(norm) or norm > EXPLODING:
        return "exploding"
    if norm < VANISHING:
        return "vanishing"
    return None
