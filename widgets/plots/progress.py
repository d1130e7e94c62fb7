"""Training progress: a bar over all steps with the epoch, the step, the speed and the time left.

The bar's text is the longest of a few versions that fits its width (a narrow dock drops the
step count first, then the percentage the bar shows anyway, then the speed), so it never wraps
or runs out of the bar; the tooltip always holds everything.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QVBoxLayout, QWidget

SEP = "  ·  "
TEXT_MARGIN = 12  # pixels the style keeps around the text


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


def progress_texts(epoch: int, epochs: int, step: int, total_steps: int,
                   samples_per_s: float | None, seconds_left: float | None) -> list[str]:
    """The bar's text from the longest to the shortest (see the module doc)."""
    epoch = min(epoch, epochs)
    percent = f"{step / total_steps if total_steps else 0.0:.0%}"
    rate, left = format_rate(samples_per_s), f"{format_duration(seconds_left)} left"
    return [SEP.join((f"Epoch {epoch} / {epochs}", f"step {step:,} / {total_steps:,}", rate,
                      left)),
            SEP.join((f"Epoch {epoch} / {epochs}", percent, rate, left)),
            " · ".join((f"Epoch {epoch}/{epochs}", rate, left)),
            " · ".join((f"Epoch {epoch}/{epochs}", percent, left)),
            " · ".join((percent, left)),
            percent]


class FittingBar(QProgressBar):
    """A progress bar showing the longest of its texts that fits (see the module doc)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.texts: list[str] = ["Not started"]

    def set_texts(self, texts: list[str]) -> None:
        if texts != self.texts:
            self.texts = list(texts)
            self._fit()

    def _fit(self) -> None:
        room = self.width() - TEXT_MARGIN
        metrics = self.fontMetrics()
        text = next((t for t in self.texts if metrics.horizontalAdvance(t) <= room),
                    self.texts[-1])
        if text != self.format():
            self.setFormat(text)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit()


class ProgressView(QWidget):
    """Epoch and step counters, samples per second and the time left, over a progress bar."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.bar = FittingBar()
        self.bar.setObjectName("trainingProgress")
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setTextVisible(True)
        self.bar.set_texts(["Not started"])
        self.bar.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.details = QLabel("Press Train to start; the settings and data are in the tabs "
                              "below.")
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
        texts = progress_texts(epoch, epochs, step, total_steps, samples_per_s, seconds_left)
        self.bar.setToolTip(texts[0])
        self.bar.set_texts(texts)
        if value != self.bar.value():
            self.bar.setUpdatesEnabled(False)  # setValue would repaint at once, in this call;
            self.bar.setValue(value)  # this way the bar is painted once, with the next frame
            self.bar.setUpdatesEnabled(True)

    def set_message(self, text: str, bar_text: str | None = None) -> None:
        """A state line (``Preparing…``, ``Paused``, ``Finished in 0:41``)."""
        self.details.setText(text)
        if bar_text is not None:  # "Finished  ·  epoch 15", or "Finished" in a narrow bar
            self.bar.set_texts([bar_text, bar_text.split(SEP)[0]])

    def reset(self) -> None:
        self.bar.setValue(0)
        self.bar.set_texts(["Not started"])
        self.details.setText("Press Train to start; the settings and data are in the tabs "
                             "below.")
