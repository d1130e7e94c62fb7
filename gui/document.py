"""The open document: a project, live shape inference per model, an undo stack, file state."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from engine.errors import DataError
from engine.graph import Graph
from engine.project import Project, load_project, parse_project, save_project
from engine.shapes import ShapeInference

NEW_PROJECT = {
    "format": "layerlab-project", "version": 1, "name": "Untitled",
    "models": {"model": {
        "nodes": [{"id": "x", "type": "Input", "pos": [0, 0]},
                  {"id": "y", "type": "Output", "pos": [340, 0]}],
        "edges": [{"from": "x", "to": "y"}]}},
    "dataset": {"name": "spirals", "params": {"n_samples": 1000, "noise": 0.1}, "val_split": 0.2},
    "training": {"task": "classification", "loss": "CrossEntropyLoss",
                 "optimizer": {"type": "Adam", "lr": 0.01}, "batch_size": 64, "epochs": 30,
                 "seed": 0},
}


BLOCK_TAB = "block:"  # the canvas tab of a block definition: "block:residual"
STRUCTURE_EVENTS = ("node_added", "node_removed", "node_renamed", "edge_added", "edge_removed")


class Document(QObject):
    """A project being edited. Every change goes through :meth:`push` (one undo command)."""

    dirty_changed = Signal(bool)
    path_changed = Signal(object)
    saved = Signal(object)
    blocks_changed = Signal()  # the project's block definitions changed (gui.blocks)

    def __init__(self, project: Project, parent: QObject | None = None):
        super().__init__(parent)
        self.project = project
        self.undo_stack = QUndoStack(self)
        self.input_shapes, self.dataset_error = self._input_shapes()
        self.shapes: dict[str, ShapeInference] = {
            name: ShapeInference(graph, self.input_shapes)
            for name, graph in project.models.items()}
        self.block_shapes: dict[str, ShapeInference] = {}  # open block definitions
        self._block_hooks: dict[str, list] = {}  # per open block definition
        self._block_timer = QTimer(self, singleShot=True, interval=0)
        self._block_timer.timeout.connect(self._blocks_follow)
        self._forced_dirty = False
        self.undo_stack.cleanChanged.connect(self._clean_changed)
        self._wiring: dict[str, dict] = {}  # per model; wiring changes only with the structure
        self._hooks = [(getattr(graph.events, ev), self._structure_hook(name))
                       for name, graph in project.models.items() for ev in STRUCTURE_EVENTS]
        for event, callback in self._hooks:
            event.connect(callback)

    def _blocks_follow(self) -> None:
        from gui.blocks import blocks_changed

        blocks_changed(self)

    def _structure_hook(self, model: str):
        return lambda *_args: self._wiring.pop(model, None)

    def _clean_changed(self, clean: bool) -> None:
        self.dirty_changed.emit(self.is_dirty())

    @classmethod
    def open(cls, path, parent: QObject | None = None) -> "Document":
        """Load a project file; raises ``ProjectError`` with the loader's message."""
        return cls(load_project(path), parent)

    @classmethod
    def new(cls, parent: QObject | None = None) -> "Document":
        return cls(parse_project(NEW_PROJECT, "new project"), parent)

    def _input_shapes(self) -> tuple[dict, str | None]:
        try:
            return self.project.input_shapes(), None
        except DataError as exc:
            return {}, str(exc)

    # -- reading -------------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self.project.path

    @property
    def model_names(self) -> list[str]:
        return list(self.project.models)

    def graph(self, model: str) -> Graph:
        """A model's graph, or a block definition's for ``block:NAME`` (its canvas tab)."""
        if model.startswith(BLOCK_TAB):
            return self.project.blocks[model[len(BLOCK_TAB):]].graph
        return self.project.models[model]

    def inference(self, model: str) -> ShapeInference:
        """The live shape inference of a model, or of a block definition (``block:NAME``),
        inferred with the values and input shapes of its first instance."""
        if not model.startswith(BLOCK_TAB):
            return self.shapes[model]
        name = model[len(BLOCK_TAB):]
        block = self.project.blocks[name]
        shapes = self.block_shapes.get(name)
        if shapes is None or shapes.graph is not block.graph:
            self.forget_block(name)
            shapes = self.block_shapes[name] = ShapeInference(
                block.graph, {}, params_of=self._instance_params(name))
            hooks = self._block_hooks[name] = []
            for event in STRUCTURE_EVENTS + ("params_changed",):
                hook = (getattr(block.graph.events, event), self._block_edited)
                hook[0].connect(hook[1])
                hooks.append(hook)
            return shapes
        self.refresh_block(name)
        return shapes

    def forget_block(self, name: str) -> None:
        """Stop inferring and following a block definition (its tab closed, or it is gone)."""
        shapes = self.block_shapes.pop(name, None)
        if shapes is not None:
            shapes.detach()
        for event, callback in self._block_hooks.pop(name, []):
            event.disconnect(callback)

    def _instance_params(self, name: str):
        """``params_of`` inferring block ``name`` as its first instance sees it."""
        from engine.blocks import first_instance, instance_params

        graphs = {m: (g, self.shapes[m]) for m, g in self.project.models.items()}
        args, ins = first_instance(self.project.blocks, graphs, name)
        return instance_params(self.project.blocks[name], args, ins)

    def refresh_block(self, name: str) -> None:
        """Infer an open block definition again with its first instance's current values."""
        shapes = self.block_shapes.get(name)
        block = self.project.blocks.get(name)
        if shapes is None or block is None or shapes.graph is not block.graph:
            return
        shapes.params_of = self._instance_params(name)
        shapes.run_all()

    def _block_edited(self, *_args) -> None:
        """A definition changed: its Block nodes follow (once per burst of events)."""
        if not self._block_timer.isActive():
            self._block_timer.start()

    def display_name(self) -> str:
        if self.path is None:
            return self.project.name or "Untitled"
        name = self.path.name
        return name[:-len(".layerlab.json")] if name.endswith(".layerlab.json") else name

    def is_dirty(self) -> bool:
        return self._forced_dirty or not self.undo_stack.isClean()

    def wiring_problems(self, model: str) -> dict[str, str]:
        """``shapes.wiring_problems()``, kept until the model's wires or layers change (a
        parameter edit never changes them, and recomputing walks the whole graph)."""
        if model not in self._wiring:
            self._wiring[model] = self.shapes[model].wiring_problems()
        return self._wiring[model]

    def problems(self, model: str) -> list[tuple[str, str]]:
        """``(where, message)`` for every problem of a model: shape errors, dangling layers,
        model-wide problems (``where`` is the model name for those)."""
        shapes = self.shapes[model]
        errors = {n: i.error for n, i in shapes.info.items() if i.error}
        for node_id, message in self.wiring_problems(model).items():
            errors.setdefault(node_id, message)
        return [(model, m) for m in shapes.model_problems()] + list(errors.items())

    def totals(self) -> tuple[int, int, int]:
        """(parameters, trainable parameters, multiply-adds) over every model."""
        params = trainable = macs = 0
        for shapes in self.shapes.values():
            p, t = shapes.totals()
            params, trainable = params + p, trainable + t
            macs += sum(i.stats.macs for i in shapes.info.values())
        return params, trainable, macs

    # -- changing ------------------------------------------------------------------------------
    def push(self, command: QUndoCommand) -> None:
        self.undo_stack.push(command)

    def mark_dirty(self) -> None:
        """Flag changes that are not on the undo stack (a restored recovery file)."""
        self._forced_dirty = True
        self.dirty_changed.emit(True)

    def save(self, path=None) -> Path:
        """Write the project atomically (``ProjectError`` if the file cannot be written)."""
        old = self.path
        written = save_project(self.project, path)
        self._forced_dirty = False
        was_clean = self.undo_stack.isClean()
        self.undo_stack.setClean()
        if was_clean:
            self.dirty_changed.emit(False)
        if written != old:
            self.path_changed.emit(written)
        self.saved.emit(written)
        return written

    def close(self) -> None:
        """Stop following the graphs (the views detach themselves first)."""
        for event, callback in self._hooks:
            event.disconnect(callback)
        self._hooks = []
        for name in list(self.block_shapes):
            self.forget_block(name)
        for shapes in self.shapes.values():
            shapes.detach()
        self.undo_stack.clear()
