"""Colours of the live plots for the light and the dark theme, and a base class for the views.

Every view is a :class:`PlotView`: a caption, a pyqtgraph area and a hint shown while there is no
data yet. Items are created once and updated with ``setData``/``setImage``; ``set_dark`` restyles
them in place.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import QLabel, QStackedLayout, QVBoxLayout, QWidget

from widgets.theme import DARK, LIGHT

# One colour per series, readable on white and on near-black (Tableau-like, a little brighter).
SERIES = ("#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#14b8a6", "#ec4899",
          "#84cc16", "#f97316", "#06b6d4", "#a855f7", "#eab308")


@dataclass(frozen=True)
class PlotTheme:
    """The colours of a plot: background, text and axes, grid, and muted text."""

    dark: bool
    background: str
    foreground: str
    axis: str
    grid_alpha: float
    muted: str
    ghost_alpha: int  # 0..255, the alpha of earlier runs' curves


PLOT_LIGHT = PlotTheme(False, LIGHT.node_fill, LIGHT.node_text, LIGHT.node_subtext, 0.18,
                       LIGHT.node_subtext, 70)
PLOT_DARK = PlotTheme(True, "#202328", DARK.node_text, DARK.node_subtext, 0.22,
                      DARK.node_subtext, 80)


def plot_theme(dark: bool) -> PlotTheme:
    return PLOT_DARK if dark else PLOT_LIGHT


def series_color(i: int) -> str:
    return SERIES[i % len(SERIES)]


def faded(color: str, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


def style_plot(plot: pg.PlotItem, theme: PlotTheme) -> None:
    """Axis, tick label and title colours of one plot item."""
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(theme.axis))
        axis.setTextPen(pg.mkPen(theme.foreground))
    # no grid: its lines are replayed on every repaint of the data, which costs the window
    # a frame's worth of time while training (the axes' ticks are enough to read values)
    if plot.titleLabel.text:
        plot.setTitle(plot.titleLabel.text, color=theme.foreground, size="10pt")


def new_plot(title: str = "", x: str = "", y: str = "") -> pg.PlotItem:
    """A plot item with readable labels, no context menu and no auto-range button."""
    plot = pg.PlotItem()
    plot.setMenuEnabled(False)
    plot.hideButtons()
    if title:
        plot.setTitle(title, size="10pt")
    if x:
        plot.setLabel("bottom", x)
    if y:
        plot.setLabel("left", y)
    for name in ("left", "bottom"):
        plot.getAxis(name).enableAutoSIPrefix(False)  # "accuracy (x0.001)" reads badly
    plot.getViewBox().setMouseEnabled(x=True, y=True)
    return plot


def steady_axes(plot: pg.PlotItem, width: int = 52) -> None:
    """Give the y axis a fixed width: otherwise a tick label that gets wider ("0.5" to "0.25")
    resizes the axis, which relays out the plot and redraws every axis of the view."""
    plot.getAxis("left").setWidth(width)


def key_html(entries) -> str:
    """A one-line legend for a plot's title: ``[(colour, mark, label)]`` as coloured HTML."""
    return "&nbsp;&nbsp;&nbsp;".join(
        f"<span style='color:{color}'>{mark}</span>&nbsp;{label}" for color, mark, label in entries)


def image_plot(title: str = "", invert_y: bool = True, axes: bool = False
               ) -> tuple[pg.PlotItem, pg.ImageItem]:
    """A plot holding one row-major image with square pixels (row 0 at the top by default);
    without axes unless asked (pixel numbers say nothing)."""
    plot = new_plot(title)
    plot.setAspectLocked(True)
    plot.invertY(invert_y)
    if not axes:
        plot.hideAxis("left")
        plot.hideAxis("bottom")
        plot.showGrid(False, False)
    image = pg.ImageItem(axisOrder="row-major")
    plot.addItem(image)
    return plot, image


