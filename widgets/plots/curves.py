"""Loss and metric curves: training and validation, per step and per epoch, smoothed, log-y, with
the runs made earlier in this window kept as faint overlays, and recorded runs (the Runs panel's
selection, :meth:`CurvesView.set_overlays`) drawn in colours of their own under the live run.

The x axis counts epochs (a step ``s`` sits at ``s / steps_per_epoch``), so per-step and per-epoch
values share one axis and the loss plot and the metrics plot below it stay aligned.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QWidget

from widgets.plots.style import (PlotView, StickyY, faded, key_html, new_plot, series_color,
                                 steady_axes)

IGNORED = ("epoch", "lr", "seconds", "batch", "probes", "compile_seconds")
MIRRORS = ("train_loss", "d_loss", "g_loss")  # epoch means of what is also logged per step
LABELS = {"loss": "train", "train_loss": "train (epoch)", "val_loss": "validation",
          "d_loss": "discriminator", "g_loss": "generator", "val_accuracy": "validation accuracy",
          "val_mse": "validation MSE", "val_kl": "validation KL", "train_accuracy": "train accuracy"}
COLORS = {"loss": 0, "train_loss": 0, "d_loss": 0, "g_loss": 1, "val_loss": 1, "val_accuracy": 2,
          "val_mse": 4, "val_kl": 6, "train_accuracy": 5}
MAX_GHOST_RUNS = 4
# recorded runs' colours: the palette after the live run's train, validation and accuracy
OVERLAY_COLORS = (3, 4, 5, 6, 8, 9, 10, 11, 7)
OVERLAY_Z = -5  # over the faint earlier runs (-10), under the live run (0)
MAX_MARKERS = 40  # a run of more epochs than this draws its per-epoch values without markers
DEFAULT_SMOOTHING = 0.6


def ema(values: np.ndarray, alpha: float, start: float | None = None) -> np.ndarray:
    """Exponential moving average ``s_t = alpha * s_(t-1) + (1 - alpha) * x_t``; ``s_0 = x_0``
    unless ``start`` (the previous smoothed value) is given. (A plain loop: a few thousand
    points take a millisecond or two, and importing scipy for it would take a second.)"""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or alpha <= 0:
        return values.copy()
    out = np.empty_like(values)
    s = values[0] if start is None else float(start)
    beta = 1.0 - alpha
    for i, v in enumerate(values.tolist()):
        s = alpha * s + beta * v
        out[i] = s
    return out


def _key_font() -> QFont:
    font = QFont()
    font.setPointSize(8)
    return font


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def epoch_mark(markers: bool) -> str:
    """How per-epoch values look in a legend: a dashed line, with or without markers."""
    return "╍ ●" if markers else "╍╍"


class Growing:
    """Append-only x/y arrays that double their capacity (no reallocation per point)."""

    def __init__(self, capacity: int = 256):
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self.n = 0

    def append(self, xs, ys) -> None:
        xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        need = self.n + xs.size
        if need > self._x.size:
            size = max(need, 2 * self._x.size)
            self._x = np.resize(self._x, size)
            self._y = np.resize(self._y, size)
        self._x[self.n:need] = xs
        self._y[self.n:need] = ys
        self.n = need

    @property
    def x(self) -> np.ndarray:
        return self._x[:self.n]

    @property
    def y(self) -> np.ndarray:
        return self._y[:self.n]

    def __len__(self) -> int:
        return self.n


class _Series:
    """One named quantity: its data, its curve item(s) and its plot."""

    def __init__(self, name: str, plot: pg.PlotItem, color: str, per_step: bool,
                 max_marks: int = MAX_MARKERS):
        self.name, self.plot, self.color, self.per_step = name, plot, color, per_step
        self.data = Growing()
        self.smooth = Growing() if per_step else None
        self.label = LABELS.get(name, name.replace("_", " "))
        if per_step:
            self.raw_item = plot.plot(pen=pg.mkPen(faded(color, 60), width=1))
            self.item = plot.plot(pen=pg.mkPen(color, width=2))
            for item in (self.raw_item, self.item):
                item.setClipToView(True)
                item.setDownsampling(auto=True, method="peak")
        else:  # a line and separate markers: a PlotDataItem's own symbols cost 5x to update
            self.raw_item = None
            self.item = plot.plot(pen=pg.mkPen(color, width=2, style=Qt.PenStyle.DashLine))
            self.marks = pg.ScatterPlotItem(size=7, brush=pg.mkBrush(color), pen=pg.mkPen(color))
            plot.addItem(self.marks)
        self.log = False  # markers do not follow a log axis by themselves
        self.max_marks = max_marks

    def items(self) -> list:
        return [i for i in (self.raw_item, self.item, getattr(self, "marks", None))
                if i is not None]

    def remove(self) -> None:
        for item in self.items():
            self.plot.removeItem(item)

    def key(self) -> tuple[str, str, str]:
        return self.color, "━━" if self.per_step else epoch_mark(self.max_marks), self.label

    def refresh(self) -> None:
        if self.per_step:
            self.raw_item.setData(self.data.x, self.data.y)
            self.item.setData(self.smooth.x, self.smooth.y)
        else:
            self.item.setData(self.data.x, self.data.y)
            y = self.data.y
            if self.log:
                with np.errstate(divide="ignore", invalid="ignore"):
                    y = np.log10(y)
            if len(y) <= self.max_marks:
                self.marks.setData(x=self.data.x, y=y)
            elif len(self.marks.data):  # too many epochs for markers: drop them, once
                self.marks.setData(x=[], y=[])

    def resmooth(self, alpha: float) -> None:
        if self.per_step:
            self.smooth = Growing(max(256, len(self.data)))
            self.smooth.append(self.data.x, ema(self.data.y, alpha))

    def extend(self, xs, ys, alpha: float) -> None:
        self.data.append(xs, ys)
        if self.per_step:
            start = self.smooth.y[-1] if len(self.smooth) else None
            self.smooth.append(xs, ema(np.asarray(ys, dtype=np.float64), alpha, start))


class CurvesView(PlotView):
    """Loss (top) and metrics (bottom) of the current run and faint copies of earlier runs."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("The loss and the metrics appear here once training starts.", parent)
        self.set_caption("Loss and metrics")
        self.loss_plot = self.add_plot(new_plot("", "epoch", "loss"), row=0, col=0)
        self.metrics_plot = self.add_plot(new_plot("", "epoch", "metric"), row=1, col=0)
        self.metrics_plot.setXLink(self.loss_plot)
        for plot in (self.loss_plot, self.metrics_plot):
            steady_axes(plot)  # the two plots' y axes also stay aligned
        self.graphics.ci.layout.setRowStretchFactor(0, 3)
        self.graphics.ci.layout.setRowStretchFactor(1, 2)
        self._show_metrics(False)
        self.ranges = {self.loss_plot: StickyY(self.loss_plot, zero=True),
                       self.metrics_plot: StickyY(self.metrics_plot, zero=True)}
        self.series: dict[str, _Series] = {}
        self._dirty: set[str] = set()
        self.ghosts: list[list[pg.PlotDataItem]] = []
        self.overlays: dict[str, list[pg.PlotDataItem]] = {}  # recorded runs, by label
        self.overlay_colors: dict[str, str] = {}
        self._overlay_bounds: dict = {}  # plot -> the overlays' values, for its y range
        self.run_epochs: int | None = None  # the live run's length, for the x range
        self.steps_per_epoch = 1
        self.max_marks = MAX_MARKERS
        self.run_label = ""
        self._build_controls()
        self.restyle()

    def _build_controls(self) -> None:
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Smoothing"))
        self.smoothing = QSlider(Qt.Orientation.Horizontal)
        self.smoothing.setObjectName("smoothingSlider")
        self.smoothing.setRange(0, 99)
        self.smoothing.setValue(int(DEFAULT_SMOOTHING * 100))
        self.smoothing.setMinimumWidth(60)
        self.smoothing.setMaximumWidth(120)
        self.smoothing.setToolTip("Exponential moving average of the per-step loss")
        self.smoothing.valueChanged.connect(self._smoothing_changed)
        row.addWidget(self.smoothing)
        self.smoothing_label = QLabel(f"{DEFAULT_SMOOTHING:.2f}")
        self.smoothing_label.setMinimumWidth(30)
        row.addWidget(self.smoothing_label)
        row.addSpacing(8)
        self.log_y = QCheckBox("Log y")
        self.log_y.setToolTip("A logarithmic loss axis")
        self.log_y.toggled.connect(self._log_toggled)
        self.per_step = QCheckBox("Steps")
        self.per_step.setToolTip("Show the loss of every logged step")
        self.per_step.setChecked(True)
        self.per_step.toggled.connect(self._update_visibility)
        self.per_epoch = QCheckBox("Epochs")
        self.per_epoch.setToolTip("Show the mean of each epoch and the validation values")
        self.per_epoch.setChecked(True)
        self.per_epoch.toggled.connect(self._update_visibility)
        for box in (self.log_y, self.per_step, self.per_epoch):
            row.addWidget(box)
        row.addStretch(1)
        self.body.insertLayout(1, row)

    # -- feeding ----------------------------------------------------------------------------
    @property
    def alpha(self) -> float:
        return self.smoothing.value() / 100.0

    def begin_run(self, steps_per_epoch: int, epochs: int | None = None, label: str = ""
                  ) -> None:
        """Keep the current curves as faint overlays and start empty ones. With ``epochs`` the
        x axis spans the whole run from the start (a steady axis is cheap to draw)."""
        if any(len(s.data) for s in self.series.values()):
            self._keep_as_ghosts()
        for s in self.series.values():
            s.remove()
        self.series = {}
        self._update_keys()
        self._show_metrics(self._overlays_on(self.metrics_plot))
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        # markers from the start or never: appearing and then vanishing mid-run would jar
        self.max_marks = MAX_MARKERS if not epochs or epochs <= MAX_MARKERS else 0
        self.run_label = label
        self.received = 0
        self._dirty = set()
        for plot, sticky in self.ranges.items():
            sticky.reset()
            for values in self._overlay_bounds.get(plot, ()):
                sticky.include(values)
        self.run_epochs = epochs or None
        self._fit_x()
        self.show_plots()

    def _fit_x(self) -> None:
        """The x axis spans the live run (when its length is known) and the overlaid runs."""
        ends = [self.run_epochs or 0] + [float(np.nanmax(item.getData()[0]))
                                         for items in self.overlays.values() for item in items
                                         if item.getData()[0] is not None
                                         and len(item.getData()[0])]
        end = max(ends)
        if end > 0 and (self.run_epochs or not self.series):
            self.loss_plot.setXRange(0, end, padding=0.02)
        else:
            self.loss_plot.enableAutoRange(x=True)

    # -- recorded runs ------------------------------------------------------------------------
    def set_overlays(self, runs: dict[str, list[dict]], colors: dict[str, str] | None = None
                     ) -> None:
        """Draw recorded runs under the live one: ``runs`` maps a label (the legend's) to the
        run's epoch rows (``epochs.jsonl``: ``epoch``, ``train_loss``, ``val_loss``,
        ``val_accuracy``...). Each run has one colour (``colors[label]``, else the next of the
        palette); validation values are solid lines, training values dotted. ``{}`` removes
        them."""
        for items in self.overlays.values():
            for item in items:
                for plot in (self.loss_plot, self.metrics_plot):
                    if item in plot.items:
                        plot.removeItem(item)
        self.overlays, self.overlay_colors, self._overlay_bounds = {}, {}, {}
        colors = colors or {}
        for i, (label, rows) in enumerate(runs.items()):
            color = colors.get(label) or series_color(OVERLAY_COLORS[i % len(OVERLAY_COLORS)])
            self.overlay_colors[label] = color
            self.overlays[label] = self._overlay(label, rows, color)
        for plot, sticky in self.ranges.items():  # the range of what is shown now
            auto = sticky.auto
            sticky.reset()
            sticky.auto = auto  # a range set by hand stays
            for s in self.series.values():
                if s.plot is plot:
                    sticky.include(s.data.y)
            for values in self._overlay_bounds.get(plot, ()):
                sticky.include(values)
        if self._overlays_on(self.metrics_plot) or any(
                s.plot is self.metrics_plot for s in self.series.values()):
            self._show_metrics(True)
        elif not self.series:
            self._show_metrics(False)
        self._update_keys()
        self._fit_x()
        for sticky in self.ranges.values():
            sticky.fit(force=True)
        if self.overlays or self.series:
            self.show_plots()
        else:
            self.show_hint()

    def _overlay(self, label: str, rows: list[dict], color: str) -> list[pg.PlotDataItem]:
        names = [n for n in dict.fromkeys(k for row in rows for k in row)
                 if n not in IGNORED and any(isinstance(r.get(n), (int, float))
                                             and not isinstance(r.get(n), bool) for r in rows)]
        items = []
        for name in names:
            points = [(float(r.get("epoch", i + 1)), float(r[name])) for i, r in enumerate(rows)
                      if isinstance(r.get(name), (int, float))]
            if not points:
                continue
            x, y = np.array(points).T
            plot = self.loss_plot if "loss" in name else self.metrics_plot
            style = Qt.PenStyle.DotLine if name.startswith("train") else Qt.PenStyle.SolidLine
            item = pg.PlotDataItem(x, y, pen=pg.mkPen(faded(color, 215), width=1.8, style=style),
                                   name=f"{label}: {LABELS.get(name, name)}")
            item.setZValue(OVERLAY_Z)
            item.overlay_metric = name  # what it shows (tests and tooltips read it)
            plot.addItem(item)
            self._overlay_bounds.setdefault(plot, []).append(y)
            items.append(item)
        return items

    def _overlays_on(self, plot: pg.PlotItem) -> bool:
        return any(item in plot.items for items in self.overlays.values() for item in items)

    def _keep_as_ghosts(self) -> None:
        run = []
        for s in self.series.values():
            x, y = (s.smooth.x, s.smooth.y) if s.per_step else (s.data.x, s.data.y)
            ghost = pg.PlotDataItem(x.copy(), y.copy(),
                                    pen=pg.mkPen(faded(s.color, self.theme.ghost_alpha), width=1.5))
            ghost.setZValue(-10)
            s.plot.addItem(ghost)
            run.append(ghost)
        self.ghosts.append(run)
        while len(self.ghosts) > MAX_GHOST_RUNS:
            for ghost in self.ghosts.pop(0):
                for plot in (self.loss_plot, self.metrics_plot):
                    if ghost in plot.items:
                        plot.removeItem(ghost)

    def prepare(self, step_names=(), epoch_names=()) -> None:
        """Make the curves a run will need now (making them at the first data would cost the
        window a frame while training)."""
        for name in step_names:
            self._series(name, per_step=True)
        for name in epoch_names:
            self._series(name, per_step=False)

    def add_steps(self, steps, logs: dict, draw: bool = True) -> None:
        """Per-step values: ``steps`` (k,) global step counts, ``logs`` name -> (k,) values.
        With ``draw=False`` they are kept and drawn at the next :meth:`redraw`."""
        xs = np.asarray(steps, dtype=np.float64) / self.steps_per_epoch
        for name, values in logs.items():
            if name in IGNORED:
                continue
            series = self._series(name, per_step=True)
            series.extend(xs, values, self.alpha)
            self.ranges[series.plot].include(values)
            self._dirty.add(name)
        self.received += 1
        if draw:
            self.redraw()

    def add_epoch(self, logs: dict, draw: bool = True) -> None:
        """One epoch's history entry (``epoch``, ``train_loss``, ``val_loss``, ``val_accuracy``...)."""
        epoch = float(logs.get("epoch", 0))
        for name, value in logs.items():
            if name in IGNORED or not isinstance(value, (int, float)):
                continue
            series = self._series(name, per_step=False)
            series.extend([epoch], [value], self.alpha)
            self.ranges[series.plot].include([value])
            self._dirty.add(f"epoch:{name}")
        self.received += 1
        if draw:
            self.redraw()

    @property
    def dirty(self) -> bool:
        return bool(self._dirty)

    def redraw(self) -> None:
        """Hand the curves that got data their new arrays."""
        for key in self._dirty:
            self.series[key].refresh()
        self._dirty = set()
        for sticky in self.ranges.values():
            sticky.fit()
        if self.series:
            self.show_plots()

    def _series(self, name: str, per_step: bool) -> _Series:
        key = name if per_step else f"epoch:{name}"
        found = self.series.get(key)
        if found is None:
            is_loss = "loss" in name
            plot = self.loss_plot if is_loss else self.metrics_plot
            if not is_loss:
                self._show_metrics(True)
            color = series_color(COLORS.get(name, 7 + len(self.series)))
            found = self.series[key] = _Series(name, plot, color, per_step, self.max_marks)
            found.log = is_loss and self.log_y.isChecked()
            self._update_keys()
            self._update_visibility()
        return found

    # -- controls ---------------------------------------------------------------------------
    def _show_metrics(self, on: bool) -> None:
        """The metrics plot takes its row only when there are metrics (a hidden item would
        keep its room in the layout)."""
        shown = self.metrics_plot.scene() is not None
        if on and not shown:
            self.graphics.addItem(self.metrics_plot, row=1, col=0)
        elif not on and shown:
            self.graphics.removeItem(self.metrics_plot)
        self.metrics_plot.setVisible(on)

    def _update_keys(self) -> None:
        """The plots' titles double as their legends (a legend box would cover the data)."""
        for plot in (self.loss_plot, self.metrics_plot):
            mine = [s for s in self.series.values() if s.plot is plot]
            keys = [s.key() for s in mine if s.per_step or s.name not in MIRRORS]
            if any(not s.per_step and s.name in MIRRORS for s in mine):
                keys.insert(sum(s.per_step for s in mine),
                            (self.theme.muted, epoch_mark(self.max_marks), "per epoch"))
            if self.ghosts and keys:
                keys.append((self.theme.muted, "━━", "earlier runs (faint)"))
            runs = [label for label, items in self.overlays.items()
                    if any(item in plot.items for item in items)]
            shown = [item.overlay_metric for label in runs for item in self.overlays[label]
                     if item in plot.items]
            if any(m.startswith("train") for m in shown):  # how the runs' lines differ
                keys.append((self.theme.muted, "┈┈", "training" if not mine else
                             "runs' training"))
                if not mine and any(not m.startswith("train") for m in shown):
                    keys.append((self.theme.muted, "━━", "validation"))
            # a run keeps its colour in both plots: named once, under the lower one when shown
            if plot is not self.loss_plot or not self._overlays_on(self.metrics_plot):
                keys += [(self.overlay_colors[label], "━━", _escape(label)) for label in runs]
            plot.setTitle(self._key_lines(keys) if keys else None, size="8pt",
                          color=self.theme.foreground)
        metrics = [s.name for s in self.series.values() if s.plot is self.metrics_plot] + [
            item.overlay_metric for items in self.overlays.values() for item in items
            if item in self.metrics_plot.items]
        accuracy = bool(metrics) and all("accuracy" in m for m in metrics)
        self.metrics_plot.setLabel("left", "accuracy" if accuracy else "value")
        self.ranges[self.metrics_plot].ceiling = 1.0 if accuracy else None

    def _key_lines(self, keys: list) -> str:
        """The legend on as many lines as the plot's width needs: a title wider than the plot
        would widen it past the view, and cut its right side off."""
        width = max(160, self.graphics.width() - 80)
        metrics = QFontMetrics(_key_font())
        lines, line, used = [], [], 0
        for key in keys:
            need = metrics.horizontalAdvance(f"{key[1]} {key[2]}") + 16
            if line and used + need > width:
                lines.append(line)
                line, used = [], 0
            line.append(key)
            used += need
        lines.append(line)
        return "<br>".join(key_html(line) for line in lines)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if abs(event.size().width() - event.oldSize().width()) > 20 and \
                (self.overlays or self.series):
            self._update_keys()  # the legend's lines follow the width

    def _log_toggled(self, on: bool) -> None:
        self.loss_plot.setLogMode(y=on)
        for s in self.series.values():
            if s.plot is self.loss_plot and not s.per_step:
                s.log = on
                s.refresh()
        sticky = self.ranges[self.loss_plot]
        sticky.log = on
        sticky.fit(force=True)

    def _smoothing_changed(self, value: int) -> None:
        self.smoothing_label.setText(f"{value / 100:.2f}")
        for s in self.series.values():
            s.resmooth(self.alpha)
            s.refresh()

    def _update_visibility(self) -> None:
        for s in self.series.values():
            show = self.per_step.isChecked() if s.per_step else self.per_epoch.isChecked()
            for item in s.items():
                item.setVisible(show)

    def data(self, name: str, per_step: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """What the curve of ``name`` shows now (x in epochs, y) - the smoothed one per step."""
        s = self.series[name if per_step else f"epoch:{name}"]
        x, y = s.item.getData()
        return (np.array([]), np.array([])) if x is None else (x, y)

    def restyle(self) -> None:
        if hasattr(self, "series"):
            self._update_keys()
        for run in self.ghosts:
            for ghost in run:
                color = ghost.opts["pen"].color()
                color.setAlpha(self.theme.ghost_alpha)
                ghost.setPen(pg.mkPen(color, width=1.5))
