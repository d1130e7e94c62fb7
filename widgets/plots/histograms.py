"""Weight and gradient histograms of one layer over time: an image whose columns are the
histograms at successive steps (x: step, y: value, colour: how many values fall there).

Each probe histogram covers its own range; the columns are re-binned onto one common value axis
(the union of the ranges) by interpolating the cumulative counts, so the image can be drawn in
one ``setImage``.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QWidget

from widgets.plots.style import PlotView, StickyY, follow, new_plot, steady_axes

MAX_COLUMNS = 200
ROWS = 64
COLORMAP = "CET-L17"  # white -> yellow -> red -> dark: reads on both themes
COLORMAP_DARK = "inferno"


def rebin(columns: list[tuple[np.ndarray, float, float]], rows: int = ROWS
          ) -> tuple[np.ndarray, float, float]:
    """Histograms ``(counts, lo, hi)`` onto ``rows`` common bins: (rows, columns) image, lo, hi.

    Each column is scaled to its own maximum (log counts), so every step's shape shows."""
    lo = min(c[1] for c in columns)
    hi = max(c[2] for c in columns)
    if hi <= lo:
        hi = lo + 1e-6
    edges = np.linspace(lo, hi, rows + 1)
    image = np.zeros((rows, len(columns)), dtype=np.float32)
    for j, (counts, c_lo, c_hi) in enumerate(columns):
        counts = np.asarray(counts, dtype=np.float64)
        if c_hi <= c_lo:  # every value equal: one spike
            row = min(rows - 1, int((c_lo - lo) / (hi - lo) * rows))
            image[row, j] = 1.0
            continue
        own = np.linspace(c_lo, c_hi, counts.size + 1)
        cum = np.concatenate([[0.0], np.cumsum(counts)])
        column = np.diff(np.interp(edges, own, cum))
        column = np.log1p(column)
        top = column.max()
        image[:, j] = column / top if top > 0 else column
    return image, float(lo), float(hi)


class _Track:
    """The histograms of one quantity (weights or gradients) and its image."""

    def __init__(self, title: str):
        self.plot = new_plot(title, "step", "value")
        steady_axes(self.plot)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.columns: list[tuple[np.ndarray, float, float]] = []
        self.steps: list[int] = []
        self.range = StickyY(self.plot, headroom=0.02)
        self.span: int | None = None  # the x axis shows steps 0..span when known

    def add(self, step: int, hist) -> None:
        counts, lo, hi = hist
        self.columns.append((np.asarray(counts), float(lo), float(hi)))
        self.steps.append(int(step))
        if len(self.columns) > MAX_COLUMNS:  # keep the history, at half the resolution
            self.columns = self.columns[::2]
            self.steps = self.steps[::2]

    def draw(self) -> None:
        if not self.columns:
            self.image.clear()
            return
        image, lo, hi = rebin(self.columns)
        self.image.setImage(image, autoLevels=False, levels=(0.0, 1.0))
        first, last = self.steps[0], self.steps[-1]
        width = max(last - first, 1) * len(self.steps) / max(len(self.steps) - 1, 1)
        self.image.setRect(QRectF(first, lo, width, hi - lo))
        self.range.lo, self.range.hi = lo, hi
        self.range.fit()
        if self.span is None:
            follow(self.plot, first, first + width, lo, hi)

    def reset(self) -> None:
        self.columns, self.steps = [], []
        self.image.clear()


class HistogramsView(PlotView):
    """Weights (top) and gradients (bottom) of the selected layer, step by step."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Select a layer with weights on the canvas to follow its weight and "
                         "gradient histograms.", parent)
        self.set_caption("Weights and gradients")
        self.weights = _Track("Weights")
        self.grads = _Track("Gradients")
        self.add_plot(self.weights.plot, row=0, col=0)
        self.add_plot(self.grads.plot, row=1, col=0)
        self.grads.plot.setXLink(self.weights.plot)
        self.layer: str | None = None
        self.restyle()

    def set_span(self, steps: int) -> None:
        """Show steps 0..``steps`` on the x axis (the whole run) from the start."""
        for track in (self.weights, self.grads):
            track.span = steps
            track.plot.setXRange(0, max(1, steps), padding=0.01)

    def set_layer(self, layer: str | None) -> None:
        """Follow another layer (its history starts now)."""
        if layer != self.layer:
            self.layer = layer
            self.weights.reset()
            self.grads.reset()
            self.set_caption(f"Weights and gradients of {layer}" if layer else
                             "Weights and gradients")
            self.show_hint()

    def add(self, step: int, weight=None, grad=None, draw: bool = True) -> None:
        """One probe: ``(counts, lo, hi)`` of the weights and of the gradients (either may be
        None). With ``draw=False`` it is kept and drawn at the next :meth:`redraw`."""
        for track, hist in ((self.weights, weight), (self.grads, grad)):
            if hist is not None:
                track.add(step, hist)
        self.received += 1
        if draw:
            self.redraw()

    def redraw(self) -> None:
        self.weights.draw()
        self.grads.draw()
        if self.weights.columns or self.grads.columns:
            self.show_plots()

    def clear(self) -> None:
        self.weights.reset()
        self.grads.reset()
        super().clear()

    def restyle(self) -> None:
        cmap = pg.colormap.get(COLORMAP_DARK if self.theme.dark else COLORMAP)
        for track in (self.weights, self.grads):
            track.image.setColorMap(cmap)
