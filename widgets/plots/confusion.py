"""The confusion matrix of a classifier on the validation set: rows are the true classes, columns
the predicted ones; the colour is the share of the row, the text the count.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QWidget

from widgets.plots.style import PlotView, image_plot

MAX_TEXT_CLASSES = 20  # beyond this many classes the counts are not written in the cells
LIGHT_TEXT, DARK_TEXT = QColor("#ffffff"), QColor("#111111")


class CellLabels(pg.GraphicsObject):
    """The counts written in the cells of a k×k matrix: one item that draws them all, at a
    fixed size on screen (a hundred TextItems cost a frame on every repaint of the plot)."""

    def __init__(self):
        super().__init__()
        self.cells: list[tuple[float, float, str, QColor]] = []  # centre x, y, text, colour
        self._bounds = QRectF()
        self.font = QFont()

    def set_cells(self, counts: np.ndarray, share: np.ndarray) -> None:
        k = counts.shape[0]
        self.prepareGeometryChange()
        self._bounds = QRectF(0, 0, k, k)
        self.cells = [] if k > MAX_TEXT_CLASSES else [
            (c + 0.5, r + 0.5, str(counts[r, c]), LIGHT_TEXT if share[r, c] < 0.55 else DARK_TEXT)
            for r in range(k) for c in range(k)]
        self.update()

    def texts(self) -> list[str]:
        return [text for _x, _y, text, _c in self.cells]

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        return self._bounds

    def paint(self, painter, *_args) -> None:
        if not self.cells:
            return
        transform = painter.transform()
        corner, step = transform.map(QPointF(0, 0)), transform.map(QPointF(1, 1))
        width, height = abs(step.x() - corner.x()), abs(step.y() - corner.y())
        longest = max(len(text) for _x, _y, text, _c in self.cells)
        size = int(min(14, height * 0.6, width * 1.5 / longest))  # a digit is ~0.6 em wide
        if size < 6:
            return  # cells too small to read a number in
        self.font.setPixelSize(size)
        painter.save()
        painter.resetTransform()  # text in pixels: it must not scale with the view
        painter.setFont(self.font)
        for x, y, text, color in self.cells:
            centre = transform.map(QPointF(x, y))
            painter.setPen(color)
            painter.drawText(QRectF(centre.x() - width / 2, centre.y() - height / 2, width,
                                    height), Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()


class ConfusionView(PlotView):
    """A heatmap of the confusion matrix with the counts written in; a click on a cell says
    which (the Try dock opens its samples)."""

    cell_clicked = Signal(int, int)  # true class, predicted class

    def __init__(self, parent: QWidget | None = None):
        super().__init__("The confusion matrix appears at the end of each epoch of a "
                         "classifier.", parent)
        self.set_caption("Confusion matrix (validation)")
        self.plot, self.image = image_plot(axes=True)
        self.add_plot(self.plot)
        self.plot.setLabel("bottom", "predicted")
        self.plot.setLabel("left", "true")
        self.labels = CellLabels()
        self.plot.addItem(self.labels)
        self.names: list[str] | None = None
        self.matrix: np.ndarray | None = None
        self._k = 0
        self.restyle()
        self.graphics.scene().sigMouseClicked.connect(self._clicked)

    def _clicked(self, event) -> None:
        """A click on a cell: ``cell_clicked(true, predicted)``."""
        if self.matrix is None or event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.scenePos()
        if not self.plot.vb.sceneBoundingRect().contains(pos):
            return
        point = self.plot.vb.mapSceneToView(pos)
        col, row = int(np.floor(point.x())), int(np.floor(point.y()))
        k = self.matrix.shape[0]
        if 0 <= row < k and 0 <= col < k:
            self.cell_clicked.emit(row, col)

    def cell_center(self, true: int, predicted: int):
        """Where cell (true, predicted) is in the view's widget coordinates (tests click it)."""
        scene = self.plot.vb.mapViewToScene(QPointF(predicted + 0.5, true + 0.5))
        return self.graphics.mapFromScene(scene)

    def set_class_names(self, names: list[str] | None) -> None:
        self.names = list(names) if names else None
        self._k = 0  # the ticks are written again at the next matrix

    def prepare(self, classes: int) -> None:
        """Frame a ``classes``-class matrix now (before the first one arrives)."""
        self._frame(classes)

    def show_matrix(self, counts: np.ndarray) -> None:
        counts = np.asarray(counts, dtype=np.int64)
        self.matrix = counts
        k = counts.shape[0]
        rows = counts.sum(axis=1, keepdims=True)
        share = counts / np.where(rows > 0, rows, 1)
        self.image.setImage(share.astype(np.float32), autoLevels=False, levels=(0.0, 1.0))
        self._frame(k)
        self.labels.set_cells(counts, share)
        accuracy = np.trace(counts) / max(counts.sum(), 1)
        self.plot.setTitle(f"{counts.sum()} samples, {accuracy:.1%} correct", size="9pt")
        self.received += 1
        self.show_plots()

    def _frame(self, k: int) -> None:
        """Ticks named after the classes and a fixed range (only when the class count
        changes: a steady range keeps the axes' drawings cached)."""
        if k == self._k:
            return
        self._k = k
        names = self.names if self.names and len(self.names) == k else [str(i) for i in range(k)]
        ticks = [[(i + 0.5, names[i]) for i in range(k)]]
        self.plot.getAxis("bottom").setTicks(ticks)
        self.plot.getAxis("left").setTicks(ticks)
        self.plot.getViewBox().setRange(xRange=(0, k), yRange=(0, k), padding=0.02)

    def clear(self) -> None:
        self.image.clear()
        self.labels.set_cells(np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0)))
        self.matrix = None
        super().clear()

    def restyle(self) -> None:
        self.image.setColorMap(pg.colormap.get("viridis"))
