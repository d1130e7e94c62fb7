"""Small dialogs: errors, the unsaved-changes prompt, the recovery offer, shortcuts, about.

Each goes through a static ``QMessageBox`` function, so tests can patch ``QMessageBox`` and never
block. A window that is not interactive (``--screenshot`` / ``--quit-after``) prints instead.
"""
from __future__ import annotations

import sys

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QMessageBox, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

SAVE, DISCARD, CANCEL = "save", "discard", "cancel"


def show_error(parent: QWidget | None, title: str, message: str, interactive: bool = True) -> None:
    """A modal error box, or a line on stderr when nobody is there to click it."""
    if interactive:
        QMessageBox.critical(parent, title, message)
    else:
        print(f"layerlab: {title}: {message}", file=sys.stderr)


def ask_save_changes(parent: QWidget | None, name: str) -> str:
    """Save, discard or cancel before ``name`` is closed; returns SAVE, DISCARD or CANCEL."""
    buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
               | QMessageBox.StandardButton.Cancel)
    answer = QMessageBox.warning(
        parent, "Unsaved changes",
        f"“{name}” has changes that are not saved.\n\nSave them before closing?",
        buttons, QMessageBox.StandardButton.Save)
    return {QMessageBox.StandardButton.Save: SAVE,
            QMessageBox.StandardButton.Discard: DISCARD}.get(answer, CANCEL)


def ask_restore(parent: QWidget | None, name: str, when: str) -> bool:
    """Offer to restore an autosaved copy left by a crash."""
    buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    answer = QMessageBox.question(
        parent, "Restore unsaved work?",
        f"Layerlab did not close normally last time.\n\nAn autosaved copy of “{name}” from "
        f"{when} was found. Restore it?\n\n(No deletes the autosaved copy.)",
        buttons, QMessageBox.StandardButton.Yes)
    return answer == QMessageBox.StandardButton.Yes


def show_about(parent: QWidget | None) -> None:
    from layerlab import __version__

    QMessageBox.about(
        parent, "About Layerlab",
        f"<h3>Layerlab {__version__}</h3><p>A desktop visual builder for neural networks: drag layers onto "
        "the canvas, wire them, and watch every tensor shape and parameter count as you "
        "build.</p><p>Built on PySide6, PyTorch, networkx and pyqtgraph.</p>")


class ShortcutsDialog(QDialog):
    """A table of every menu action that has a keyboard shortcut."""

    def __init__(self, actions, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = [(a.text().replace("&", "").rstrip("."), a.shortcut().toString(
            a.shortcut().SequenceFormat.NativeText)) for a in actions if not a.shortcut().isEmpty()]
        rows += [("Move the selection", "Arrow keys"), ("Pan", "Middle drag / Space + drag"),
                 ("Zoom under the mouse", "Wheel")]
        table = QTableWidget(len(rows), 2, self)
        table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        for i, (name, keys) in enumerate(rows):
            table.setItem(i, 0, QTableWidgetItem(name))
            item = QTableWidgetItem(keys)
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            table.setItem(i, 1, item)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(table)
        box.addWidget(buttons)
        self.resize(420, 520)
