"""What the export and import dialogs share: one function call on Qt's thread pool with its
outcome reported back on the GUI thread, dialogs that grow to fit their messages, their busy
indicator, message boxes and buttons.

Work that takes longer than a frame (an ONNX export checked with onnxruntime, tracing a model)
runs on the pool, so the window keeps painting meanwhile. A user mistake
(:class:`~engine.errors.LayerlabError`) is reported with its message; anything else is a bug and
is reported as such, with the traceback on the console.
"""
from __future__ import annotations

import importlib
import sys
import traceback
from typing import Callable

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal
from PySide6.QtWidgets import QDialogButtonBox, QLabel, QProgressBar, QPushButton, QWidget

from engine.errors import LayerlabError

BUG_NOTE = "This is a bug in Layerlab; the details are on the console."
# beside the theme's QLabel#errorBox (resources/style/common.qss), in its shape; the text keeps
# the palette's colour, so both themes read it
RESULT_BOX = ("QLabel {{ border: 1px solid {0}; border-radius: 5px; padding: 8px; "
              "background: rgba({1}, 0.08); }}")
OK_STYLE = RESULT_BOX.format("#2f9e5b", "47, 158, 91")
WARNING_STYLE = RESULT_BOX.format("#d08a1f", "208, 138, 31")


class BackgroundCall(QObject):
    """Runs ``function()`` once on the global thread pool; emits ``succeeded(result)`` or
    ``failed(message)``. Create it on the GUI thread, parented to its receiver: the signals
    reach receivers there (queued), and the receiver's end owns it."""

    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, function: Callable[[], object], parent: QObject | None = None):
        super().__init__(parent)
        self.function = function

    def start(self) -> None:
        QThreadPool.globalInstance().start(self._run)

    def _run(self) -> None:  # on a pool thread: touches no widget
        try:
            result = self.function()
        except LayerlabError as exc:
            self._emit(self.failed, str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the pool thread silently
            traceback.print_exc(file=sys.stderr)
            self._emit(self.failed, f"{type(exc).__name__}: {exc}\n\n{BUG_NOTE}")
        else:
            self._emit(self.succeeded, result)

    @staticmethod
    def _emit(signal, value) -> None:
        try:
            signal.emit(value)
        except RuntimeError:  # "Signal source has been deleted": the window went meanwhile,
            pass  # and nobody is left to tell


def busy_indicator(text: str = "") -> tuple[QProgressBar, QLabel]:
    """A thin bar that only says "working" (no percentage to show) and the line beneath it."""
    bar = QProgressBar()
    bar.setRange(0, 0)
    bar.setTextVisible(False)
    bar.setMaximumHeight(6)
    label = QLabel(text)
    label.setObjectName("mutedText")
    return bar, label


def message_box(name: str, style: str = "") -> QLabel:
    """A word-wrapped, selectable box for a result, warnings or an error (``errorBox`` takes
    the theme's error look)."""
    label = QLabel()
    label.setObjectName(name)
    if style:
        label.setStyleSheet(style)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def show_texts(dialog: QWidget, *pairs: tuple[QLabel, str]) -> None:
    """Set each label's text, show only those with one, and let the dialog grow to fit."""
    for label, text in pairs:
        label.setText(text)
        label.setVisible(bool(text))
    grow_to_fit(dialog)


def action_buttons(dialog, standard: QDialogButtonBox.StandardButton, text: str, name: str,
                   slot: Callable[[], object]) -> tuple[QDialogButtonBox, QPushButton]:
    """A button box with ``standard`` (Close or Cancel: it rejects ``dialog``) and the dialog's
    action as the default button, which Enter presses."""
    buttons = QDialogButtonBox(standard)
    buttons.rejected.connect(dialog.reject)
    action = buttons.addButton(text, QDialogButtonBox.ButtonRole.ActionRole)
    action.setObjectName(name)
    action.setDefault(True)
    action.clicked.connect(slot)
    buttons.button(standard).setAutoDefault(False)
    return buttons, action


def import_here(*names: str) -> None:
    """Import modules on the GUI thread before a pool thread needs them: PySide's import hook
    is not safe while two threads import at once (a first import inside a worker has crashed
    the process while the window imported something else)."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the worker reports it, with the message of the step that needs it


def grow_to_fit(dialog: QWidget) -> None:
    """Make a dialog tall enough for its (word-wrapped) contents at its width; never shrink it,
    so a size the user chose stays."""
    layout = dialog.layout()
    if layout is None:
        return
    layout.activate()
    width = dialog.width()
    needed = dialog.heightForWidth(width) if dialog.hasHeightForWidth() else -1
    needed = max(needed, layout.minimumSize().height())
    if needed > dialog.height():
        dialog.resize(width, needed)
