"""Training progress: a bar over all steps with the epoch, the step, the speed and the time left."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QVBoxLayout, QWidget


def format_duration(seconds: float | None) -> str:
    """``0:07``, ``3:25``, ``1:02:03``; ``–`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_rate(samples_per_s: float | None) -> str:
    if not samples_per_s:
        return "– samples/s"
    if samples_per_s >= 10_000:
        return f"{samples_per_s / 1000:,.0f}k samples/s"
    if samples_per_s >= 1_000:
        return f"{samples_per_s / 1000:.1f}k samples/s"
    return f"{samples_per_s:.0f} samples/s"


class ProgressView(QWidget):
    """Epoch and step counters, samples per second and the time left, over a progress bar."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setObjectName("trainingProgress")
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setTextVisible(True)
        self.bar.setFormat("Not started")
        self.bar.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.details = QLabel("–")
        # a long text wraps rather than widening the dock (the canvas would shrink)
        self.details.setWordWrap(True)
        self.details.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.details.setObjectName("mutedText")
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(3)
        box.addWidget(self.bar)
        box.addWidget(self.details)
        self.state = "idle"

    def set_progress(self, epoch: int, epochs: int, step: int, total_steps: int,
                     samples_per_s: float | None, seconds_left: float | None) -> None:
        """``epoch`` is the one running (1-based); ``step`` counts every batch so far. Only the
        bar changes (one widget repaint): relaying out a label costs the window far more."""
        fraction = step / total_steps if total_steps else 0.0
        value = int(round(1000 * min(max(fraction, 0.0), 1.0)))
        text = (f"Epoch {min(epoch, epochs)} / {epochs}  ·  {fraction:.0%}  ·  "
                f"{format_rate(samples_per_s)}  ·  {format_duration(seconds_left)} left")
        self.bar.setToolTip(f"step {step:,} of {total_steps:,}")
        if value != self.bar.value():
            self.bar.setValue(value)
        if text != self.bar.format():
            self.bar.setFormat(text)

    def set_message(self, text: str, bar_text: str | None = None) -> None:
        """A state line (``Preparing…``, ``Paused``, ``Finished in 0:41``)."""
        self.details.setText(text)
        if bar_text is not None:
            self.bar.setFormat(bar_text)

    def reset(self) -> None:
        self.bar.setValue(0)
        self.bar.setFormat("Not started")
        self.details.setText("–")
