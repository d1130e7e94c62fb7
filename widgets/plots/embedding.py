"""A 2-D map of a layer's activations over the validation set (PCA or t-SNE), one dot per
sample coloured by its class; a click on a dot says which sample (the Try dock opens it)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal
from PySide6.QtWidgets import QWidget

from widgets.plots.style import PlotView, legend, new_plot, series_color, style_legend


class EmbeddingView(PlotView):
    point_clicked = Signal(int)  # the sample index

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Pick a layer and press Map: each validation sample becomes a dot, "
                         "placed by what that layer makes of it.", parent)
        self.set_caption("Embedding")
        self.plot = new_plot()
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.add_plot(self.plot)
        self.key = legend(columns=5)
        self.key.setParentItem(self.plot.vb)
        self.key.anchor((0, 0), (0, 0), offset=(4, 2))
        self.scatter = pg.ScatterPlotItem(size=7, pen=None, hoverable=True)
        self.scatter.sigClicked.connect(self._clicked)
        self.plot.addItem(self.scatter)
        self.points = np.zeros((0, 2))
        self.index: list[int] = []
        self.labels: np.ndarray | None = None

    def show_points(self, points: np.ndarray, index: list[int], labels=None,
                    names: list[str] | None = None, title: str = "") -> None:
        self.points, self.index = np.asarray(points, float), list(index)
        self.labels = None if labels is None else np.asarray(labels)
        self.key.clear()
        if self.labels is not None:
            brushes = [pg.mkBrush(series_color(int(k))) for k in self.labels]
            for k in sorted(set(self.labels.tolist())):
                name = names[k] if names and 0 <= k < len(names) else str(k)
                self.key.addItem(pg.ScatterPlotItem(size=7, pen=None,
                                                    brush=pg.mkBrush(series_color(int(k)))), name)
        else:
            brushes = [pg.mkBrush(series_color(0))] * len(self.index)
        self.scatter.setData(x=self.points[:, 0], y=self.points[:, 1], brush=brushes,
                             data=self.index)
        self.plot.setTitle(title, size="9pt")
        self.plot.autoRange()
        style_legend(self.key, self.theme)
        self.received += 1
        self.show_plots()

    def point_position(self, i: int):
        """Where the dot of sample ``self.index[i]`` is in widget coordinates (tests click it)."""
        x, y = self.points[i]
        return self.graphics.mapFromScene(self.plot.vb.mapViewToScene(QPointF(x, y)))

    def _clicked(self, _item, points, _event=None) -> None:
        if len(points):
            self.point_clicked.emit(int(points[0].data()))
