"""Edit → Find Node (Ctrl+F): find a layer by id, type, block or output shape and go to it.

A small panel over the canvas: typing filters the current model's nodes (every word must match
the id, the type, the block's name or the shape as the wires show it, ``8×8×8`` or ``8x8x8``);
Up/Down move through the hits, Enter selects the node, centres the view on it and closes the
panel, Escape closes it. Built for graphs of thousands of nodes: the list shows the first
:data:`MAX_SHOWN` hits.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import (QDialog, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QVBoxLayout)

from widgets.theme import format_shape

if TYPE_CHECKING:
    from gui.main_window import MainWindow

MAX_SHOWN = 200
_ID_ROLE = Qt.ItemDataRole.UserRole


def node_rows(graph, shapes) -> list[tuple[str, str]]:
    """(node id, the text searched: id, type, block, shape) for every node, in graph order."""
    rows = []
    for node in graph.nodes():
        info = shapes.info.get(node.id)
        shape = format_shape(info.out_shape) if info is not None else "?"
        kind = f"Block {node.params.get('block')}" if node.type == "Block" else node.type
        rows.append((node.id, f"{node.id}   {kind}   {shape}"))
    return rows


def matches(text: str, needle: str) -> bool:
    words = needle.lower().replace("x", "×").split()
    hay = text.lower().replace("x", "×")
    return all(w in hay for w in words)


class FindNode(QDialog):
    """The find panel of one window (non-modal, reused)."""

    def __init__(self, window: "MainWindow"):
        super().__init__(window, Qt.WindowType.Tool)
        self.window_ = window
        self.setWindowTitle("Find Node")
        self.setObjectName("findNode")
        self.edit = QLineEdit(placeholderText="id, type, block or shape (e.g. conv 8×8)")
        self.edit.setClearButtonEnabled(True)
        self.hits = QListWidget()
        self.count = QLabel()
        self.count.setObjectName("findCount")
        box = QVBoxLayout(self)
        box.setContentsMargins(8, 8, 8, 8)
        box.addWidget(self.edit)
        box.addWidget(self.hits)
        box.addWidget(self.count)
        self.resize(380, 320)
        self.edit.textChanged.connect(self._filter)
        self.edit.returnPressed.connect(self._go)
        self.edit.installEventFilter(self)
        self.hits.itemActivated.connect(lambda _item: self._go())
        self._rows: list[tuple[str, str]] = []

    def start(self) -> None:
        canvas = self.window_.current_canvas()
        if canvas is None:
            return
        self._rows = node_rows(canvas.graph, canvas.shapes)
        self.edit.selectAll()
        self._filter(self.edit.text())
        self.show()
        self.raise_()
        self.activateWindow()
        self.edit.setFocus()

    def _filter(self, needle: str) -> None:
        canvas = self.window_.current_canvas()  # read again: the graph may have changed
        self._rows = node_rows(canvas.graph, canvas.shapes) if canvas is not None else []
        found = [r for r in self._rows if matches(r[1], needle)] if needle.strip() else \
            list(self._rows)
        self.hits.clear()
        for node_id, text in found[:MAX_SHOWN]:
            item = QListWidgetItem(text)
            item.setData(_ID_ROLE, node_id)
            self.hits.addItem(item)
        if self.hits.count():
            self.hits.setCurrentRow(0)
        more = f" (the first {MAX_SHOWN} shown)" if len(found) > MAX_SHOWN else ""
        self.count.setText(f"{len(found)} of {len(self._rows)} nodes{more}")

    def eventFilter(self, watched, event) -> bool:
        """Up and Down in the search box move through the hits."""
        if watched is self.edit and event.type() == QEvent.Type.KeyPress and \
                event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up):
            step = 1 if event.key() == Qt.Key.Key_Down else -1
            row = max(0, min(self.hits.count() - 1, self.hits.currentRow() + step))
            self.hits.setCurrentRow(row)
            return True
        return super().eventFilter(watched, event)

    def _go(self) -> None:
        item = self.hits.currentItem()
        canvas = self.window_.current_canvas()
        if item is None or canvas is None:
            return
        node_id = item.data(_ID_ROLE)
        go_to(canvas, node_id)
        self.window_.show_status(f"Found {node_id}")
        self.hide()


def go_to(canvas, node_id: str) -> None:
    """Select ``node_id`` and centre the view on it (zoomed in to at least 100 %)."""
    canvas.scene.select_nodes([node_id])
    item = canvas.scene.node_item(node_id)
    if item is None:
        return
    view = canvas.view
    if view.transform().m11() < 1.0:
        view.resetTransform()
    view.centerOn(item.sceneBoundingRect().center())
