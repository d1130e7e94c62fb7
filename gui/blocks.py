"""Blocks in the window: Edit → Make Block, Expand Block and Repeat Block, and the palette's
Blocks section, each an undo step.

The engine does the edit (:mod:`engine.blocks`); :class:`BlockEdit` records the model's graph and
the project's block definitions before and after it, so that undo and redo put back exactly what
was there. Every Block node is re-inferred after a change to the definitions, so its shape,
parameter count and errors follow the definition.
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from PySide6.QtGui import QUndoCommand
from PySide6.QtWidgets import QInputDialog

from engine.blocks import (BlockError, add_bundled, bundled_blocks, copy_block, expand_block,
                           make_block, repeat_block)
from engine.project import _parse_model, graph_to_dict
from gui.commands import Command, replace_graph

if TYPE_CHECKING:
    from gui.main_window import MainWindow

BLOCK_PREFIX = "Block:"  # palette payload of a block: "Block:residual_basic"


def block_payload(type_name: str) -> tuple[str, dict | None]:
    """(layer type, parameters) for a palette payload: a block's name becomes a Block node."""
    if type_name.startswith(BLOCK_PREFIX):
        return "Block", {"block": type_name[len(BLOCK_PREFIX):]}
    return type_name, None


def blocks_changed(document) -> None:
    """Re-infer every Block node of the document (its definition may have changed)."""
    for name, graph in document.project.models.items():
        shapes = document.shapes[name]
        for node in graph.nodes_of_type("Block"):
            shapes.update(node.id, force=True)
    for name in list(getattr(document, "block_shapes", {})):
        document.refresh_block(name)
    signal = getattr(document, "blocks_changed", None)
    if signal is not None:
        signal.emit()


def restore_library(library: dict, wanted: dict, kept: dict) -> None:
    """Make ``library`` hold what the definitions ``wanted`` say, in their order, *in place*:
    a definition that is there (or was there once: ``kept``, one dict per undo command) keeps
    its :class:`BlockDef` object and graph, which is changed through the graph's own methods,
    so an open block tab and the undo commands of edits made in it still point at the live
    graph. ``kept`` gains every definition this touches or removes (a later redo reuses them).
    """
    current = dict(library)
    library.clear()
    for name, source in wanted.items():
        target = current.get(name) or kept.get(name)
        if target is None:
            target = copy_block(source)
        else:
            if graph_to_dict(target.graph) != graph_to_dict(source.graph):
                replace_graph(target.graph, source.graph)
            target.params = copy.deepcopy(source.params)
            target.description = source.description
            target.extra = copy.deepcopy(source.extra)
        target.graph.blocks = library
        library[name] = kept[name] = target
    for name, block in current.items():
        kept.setdefault(name, block)


def _library_copy(library: dict, live: dict | None = None) -> dict:
    """Copies of the definitions, their graphs pointing at ``live`` (default: ``library``)."""
    copies = {name: copy_block(block) for name, block in library.items()}
    for block in copies.values():
        block.graph.blocks = library if live is None else live
    return copies


class BlockEdit(QUndoCommand):
    """One undo step for an edit of a model's graph and the project's blocks by ``edit``
    (``edit(graph, library)`` returns the ids to select). The edit runs once; undo and redo
    then put back the recorded states."""

    def __init__(self, document, model: str, text: str, edit):
        super().__init__(text)
        self.document, self.model, self.edit = document, model, edit
        graph, library = document.graph(model), document.project.blocks
        self.before = (copy.deepcopy(graph_to_dict(graph)), _library_copy(library))
        self.after = None
        self.selection: list[str] = []
        self.kept: dict = {}  # the BlockDef objects this step touched (kept for undo and redo)

    def redo(self) -> None:
        graph, library = self.document.graph(self.model), self.document.project.blocks
        if self.after is None:
            self.selection = list(self.edit(graph, library) or [])
            self.after = (copy.deepcopy(graph_to_dict(graph)), _library_copy(library))
        else:
            self._apply(self.after)
        blocks_changed(self.document)

    def undo(self) -> None:
        self._apply(self.before)
        blocks_changed(self.document)

    def _apply(self, state) -> None:
        data, blocks = state
        graph, library = self.document.graph(self.model), self.document.project.blocks
        restore_library(library, blocks, self.kept)
        problems: list = []
        source = _parse_model(graph.name, copy.deepcopy(data), problems)
        source.blocks = library
        replace_graph(graph, source)


class AddBlockDefinition(Command):
    """Copy a bundled block (and the bundled blocks it uses) into the project."""

    def __init__(self, document, name: str, parent: Command | None = None):
        super().__init__(f"Add block {name}", parent)
        self.document, self.name = document, name
        self.added: dict = {}  # name → the BlockDef added (the same object on every redo)

    def redo(self) -> None:
        library = self.document.project.blocks
        if not self.added:
            before = set(library)
            add_bundled(library, self.name)
            self.added = {n: b for n, b in library.items() if n not in before}
        else:
            for name, block in self.added.items():
                block.graph.blocks = library
                library.setdefault(name, block)
        blocks_changed(self.document)

    def undo(self) -> None:
        for name in self.added:
            self.document.project.blocks.pop(name, None)
        blocks_changed(self.document)