class StickyY:
    """Manages a plot's y range so that it changes seldom: only when the data leave it or fill
    less than a third of it. A range that stays put keeps the axes' drawings cached, which is
    most of what a plot costs to repaint. Zooming or panning by hand turns it off (until
    :meth:`reset`)."""

    def __init__(self, plot: pg.PlotItem, headroom: float = 0.25, zero: bool = False):
        self.plot, self.headroom = plot, headroom
        self.zero = zero  # non-negative data are shown from 0: a falling loss moves nothing
        self.ceiling: float | None = None  # data at or below it are shown up to it (1.0)
        self.auto = True
        self.lo = self.hi = self.lo_positive = None
        self.log = False
        plot.disableAutoRange(axis="y")
        plot.getViewBox().sigRangeChangedManually.connect(self._manual)

    def _manual(self, *_args) -> None:
        self.auto = False

    def reset(self) -> None:
        self.auto, self.lo, self.hi, self.lo_positive = True, None, None, None

    def include(self, values) -> None:
        """Widen the known data bounds by ``values`` (data units, also on a log axis)."""
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            lo, hi = float(values.min()), float(values.max())
            self.lo = lo if self.lo is None else min(self.lo, lo)
            self.hi = hi if self.hi is None else max(self.hi, hi)
            positive = values[values > 0]
            if positive.size:
                low = float(positive.min())
                self.lo_positive = low if self.lo_positive is None else \
                    min(self.lo_positive, low)

    def bounds(self) -> tuple[float, float] | None:
        """The data bounds in view units (log10 on a log axis)."""
        if self.lo is None:
            return None
        if not self.log:
            lo = 0.0 if self.zero and self.lo >= 0 else self.lo
            hi = self.ceiling if self.ceiling is not None and self.hi <= self.ceiling else self.hi
            return lo, hi
        if self.lo_positive is None:
            return None
        return math.log10(self.lo_positive), math.log10(max(self.hi, self.lo_positive))

    def fit(self, force: bool = False) -> None:
        """Move the range if the data need it (after :meth:`include`)."""
        bounds = self.bounds()
        if not self.auto or bounds is None:
            return
        lo, hi = bounds
        span = hi - lo or max(abs(hi) * 0.1, 1e-6)
        (cur_lo, cur_hi) = self.plot.getViewBox().viewRange()[1]
        if force or lo < cur_lo or hi > cur_hi or (cur_hi - cur_lo) > 3 * span:
            pad = self.headroom * span  # room to grow: the next values seldom move it again
            fixed_lo = self.zero and not self.log and lo == 0.0
            fixed_hi = self.ceiling is not None and not self.log and hi == self.ceiling
            self.plot.getViewBox().setYRange(lo - (0.02 * span if fixed_lo else pad),
                                             hi + (0.02 * span if fixed_hi else pad), padding=0)


def follow(plot: pg.PlotItem, x0: float, x1: float, y0: float, y1: float,
           padding: float = 0.0) -> None:
    """Show this range unless the user zoomed or panned (which turns auto-range off)."""
    vb = plot.getViewBox()
    if any(vb.autoRangeEnabled()):
        vb.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=padding, disableAutoRange=False)


def set_image(plot: pg.PlotItem, image: pg.ImageItem, data: np.ndarray, **kwargs) -> None:
    """``setImage`` and, when the image's size changed, frame it."""
    old = image.image.shape[:2] if image.image is not None else None
    image.setImage(data, **kwargs)
    if old != data.shape[:2]:
        h, w = data.shape[:2]
        follow(plot, 0, w, 0, h, padding=0.02)


