"""Activations of one layer on a fixed probe batch, drawn the way that suits the layer:

- feature maps ``(batch, channels, h, w)``: the channels of the first sample as a grid of images;
- units ``(batch, units)``: a heatmap, one row per sample, one column per unit; a sequence
  ``(batch, time, units)`` of a layer that is not recurrent (a Linear on each step): the units of
  the first sample down, time across; a Conv1d's ``(batch, channels, positions)`` likewise;
- sequences ``(batch, time, units)`` (recurrent layers, transformers): the state trajectories of
  the first sample, one curve per unit;
- attention weights ``(batch, queries, keys)``: the matrix of the first sample.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from widgets.plots.style import (ImageGrid, PlotView, image_plot, new_plot, series_color,
                                 set_image, style_plot)

MAPS, UNITS, SEQUENCE, ATTENTION = "maps", "units", "sequence", "attention"
MAX_TRAJECTORIES = 12
CHANNELS_FIRST = ("Conv1d",)  # (batch, channels, positions); other 3-D outputs are batch-first
SEQUENCE_LAYERS = ("RNN", "LSTM", "GRU", "Reservoir", "TransformerEncoderLayer",
                   "PositionalEncoding", "Embedding", "MultiheadAttention")


def activation_kind(array: np.ndarray, layer_type: str | None = None) -> str:
    """How to draw an activation array (see the module doc)."""
    if array.ndim == 4:
        return MAPS
    if array.ndim == 3 and layer_type in SEQUENCE_LAYERS:
        return SEQUENCE
    return UNITS


def units_image(array: np.ndarray, layer_type: str | None = None
                ) -> tuple[np.ndarray, str, tuple[str, str]]:
    """The heatmap of a ``units`` activation, its title, and what its rows and columns are."""
    if array.ndim != 3:
        rows = array.reshape(array.shape[0], -1)
        return rows, f"{rows.shape[0]} samples × {rows.shape[1]} units", ("sample", "unit")
    if layer_type in CHANNELS_FIRST:
        c, n = array.shape[1:]
        return array[0], f"first sample: {c} channels × {n} positions", ("channel", "position")
    t, units = array.shape[1:]
    return array[0].T, f"first sample: {units} units × {t} time steps", ("unit", "time step")


def normalise_maps(maps: np.ndarray) -> np.ndarray:
    """Scale each map (first axis) to 0..1 on its own, so that weak channels still show."""
    flat = maps.reshape(maps.shape[0], -1)
    lo = flat.min(axis=1)[:, None, None]
    span = (flat.max(axis=1) - flat.min(axis=1))[:, None, None]
    return (maps - lo) / np.where(span > 0, span, 1.0)


class ActivationsView(PlotView):
    """The activations of the selected layer (see the module doc)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Select a layer on the canvas to see its activations.", parent)
        self.set_caption("Activations")
        self.image_plot, self.image = image_plot()
        self.maps = ImageGrid(self.image_plot, self.image)
        self.curve_plot = new_plot("", "time step", "state")
        self.curves: list[pg.PlotDataItem] = []
        self.add_plot(self.image_plot, row=0, col=0)
        self.kind: str | None = None
        self.layer: str | None = None
        self.restyle()

    def set_layer(self, layer: str | None) -> None:
        if layer != self.layer:
            self.layer = layer
            self.show_hint(f"Waiting for the activations of {layer}…" if layer else
                           "Select a layer on the canvas to see its activations.")
            self.set_caption(f"Activations of {layer}" if layer else "Activations")

    def show_activation(self, layer: str, array: np.ndarray, layer_type: str | None = None,
                        kind: str | None = None) -> None:
        """Draw ``array`` (the probe batch's activations of ``layer``)."""
        array = np.asarray(array, dtype=np.float32)
        kind = kind or activation_kind(array, layer_type)
        self.layer = layer
        self._use(kind)
        if kind != MAPS:
            self.maps.forget()  # the grid re-tiles feature maps only
        self._frame_image(kind)
        if kind == UNITS:
            self._draw_units(layer, array, layer_type)
        else:
            getattr(self, f"_draw_{kind}")(layer, array)
        self.received += 1
        self.show_plots()

    def _use(self, kind: str) -> None:
        """Put the plot that ``kind`` needs into the layout (only when the kind changes)."""
        if kind == self.kind:
            return
        wanted = self.curve_plot if kind == SEQUENCE else self.image_plot
        other = self.image_plot if wanted is self.curve_plot else self.curve_plot
        if other in self.plots:
            self.graphics.removeItem(other)
            self.plots.remove(other)
        if wanted not in self.plots:
            self.add_plot(wanted, row=0, col=0)
        self.kind = kind
        self.restyle()

    def _frame_image(self, kind: str) -> None:
        """Pictures keep square pixels and no axes; a heatmap over units fills the room;
        heatmaps and attention matrices have axes that say what their rows and columns are."""
        plot = self.image_plot
        plot.setAspectLocked(kind != UNITS)
        axes = kind in (UNITS, ATTENTION)
        for name in ("left", "bottom"):
            if plot.getAxis(name).isVisible() != axes:
                plot.showAxis(name, axes)

    def _label_axes(self, down: str, across: str) -> None:
        for name, text in (("left", down), ("bottom", across)):
            if self.image_plot.getAxis(name).labelText != text:  # a new label relays out
                self.image_plot.setLabel(name, text)

    def _draw_maps(self, layer: str, array: np.ndarray) -> None:
        maps = normalise_maps(array[0])
        self.maps.show(maps, autoLevels=False, levels=(0.0, 1.0))
        c, h, w = maps.shape
        self.image_plot.setTitle(f"{c} feature maps, {h}×{w} (first sample)", size="9pt")
        self.set_caption(f"Activations of {layer}")

    def _draw_units(self, layer: str, array: np.ndarray, layer_type: str | None = None) -> None:
        rows, what, (down, across) = units_image(array, layer_type)
        self._label_axes(down, across)
        signed = rows.min() < 0
        top = float(np.abs(rows).max()) or 1.0
        set_image(self.image_plot, self.image, rows, autoLevels=False,
                  levels=(-top, top) if signed else (0, top))
        self.image.setColorMap(pg.colormap.get("CET-D1" if signed else "viridis"))
        self.image_plot.setTitle(what, size="9pt")
        self.set_caption(f"Activations of {layer}")

    def _draw_sequence(self, layer: str, array: np.ndarray) -> None:
        states = array[0][:, :MAX_TRAJECTORIES]
        while len(self.curves) < states.shape[1]:
            pen = pg.mkPen(series_color(len(self.curves)), width=1.5)
            self.curves.append(self.curve_plot.plot(pen=pen))
        t = np.arange(states.shape[0])
        for j, curve in enumerate(self.curves):
            if j < states.shape[1]:
                curve.setData(t, states[:, j])
            curve.setVisible(j < states.shape[1])
        self.curve_plot.setTitle(f"state of {states.shape[1]} units over {len(t)} steps "
                                 f"(first sample)", size="9pt")
        self.set_caption(f"Activations of {layer}")

    def _draw_attention(self, layer: str, array: np.ndarray) -> None:
        weights = array[0]
        self._label_axes("query", "key")
        set_image(self.image_plot, self.image, weights, autoLevels=False,
                  levels=(0.0, float(weights.max()) or 1.0))
        self.image.setColorMap(pg.colormap.get("viridis"))
        self.image_plot.setTitle(f"attention weights: {weights.shape[0]} queries × "
                                 f"{weights.shape[1]} keys (first sample)", size="9pt")
        self.set_caption(f"Attention of {layer}")

    def restyle(self) -> None:
        if self.kind in (MAPS, None):
            self.image.setColorMap(pg.colormap.get("viridis"))
        for plot in (self.image_plot, self.curve_plot):
            style_plot(plot, self.theme)
