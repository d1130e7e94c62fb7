"""The decision boundary of a 2-D classifier, redrawn as it learns (as TensorFlow Playground
does): each grid cell takes the colour of the predicted class, stronger where the model is
surer, with the data points on top.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QWidget

from widgets.plots.style import PlotView, new_plot, series_color

MAX_POINTS = 1500
CLASS_COLORS = ("#f59322", "#0877bd", "#10b981", "#ef4444", "#8b5cf6", "#ec4899", "#84cc16",
                "#06b6d4", "#eab308", "#64748b")


def class_color(k: int) -> str:
    return CLASS_COLORS[k] if k < len(CLASS_COLORS) else series_color(k)


def confidence(score: np.ndarray, classes: int) -> np.ndarray:
    """0 (a coin toss) .. 1 (certain) from the probe's score: the top class probability, or for
    two classes also the probability of class 1 (both give |p - 0.5| * 2)."""
    if classes <= 2:
        return np.clip(np.abs(score - 0.5) * 2.0, 0.0, 1.0)
    return np.clip((score - 1.0 / classes) / (1.0 - 1.0 / classes), 0.0, 1.0)


def boundary_rgb(classes: np.ndarray, score: np.ndarray, n_classes: int,
                 background: str) -> np.ndarray:
    """(rows, cols, 3) uint8: the class colour mixed with the background by confidence."""
    palette = np.array([QColor(class_color(k)).getRgb()[:3] for k in range(max(n_classes, 2))],
                       dtype=np.float32)
    bg = np.array(QColor(background).getRgb()[:3], dtype=np.float32)
    weight = 0.18 + 0.62 * confidence(score, n_classes)[..., None]
    colors = palette[np.clip(classes, 0, len(palette) - 1)]
    return (bg * (1 - weight) + colors * weight).astype(np.uint8)


class BoundaryView(PlotView):
    """Predicted class over the input plane, with the training points."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("The decision boundary appears here while a classifier with two "
                         "inputs trains.", parent)
        self.set_caption("Decision boundary")
        self.plot = self.add_plot(new_plot("", "x₁", "x₂"))
        self.plot.setAspectLocked(True)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.points = pg.ScatterPlotItem(size=6)
        self.points.setZValue(10)
        self.plot.addItem(self.points)
        self.n_classes = 2
        self._labels: np.ndarray | None = None
        self._last = None
        self.restyle()

    def set_points(self, x: np.ndarray, labels: np.ndarray, n_classes: int) -> None:
        """The data drawn on top (once per run)."""
        x, labels = np.asarray(x)[:MAX_POINTS], np.asarray(labels)[:MAX_POINTS].astype(int)
        self.n_classes = max(int(n_classes), 2)
        self._labels = labels
        brushes = [pg.mkBrush(class_color(k)) for k in range(self.n_classes)]
        self.points.setData(pos=x[:, :2], brush=[brushes[k % len(brushes)] for k in labels],
                            pen=pg.mkPen(self.theme.background, width=0.8))
        lo, hi = x[:, :2].min(axis=0).astype(float), x[:, :2].max(axis=0).astype(float)
        self.plot.setRange(xRange=(lo[0], hi[0]), yRange=(lo[1], hi[1]), padding=0.08)

    def show_boundary(self, xs: np.ndarray, ys: np.ndarray, classes: np.ndarray,
                      score: np.ndarray) -> None:
        """``classes``/``score`` (len(ys), len(xs)) over the grid ``xs`` × ``ys``."""
        self._last = (xs, ys, classes, score)
        rgb = boundary_rgb(np.asarray(classes), np.asarray(score), self.n_classes,
                           self.theme.background)
        self.image.setImage(rgb, autoLevels=False, levels=(0, 255))
        xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        dx = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)
        dy = (ys[-1] - ys[0]) / max(len(ys) - 1, 1)
        self.image.setRect(QRectF(xs[0] - dx / 2, ys[0] - dy / 2, xs[-1] - xs[0] + dx,
                                  ys[-1] - ys[0] + dy))
        self.received += 1
        self.show_plots()

    def clear(self) -> None:
        self.image.clear()
        self.points.clear()
        self._last = None
        super().clear()

    def restyle(self) -> None:
        self.points.setPen(pg.mkPen(self.theme.background, width=0.8))
        if self._last is not None:
            self.show_boundary(*self._last)
