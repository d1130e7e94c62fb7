"""The inspector: the selected layer's parameters, shapes and size; the project when none is.

Editors are chosen by the spec's ``Param.kind``. Input is checked at the editor with the spec's
own ``Param.check``: an invalid value is refused there, with the reason, and the graph never
sees it. The inspector changes nothing itself: it emits requests (``param_edit_requested``,
``rename_requested``) that the application turns into undo commands, and it follows the graph
and shape inference through their events.
"""
from __future__ import annotations

import math
import re
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (QAbstractSpinBox, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout,
                               QFrame, QHBoxLayout, QLabel, QLineEdit, QScrollArea, QSpinBox,
                               QToolButton, QVBoxLayout, QWidget)

from engine.graph import UNSET, Graph
from engine.layers import REQUIRED, Param
from engine.layers.notes import NOTES
from engine.layers.spec import STR
from engine.shapes import ShapeInference
from widgets.theme import category_color, format_count, format_shape

INT_LIMIT = 2_000_000_000
STRUCTURE_EVENTS = ("node_added", "node_removed", "node_renamed", "edge_added", "edge_removed")
ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


# -- parsing and showing values --------------------------------------------------------------------
def parse_text(param: Param, text: str) -> Any:
    """Turn what was typed into a value for ``param.check``: ``3`` or ``3, 3`` for sizes."""
    text = text.strip()
    if not text:
        return None
    if param.kind == "str":
        return text
    if param.kind == "padding" and text.lower() in ("same", "valid"):
        return text.lower()
    parts = [p for p in re.split(r"[,;\s×x*]+", text.strip("()[] ")) if p]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"must be whole numbers separated by commas; got '{text}'") from None
    if param.kind in ("size", "padding") and len(numbers) == 1:
        return numbers[0]
    return numbers


def value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def jsonable(value: Any) -> Any:
    """Tuples as lists, as the project file holds them (so saved and reopened graphs compare)."""
    return list(value) if isinstance(value, tuple) else value


def validate_node_id(graph: Graph, old: str, new: str) -> str | None:
    """The reason ``new`` cannot be the id of ``old``, or None when it can."""
    if new == old:
        return None
    if not new:
        return "an id cannot be empty"
    if not ID_PATTERN.match(new):
        return "use letters, digits, _ and -, starting with a letter or _"
    if new in graph:
        return f"there is already a node '{new}'"
    return None


def _float_decimals(param: Param) -> int:
    values = [abs(v) for v in (param.default, param.min, param.max)
              if isinstance(v, (int, float)) and not isinstance(v, bool) and v]
    smallest = min(values, default=1.0)
    return max(2, min(8, 2 - math.floor(math.log10(smallest)))) if smallest < 1 else 3


# -- editors ---------------------------------------------------------------------------------------
class ParamEditor(QWidget):
    """One parameter's editor row: the editor, a reset-to-default button, a reason when refused."""

    committed = Signal(str, object)  # param name, value (UNSET: back to the default)

    def __init__(self, param: Param, parent: QWidget | None = None):
        super().__init__(parent)
        self.param = param
        self.current: Any = None
        self.editor = self._make_editor()
        self.editor.setToolTip(self._tooltip())
        self.reset = QToolButton(self)
        self.reset.setText("↺")
        self.reset.setObjectName("resetButton")
        self.reset.setAutoRaise(True)
        self.reset.clicked.connect(lambda: self.committed.emit(param.name, UNSET))
        self.reason = QLabel(self)
        self.reason.setObjectName("errorText")
        self.reason.setWordWrap(True)
        self.reason.hide()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.editor, 1)
        row.addWidget(self.reset)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addLayout(row)
        box.addWidget(self.reason)

    def _tooltip(self) -> str:
        p = self.param
        lines = [f"<b>{p.name}</b>: {p.doc}"]
        if p.min is not None or p.max is not None:
            lo = "−∞" if p.min is None else _num(p.min)
            hi = "∞" if p.max is None else _num(p.max)
            lines.append(f"range {lo} … {hi}")
        lines.append("required" if p.required else f"default: {value_text(p.default) or 'none'}")
        return "<br>".join(lines)

    # subclasses build the editor and move values in and out of it
    def _make_editor(self) -> QWidget:
        raise NotImplementedError

    def _show(self, value: Any) -> None:
        raise NotImplementedError

    def set_value(self, value: Any, is_set: bool) -> None:
        """Show the node's value; ``is_set`` is False when the node uses the default."""
        self.current = value
        with QSignalBlocker(self.editor):
            self._show(value)
        self.set_invalid(None)
        self.reset.setVisible(is_set and not self.param.required)
        self.reset.setToolTip(f"Back to the default ({value_text(self.param.default) or 'none'})")
        _set_state(self.editor, "isDefault", not is_set)

    def set_invalid(self, reason: str | None) -> None:
        _set_state(self.editor, "invalid", reason is not None)
        self.reason.setText(reason or "")
        self.reason.setVisible(reason is not None)

    def submit(self, value: Any) -> None:
        """Check a value from the editor and emit it when valid and different."""
        try:
            normal = self.param.check(value)
        except ValueError as exc:
            self.set_invalid(f"{self.param.name} {exc}")
            return
        self.set_invalid(None)
        if _same(normal, self.current):
            return
        self.current = normal
        self.committed.emit(self.param.name, jsonable(normal))