class BlockActions:
    """The window's block commands (Edit menu) and the palette's Blocks section."""

    def __init__(self, window: "MainWindow"):
        self.window = window
        self.bundled = bundled_blocks()
        self._dialog: QInputDialog | None = None

    # -- the palette -----------------------------------------------------------------------------
    def palette_entries(self) -> list[tuple[str, str, str]]:
        """(payload, label, tooltip) for the palette: the project's blocks, then the bundled
        ones the project does not have yet."""
        document = self.window.document
        library = document.project.blocks if document is not None else {}
        entries = [(BLOCK_PREFIX + name, name, block.description or "a block of this project")
                   for name, block in library.items()]
        entries += [(BLOCK_PREFIX + name, name, f"{block.description} (bundled; dropping it "
                     "copies it into the project)")
                    for name, block in self.bundled.items() if name not in library]
        return entries

    def refresh_palette(self) -> None:
        self.window.palette.set_blocks(self.palette_entries())

    def ensure_definition(self, name: str, parent: Command) -> None:
        """A bundled block dropped for the first time is copied in, in the same undo step."""
        if name not in self.window.document.project.blocks and name in self.bundled:
            AddBlockDefinition(self.window.document, name, parent)

    # -- the Edit menu ---------------------------------------------------------------------------
    def _canvas_and_selection(self):
        canvas = self.window.current_canvas()
        ids = canvas.scene.selected_node_ids() if canvas is not None else []
        return canvas, ids

    def make_block(self) -> None:
        """Ask for a name, then turn the selection into a block (one undo step)."""
        canvas, ids = self._canvas_and_selection()
        if not ids:
            self.window.show_status("Select the layers that make up the block first")
            return
        library = self.window.document.project.blocks
        i = 1
        while f"block{i}" in library:
            i += 1
        dialog = QInputDialog(self.window)
        dialog.setWindowTitle("Make Block")
        dialog.setLabelText(f"Name of the block made of {len(ids)} layer"
                            f"{'s' if len(ids) != 1 else ''}:")
        dialog.setTextValue(f"block{i}")
        dialog.textValueSelected.connect(lambda name: self.make_block_named(name.strip(), ids))
        self._dialog = dialog
        dialog.open()

    def make_block_named(self, name: str, ids: list[str]) -> bool:
        canvas = self.window.current_canvas()
        if canvas is None:
            return False
        model = canvas.model

        def edit(graph, library):
            _, block_id = make_block(graph, ids, name, library)
            return [block_id]

        return self._push(canvas, model, f"Make block {name}", edit)

    def expand_block(self) -> None:
        canvas, ids = self._canvas_and_selection()
        blocks = [i for i in ids if canvas.graph.node(i).type == "Block"]
        if not blocks:
            self.window.show_status("Select a Block node to expand")
            return

        def edit(graph, library):
            new = []
            for node_id in blocks:
                new += expand_block(graph, node_id)
            return new

        self._push(canvas, canvas.model, f"Expand {', '.join(blocks)}", edit)

    def edit_block(self) -> None:
        """Open the selected Block node's definition in its own tab."""
        canvas, ids = self._canvas_and_selection()
        blocks = [canvas.graph.node(i) for i in ids if canvas.graph.node(i).type == "Block"]
        if len(blocks) != 1 or blocks[0].params.get("block") not in \
                self.window.document.project.blocks:
            self.window.show_status("Select one Block node to edit its definition")
            return
        self.window.open_block_tab(blocks[0].params["block"])

    def repeat_block(self) -> None:
        canvas, ids = self._canvas_and_selection()
        blocks = [i for i in ids if canvas.graph.node(i).type == "Block"]
        if len(blocks) != 1:
            self.window.show_status("Select one Block node to repeat")
            return
        dialog = QInputDialog(self.window)
        dialog.setWindowTitle("Repeat Block")
        dialog.setLabelText(f"Stack {blocks[0]} how many times in all?")
        dialog.setInputMode(QInputDialog.InputMode.IntInput)
        dialog.setIntRange(2, 64)
        dialog.setIntValue(2)
        dialog.intValueSelected.connect(lambda n: self.repeat_block_times(blocks[0], n))
        self._dialog = dialog
        dialog.open()

    def repeat_block_times(self, node_id: str, times: int) -> bool:
        canvas = self.window.current_canvas()

        def edit(graph, library):
            return [node_id, *repeat_block(graph, node_id, times)]

        return self._push(canvas, canvas.model, f"Repeat {node_id} ×{times}", edit)

    def _push(self, canvas, model: str, text: str, edit) -> bool:
        try:  # a dry run on copies: a refusal changes nothing and pushes nothing
            scratch = _parse_model(model, copy.deepcopy(graph_to_dict(canvas.graph)), [])
            library: dict = {}
            library.update(_library_copy(self.window.document.project.blocks, library))
            scratch.blocks = library
            edit(scratch, library)
        except BlockError as exc:
            self.window.show_status(str(exc))
            return False
        command = BlockEdit(self.window.document, model, text, edit)
        self.window.document.push(command)
        canvas.scene.select_nodes(command.selection)
        self.window.show_status(text)
        return True
