"""Gradient flow: the gradient norm of every layer over the steps, on a log scale, with the bands
where gradients vanish or explode shaded.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from widgets.plots.curves import Growing
from widgets.plots.style import PlotView, StickyY, faded, new_plot, series_color, steady_axes
from widgets.plots.verdicts import EXPLODING, VANISHING, gradient_verdict  # noqa: F401

FLOOR = 1e-12  # zero norms are drawn here on the log axis
MAX_LEGEND = 12


class GradientsView(PlotView):
    """One curve per layer (``model:node``), gradient norm against the training step."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Gradient norms per layer appear here once training starts.", parent)
        self.set_caption("Gradient flow")
        self.plot = self.add_plot(new_plot("Gradient norm per layer", "step", "‖grad‖"))
        self.plot.setLogMode(y=True)
        steady_axes(self.plot)
        self.range = StickyY(self.plot)
        self.range.log = True
        self.legend = self.add_legend(row=0, col=1, columns=1)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.data: dict[str, Growing] = {}
        self._bands = [
            pg.LinearRegionItem((math.log10(FLOOR), math.log10(VANISHING)), "horizontal",
                                movable=False),
            pg.LinearRegionItem((math.log10(EXPLODING), math.log10(EXPLODING) + 12),
                                "horizontal", movable=False)]
        self._lines = [
            pg.InfiniteLine(math.log10(VANISHING), angle=0, label="vanishing",
                            labelOpts={"position": 0.06}),
            pg.InfiniteLine(math.log10(EXPLODING), angle=0, label="exploding",
                            labelOpts={"position": 0.06})]
        for item in (*self._bands, *self._lines):
            item.setZValue(-20)
            self.plot.addItem(item, ignoreBounds=True)
        self.restyle()

    def clear(self) -> None:
        for curve in self.curves.values():
            self.plot.removeItem(curve)
            self.legend.removeItem(curve)
        self.curves, self.data = {}, {}
        self.range.reset()
        self.range.log = True
        super().clear()

    def prepare(self, layers) -> None:
        """Make the curves of these layers now, before data arrive."""
        for layer in layers:
            self._curve(layer)

    def set_span(self, steps: int) -> None:
        """Show steps 0..``steps`` (the whole run) on the x axis from the start."""
        self.plot.setXRange(0, max(1, steps), padding=0.01)

    def append(self, steps, layers: list[str], values: np.ndarray, draw: bool = True) -> None:
        """``values`` (k, len(layers)): the norms of ``layers`` at the ``steps`` (k,). With
        ``draw=False`` the data are kept and drawn at the next :meth:`redraw`."""
        values = np.atleast_2d(np.asarray(values, dtype=np.float64))
        for j, layer in enumerate(layers):
            self._curve(layer)
            self.data[layer].append(steps, np.maximum(values[:, j], FLOOR))
        self.range.include(np.maximum(values, FLOOR))
        self.received += 1
        if draw:
            self.redraw()

    def redraw(self) -> None:
        for layer, curve in self.curves.items():
            curve.setData(self.data[layer].x, self.data[layer].y)
        self.range.fit()
        if self.curves:
            self.show_plots()

    def _curve(self, layer: str) -> pg.PlotDataItem:
        curve = self.curves.get(layer)
        if curve is None:
            color = series_color(len(self.curves))
            curve = self.plot.plot(pen=pg.mkPen(color, width=1))  # wider: 2x the paint time
            if len(self.curves) < MAX_LEGEND:
                self.legend.addItem(curve, layer)
            curve.setClipToView(True)
            curve.setDownsampling(auto=True, method="peak")
            self.curves[layer] = curve
            self.data[layer] = Growing()
        return curve

    def latest(self, layer: str) -> float | None:
        data = self.data.get(layer)
        return float(data.y[-1]) if data is not None and len(data) else None

    def restyle(self) -> None:
        bad = faded("#ef4444", 28 if not self.theme.dark else 40)
        for band in self._bands:
            band.setBrush(pg.mkBrush(bad))
            for line in band.lines:
                line.setPen(pg.mkPen(None))
        for line in self._lines:
            line.setPen(pg.mkPen(faded("#ef4444", 150), width=1, style=pg.QtCore.Qt.PenStyle.DashLine))
            line.label.setColor(self.theme.muted)
