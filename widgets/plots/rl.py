"""Live views of reinforcement learning: the episode returns with their running mean, the
environment drawn as it is now, and the policy's view of the current state (Q-values or action
probabilities) with epsilon.

:class:`EnvironmentDrawing` paints an ``rgb_array`` frame when the environment renders one
(pygame installed) and otherwise draws the state itself with a QPainter: the cart and the pole
of CartPole, the two links of Acrobot, the car on the hill of MountainCar, or the numbers of
any other state. Nothing here knows of training.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from widgets.plots.style import (PlotView, StickyY, faded, key_html, new_plot, series_color,
                                 steady_axes)

MEAN_WINDOW = 20  # episodes in the running mean (as the trainer's mean_return)
MAX_POINTS = 5000  # episodes drawn; older ones are thinned
RETURNS_INTERVAL_S = 0.5  # the returns plot (pyqtgraph) is redrawn at most this often


def running_mean(values: np.ndarray, window: int = MEAN_WINDOW) -> np.ndarray:
    """The mean of each value and the ``window - 1`` before it (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    csum = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(0, ends - window)
    return (csum[ends] - csum[starts]) / (ends - starts)


class ReturnsView(PlotView):
    """The return of every finished episode and their running mean."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Episode returns appear as episodes end.", parent)
        self.set_caption("Episode return")
        self.plot = self.add_plot(new_plot(x="episode", y="return"))
        steady_axes(self.plot)
        self.raw = self.plot.plot([], [], pen=None, symbol="o", symbolSize=3,
                                  symbolPen=None)
        self.mean = self.plot.plot([], [])
        self.sticky = StickyY(self.plot, zero=True)
        self.returns = np.zeros(0)
        self.dirty = False
        self.restyle()

    def add(self, returns, draw: bool = True) -> None:
        returns = np.asarray(returns, dtype=np.float64)
        if returns.size == 0:
            return
        self.returns = np.concatenate([self.returns, returns])
        self.sticky.include(returns)
        self.dirty = True
        self.received += 1
        if draw:
            self.redraw()

    def redraw(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        r = self.returns
        x = np.arange(1, r.size + 1, dtype=np.float64)
        mean = running_mean(r)
        step = max(1, r.size // MAX_POINTS)
        self.raw.setData(x[::step], r[::step])
        self.mean.setData(x[::step], mean[::step])
        self.plot.getViewBox().setXRange(0, max(10, r.size) * 1.02, padding=0)
        self.sticky.fit()
        self.plot.setTitle(key_html([(series_color(0), "●", "episode"),
                                     (series_color(1), "━", f"mean of {MEAN_WINDOW}")])
                           + f"&nbsp;&nbsp;&nbsp;last mean {mean[-1]:.1f}", size="9pt")
        self.show_plots()

    @property
    def last_mean(self) -> float | None:
        return float(running_mean(self.returns)[-1]) if self.returns.size else None

    def clear(self) -> None:
        self.returns = np.zeros(0)
        self.raw.setData([], [])
        self.mean.setData([], [])
        self.sticky.reset()
        self.dirty = False
        super().clear()

    def restyle(self) -> None:
        self.raw.setSymbolBrush(faded(series_color(0), 140))
        self.mean.setPen(pg.mkPen(series_color(1), width=2))


class ActionValuesView(PlotView):
    """One bar per action: the Q-values (dqn) or the probabilities (policy gradient) of the
    current state, the greedy action highlighted; epsilon in the caption."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__("The policy's view of the current state appears here.", parent)
        self.set_caption("Action values")
        self.plot = self.add_plot(new_plot(x="action"))
        steady_axes(self.plot)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        self.plot.addItem(self.bars)
        self.values: np.ndarray | None = None
        self.kind = "q"
        self.epsilon: float | None = None
        self.sticky = StickyY(self.plot)
        self._n = 0

    def set_kind(self, kind: str, names: list[str] | None = None) -> None:
        """``"q"`` (Q-values) or ``"probs"`` (action probabilities, shown from 0 to 1)."""
        self.kind = kind
        self.plot.setLabel("left", "Q-value" if kind == "q" else "probability")
        self.sticky.reset()
        if kind == "probs":
            self.plot.getViewBox().setYRange(0, 1.05, padding=0)
        self._names = names

    def show_values(self, values, epsilon: float | None = None) -> None:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        self.values, self.epsilon = values, epsilon
        n = values.size
        best = int(np.argmax(values)) if n else -1
        brushes = [series_color(1) if i == best else series_color(0) for i in range(n)]
        self.bars.setOpts(x=np.arange(n), height=values, width=0.7, brushes=brushes, pen=None)
        if n != self._n:
            self._n = n
            names = getattr(self, "_names", None) or [str(i) for i in range(n)]
            self.plot.getAxis("bottom").setTicks([[(i, names[i]) for i in range(n)]])
            self.plot.getViewBox().setXRange(-0.6, n - 0.4, padding=0)
        if self.kind == "q":
            self.sticky.include(np.append(values, 0.0))
            self.sticky.fit()
        what = "Q-values" if self.kind == "q" else "Action probabilities"
        self.set_caption(what + (f"  ·  epsilon {epsilon:.3f}" if epsilon is not None else ""))
        self.received += 1
        self.show_plots()

    def clear(self) -> None:
        self.bars.setOpts(x=[], height=[])
        self.values, self.epsilon, self._n = None, None, 0
        self.set_caption("Action values")
        super().clear()


class EnvironmentDrawing(QWidget):
    """The environment now: a rendered frame, or the state drawn (see the module doc)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setMinimumSize(160, 120)
        self.drawing: str | None = None
        self.state: np.ndarray | None = None
        self.frame: QImage | None = None
        self.title = ""
        self.dark = False
        self.painted = 0  # paints done (tests read it)

    def set_environment(self, drawing: str | None, title: str) -> None:
        self.drawing, self.title = drawing, title
        self.state = self.frame = None
        self.update()

    def show_state(self, state) -> None:
        self.state = None if state is None else np.asarray(state, dtype=np.float64).reshape(-1)
        self.update()

    def show_frame(self, rgb) -> None:
        """An ``(H, W, 3)`` uint8 frame (kept as a QImage copy)."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        h, w = rgb.shape[:2]
        self.frame = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
        self.update()

    def clear(self) -> None:
        self.state = self.frame = None
        self.update()

    # -- painting -----------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        bg, fg = (QColor("#202328"), QColor("#d8dee9")) if self.dark else \
            (QColor("#ffffff"), QColor("#2e3440"))
        painter.fillRect(self.rect(), bg)
        area = QRectF(self.rect()).adjusted(8, 22, -8, -8)
        painter.setPen(fg)
        painter.drawText(QRectF(8, 2, self.width() - 16, 18), Qt.AlignmentFlag.AlignLeft,
                         self.title or "Environment")
        if self.frame is not None:
            self._frame(painter, area)
        elif self.state is not None:
            draw = {"cartpole": self._cartpole, "acrobot": self._acrobot,
                    "mountaincar": self._mountaincar}.get(self.drawing, self._numbers)
            draw(painter, area, self.state, fg)
        else:
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "The environment is drawn "
                             "here while training.")
        painter.end()
        self.painted += 1

    def _frame(self, painter: QPainter, area: QRectF) -> None:
        img = self.frame
        scale = min(area.width() / img.width(), area.height() / img.height())
        w, h = img.width() * scale, img.height() * scale
        painter.drawImage(QRectF(area.center().x() - w / 2, area.center().y() - h / 2, w, h),
                          img)

    def _cartpole(self, painter: QPainter, area: QRectF, s: np.ndarray, fg: QColor) -> None:
        x, theta = float(s[0]), float(s[2])
        world = 4.8 * 2  # the track spans x in [-4.8, 4.8]
        scale = area.width() / world
        ground = area.bottom() - area.height() * 0.2
        painter.setPen(QPen(fg, 1.5))
        painter.drawLine(QPointF(area.left(), ground), QPointF(area.right(), ground))
        cx = area.center().x() + x * scale
        cart_w, cart_h = 0.5 * scale, 0.3 * scale
        painter.setBrush(QColor(series_color(0)))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawRect(QRectF(cx - cart_w / 2, ground - cart_h, cart_w, cart_h))
        pole = min(1.0 * scale, area.height() * 0.7)  # the pole is 1.0 long (2 x 0.5)
        top = QPointF(cx + pole * math.sin(theta), ground - cart_h - pole * math.cos(theta))
        painter.setPen(QPen(QColor(series_color(1)), max(3.0, 0.1 * scale),
                            Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        painter.drawLine(QPointF(cx, ground - cart_h), top)
        painter.setPen(fg)
        painter.drawText(QRectF(area.left(), area.bottom() - 16, area.width(), 16),
                         Qt.AlignmentFlag.AlignLeft,
                         f"x {x:+.2f}   angle {math.degrees(theta):+.1f}°")

    def _acrobot(self, painter: QPainter, area: QRectF, s: np.ndarray, fg: QColor) -> None:
        # observation: cos t1, sin t1, cos t2, sin t2, dt1, dt2; t1 = 0 hangs straight down
        t1 = math.atan2(float(s[1]), float(s[0]))
        t2 = math.atan2(float(s[3]), float(s[2]))
        length = min(area.width(), area.height()) / 4.4
        pivot = area.center()
        p1 = QPointF(pivot.x() + length * math.sin(t1), pivot.y() + length * math.cos(t1))
        p2 = QPointF(p1.x() + length * math.sin(t1 + t2), p1.y() + length * math.cos(t1 + t2))
        painter.setPen(QPen(fg, 1, Qt.PenStyle.DashLine))
        painter.drawLine(QPointF(area.left(), pivot.y() - length),
                         QPointF(area.right(), pivot.y() - length))  # the goal line
        for a, b, colour in ((pivot, p1, series_color(0)), (p1, p2, series_color(1))):
            painter.setPen(QPen(QColor(colour), 6, Qt.PenStyle.SolidLine,
                                Qt.PenCapStyle.RoundCap))
            painter.drawLine(a, b)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fg)
        painter.drawEllipse(pivot, 4, 4)

    def _mountaincar(self, painter: QPainter, area: QRectF, s: np.ndarray, fg: QColor) -> None:
        lo, hi = -1.2, 0.6

        def point(pos: float) -> QPointF:
            height = math.sin(3 * pos) * 0.45 + 0.55  # gymnasium's hill
            return QPointF(area.left() + (pos - lo) / (hi - lo) * area.width(),
                           area.bottom() - height * area.height() * 0.9)

        path = QPainterPath(point(lo))
        for pos in np.linspace(lo, hi, 60)[1:]:
            path.lineTo(point(float(pos)))
        painter.setPen(QPen(fg, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawPath(path)
        flag = point(0.5)
        painter.drawLine(flag, QPointF(flag.x(), flag.y() - 24))
        painter.setBrush(QColor(series_color(3)))
        painter.drawRect(QRectF(flag.x(), flag.y() - 24, 12, 8))
        car = point(float(s[0]))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(series_color(0)))
        painter.drawEllipse(QPointF(car.x(), car.y() - 7), 9, 7)

    def _numbers(self, painter: QPainter, area: QRectF, s: np.ndarray, fg: QColor) -> None:
        text = "  ".join(f"{v:+.3f}" for v in s[:16]) + (" ..." if s.size > 16 else "")
        painter.setPen(fg)
        painter.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                         f"state\n{text}")


class RLView(QWidget):
    """The reinforcement-learning tab: returns on the left; the environment and the action
    values on the right."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.returns = ReturnsView()
        self.environment = EnvironmentDrawing()
        self.values = ActionValuesView()
        self.status = QLabel()
        self.status.setObjectName("mutedText")
        right = QWidget()
        column = QVBoxLayout(right)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.environment, 3)
        column.addWidget(self.values, 2)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.returns)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(split, 1)
        row = QHBoxLayout()
        row.setContentsMargins(6, 0, 6, 2)
        row.addWidget(self.status)
        box.addLayout(row)
        self.pending: dict = {}  # the latest state, values and frame, drawn at redraw()
        self._returns_at = 0.0

    def begin(self, env_id: str, drawing: str | None, kind: str) -> None:
        self.clear()
        self.environment.set_environment(drawing, env_id)
        self.values.set_kind(kind)

    def set_dark(self, dark: bool) -> None:
        self.returns.set_dark(dark)
        self.values.set_dark(dark)
        self.environment.dark = dark
        self.environment.update()

    def take(self, live: dict, draw: bool = False) -> None:
        """News from the bridge: ``returns`` (new episodes), ``obs``, ``frame``, ``values``,
        ``epsilon``, ``steps``. Returns are recorded now; the rest waits for :meth:`redraw`."""
        if live.get("returns"):
            self.returns.add(live["returns"], draw=False)
        for key in ("obs", "frame", "values", "epsilon", "steps"):
            if live.get(key) is not None:
                self.pending[key] = live[key]
        if draw:
            self.redraw()

    @property
    def dirty(self) -> bool:
        return self.returns.dirty or bool(self.pending)

    def redraw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self._returns_at >= RETURNS_INTERVAL_S:
            self._returns_at = now
            self.returns.redraw()
        p, self.pending = self.pending, {}
        if p.get("frame") is not None:
            self.environment.show_frame(p["frame"])
        elif p.get("obs") is not None:
            self.environment.show_state(p["obs"])
        if p.get("values") is not None:
            self.values.show_values(p["values"], p.get("epsilon"))
        if p.get("steps") is not None:
            episodes = self.returns.returns.size
            self.status.setText(f"{p['steps']:,} environment steps, {episodes:,} episodes")

    def clear(self) -> None:
        self.returns.clear()
        self.values.clear()
        self.environment.clear()
        self.pending = {}
        self.status.setText("")
