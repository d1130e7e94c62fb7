"""Generated samples and reconstructions: an image grid of GAN samples (fixed noise) or VAE
samples (from the prior), autoencoder inputs above their outputs (the two side by side for a
VAE), and for a GAN on 2-D data the real and the generated points in one scatter plot. Grids take
the shape that shows their images largest in the room they have.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from widgets.plots.style import (ImageGrid, PlotView, image_plot, key_html, new_plot,
                                 series_color, set_image, style_plot)

MAX_PAIRS = 10
MAX_POINTS = 2000


def as_images(batch: np.ndarray) -> np.ndarray | None:
    """``(n, h, w)`` or ``(n, h, w, 3)`` images from a batch of samples, or None when the
    samples are not images (``(n, d)`` with d a perfect square counts as square images)."""
    batch = np.asarray(batch, dtype=np.float32)
    if batch.ndim == 4:
        if batch.shape[1] == 3:
            return np.moveaxis(batch, 1, -1)
        return batch[:, 0]
    if batch.ndim == 3:
        return batch
    if batch.ndim == 2 and batch.shape[1] >= 16:
        side = int(math.isqrt(batch.shape[1]))
        if side * side == batch.shape[1]:
            return batch.reshape(-1, side, side)
    return None


def image_levels(images: np.ndarray) -> tuple[float, float]:
    """Display levels: 0..1 for data in that range, widened to the data otherwise."""
    finite = images[np.isfinite(images)]
    if finite.size == 0:
        return 0.0, 1.0
    return min(0.0, float(finite.min())), max(1.0, float(finite.max()))


class SamplesView(PlotView):
    """What a generative model makes (see the module doc)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Generated samples and reconstructions appear here while a GAN, a VAE "
                         "or an autoencoder trains.", parent)
        self.set_caption("Samples")
        self.samples_plot, self.samples_image = image_plot("Samples")
        self.pairs_plot, self.pairs_image = image_plot("Input over reconstruction")
        self.sample_grid = ImageGrid(self.samples_plot, self.samples_image)
        self.pair_grid = ImageGrid(self.pairs_plot, self.pairs_image, gap=2)
        self.points_plot = new_plot("", "x₁", "x₂")
        self.points_plot.setAspectLocked(True)
        self.real = pg.ScatterPlotItem(size=5)
        self.fake = pg.ScatterPlotItem(size=5)
        self.points_plot.addItem(self.real)
        self.points_plot.addItem(self.fake)
        self.mode: tuple = ()
        self.restyle()

    def _use(self, *plots) -> None:
        """Lay out exactly ``plots``, side by side (only when the set changes)."""
        if plots == self.mode:
            return
        for plot in list(self.plots):
            self.graphics.removeItem(plot)
        self.plots = []
        for col, plot in enumerate(plots):
            self.add_plot(plot, row=0, col=col)
            plot.setPreferredWidth(1)  # equal shares, whatever the titles
            self.graphics.ci.layout.setColumnStretchFactor(col, 1)
        self.mode = plots

    def show_probe(self, samples=None, reconstructions=None, real=None) -> None:
        """One probe: ``samples`` (n, ...), ``reconstructions`` {'inputs', 'outputs'}, and the
        ``real`` points beside 2-D samples."""
        if samples is None and reconstructions is None:
            return
        if samples is not None and np.asarray(samples).ndim == 2 and np.shape(samples)[1] == 2:
            self.show_points(real, samples)
            return
        plots = []
        if samples is not None:
            plots.append(self.samples_plot)
        if reconstructions is not None:
            plots.append(self.pairs_plot)
        self._use(*plots)
        if samples is not None:
            self.show_images(samples)
        if reconstructions is not None:
            self.show_pairs(reconstructions["inputs"], reconstructions["outputs"])

    def show_images(self, samples, title: str | None = None) -> None:
        images = as_images(samples)
        if images is None:  # vectors: one row per sample
            values = np.asarray(samples, dtype=np.float32).reshape(len(samples), -1)
            self.sample_grid.forget()
            set_image(self.samples_plot, self.samples_image, values, autoLevels=True)
            self.samples_plot.setTitle(title or f"{len(values)} samples × {values.shape[1]} "
                                       f"values", size="9pt")
        else:
            self.sample_grid.show(images, autoLevels=False, levels=image_levels(images))
            self.samples_plot.setTitle(title or f"{len(images)} samples", size="9pt")
        if not self.mode:
            self._use(self.samples_plot)
        self._received()

    def show_pairs(self, inputs, outputs) -> None:
        """Each input above its output, the pairs in a grid."""
        n = min(len(inputs), len(outputs), MAX_PAIRS)
        top, bottom = as_images(np.asarray(inputs)[:n]), as_images(np.asarray(outputs)[:n])
        if top is None or bottom is None:
            top = np.asarray(inputs, dtype=np.float32)[:n].reshape(n, 1, -1)
            bottom = np.asarray(outputs, dtype=np.float32)[:n].reshape(n, 1, -1)
        gap = np.full((n, 1, *top.shape[2:]), np.nan, dtype=np.float32)
        pairs = np.concatenate([top, gap, bottom], axis=1)
        self.pair_grid.show(pairs, autoLevels=False,
                            levels=image_levels(np.concatenate([top, bottom])))
        if self.pairs_plot not in self.plots:
            self._use(*[p for p in (self.samples_plot,) if p in self.plots], self.pairs_plot)
        self._received()

    def show_points(self, real, generated) -> None:
        if self.points_plot not in self.plots:
            self._use(self.points_plot)
            self.points_plot.setTitle(key_html([(self.theme.muted, "●", "real"),
                                                (series_color(1), "●", "generated")]),
                                      size="8pt", color=self.theme.foreground)
        if real is not None:
            real = np.asarray(real)[:MAX_POINTS]
            self.real.setData(pos=real[:, :2])
        generated = np.asarray(generated)[:MAX_POINTS]
        self.fake.setData(pos=generated[:, :2])
        self._received()

    def _received(self) -> None:
        self.received += 1
        self.show_plots()

    def clear(self) -> None:
        self.real.clear()
        self.fake.clear()
        self.sample_grid.clear()
        self.pair_grid.clear()
        super().clear()

    def restyle(self) -> None:
        gray = pg.colormap.get("CET-L1")
        for image in (self.samples_image, self.pairs_image):
            image.setColorMap(gray)
        muted = pg.mkColor(self.theme.muted)
        muted.setAlpha(150)
        self.real.setBrush(pg.mkBrush(muted))
        self.real.setPen(pg.mkPen(None))
        self.fake.setBrush(pg.mkBrush(series_color(1)))
        self.fake.setPen(pg.mkPen(self.theme.background, width=0.5))
        for plot in (self.samples_plot, self.pairs_plot, self.points_plot):
            style_plot(plot, self.theme)
