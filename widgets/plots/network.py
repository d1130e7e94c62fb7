"""The network view: a dense network drawn unit by unit, TensorFlow Playground-style. Every
weight is a line between two units, blue for positive and orange for negative, as thick and
opaque as its size (relative to the layer's largest); the switch shows the gradients of the
last step instead. Each unit is filled with its value for one sample (the forward pass).
A network with a layer wider than the probe draws unit by unit becomes one box per layer with
its mean |weight| and gradient norm.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

POSITIVE, NEGATIVE = QColor("#3b7ddd"), QColor("#e8843c")
MAX_LINE = 3.5  # px, the layer's largest weight


class NetworkCanvas(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("networkCanvas")
        self.data: dict | None = None
        self.show_gradients = False
        self.setMinimumSize(240, 160)

    def set_data(self, data: dict | None) -> None:
        self.data = data
        self.update()

    def columns(self) -> list[int]:
        """Units per column: the inputs, then each dense layer's outputs."""
        layers = self.data["layers"] if self.data else []
        if not layers:
            return []
        return [layers[0]["shape"][1], *(layer["shape"][0] for layer in layers)]

    def unit_position(self, column: int, unit: int) -> QPointF:
        cols = self.columns()
        w, h = self.width(), self.height()
        x = 40 + (w - 80) * column / max(1, len(cols) - 1)
        n = cols[column]
        y = 22 + (h - 44) * (unit + 0.5) / max(1, n)
        return QPointF(x, y)

    def lines(self) -> list[tuple[int, int, int, float]]:
        """(layer, from unit, to unit, value) of every line drawn (tests read them)."""
        out = []
        if not self.data or self.data.get("summary"):
            return out
        for i, layer in enumerate(self.data["layers"]):
            values = layer.get("grad") if self.show_gradients else layer.get("weight")
            if values is None:
                continue
            for k, row in enumerate(np.asarray(values)):
                for j, v in enumerate(row):
                    out.append((i, j, k, float(v)))
        return out

    def paintEvent(self, _event) -> None:  # noqa: N802 - Qt override
        if not self.data:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fg = self.palette().color(self.foregroundRole())
        if self.data.get("summary"):
            self._paint_summary(p, fg)
        else:
            self._paint_units(p, fg)
        p.end()

    def _paint_units(self, p: QPainter, fg: QColor) -> None:
        layers = self.data["layers"]
        for i, layer in enumerate(layers):
            values = layer.get("grad") if self.show_gradients else layer.get("weight")
            if values is None:
                continue
            values = np.asarray(values, dtype=np.float64)
            peak = float(np.abs(values).max()) or 1.0
            for k, row in enumerate(values):
                b = self.unit_position(i + 1, k)
                for j, v in enumerate(row):
                    share = abs(v) / peak
                    if share < 0.02:
                        continue
                    color = QColor(POSITIVE if v >= 0 else NEGATIVE)
                    color.setAlphaF(0.15 + 0.85 * share)
                    p.setPen(QPen(color, 0.4 + MAX_LINE * share))
                    p.drawLine(self.unit_position(i, j), b)
        columns = [self.data.get("inputs"), *(layer.get("units") for layer in layers)]
        names = ["input", *(layer["node"] for layer in layers)]
        for c, (values, name) in enumerate(zip(columns, names)):
            n = self.columns()[c]
            values = None if values is None else np.asarray(values, dtype=np.float64)
            peak = float(np.abs(values).max()) if values is not None and values.size else 1.0
            radius = max(3.0, min(9.0, (self.height() - 44) / max(1, n) / 2.6))
            for u in range(n):
                centre = self.unit_position(c, u)
                fill = QColor("#ffffff")
                if values is not None and u < len(values) and peak > 0:
                    share = min(1.0, abs(values[u]) / peak)
                    base = POSITIVE if values[u] >= 0 else NEGATIVE
                    fill = QColor(int(255 - share * (255 - base.red())),
                                  int(255 - share * (255 - base.green())),
                                  int(255 - share * (255 - base.blue())))
                p.setPen(QPen(fg, 1.0))
                p.setBrush(fill)
                p.drawEllipse(centre, radius, radius)
            top = self.unit_position(c, 0)
            p.setPen(fg)
            p.drawText(QRectF(top.x() - 50, 2, 100, 16), Qt.AlignmentFlag.AlignCenter, name)

    def _paint_summary(self, p: QPainter, fg: QColor) -> None:
        layers = self.data["layers"]
        n = len(layers)
        w = (self.width() - 20) / max(1, n)
        for i, layer in enumerate(layers):
            rect = QRectF(10 + i * w + 4, self.height() / 2 - 34, w - 8, 68)
            p.setPen(QPen(fg, 1.0))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(rect, 6, 6)
            out, inp = layer["shape"]
            grad = layer.get("grad_norm")
            text = (f"{layer['node']}\n{inp} → {out}\nmean |w| {layer['mean_abs']:.3g}\n"
                    f"|grad| {'–' if grad is None else f'{grad:.3g}'}")
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)


class NetworkView(QWidget):
    """The live view: the switch (weights or gradients), the canvas and a line of text."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("networkView")
        self.received = 0
        self.what = QComboBox()
        self.what.setObjectName("networkWhat")
        self.what.addItems(["Weights", "Gradients of the last step"])
        self.what.currentIndexChanged.connect(self._switch)
        self.canvas = NetworkCanvas()
        self.note = QLabel("The dense layers, unit by unit, appear when training starts "
                           "(a network with Linear layers).")
        self.note.setObjectName("mutedText")
        self.note.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Draw"))
        top.addWidget(self.what)
        top.addStretch(1)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 4, 6, 4)
        box.addLayout(top)
        box.addWidget(self.canvas, 1)
        box.addWidget(self.note)

    def _switch(self, index: int) -> None:
        self.canvas.show_gradients = index == 1
        self.canvas.update()
        self._describe()

    def show_probe(self, data: dict, step: int | None = None) -> None:
        self.canvas.set_data(data)
        self.step = step
        self.received += 1
        self._describe()

    def _describe(self) -> None:
        data = self.canvas.data
        if not data:
            return
        where = f" after step {self.step}" if getattr(self, "step", None) is not None else ""
        if data.get("summary"):
            self.note.setText(f"A layer is wider than {data.get('limit', 32)} units: one box "
                              f"per layer{where}.")
            return
        what = "gradients" if self.canvas.show_gradients else "weights"
        self.note.setText(f"Lines: the {what}{where} (blue positive, orange negative, thicker "
                          "is larger); circles: each unit's value for one sample.")

    def clear(self) -> None:
        self.canvas.set_data(None)

    def set_dark(self, _dark: bool) -> None:
        self.canvas.update()
