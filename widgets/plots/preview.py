"""A preview of a dataset before training: points in the plane coloured by class, a grid of the
first images, or the first few sequences; a 1-D regression set as y against x.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from widgets.plots.boundary import class_color
from widgets.plots.samples import as_images, image_levels
from widgets.plots.style import (ImageGrid, PlotView, image_plot, new_plot, series_color,
                                 set_image, style_plot)

MAX_POINTS = 1500
MAX_IMAGES = 32
MAX_SEQUENCES = 6


def preview_kind(x: np.ndarray) -> str:
    """'points' (2-D), 'images', 'sequences' (n, t, f), 'xy' (1-D input) or 'table'."""
    if x.ndim == 2 and x.shape[1] == 2:
        return "points"
    if x.ndim == 2 and x.shape[1] == 1:
        return "xy"
    if x.ndim == 4:
        return "images"
    if x.ndim == 3:
        square = x.shape[1] == x.shape[2] and x.shape[1] >= 8
        return "images" if square else "sequences"
    return "table"


class DatasetPreview(PlotView):
    """A small picture of what a dataset holds."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Choose a dataset to see a preview.", parent)
        self.set_caption("Preview")
        self.xy_plot = new_plot("", "", "")
        self.scatter = pg.ScatterPlotItem(size=4)
        self.xy_plot.addItem(self.scatter)
        self.lines: list[pg.PlotDataItem] = []
        self.image_plot, self.image = image_plot()
        self.grid = ImageGrid(self.image_plot, self.image)  # as many columns as fit the room
        self.kind: str | None = None
        self.total = 0
        self.pairs = False
        self.setMinimumHeight(170)
        self.restyle()

    def _use(self, plot) -> None:
        if self.plots != [plot]:
            for old in list(self.plots):
                self.graphics.removeItem(old)
            self.plots = []
            self.add_plot(plot)

    def show_data(self, x: np.ndarray, y: np.ndarray | None = None,
                  class_names: list[str] | None = None, total: int | None = None,
                  pairs: bool = False) -> None:
        """Preview ``x`` (n, ...) with its targets ``y`` (class indices or values) if any;
        ``total`` is the size of the whole dataset ``x`` was drawn from. ``pairs``: images
        alternate original, augmented copy, and are tiled in pairs."""
        x = np.asarray(x)
        self.total = total or len(x)
        self.pairs = pairs
        self.kind = preview_kind(x)
        getattr(self, f"_show_{self.kind}")(x, None if y is None else np.asarray(y))
        self.received += 1
        self.show_plots()

    def _show_points(self, x, y) -> None:
        self._use(self.xy_plot)
        self._hide_lines()
        x = x[:MAX_POINTS]
        if y is not None and y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
            brushes = [pg.mkBrush(class_color(int(k))) for k in y[:MAX_POINTS]]
        else:
            brushes = pg.mkBrush(series_color(0))
        self.scatter.setData(pos=x, brush=brushes, pen=pg.mkPen(None))
        self.xy_plot.setAspectLocked(True)
        self.xy_plot.setLabels(bottom="x₁", left="x₂")
        self.xy_plot.enableAutoRange()  # and it follows a resize (autoRange() would not)

    def _show_xy(self, x, y) -> None:
        self._use(self.xy_plot)
        self._hide_lines()
        x = x[:MAX_POINTS, 0]
        values = y[:MAX_POINTS].reshape(len(x), -1)[:, 0] if y is not None else np.zeros_like(x)
        self.scatter.setData(x=x, y=values, brush=pg.mkBrush(series_color(0)), pen=pg.mkPen(None))
        self.xy_plot.setAspectLocked(False)
        self.xy_plot.setLabels(bottom="x", left="y")
        self.xy_plot.enableAutoRange()

    def _show_images(self, x, y) -> None:
        self._use(self.image_plot)
        images = as_images(x[:MAX_IMAGES])
        self.grid.pairs = self.pairs
        self.grid.show(images, autoLevels=False, levels=image_levels(images))
        self.image.setColorMap(pg.colormap.get("CET-L1"))
        title = (f"{len(images) // 2} images: original, augmented" if self.pairs
                 else f"{len(images)} of {self.total:,} images")
        self.image_plot.setTitle(title, size="9pt")
        self.image_plot.enableAutoRange()

    def _show_sequences(self, x, y) -> None:
        self._use(self.xy_plot)
        self.scatter.clear()
        self.xy_plot.setAspectLocked(False)
        n = min(len(x), MAX_SEQUENCES)
        while len(self.lines) < n:
            pen = pg.mkPen(series_color(len(self.lines)), width=1.5)
            self.lines.append(self.xy_plot.plot(pen=pen))
        t = np.arange(x.shape[1])
        for i, line in enumerate(self.lines):
            line.setVisible(i < n)
            if i < n:
                line.setData(t, x[i, :, 0])
        self.xy_plot.setLabels(bottom="time step", left="value")
        self.xy_plot.enableAutoRange()

    def _show_table(self, x, y) -> None:
        self._use(self.image_plot)
        rows = x[:MAX_IMAGES].reshape(min(len(x), MAX_IMAGES), -1).astype(np.float32)
        self.grid.forget()
        set_image(self.image_plot, self.image, rows, autoLevels=True)
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.image_plot.setTitle(f"first {len(rows)} samples × {rows.shape[1]} values",
                                 size="9pt")
        self.image_plot.enableAutoRange()

    def _hide_lines(self) -> None:
        for line in self.lines:
            line.setVisible(False)

    def restyle(self) -> None:
        for plot in (self.xy_plot, self.image_plot):
            style_plot(plot, self.theme)