def _num(v) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def _same(a, b) -> bool:
    norm = (lambda v: tuple(v) if isinstance(v, list) else v)
    return norm(a) == norm(b) and type(norm(a)) is type(norm(b))


def _set_state(widget: QWidget, name: str, value: bool) -> None:
    """Set a property the stylesheet reads; restyle only when it changed (restyling is slow)."""
    if widget.property(name) != value:
        widget.setProperty(name, value)
        widget.style().unpolish(widget)
        widget.style().polish(widget)


class IntEditor(ParamEditor):
    """A spin box with the spec's range; optional parameters get a "None" step below it."""

    def _make_editor(self):
        p, spin = self.param, QSpinBox()
        lo = int(p.min) if p.min is not None else -INT_LIMIT
        spin.setRange(lo - 1 if p.optional else lo, int(p.max) if p.max is not None else INT_LIMIT)
        if p.optional:
            spin.setSpecialValueText("None")
        spin.setKeyboardTracking(False)  # valueChanged on Enter, focus out or a step: not per key
        spin.setAccelerated(True)
        spin.valueChanged.connect(self._changed)
        return spin

    def _changed(self, value: int) -> None:
        none = self.param.optional and value == self.editor.minimum()
        self.submit(None if none else value)

    def _show(self, value):
        self.editor.setValue(self.editor.minimum() if value is None else int(value))


class FloatEditor(ParamEditor):
    """A double spin box with decimals and steps sized for the parameter's scale."""

    def _make_editor(self):
        p, spin = self.param, QDoubleSpinBox()
        spin.setDecimals(_float_decimals(p))
        step = 10 ** -spin.decimals() if p.default and abs(p.default) < 0.01 else 0.01
        spin.setSingleStep(step)
        spin.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        lo = p.min if p.min is not None else -1e9
        spin.setRange(lo - step if p.optional else lo, p.max if p.max is not None else 1e9)
        if p.optional:
            spin.setSpecialValueText("None")
        spin.setKeyboardTracking(False)
        spin.valueChanged.connect(self._changed)
        return spin

    def _changed(self, value: float) -> None:
        none = self.param.optional and value == self.editor.minimum()
        self.submit(None if none else round(value, self.editor.decimals()))

    def _show(self, value):
        self.editor.setValue(self.editor.minimum() if value is None else float(value))


class BoolEditor(ParamEditor):
    def _make_editor(self):
        box = QCheckBox()
        box.toggled.connect(self.submit)
        return box

    def _show(self, value):
        self.editor.setChecked(bool(value))


class ChoiceEditor(ParamEditor):
    def _make_editor(self):
        combo = QComboBox()
        combo.addItems([str(c) for c in self.param.choices])
        combo.activated.connect(lambda i: self.submit(self.param.choices[i]))
        return combo

    def _show(self, value):
        if value in self.param.choices:
            self.editor.setCurrentIndex(self.param.choices.index(value))


