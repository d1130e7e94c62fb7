"""The confusion matrix of a classifier on the validation set: rows are the true classes, columns
the predicted ones; the colour is the share of the row, the text the count.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from widgets.plots.style import PlotView, follow, image_plot

MAX_TEXT_CLASSES = 20  # beyond this many classes the counts are not written in the cells


class ConfusionView(PlotView):
    """A heatmap of the confusion matrix with the counts written in."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("The confusion matrix appears at the end of each epoch of a "
                         "classifier.", parent)
        self.set_caption("Confusion matrix (validation)")
        self.plot, self.image = image_plot(axes=True)
        self.add_plot(self.plot)
        self.plot.setLabel("bottom", "predicted")
        self.plot.setLabel("left", "true")
        self.texts: list[pg.TextItem] = []
        self.names: list[str] | None = None
        self.matrix: np.ndarray | None = None
        self.restyle()

    def set_class_names(self, names: list[str] | None) -> None:
        self.names = list(names) if names else None

    def prepare(self, classes: int) -> None:
        """Make the cells' text items for ``classes`` now (making a hundred of them when the
        first matrix arrives would cost the window a frame)."""
        wanted = classes * classes if classes <= MAX_TEXT_CLASSES else 0
        while len(self.texts) < wanted:
            text = pg.TextItem(anchor=(0.5, 0.5))
            text.setVisible(False)
            self.plot.addItem(text)
            self.texts.append(text)

    def show_matrix(self, counts: np.ndarray) -> None:
        counts = np.asarray(counts, dtype=np.int64)
        self.matrix = counts
        k = counts.shape[0]
        rows = counts.sum(axis=1, keepdims=True)
        share = counts / np.where(rows > 0, rows, 1)
        self.image.setImage(share.astype(np.float32), autoLevels=False, levels=(0.0, 1.0))
        self._ticks(k)
        self._texts(counts, share)
        accuracy = np.trace(counts) / max(counts.sum(), 1)
        self.plot.setTitle(f"{counts.sum()} samples, {accuracy:.1%} correct", size="9pt")
        follow(self.plot, 0, k, 0, k, padding=0.02)
        self.received += 1
        self.show_plots()

    def _ticks(self, k: int) -> None:
        names = self.names if self.names and len(self.names) == k else [str(i) for i in range(k)]
        ticks = [[(i + 0.5, names[i]) for i in range(k)]]
        self.plot.getAxis("bottom").setTicks(ticks)
        self.plot.getAxis("left").setTicks(ticks)

    def _texts(self, counts: np.ndarray, share: np.ndarray) -> None:
        k = counts.shape[0]
        wanted = k * k if k <= MAX_TEXT_CLASSES else 0
        self.prepare(k)  # made once for a class count, then reused
        for i, text in enumerate(self.texts):
            if i >= wanted:
                text.setVisible(False)
                continue
            r, c = divmod(i, k)
            text.setVisible(True)
            label, color = str(counts[r, c]), "#ffffff" if share[r, c] < 0.55 else "#111111"
            if text.textItem.toPlainText() != label or getattr(text, "shown_color", None) != color:
                text.setText(label, color=color)  # only cells that changed: each costs
                text.shown_color = color
            text.setPos(c + 0.5, r + 0.5)

    def clear(self) -> None:
        self.image.clear()
        for text in self.texts:
            text.setVisible(False)
        self.matrix = None
        super().clear()

    def restyle(self) -> None:
        self.image.setColorMap(pg.colormap.get("viridis"))
