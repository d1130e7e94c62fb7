"""Training drawn on the canvas itself: each layer tinted by its mean |activation| (relative to the
model's largest), each wire as thick as the gradient that flows along it (relative, over three
decades), and layers whose gradients vanish or explode flagged with a badge.

A wire's gradient is the gradient norm of the nearest layer with weights at or below it in the
graph (that is where its gradient comes from); wires with none below take their source's.
"""
from __future__ import annotations

import math
import time

import numpy as np

from widgets.plots.verdicts import gradient_verdict

MIN_INTERVAL_S = 1.0  # the canvas is repainted at most once a second
DECADES = 3.0
RECENT = 20  # gradient-norm rows averaged for a verdict
STEPS = 20  # tints and strengths are rounded to 1/STEPS: a tiny change repaints nothing


class CanvasOverlay:
    """Keeps the canvases' tints, wire strengths and badges in step with the probes."""

    def __init__(self, window):
        self.window = window
        self._last = 0.0
        self._shown: dict = {}  # (kind, model, key) -> value on screen
        self._recent: dict[str, dict[str, np.ndarray]] = {}
        self._means: dict = {}
        self._dirty = False

    def clear(self) -> None:
        for (kind, model, key) in list(self._shown):
            canvas = self.window.canvases.get(model)
            if canvas is None:
                continue
            if kind == "tint":
                canvas.scene.set_node_tint(key, None)
            elif kind == "badge":
                canvas.scene.set_node_badge(key, None)
            elif kind == "edge":
                canvas.scene.set_edge_strength(key, None)
        self._shown, self._recent, self._means, self._dirty = {}, {}, {}, False

    def feed(self, probes: dict | None) -> None:
        """Remember a probe (cheap); :meth:`draw` shows it."""
        if not probes:
            return
        for model, norms in probes.get("grad_norms", {}).items():
            values = np.asarray(norms["values"])[-RECENT:]
            self._recent[model] = {n: values[:, j] for j, n in enumerate(norms["nodes"])}
        if probes.get("means"):
            self._means = probes["means"]
        self._dirty = True

    def draw(self, force: bool = False) -> bool:
        """Repaint what changed, at most every MIN_INTERVAL_S; True if it ran."""
        now = time.perf_counter()
        if not self._dirty or (not force and now - self._last < MIN_INTERVAL_S):
            return False
        self._last, self._dirty = now, False
        for model, canvas in self.window.canvases.items():
            if self._means.get(model):
                self._tint(model, canvas.scene, self._means[model])
            if model in self._recent:
                self._gradients(model, canvas)
        return True

    def apply(self, probes: dict | None, force: bool = False) -> None:
        self.feed(probes)
        self.draw(force)

    def _show(self, kind: str, model: str, key, value, setter) -> None:
        if self._shown.get((kind, model, key), "unset") != value:
            self._shown[(kind, model, key)] = value
            setter(value)

    def _tint(self, model: str, scene, means: dict) -> None:
        top = max((v for v in means.values() if math.isfinite(v)), default=0.0)
        for node, value in means.items():
            tint = round(value / top * STEPS) / STEPS if top > 0 and math.isfinite(value) \
                else None
            self._show("tint", model, node, tint, lambda v, n=node: scene.set_node_tint(n, v))

    def _gradients(self, model: str, canvas) -> None:
        scene = canvas.scene
        norms = {n: float(np.mean(v)) for n, v in self._recent[model].items() if len(v)}
        for node, norm in norms.items():
            verdict = gradient_verdict(norm)
            badge = (f"{verdict} gradient", "error" if verdict == "exploding" else "warning") \
                if verdict else None
            self._show("badge", model, node, badge,
                       lambda b, n=node: scene.set_node_badge(n, *(b or (None,))))
        top = max((v for v in norms.values() if math.isfinite(v)), default=0.0)
        if top <= 0:
            return
        graph = canvas.graph
        for edge in graph.edges():
            source = gradient_source(graph, edge.dst, norms) or gradient_source(
                graph, edge.src, norms)
            value = norms.get(source) if source else None
            shown = None if value is None else round(strength(value, top) * STEPS) / STEPS
            self._show("edge", model, edge, shown,
                       lambda v, e=edge: scene.set_edge_strength(e, v))


def strength(norm: float, top: float) -> float:
    """0.05..1 on a log scale: ``top`` gives 1, three decades below gives the minimum."""
    if not math.isfinite(norm):
        return 1.0
    if norm <= 0:
        return 0.05
    return float(min(1.0, max(0.05, 1.0 + math.log10(norm / top) / DECADES)))


def gradient_source(graph, node: str, norms: dict) -> str | None:
    """The first layer with a gradient norm at ``node`` or downstream of it (breadth first)."""
    seen, queue = {node}, [node]
    while queue:
        current = queue.pop(0)
        if current in norms:
            return current
        for nxt in graph.successors(current):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return None