class TextEditor(ParamEditor):
    """A line edit for sizes (``3`` or ``3, 3``), shapes (``1, 28, 28``), padding and text."""

    def _make_editor(self):
        edit = QLineEdit()
        p = self.param
        hints = {"size": f"3  or  {', '.join(['3'] * p.dims)}",
                 "padding": f"1  or  {', '.join(['1'] * p.dims)}  or  same",
                 "shape": "1, 28, 28"}
        placeholder = hints.get(p.kind, "")
        if p.optional and p.default is None:
            placeholder = "empty: default"
        edit.setPlaceholderText(placeholder)
        edit.textEdited.connect(self._edited)
        edit.editingFinished.connect(self._finished)
        return edit

    def _parse(self) -> Any:
        return parse_text(self.param, self.editor.text())

    def _edited(self, _text: str) -> None:
        try:
            self.param.check(self._parse())
        except ValueError as exc:
            self.set_invalid(f"{self.param.name} {exc}")
        else:
            self.set_invalid(None)

    def _finished(self) -> None:
        try:
            value = self._parse()
        except ValueError as exc:
            self.set_invalid(f"{self.param.name} {exc}")
            return
        self.submit(value)

    def _show(self, value):
        self.editor.setText(value_text(value))


EDITORS = {"int": IntEditor, "float": FloatEditor, "bool": BoolEditor, "choice": ChoiceEditor,
           "size": TextEditor, "shape": TextEditor, "padding": TextEditor, "str": TextEditor}


def make_editor(param: Param) -> ParamEditor:
    return EDITORS[param.kind](param)


