"""A placeholder that builds its real widget the first time it is painted (or asked for), so
that the plot widgets - and pyqtgraph with them - cost the window nothing while it starts.

Painted, not shown: a dock behind another in a tab group counts as visible but is never
painted."""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget


class LazyWidget(QWidget):
    """Holds ``factory()``'s widget once built; ``content`` builds it on demand."""

    def __init__(self, factory: Callable[[], QWidget], parent: QWidget | None = None):
        super().__init__(parent)
        self._factory = factory
        self._content: QWidget | None = None
        self.built_callbacks: list[Callable[[QWidget], None]] = []
        self._box = QVBoxLayout(self)
        self._box.setContentsMargins(0, 0, 0, 0)

    @property
    def built(self) -> bool:
        return self._content is not None

    @property
    def content(self) -> QWidget:
        if self._content is None:
            self._content = self._factory()
            self._box.addWidget(self._content)
            for callback in self.built_callbacks:
                callback(self._content)
        return self._content

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self._content is None:  # seen: build it once this paint is over
            QTimer.singleShot(0, self._build)
        super().paintEvent(event)

    def _build(self) -> None:
        self.content  # noqa: B018 - builds it
