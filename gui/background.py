"""One function call on Qt's thread pool, its outcome reported back on the GUI thread.

The export and import dialogs use it for work that takes longer than a frame (an ONNX export
checked with onnxruntime, tracing a model): the window keeps painting meanwhile. A user mistake
(:class:`~engine.errors.LayerlabError`) is reported with its message; anything else is a bug and
is reported as such, with the traceback on the console.
"""
from __future__ import annotations

import sys
import traceback
from typing import Callable

from PySide6.QtCore import QObject, QThreadPool, Signal

from engine.errors import LayerlabError

BUG_NOTE = "This is a bug in Layerlab; the details are on the console."


class BackgroundCall(QObject):
    """Runs ``function()`` once on the global thread pool; emits ``succeeded(result)`` or
    ``failed(message)``. Create it on the GUI thread: its signals reach receivers there."""

    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, function: Callable[[], object], parent: QObject | None = None):
        super().__init__(parent)
        self.function = function
        self.running = False

    def start(self) -> None:
        self.running = True
        QThreadPool.globalInstance().start(self._run)

    def _run(self) -> None:  # on a pool thread: touches no widget
        try:
            result = self.function()
        except LayerlabError as exc:
            self._end(self.failed, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the pool thread silently
            traceback.print_exc(file=sys.stderr)
            self._end(self.failed, f"{type(exc).__name__}: {exc}\n\n{BUG_NOTE}")
        else:
            self._end(self.succeeded, result)

    def _end(self, signal, value) -> None:
        self.running = False
        signal.emit(value)