# -- the panel -------------------------------------------------------------------------------------
class InspectorWidget(QScrollArea):
    """The inspector dock's content: one node, several, or the project when none is selected."""

    param_edit_requested = Signal(str, str, object)  # node id, parameter, value (UNSET: default)
    rename_requested = Signal(str, str)  # old id, new id
    reference_requested = Signal(str)  # a layer type: its entry in Help → Layer Reference

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("inspector")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.graph: Graph | None = None
        self.shapes: ShapeInference | None = None
        self.node_id: str | None = None
        self.editors: dict[str, ParamEditor] = {}
        self._project_args: tuple | None = None
        self._wiring_cache: dict | None = None
        self._build()

    def _build(self) -> None:
        body = QWidget()
        body.setObjectName("inspectorBody")
        self.layout_ = QVBoxLayout(body)
        self.layout_.setContentsMargins(12, 10, 12, 12)
        self.layout_.setSpacing(8)
        self.setWidget(body)
        self.content: QWidget | None = None

    def _replace(self, content: QWidget) -> None:
        if self.content is not None:
            self.layout_.removeWidget(self.content)
            self.content.hide()
            self.content.deleteLater()
        self.content = content
        self.layout_.insertWidget(0, content)
        content.show()  # at once, not when the layout's queued show comes round
        if self.layout_.count() == 1:
            self.layout_.addStretch(1)

    # -- following the graph -----------------------------------------------------------------------
    def _follow(self, graph: Graph | None, shapes: ShapeInference | None) -> None:
        if graph is self.graph and shapes is self.shapes:
            return
        self._unfollow()
        self.graph, self.shapes = graph, shapes
        self._wiring_cache = None
        if graph is not None:
            for name in STRUCTURE_EVENTS:
                getattr(graph.events, name).connect(self._structure_changed)
            graph.events.params_changed.connect(self._on_params)
            graph.events.node_renamed.connect(self._on_renamed)
            graph.events.node_removed.connect(self._on_removed)
        if shapes is not None:
            shapes.updated.connect(self._on_shapes)

    def _unfollow(self) -> None:
        if self.graph is not None:
            for name in STRUCTURE_EVENTS:
                getattr(self.graph.events, name).disconnect(self._structure_changed)
            ev = self.graph.events
            ev.params_changed.disconnect(self._on_params)
            ev.node_renamed.disconnect(self._on_renamed)
            ev.node_removed.disconnect(self._on_removed)
        if self.shapes is not None:
            self.shapes.updated.disconnect(self._on_shapes)
        self.graph = self.shapes = None

    def detach(self) -> None:
        """Forget the graph (its document is closing)."""
        self._unfollow()
        self.node_id = None

    def _wiring(self) -> dict[str, str]:
        """Dangling layers; cached until the structure changes (edits of values leave it)."""
        if self._wiring_cache is None:
            self._wiring_cache = self.shapes.wiring_problems()
        return self._wiring_cache

    def _structure_changed(self, *_args) -> None:
        self._wiring_cache = None
        # shape inference may have reported before this hook ran: show the fresh verdict
        if self.node_id is not None and self.node_id in self.shapes.info:
            self._load_info()

    def _on_params(self, node_id: str) -> None:
        if node_id == self.node_id:
            self._load_values()

    def _on_renamed(self, old: str, new: str) -> None:
        if old == self.node_id:
            self.node_id = new
            with QSignalBlocker(self.id_edit):
                self.id_edit.setText(new)

    def _on_removed(self, node_id: str) -> None:
        if node_id == self.node_id:
            self.show_nothing()

    def _on_shapes(self, node_ids: set) -> None:
        if self.node_id in node_ids and self.node_id in self.shapes.info:
            self._load_info()

    # -- one node ----------------------------------------------------------------------------------
    def show_node(self, graph: Graph, shapes: ShapeInference, node_id: str) -> None:
        """Show (and edit) ``node_id`` of ``graph``."""
        self._follow(graph, shapes)
        self.node_id = node_id
        node = graph.node(node_id)
        spec = node.spec
        page = QWidget()
        box = QVBoxLayout(page)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(10)
        box.addWidget(self._header(spec))
        box.addWidget(self._id_row(node_id))
        params = spec.params
        if node.type == "Block":  # and the parameters its block exposes
            from engine.blocks import exposed_params

            params = params + exposed_params(graph.blocks, node.params)
        if params:
            box.addWidget(_section("Parameters"))
            box.addWidget(self._params_form(params))
        box.addWidget(_section("Tensors"))
        self.info_form = _form()
        self._info_values: dict[str, QLabel] = {}
        box.addLayout(self.info_form)
        self.error_box = QLabel()
        self.error_box.setObjectName("errorBox")
        self.error_box.setWordWrap(True)
        self.error_box.setTextFormat(Qt.TextFormat.PlainText)
        self.error_box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.addWidget(self.error_box)
        self._replace(page)
        self._load_values()
        self._load_info()

    def _header(self, spec) -> QWidget:
        head = QWidget()
        row = QHBoxLayout(head)
        row.setContentsMargins(0, 0, 0, 0)
        chip = QLabel()
        chip.setFixedSize(6, 34)
        color = category_color(spec.category, self._dark())
        chip.setStyleSheet(f"background: {color.name()}; border-radius: 3px;")
        title = QLabel(f"<span style='font-size:15px; font-weight:600'>{spec.type}</span>"
                       f"&nbsp;&nbsp;<span style='color:{color.name()}'>{spec.category}</span>")
        doc = QLabel(spec.doc)
        doc.setWordWrap(True)
        doc.setObjectName("mutedText")
        more = QToolButton()
        more.setObjectName("referenceLink")
        more.setText("Reference")
        more.setAutoRaise(True)
        more.setCursor(Qt.CursorShape.PointingHandCursor)
        more.setToolTip(f"{spec.type} in Help → Layer Reference: parameters, ports, shape rule "
                        "and the torch module")
        more.clicked.connect(lambda: self.reference_requested.emit(spec.type))
        more.setVisible(spec.in_palette)  # tool-made types (Opaque) have no entry
        self.reference_button = more
        col = QVBoxLayout()
        col.setSpacing(2)
        col.addWidget(title)
        col.addWidget(doc)
        note = NOTES.get(spec.type)
        if note is not None:  # when to use it: the concept note's first part (engine.layers.notes)
            when = QLabel(f"<i>When:</i> {note[0]}")
            when.setObjectName("conceptNote")
            when.setWordWrap(True)
            when.setToolTip("Reference (top right) has the rest: the main parameter's effect, "
                            "the ports, the shape rule")
            col.addWidget(when)
        row.addWidget(chip, 0, Qt.AlignmentFlag.AlignTop)
        row.addLayout(col, 1)
        row.addWidget(more, 0, Qt.AlignmentFlag.AlignTop)
        return head

    def _dark(self) -> bool:
        return self.palette().color(self.backgroundRole()).lightness() < 128

    def _id_row(self, node_id: str) -> QWidget:
        wrap = QWidget()
        form = _form(wrap)
        self.id_edit = QLineEdit(node_id)
        self.id_edit.setObjectName("idEdit")
        self.id_edit.setToolTip("The layer's id: unique in the model; the submodule's name in "
                                "the exported PyTorch code.")
        self.id_reason = QLabel()
        self.id_reason.setObjectName("errorText")
        self.id_reason.setWordWrap(True)
        self.id_reason.hide()
        self.id_edit.textEdited.connect(self._id_edited)
        self.id_edit.editingFinished.connect(self._id_finished)
        col = QVBoxLayout()
        col.setSpacing(2)
        col.addWidget(self.id_edit)
        col.addWidget(self.id_reason)
        _add_row(form, _label("id", "The layer's unique name"), col)
        return wrap

    def _id_problem(self) -> str | None:
        return validate_node_id(self.graph, self.node_id, self.id_edit.text().strip())

    def _id_edited(self, _text: str) -> None:
        reason = self._id_problem()
        _set_state(self.id_edit, "invalid", reason is not None)
        self.id_reason.setText(reason or "")
        self.id_reason.setVisible(reason is not None)

    def _id_finished(self) -> None:
        new = self.id_edit.text().strip()
        if self._id_problem() is None and new != self.node_id:
            self.rename_requested.emit(self.node_id, new)

    def _params_form(self, params) -> QWidget:
        wrap = QWidget()
        form = _form(wrap)
        self.editors = {}
        for param in params:
            editor = make_editor(param)
            editor.committed.connect(self._committed)
            self.editors[param.name] = editor
            _add_row(form, _label(param.name, editor.editor.toolTip()), editor)
        return wrap

    def _committed(self, name: str, value: Any) -> None:
        if self.node_id is not None:
            self.param_edit_requested.emit(self.node_id, name, value)

    def _load_values(self) -> None:
        node = self.graph.node(self.node_id)
        for name, editor in self.editors.items():
            is_set = name in node.params
            value = node.params[name] if is_set else editor.param.default
            try:
                value = editor.param.check(value) if value is not None else None
            except ValueError:
                pass  # a bad value from a file: show it as it is; the node's error explains
            if isinstance(value, str) and value.startswith("$") and editor.param.kind != STR:
                # inside a block: the value comes from the Block node (its exposed parameter)
                editor.set_value(None, is_set)
                editor.set_invalid(f"{value}: set by each Block node that uses this block")
                continue
            editor.set_value(None if value is REQUIRED else value, is_set)

    def _load_info(self) -> None:
        info = self.shapes.info.get(self.node_id)
        rows = self._info_rows(info) if info is not None else []
        if [name for name, _ in rows] == list(self._info_values):
            for name, text in rows:  # same rows: only the texts change (an edit's common case)
                self._info_values[name].setText(_esc(text))
        else:
            while self.info_form.rowCount():
                self.info_form.removeRow(0)
            self._info_values = {}
            for name, text in rows:
                self._info_values[name] = _value(text)
                _add_row(self.info_form, _label(name), self._info_values[name])
        error = None if info is None else info.error or self._wiring().get(self.node_id)
        self.error_box.setText(f"⚠  {error}" if error else "")
        self.error_box.setVisible(bool(error))

    @staticmethod
    def _info_rows(info) -> list[tuple[str, str]]:
        rows = []
        for port, shapes in info.in_shapes.items():
            text = ",  ".join(format_shape(s) for s in shapes) or "—"
            rows.append((f"in · {port}" if port != "in" else "input", text))
        for port, shape in info.out_shapes.items():
            rows.append(("output" if port == "out" else f"out · {port}", format_shape(shape)))
        stats = info.stats
        trainable = "" if stats.trainable == stats.params else \
            f"  ({format_count(stats.trainable)} trainable)"
        rows.append(("parameters", f"{stats.params:,}{trainable}"))
        rows.append(("multiply-adds", format_count(stats.macs)))
        return rows

    # -- several nodes, or none --------------------------------------------------------------------
    def show_selection(self, graph: Graph, shapes: ShapeInference, node_ids: list[str]) -> None:
        """A short summary of several selected layers."""
        self._follow(graph, shapes)
        self.node_id = None
        params = sum(shapes.info[n].stats.params for n in node_ids if n in shapes.info)
        page = QWidget()
        box = QVBoxLayout(page)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(QLabel(f"<span style='font-size:15px; font-weight:600'>"
                             f"{len(node_ids)} layers selected</span>"))
        note = QLabel(", ".join(node_ids) + f"<br><br>{params:,} parameters together.")
        note.setWordWrap(True)
        note.setObjectName("mutedText")
        box.addWidget(note)
        self._replace(page)

    def show_project(self, project, input_shapes: dict, dataset_error: str | None) -> None:
        """The project's dataset and training settings (shown when nothing is selected)."""
        self._project_args = (project, input_shapes, dataset_error)
        self.node_id = None
        self.editors = {}
        page = QWidget()
        box = QVBoxLayout(page)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(10)
        title = QLabel(f"<span style='font-size:15px; font-weight:600'>{_esc(project.name)}"
                       f"</span>")
        title.setWordWrap(True)
        box.addWidget(title)
        hint = QLabel("Select a layer to edit it. Drag layers in from the palette; drag from an "
                      "output port to an input port to wire them.")
        hint.setWordWrap(True)
        hint.setObjectName("mutedText")
        box.addWidget(hint)
        box.addWidget(_section("Models"))
        models = _form()
        for name, graph in project.models.items():
            _add_row(models, _label(name), _value(f"{len(graph)} layers"))
        box.addLayout(models)
        box.addWidget(_section("Dataset"))
        box.addLayout(self._dataset_form(project.dataset, input_shapes, dataset_error))
        box.addWidget(_section("Training"))
        box.addLayout(_training_form(project.training))
        self._replace(page)

    def _dataset_form(self, dataset: dict, input_shapes: dict, error: str | None) -> QFormLayout:
        form = _form()
        if not dataset:
            _add_row(form, _label("dataset"), _value("none (set the Input shapes by hand)"))
            return form
        name = dataset.get("name") or dataset.get("importer") or "?"
        _add_row(form, _label("name"), _value(str(name)))
        for key, value in (dataset.get("params") or {}).items():
            _add_row(form, _label(key), _value(value_text(value)))
        if "val_split" in dataset:
            _add_row(form, _label("validation"), _value(f"{dataset['val_split']:.0%}"
                                                     if isinstance(dataset['val_split'], float)
                                                     else str(dataset['val_split'])))
        for key, shape in input_shapes.items():
            _add_row(form, _label(f"sample {key}"), _value(format_shape(shape)))
        if error:
            bad = _value(f"⚠  {error}")
            bad.setObjectName("errorText")
            _add_row(form, _label("problem"), bad)
        return form

    def show_nothing(self) -> None:
        """Nothing selected: the project again if known, else an empty panel."""
        self.node_id = None
        if self._project_args is not None:
            self.show_project(*self._project_args)
        else:
            self._replace(QLabel("Nothing selected."))


