"""The augmentation editor of the Data tab: the ``dataset.augment`` list as rows, one transform
each, with the arguments of the selected row below.

Every change emits ``edited(new list, undo text, field)``; the Data tab turns it into a new dataset block
and the panel into one undoable command.
"""
from __future__ import annotations

import copy

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLineEdit,
                               QListWidget, QMenu, QPushButton, QSpinBox, QToolButton,
                               QVBoxLayout, QWidget)

from engine.data.augment import DOCS, TRANSFORMS

ROW_HEIGHT = 22


def describe(step: dict) -> str:
    """'RandomCrop · padding 2' for one entry of the list (arguments left at their default
    are not repeated, but for the first)."""
    args = TRANSFORMS.get(step.get("type"), {})
    values = [f"{k.replace('_', ' ')} {_shown(step.get(k, d))}" for i, (k, d) in
              enumerate(args.items()) if i == 0 or step.get(k, d) != d]
    return " · ".join([str(step.get("type")), *values])


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(_shown(v) for v in value)
    return str(value)


class AugmentForm(QWidget):
    """Add, remove, reorder and edit the transforms applied to training images."""

    edited = Signal(object, str, object)  # the new augment list, undo text, field (None: unmerged)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.steps: list[dict] = []
        self.rows = QListWidget()
        self.rows.setObjectName("augmentList")
        self.rows.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.rows.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.rows.currentRowChanged.connect(self._row_chosen)
        self.add = QToolButton()
        self.add.setObjectName("augmentAdd")
        self.add.setText("Add ▾")
        self.add.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.add)
        for name in TRANSFORMS:
            action = menu.addAction(name)
            action.setToolTip(DOCS[name])
            action.triggered.connect(lambda _=False, n=name: self._add(n))
        menu.setToolTipsVisible(True)
        self.add.setMenu(menu)
        self.remove = QPushButton("Remove")
        self.remove.setObjectName("augmentRemove")
        self.remove.clicked.connect(self._remove)
        self.args = QFormLayout()
        self.args.setContentsMargins(0, 0, 0, 0)
        self._editors: dict[str, QWidget] = {}
        self._build_layout()
        self._refresh_buttons()

    def _build_layout(self) -> None:
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.add)
        buttons.addWidget(self.remove)
        buttons.addStretch(1)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(4)
        box.addWidget(self.rows)
        box.addLayout(buttons)
        box.addLayout(self.args)

    # -- showing ---------------------------------------------------------------------------------
    def set_steps(self, steps) -> None:
        """Show a dataset block's ``augment`` list (without emitting)."""
        steps = copy.deepcopy(steps) if isinstance(steps, list) else []
        if steps == self.steps and self.rows.count() == len(steps):
            return
        if _types(steps) == _types(self.steps) and self.rows.count() == len(steps):
            self._update_in_place(steps)  # an argument changed: never rebuild under the cursor
            return
        current = self.rows.currentRow()
        self.steps = steps
        self.rows.blockSignals(True)
        self.rows.clear()
        for step in steps:
            self.rows.addItem(describe(step) if isinstance(step, dict) else str(step))
        self.rows.blockSignals(False)
        self.rows.setFixedHeight(ROW_HEIGHT * min(max(len(steps), 1), 4) + 6)
        if steps:
            self.rows.setCurrentRow(min(max(current, 0), len(steps) - 1))
        else:
            self._row_chosen(-1)
        self._refresh_buttons()

    def _update_in_place(self, steps: list) -> None:
        self.steps = steps
        for i, step in enumerate(steps):
            self.rows.item(i).setText(describe(step) if isinstance(step, dict) else str(step))
        row = self.rows.currentRow()
        if not 0 <= row < len(steps):
            return
        for key, editor in self._editors.items():
            value = steps[row].get(key, TRANSFORMS[steps[row]["type"]][key])
            editor.blockSignals(True)
            try:
                if isinstance(editor, QComboBox):
                    editor.setCurrentText(str(value))
                elif isinstance(editor, QLineEdit):
                    editor.setText(_shown(value))
                else:
                    editor.setValue(value)
            finally:
                editor.blockSignals(False)

    def _refresh_buttons(self) -> None:
        self.remove.setEnabled(self.rows.currentRow() >= 0)
        self.rows.setVisible(bool(self.steps))

    def _row_chosen(self, row: int) -> None:
        while self.args.rowCount():
            self.args.removeRow(0)
        self._editors = {}
        self._refresh_buttons()
        if not 0 <= row < len(self.steps) or not isinstance(self.steps[row], dict):
            return
        step = self.steps[row]
        for key, default in TRANSFORMS.get(step.get("type"), {}).items():
            editor = self._editor(row, key, step.get(key, default))
            editor.setObjectName(f"augmentArg_{key}")
            editor.setToolTip(DOCS.get(step["type"], ""))
            self._editors[key] = editor
            self.args.addRow(key.replace("_", " ").capitalize(), editor)

    def _editor(self, row: int, key: str, value) -> QWidget:
        if key == "padding_mode":
            combo = QComboBox()
            combo.addItems(["constant", "reflect"])
            combo.setCurrentText(str(value))
            combo.activated.connect(lambda _i, c=combo: self._set(row, key, c.currentText()))
            return combo
        if key in ("mean", "std"):
            edit = QLineEdit(_shown(value))
            edit.setPlaceholderText("auto, or one value per channel: 0.5,0.5,0.5")
            edit.editingFinished.connect(lambda e=edit: self._set(row, key, _stat(e.text())))
            return edit
        if key == "padding":
            spin = QSpinBox()
            spin.setRange(0, 64)
            spin.setValue(int(value))
            spin.valueChanged.connect(lambda v: self._set(row, key, int(v)))
            return spin
        spin = QDoubleSpinBox()
        spin.setDecimals(3)
        spin.setSingleStep(0.05 if key != "degrees" else 5.0)
        spin.setRange(0.0, 180.0 if key == "degrees" else 10.0 if key == "sigma" else 1.0)
        spin.setValue(float(value))
        spin.valueChanged.connect(lambda v: self._set(row, key, round(float(v), 6)))
        return spin

    # -- edits -------------------------------------------------------------------------------
    def _emit(self, steps: list, text: str, field: str | None = None) -> None:
        self.edited.emit(steps, text, field)

    def _add(self, name: str) -> None:
        steps = copy.deepcopy(self.steps) + [{"type": name, **TRANSFORMS[name]}]
        self._emit(steps, f"Add augmentation {name}")

    def _remove(self) -> None:
        row = self.rows.currentRow()
        if 0 <= row < len(self.steps):
            steps = copy.deepcopy(self.steps)
            gone = steps.pop(row)
            self._emit(steps, f"Remove augmentation {gone.get('type')}")

    def _set(self, row: int, key: str, value) -> None:
        if not 0 <= row < len(self.steps) or self.steps[row].get(key) == value:
            return
        steps = copy.deepcopy(self.steps)
        steps[row][key] = value
        self._emit(steps, f"Set {steps[row].get('type')} {key.replace('_', ' ')}",
                   f"dataset.augment[{row}].{key}")  # typing into one box is one undo step


def _types(steps: list) -> list:
    return [s.get("type") if isinstance(s, dict) else s for s in steps]


def _stat(text: str):
    text = text.strip()
    if not text or text == "auto":
        return "auto"
    try:
        values = [float(v) for v in text.replace(";", ",").split(",") if v.strip()]
    except ValueError:
        return text  # kept as typed; the dataset check names it
    return values[0] if len(values) == 1 else values
