"""Where the nodes are, bucketed in a coarse grid, for routing wires around them.

Asking the scene (``QGraphicsScene.items(rect)``) is slow while wires are being rerouted: each
wire's new geometry drops it out of Qt's index, so every later query re-examines every item. Node
rectangles change only when a node moves or resizes, so the canvas keeps them here.
"""
from __future__ import annotations

from math import floor

from PySide6.QtCore import QRectF

CELL = 200.0  # about one layout column: a wire's box touches a few cells
CLEARANCE = 4.0  # a wire passing closer than this to a node's body detours around it
REACH = CLEARANCE + 2  # how far outside its own box a wire can be blocked by a node


class NodeGrid:
    """Node items and their scene rectangles, found by area in time proportional to the area."""

    def __init__(self, cell: float = CELL):
        self.cell = cell
        self._rects: dict = {}
        self._cells: dict[tuple[int, int], set] = {}

    def place(self, item, rect: QRectF) -> None:
        """Record (or update) where ``item`` is."""
        self.remove(item)
        self._rects[item] = QRectF(rect)
        for key in self._keys(rect):
            self._cells.setdefault(key, set()).add(item)

    def rect(self, item) -> QRectF | None:
        rect = self._rects.get(item)
        return QRectF(rect) if rect is not None else None

    def remove(self, item) -> None:
        rect = self._rects.pop(item, None)
        if rect is None:
            return
        for key in self._keys(rect):
            bucket = self._cells[key]
            bucket.discard(item)
            if not bucket:
                del self._cells[key]

    def near(self, area: QRectF) -> list[tuple[object, QRectF]]:
        """``(item, rect)`` of every node whose rectangle meets ``area``."""
        if self._cell_count(area) > len(self._cells):  # a huge area: looking at all is less
            found = set(self._rects)
        else:
            found = set()
            for key in self._keys(area):
                found.update(self._cells.get(key, ()))
        return [(item, self._rects[item]) for item in found
                if self._rects[item].intersects(area)]

    def __len__(self) -> int:
        return len(self._rects)

    def _span(self, rect: QRectF) -> tuple[range, range]:
        c = self.cell
        return (range(floor(rect.left() / c), floor(rect.right() / c) + 1),
                range(floor(rect.top() / c), floor(rect.bottom() / c) + 1))

    def _cell_count(self, rect: QRectF) -> int:
        xs, ys = self._span(rect)
        return len(xs) * len(ys)

    def _keys(self, rect: QRectF):
        xs, ys = self._span(rect)
        return ((x, y) for x in xs for y in ys)