def _training_form(training: dict) -> QFormLayout:
    form = _form()
    if not training:
        _add_row(form, _label("training"), _value("not set"))
        return form
    for key, value in training.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k}={value_text(v)}" for k, v in value.items() if k != "type")
            text = value.get("type", "") + (f"  ({inner})" if inner else "")
        else:
            text = value_text(value)
        _add_row(form, _label(key.replace("_", " ")), _value(text))
    return form


def _add_row(form: QFormLayout, label: QWidget, field) -> None:
    """Add a row and show it at once (a layout on a visible widget shows new rows later)."""
    form.addRow(label, field)
    for widget in (label, field):
        if isinstance(widget, QWidget):
            widget.show()


def _form(parent: QWidget | None = None) -> QFormLayout:
    form = QFormLayout(parent) if parent is not None else QFormLayout()
    form.setContentsMargins(0, 0, 0, 0)
    form.setHorizontalSpacing(12)
    form.setVerticalSpacing(6)
    form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


def _label(text: str, tooltip: str = "") -> QLabel:
    label = QLabel(text)
    label.setObjectName("fieldLabel")
    if tooltip:
        label.setToolTip(tooltip)
    return label


def _value(text: str) -> QLabel:
    label = QLabel(_esc(text))
    label.setObjectName("fieldValue")
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _section(title: str) -> QLabel:
    label = QLabel(title.upper())
    label.setObjectName("sectionTitle")
    return label


def _esc(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


