"""The undo command of the data and settings panel: replace the project's ``dataset`` or
``training`` block.

A new dataset changes the Input shapes, so the command re-reads them and hands them to every
model's shape inference (the canvas and the summary follow its ``updated`` event). Successive
edits of one field (typing in a spin box) merge into one undo step.
"""
from __future__ import annotations

import copy
import time

from PySide6.QtGui import QUndoCommand

from engine.errors import DataError

SET_BLOCK_ID = 2001
MERGE_SECONDS = 2.0
BLOCKS = ("dataset", "training")


def refresh_input_shapes(document) -> None:
    """Read the dataset's sample shapes again and give them to every model's inference."""
    try:
        shapes, error = document.project.input_shapes(), None
    except DataError as exc:
        shapes, error = {}, str(exc)
    document.input_shapes, document.dataset_error = shapes, error
    for inference in document.shapes.values():
        inference.set_input_shapes(shapes)


class SetProjectBlock(QUndoCommand):
    """Replace ``project.dataset`` or ``project.training`` (one undo step)."""

    def __init__(self, document, block: str, value: dict, text: str, field: str | None = None):
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}; got {block!r}")
        super().__init__(text)
        self.document, self.block, self.field = document, block, field
        self.old = copy.deepcopy(getattr(document.project, block))
        self.new = copy.deepcopy(value)
        self.at = time.monotonic()

    def redo(self) -> None:
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)

    def _set(self, value: dict) -> None:
        setattr(self.document.project, self.block, copy.deepcopy(value))
        if self.block == "dataset":
            refresh_input_shapes(self.document)

    def id(self) -> int:  # noqa: A003 - Qt's name
        return SET_BLOCK_ID

    def mergeWith(self, other) -> bool:  # noqa: N802 - Qt override
        if not isinstance(other, SetProjectBlock) or self.field is None:
            return False
        if (other.block, other.field) != (self.block, self.field) or \
                other.at - self.at > MERGE_SECONDS:
            return False
        self.new, self.at = other.new, other.at
        self.setText(other.text())
        return True