def tile(images: np.ndarray, cols: int | None = None, gap: int = 1) -> np.ndarray:
    """Tile ``(n, h, w)`` (or ``(n, h, w, 3)``) into one image, NaN between the tiles."""
    n, h, w = images.shape[:3]
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    shape = (rows * (h + gap) - gap, cols * (w + gap) - gap, *images.shape[3:])
    out = np.full(shape, np.nan, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = images[i]
    return out


def grid_columns(n: int, tile_h: int, tile_w: int, width: float, height: float,
                 gap: int = 1) -> int:
    """The column count that shows ``n`` tiles of ``tile_h`` × ``tile_w`` large in an area of
    ``width`` × ``height`` pixels (fewer columns on a tall area, more on a wide one): of the
    counts that make the tiles nearly as large as they can be, the one leaving the fewest
    empty cells in the last row."""
    if n <= 1 or width <= 0 or height <= 0:
        return max(1, int(np.ceil(np.sqrt(n))))
    scales = {}
    for cols in range(1, n + 1):
        rows = -(-n // cols)
        scales[cols] = min(width / (cols * (tile_w + gap) - gap),
                           height / (rows * (tile_h + gap) - gap))
    best = max(scales.values())
    near = [cols for cols, scale in scales.items() if scale >= NEARLY * best]
    return min(near, key=lambda cols: (-(-n // cols) * cols - n, -scales[cols]))


NEARLY = 0.85  # tiles this much of the largest size are large enough (see grid_columns)


class ImageGrid:
    """Images tiled into one image item of a plot, with as many columns as make the tiles
    largest in the plot's current size; tiled again when a resize changes that number."""

    def __init__(self, plot: pg.PlotItem, image: pg.ImageItem, gap: int = 1):
        self.plot, self.image, self.gap = plot, image, gap
        self.images: np.ndarray | None = None
        self.cols = 0
        self.pairs = False  # an even number of columns: images go in (original, copy) pairs
        self._kwargs: dict = {}
        plot.getViewBox().sigResized.connect(lambda _box: self.refit())

    def show(self, images: np.ndarray, **kwargs) -> None:
        """``images`` (n, h, w) or (n, h, w, 3); ``kwargs`` go to ``setImage`` (levels...)."""
        self.images, self._kwargs = images, kwargs
        self.cols = self._best()
        set_image(self.plot, self.image, tile(images, self.cols, self.gap), **kwargs)

    def refit(self) -> None:
        if self.images is not None and self._best() != self.cols:
            self.show(self.images, **self._kwargs)

    def forget(self) -> None:
        """Stop tiling: the image item shows something else now."""
        self.images, self.cols = None, 0

    def clear(self) -> None:
        self.forget()
        self.image.clear()

    def _best(self) -> int:
        n, h, w = self.images.shape[:3]
        size = self.plot.getViewBox().size()
        cols = grid_columns(n, h, w, size.width(), size.height(), self.gap)
        return max(2, cols - cols % 2) if self.pairs and n > 1 else cols


def legend(columns: int = 4) -> pg.LegendItem:
    """A legend for a cell of its own in a layout (above or beside its plot, never over the
    data; also not anchored to a view box, whose teardown order would trip the anchor)."""
    item = pg.LegendItem(labelTextSize="8pt", colCount=columns, horSpacing=14, verSpacing=-8,
                         frame=False)
    item.setSizePolicy(pg.QtWidgets.QSizePolicy.Policy.Preferred,
                       pg.QtWidgets.QSizePolicy.Policy.Fixed)
    return item


def style_legend(item: pg.LegendItem, theme: PlotTheme) -> None:
    item.setLabelTextColor(theme.foreground)
    for _sample, label in item.items:
        label.setText(label.text, color=theme.foreground)


class GraphicsArea(pg.GraphicsLayoutWidget):
    """A pyqtgraph area that counts the CPU time of its paints: :attr:`painted` (seconds, all
    areas together) lets whoever feeds the plots pace them by what drawing costs."""

    painted = 0.0

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        start = time.thread_time()
        super().paintEvent(event)
        GraphicsArea.painted += time.thread_time() - start


class PlotView(QWidget):
    """A live view: a caption over a pyqtgraph area, or a hint while there is nothing to show."""

    def __init__(self, hint: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.theme = PLOT_LIGHT
        self.caption = QLabel()
        self.caption.setObjectName("plotCaption")
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        self.hint = QLabel(hint)
        self.hint.setObjectName("mutedText")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.graphics = GraphicsArea()
        self.graphics.setObjectName(f"{type(self).__name__}Graphics")
        self.graphics.ci.setContentsMargins(4, 4, 8, 4)
        self._stack = QStackedLayout()
        self._stack.addWidget(self.hint)
        self._stack.addWidget(self.graphics)
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(6, 4, 6, 4)
        self.body.setSpacing(2)
        self.body.addWidget(self.caption)
        self.body.addLayout(self._stack, 1)
        self.plots: list[pg.PlotItem] = []
        self.legends: list[pg.LegendItem] = []
        self.received = 0  # how many updates this view took (tests read it)
        font = QFont(self.caption.font())
        font.setBold(True)
        self.caption.setFont(font)
        self.graphics.setBackground(self.theme.background)

    # -- state -----------------------------------------------------------------------------
    def add_plot(self, plot: pg.PlotItem, row: int | None = None, col: int | None = None):
        self.graphics.addItem(plot, row=row, col=col)
        self.plots.append(plot)
        style_plot(plot, self.theme)
        return plot

    def add_legend(self, row: int, col: int = 0, columns: int = 4) -> pg.LegendItem:
        item = legend(columns)
        self.graphics.addItem(item, row=row, col=col)
        self.legends.append(item)
        style_legend(item, self.theme)
        return item

    def show_hint(self, text: str | None = None) -> None:
        if text is not None:
            self.hint.setText(text)
        self._stack.setCurrentIndex(0)

    def show_plots(self) -> None:
        if self._stack.currentIndex() != 1:
            self._stack.setCurrentIndex(1)

    @property
    def has_data(self) -> bool:
        return self._stack.currentIndex() == 1

    def set_caption(self, text: str) -> None:
        if self.caption.text() != text:
            self.caption.setText(text)

    def set_dark(self, dark: bool) -> None:
        """Restyle for the light or the dark theme (items are kept)."""
        self.theme = plot_theme(dark)
        self.graphics.setBackground(self.theme.background)
        for plot in self.plots:
            style_plot(plot, self.theme)
        for item in self.legends:
            style_legend(item, self.theme)
        self.restyle()

    def restyle(self) -> None:
        """Subclasses recolour their own items here."""

    def clear(self) -> None:
        """Forget the data (a new run starts)."""
        self.received = 0
        self.show_hint()
