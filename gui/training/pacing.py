"""How often the window may draw while training: as often as it can afford.

On a small machine the window's thread and the training thread share the cores (and, in Python,
one interpreter lock): every millisecond the window spends drawing is, roughly, a millisecond of
training lost. :class:`CpuBudget` lets the drawing take at most a set share of one core (the CPU
time of handing the plots their data and of painting them, measured with ``time.thread_time``)
and tells the views to skip a frame when the share is spent. A fast machine draws often, a slow
or busy one draws less, and training keeps its pace on both.
"""
from __future__ import annotations

import time
from typing import Callable

CPU_SHARE = 0.03  # of one core, for drawing the live views while training
BURST_S = 0.03  # CPU seconds that may be saved up while nothing needed drawing, and the most
# debt kept: a costly one-off (a tab shown for the first time) pauses drawing for a moment only


class CpuBudget:
    """A token bucket of CPU time: each wall second adds ``share`` seconds, every second that
    ``cpu()`` (a running total, by default the calling thread's CPU time) grew takes one away;
    the balance stays within ``-burst .. burst``."""

    def __init__(self, share: float = CPU_SHARE, burst: float = BURST_S,
                 clock: Callable[[], float] = time.perf_counter,
                 cpu: Callable[[], float] = time.thread_time):
        self.share, self.burst = share, burst
        self._clock, self._cpu = clock, cpu
        self.balance = burst
        self._at = self._used = None

    def reset(self) -> None:
        """Start full (a run starts: its first frames draw at once)."""
        self.balance = self.burst
        self._at, self._used = self._clock(), self._cpu()

    def allows(self) -> bool:
        """Settle the CPU used since the last call; True while the balance is not overdrawn."""
        now, used = self._clock(), self._cpu()
        if self._at is not None:
            earned = (now - self._at) * self.share
            balance = self.balance + earned - (used - self._used)
            self.balance = min(self.burst, max(-self.burst, balance))
        self._at, self._used = now, used
        return self.balance >= 0.0
