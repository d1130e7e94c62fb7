"""The views of a sweep (a search over settings): each trial's value with the best so far,
the parameters' importances, and the trials as lines across the parameters (parallel
coordinates). They take plain numbers and know nothing of Optuna or training.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from widgets.plots.style import PlotView, faded, key_html, new_plot, series_color

PRUNED_COLOR = "#9aa1ad"
BEST_COLOR = "#ef4444"
COLORMAP = "viridis"  # the parallel coordinates' colour of a trial's value (bright: best)
SHADE_FLOOR = 0.18  # the worst trial's place on the colormap


class BestSoFarView(PlotView):
    """One dot per trial (its value; pruned trials grey) and the best value so far as a
    step line over the complete ones."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Each finished trial adds a dot here, with the best value so far "
                         "as a line.", parent)
        self.set_caption("Trials and the best so far")
        self.plot = self.add_plot(new_plot(x="trial", y="value"))
        self.plot.getViewBox().setMouseEnabled(x=False, y=False)
        self.best_line = pg.PlotDataItem(pen=pg.mkPen(BEST_COLOR, width=2))
        self.pruned = pg.ScatterPlotItem(size=7, pen=None, brush=pg.mkBrush(PRUNED_COLOR))
        self.dots = pg.ScatterPlotItem(size=8, pen=None, brush=pg.mkBrush(series_color(0)))
        for item in (self.best_line, self.pruned, self.dots):
            self.plot.addItem(item)
        self.metric = "value"

    def set_trials(self, numbers, values, complete, maximize: bool, metric: str = "value"
                   ) -> None:
        """``numbers`` and ``values`` of the finished trials; ``complete`` says which ran to
        their end (the others were pruned: their value is not a result)."""
        x = np.asarray(numbers, dtype=np.float64)
        y = np.asarray(values, dtype=np.float64)
        done = np.asarray(complete, dtype=bool) & np.isfinite(y)
        self.metric = metric
        self.plot.setLabel("left", metric)
        self.dots.setData(x[done], y[done])
        pruned = ~done & np.isfinite(y)
        self.pruned.setData(x[pruned], y[pruned])
        self.best_line.setData(*_steps(x[done], y[done], maximize,
                                       float(x.max()) if x.size else None))
        entries = [(series_color(0), "●", "trial"), (BEST_COLOR, "━", "best so far")]
        if pruned.any():
            entries.insert(1, (PRUNED_COLOR, "●", "pruned"))
        self.plot.setTitle(key_html(entries), size="9pt")
        self.received += 1
        if x.size:
            # framed on the complete trials: a pruned trial's poor value is no result, and
            # would squash the rest into a line
            finite = y[done] if done.any() else y[np.isfinite(y)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            pad = (hi - lo) * 0.15 or max(abs(hi) * 0.1, 1e-3)
            self.plot.getViewBox().setRange(xRange=(min(x.min(), 0) - 0.5, x.max() + 0.5),
                                            yRange=(lo - pad, hi + pad), padding=0)
            self.show_plots()
        else:
            self.show_hint()

    def point_count(self) -> int:
        """How many dots the value curve shows (complete trials)."""
        return len(self.dots.data)

    def clear(self) -> None:
        for item in (self.dots, self.pruned, self.best_line):
            item.setData([], [])
        super().clear()


def _steps(x: np.ndarray, y: np.ndarray, maximize: bool, end: float | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """The best value so far as a staircase: flat until a trial beats it, drawn on to
    ``end`` (the last finished trial, pruned ones included)."""
    if not x.size:
        return np.zeros(0), np.zeros(0)
    best = np.maximum.accumulate(y) if maximize else np.minimum.accumulate(y)
    xs = np.repeat(x, 2)[1:]
    ys = np.repeat(best, 2)[:-1]
    if end is not None and end > x[-1]:
        xs, ys = np.append(xs, end), np.append(ys, best[-1])
    return xs, ys


class ImportanceView(PlotView):
    """Horizontal bars: how much of the value's variation each parameter explains."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Parameter importance appears after 3 complete trials.", parent)
        self.set_caption("Parameter importance")
        self.plot = self.add_plot(new_plot(x="importance (share of the value's variance)"))
        self.plot.getViewBox().setMouseEnabled(x=False, y=False)
        self.bars = pg.BarGraphItem(x0=[], y=[], height=0.6, width=[],
                                    brush=pg.mkBrush(series_color(0)), pen=None)
        self.plot.addItem(self.bars)
        self.importances: dict[str, float] = {}

    def set_importances(self, importances: dict) -> None:
        """``{parameter: importance}`` (they add up to about 1); the most important on top."""
        self.importances = dict(importances)
        if not importances:
            self.show_hint()
            return
        names = sorted(importances, key=lambda k: importances[k])
        width = [float(importances[n]) for n in names]
        self.bars.setOpts(x0=np.zeros(len(names)), y=np.arange(len(names)), height=0.6,
                          width=width)
        self.plot.getAxis("left").setTicks([[(i, n) for i, n in enumerate(names)]])
        self.plot.getAxis("left").setWidth(min(220, 12 + 7 * max(len(n) for n in names)))
        self.plot.getViewBox().setRange(xRange=(-0.02, max(1.0, max(width)) * 1.04),
                                        yRange=(-0.6, len(names) - 0.4), padding=0)
        self.received += 1
        self.show_plots()

    def clear(self) -> None:
        self.importances = {}
        self.bars.setOpts(x0=[], y=[], width=[])
        super().clear()


class ParallelView(PlotView):
    """Parallel coordinates: one vertical axis per parameter and one for the value, each
    trial a line through its (normalised) values, coloured by its value."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Each complete trial draws a line across the parameters here.",
                         parent)
        self.set_caption("Parallel coordinates")
        self.plot = self.add_plot(new_plot())
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.getViewBox().setMouseEnabled(x=False, y=False)
        self.lines: list[pg.PlotCurveItem] = []
        self.decor: list = []  # the axes' lines and texts
        self.colormap = pg.colormap.get(COLORMAP)

    def set_trials(self, axes: list[tuple[str, list]], rows: np.ndarray,
                   shade: np.ndarray, best: int | None = None) -> None:
        """``axes``: (name, ticks) per axis, the value's last, ``ticks`` being [(0..1,
        label)] (the range's ends, or every choice); ``rows``:
        (trials, axes) in 0..1; ``shade``: per trial 0..1, 1 the best (its colour);
        ``best``: the row drawn thick, on top."""
        for item in self.lines + self.decor:
            self.plot.removeItem(item)
        self.lines, self.decor = [], []
        rows = np.asarray(rows, dtype=np.float64)
        if not len(axes) or not rows.size:
            self.show_hint()
            return
        k = len(axes)
        x = np.arange(k, dtype=np.float64)
        order = np.argsort(shade)  # the better lines drawn last, over the others
        for i in order:
            # the colormap's darkest end is lost on the dark theme's background
            color = self.colormap.map(SHADE_FLOOR + (1 - SHADE_FLOOR) * float(shade[i]),
                                      mode="qcolor")
            width = 3 if i == best else 1.5
            line = pg.PlotCurveItem(x, rows[i], pen=pg.mkPen(color, width=width))
            line.setZValue(2 if i == best else 1)
            self.plot.addItem(line)
            self.lines.append(line)
        self._draw_axes(axes)
        self.plot.getViewBox().setRange(xRange=(-0.2, k - 1 + 0.45), yRange=(-0.08, 1.2),
                                        padding=0)
        self.received += 1
        self.show_plots()

    def _draw_axes(self, axes) -> None:
        """Each axis a vertical line, its name above it, its ticks' labels beside it."""
        pen = pg.mkPen(self.theme.axis, width=1)
        for i, (name, ticks) in enumerate(axes):
            line = pg.PlotCurveItem([i, i], [0, 1], pen=pen)
            line.setZValue(0)
            self.plot.addItem(line)
            self.decor.append(line)
            labels = [(name, (i, 1.04), (0.5, 1.0), self.theme.foreground)]
            labels += [(text, (i, y), (-0.08, 0.5), self.theme.muted) for y, text in ticks]
            for text, pos, anchor, color in labels:
                if not text:
                    continue
                item = pg.TextItem(text, color=color, anchor=anchor,
                                   fill=faded(self.theme.background, 200))
                item.setPos(*pos)
                item.setZValue(3)
                self.plot.addItem(item)
                self.decor.append(item)

    def line_count(self) -> int:
        return len(self.lines)

    def restyle(self) -> None:
        for item in self.decor:
            if isinstance(item, pg.PlotCurveItem):
                item.setPen(pg.mkPen(self.theme.axis, width=1))

    def clear(self) -> None:
        for item in self.lines + self.decor:
            self.plot.removeItem(item)
        self.lines, self.decor = [], []
        super().clear()


def shade_of(values: np.ndarray, maximize: bool) -> np.ndarray:
    """0..1 per value, 1 the best (the colour of the line in :class:`ParallelView`)."""
    values = np.asarray(values, dtype=np.float64)
    if not values.size:
        return values
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    if hi == lo:
        return np.ones_like(values)
    share = (values - lo) / (hi - lo)
    return share if maximize else 1.0 - share

