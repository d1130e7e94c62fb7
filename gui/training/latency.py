"""How long the window's event loop keeps a timer waiting: a 5 ms timer records, at each firing,
how late it fired compared with when it was due.
"""
from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer

INTERVAL_MS = 5


class LatencyProbe(QObject):
    """Records the event loop's delay while it is started; ``summary()`` gives p50/p99/max (ms)."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS):
        super().__init__(parent)
        self.interval = interval_ms / 1000.0
        self.delays: list[float] = []
        self.ticks = 0
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last: float | None = None

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._last = None

    @property
    def active(self) -> bool:
        return self._timer.isActive()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.ticks += 1
        if self._last is not None:
            self.delays.append(max(0.0, now - self._last - self.interval))
        self._last = now

    def summary(self) -> dict:
        """``{"p50", "p99", "max"}`` in milliseconds (zeros before any measurement)."""
        if not self.delays:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0}
        ms = np.asarray(self.delays) * 1000.0
        return {"p50": round(float(np.percentile(ms, 50)), 2),
                "p99": round(float(np.percentile(ms, 99)), 2),
                "max": round(float(ms.max()), 2)}
