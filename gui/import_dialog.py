"""File -> Import model…: a PyTorch ``nn.Module`` traced with torch.fx, or an ONNX file, becomes a
new project.

The user names a Python file and a class (or writes ``file.py:Class`` / ``package.module:Class``),
the shape of one example input, and optionally a state_dict; or an ``.onnx`` file, whose weights
and input shape come from the file itself. The engine's importer traces the
model on the thread pool, maps its modules to catalog layers (the rest become opaque nodes) and
lays the graph out. Warnings (opaque nodes, what a saved copy needs) are shown before the model
opens; a model that cannot be traced gets the importer's message saying why.

The imported weights stay with the new document (:class:`ImportedWeights`): File -> Export uses
them, and the document's first save writes them beside it as ``<name>.weights.pt``, as
``python main.py import`` does, so that they are found again when the project is reopened.
"""
from __future__ import annotations

import ast
import functools
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit,
                               QPushButton, QSizePolicy, QVBoxLayout, QWidget)

from engine.errors import ExportError, LayerlabError
from gui.dialog_support import (WARNING_STYLE, BackgroundCall, action_buttons, busy_indicator,
                                grow_to_fit, import_here, message_box, show_texts)
from gui.settings import Settings

PYTHON_FILTER = ("Models (*.py *.onnx);;Python files (*.py);;ONNX files (*.onnx);;"
                 "All files (*)")
WEIGHTS_FILTER = "Weights (*.pt *.pth *.bin *.safetensors);;All files (*)"
SHAPE_EXAMPLE = "write the sizes of one sample without the batch, e.g. 1×28×28 or 2"
KEY_FOLDER = "import/folder"
_SIZES = re.compile(r"\s*[×xX*,]\s*|\s+")


@dataclass
class ImportedModel:
    """What an import gives: the project, its weights, and what the user should know."""

    project: object  # engine.project.Project with one model, "model"
    state: dict
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        graph = self.project.models["model"]
        opaque = len(graph.nodes_of_type("Opaque"))
        return (f"Traced {self.project.name}: {len(graph)} layers"
                + (f", {opaque} of them opaque" if opaque else "") + ".")


# -- reading the form -------------------------------------------------------------------------
def is_onnx(where: str) -> bool:
    return where.strip().lower().endswith(".onnx")


def parse_shape(text: str, optional: bool = False):
    """``1×28×28`` -> [1, 28, 28]; several inputs separated by ``;`` -> a list of shapes.
    ValueError with a message for the user when the text is not a shape; None for an empty
    text when the shape is ``optional`` (an ONNX file knows its own)."""
    parts = [p.strip() for p in text.split(";")]
    if not any(parts) and optional:
        return None
    if not any(parts):
        raise ValueError(f"Give the example input's shape: {SHAPE_EXAMPLE}.")
    shapes = [_one_shape(p) for p in parts]
    return shapes[0] if len(shapes) == 1 else shapes


def _one_shape(text: str) -> list[int]:
    sizes = [s for s in _SIZES.split(text.strip("()[] ")) if s]
    if not sizes or not all(s.isdigit() and int(s) > 0 for s in sizes):
        raise ValueError(f"“{text}” is not a shape: {SHAPE_EXAMPLE}.")
    return [int(s) for s in sizes]


def model_source(where: str, class_name: str) -> str:
    """The importer's ``file.py:Class`` from the form; ValueError says what is missing."""
    where, class_name = where.strip(), class_name.strip()
    if not where:
        raise ValueError("Choose the Python file that defines the model, or an ONNX file (or "
                         "write package.module).")
    if is_onnx(where):
        return where  # the file is the whole model
    if re.search(r":[A-Za-z_][\w.]*$", where):
        return where  # already file.py:Class or package.module:Class
    if class_name:
        return f"{where}:{class_name}"
    raise ValueError("Give the model's class name (or write path/to/file.py:ClassName).")


def class_names(path: str | Path) -> list[str]:
    """The classes a Python file defines at its top level (read, not run); [] if unreadable."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return []
    return [node.name for node in tree.body if isinstance(node, ast.ClassDef)]


# -- the import itself (on the thread pool) -------------------------------------------------------
def trace_model(source: str, shape, weights: str | None) -> ImportedModel:
    """Run the engine's importer; every failure becomes an ExportError with a readable reason."""
    from engine.importer import import_module, reopen_warnings

    try:
        project, state = import_module(source, shape, weights or None)
    except LayerlabError:
        raise
    except Exception as exc:  # the user's code ran (constructor, forward): the cause is theirs
        traceback.print_exc(file=sys.stderr)
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()][:2]
        raise ExportError(f"{source}: the model could not be imported with the example input "
                          f"{shape} ({type(exc).__name__}: {' '.join(lines)[:400]}); check "
                          "the shape and the weights") from None
    notes = project.extra.get("imported_from", {}).get("notes", [])
    # the importer's own check passed; the module hierarchy became blocks
    info = [n for n in notes if n.startswith(("checked:", "the module hierarchy",
                                                "checked against onnxruntime"))]
    warnings = [n for n in notes if n not in info] + reopen_warnings(project)
    return ImportedModel(project, state, info, warnings)


# -- the weights that come along ------------------------------------------------------------------
class ImportedWeights(QObject):
    """The imported weights, kept as a child of their document (see the module doc)."""

    written = Signal(object)  # the weights file, after the first save
    write_failed = Signal(str)

    def __init__(self, state: dict, document: QObject):
        super().__init__(document)
        self.setObjectName("importedWeights")
        self.state = state
        self.path: Path | None = None
        document.saved.connect(self._saved)

    @Slot(object)
    def _saved(self, project_path) -> None:
        if self.path is not None:
            return  # only the first save: later ones must not overwrite trained weights
        from engine.training.checkpoints import save
        from gui.training.results import weights_path

        target = weights_path(Path(project_path))
        try:
            self.path = save(target, {"model": self.state})
        except (LayerlabError, OSError) as exc:
            self.write_failed.emit(f"The imported weights were not saved beside the project: "
                                   f"{exc}")
            return
        self.written.emit(self.path)


def imported_weights(document) -> dict | None:
    """The weights imported with ``document``'s model, or None."""
    keeper = document.findChild(ImportedWeights, "importedWeights") if document else None
    return keeper.state if keeper is not None else None


def open_imported(window, imported: ImportedModel) -> bool:
    """Open the imported model as a new, untitled document of ``window``; False if the user
    kept the current one (unsaved changes, Cancel)."""
    from gui.document import Document

    if not window.maybe_save():
        return False
    document = Document(imported.project)
    keeper = ImportedWeights(imported.state, document)
    keeper.written.connect(lambda p: window.show_status(f"Saved the imported weights to {p}"))
    keeper.write_failed.connect(window.show_status)
    window.set_document(document)
    window.show_status(imported.summary() + " Opened as a new, unsaved project.")
    return True


# -- the dialog ---------------------------------------------------------------------------------
class ImportDialog(QDialog):
    """File -> Import model…: the form, the trace on the thread pool, warnings, then open."""

    model_traced = Signal(object)  # ImportedModel
    import_failed = Signal(str)

    def __init__(self, settings: Settings, open_model: Callable[[ImportedModel], bool],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Import a PyTorch model")
        self.setObjectName("importDialog")
        self.settings, self.open_model = settings, open_model
        self.call: BackgroundCall | None = None
        self.busy = False  # a call is out: the form is locked until its answer is in
        self.pending: ImportedModel | None = None  # traced, with warnings: opened on "Open"
        self._build()
        self._layout()
        QTimer.singleShot(0, self._warm_up)  # once the dialog is on screen

    def _warm_up(self) -> None:
        import_here("engine.importer", "engine.compiler", "torch.fx")

    @classmethod
    def for_window(cls, window) -> "ImportDialog":
        return cls(window.settings, functools.partial(open_imported, window), window)

    # -- building --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.file_edit = _line_edit("importFile",
                                    "path/to/model.py, package.module or path/to/model.onnx")
        self.file_browse = QPushButton("Browse…")
        self.file_browse.clicked.connect(self.browse_file)
        self.class_combo = QComboBox()
        self.class_combo.setObjectName("importClass")
        self.class_combo.setEditable(True)
        self.class_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.class_combo.lineEdit().setPlaceholderText("the nn.Module class, e.g. Net")
        self.shape_edit = _line_edit("importShape", "e.g. 1×28×28 or 2 (one sample, no batch)")
        self.weights_edit = _line_edit("importWeights",
                                       "optional: a state_dict (.pt or .safetensors)")
        self.weights_browse = QPushButton("Browse…")
        self.weights_browse.clicked.connect(self.browse_weights)
        self.file_edit.editingFinished.connect(self._fill_classes)
        for edit in (self.file_edit, self.shape_edit, self.weights_edit,
                     self.class_combo.lineEdit()):
            edit.textEdited.connect(self._form_edited)
        self._build_feedback()

    def _build_feedback(self) -> None:
        self.hint = QLabel("The model is traced with torch.fx (an ONNX file is converted to "
                           "PyTorch first, its weights and input shape read from it). Modules "
                           "without a matching layer become opaque nodes that still compile "
                           "and train.")
        self.hint.setObjectName("mutedText")
        self.hint.setWordWrap(True)
        self.busy_bar, self.busy_label = busy_indicator("Tracing the model with torch.fx…")
        self.notes_label = message_box("importNotes", WARNING_STYLE)
        self.error_label = message_box("errorBox")
        self._build_buttons()

    def _build_buttons(self) -> None:
        self.buttons, self.import_button = action_buttons(
            self, QDialogButtonBox.StandardButton.Cancel, "Import", "importButton",
            self.import_or_open)
        self._show_busy(False)
        self._show_message()

    def _layout(self) -> None:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("Model file", _row(self.file_edit, self.file_browse))
        form.addRow("Class", self.class_combo)
        form.addRow("Example input", self.shape_edit)
        form.addRow("Weights", _row(self.weights_edit, self.weights_browse))
        box = QVBoxLayout(self)
        box.addLayout(form)
        for widget in (self.hint, self.busy_bar, self.busy_label, self.notes_label,
                       self.error_label):
            box.addWidget(widget)
        box.addStretch(1)
        box.addWidget(self.buttons)
        self.setMinimumWidth(600)

    # -- files -----------------------------------------------------------------------------------
    def browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "The model: a Python file or an ONNX file",
                                              self._start_folder(), PYTHON_FILTER)
        if path:
            self.file_edit.setText(path)
            self.settings.qsettings.setValue(KEY_FOLDER, str(Path(path).parent))
            self._fill_classes()
            self._form_edited()

    def browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Weights of the model (a state_dict)",
                                              self._start_folder(), WEIGHTS_FILTER)
        if path:
            self.weights_edit.setText(path)
            self._form_edited()

    def _start_folder(self) -> str:
        current = self.file_edit.text().strip()
        if current.endswith((".py", ".onnx")) and Path(current).parent.is_dir():
            return str(Path(current).parent)
        return str(self.settings.qsettings.value(KEY_FOLDER, "") or Path.home())

    def _fill_classes(self) -> None:
        """Offer the classes the file defines (the last one, usually the model, first)."""
        where = self.file_edit.text().strip()
        names = class_names(where) if where.endswith(".py") else []
        if not names:
            return
        typed = self.class_combo.currentText()
        self.class_combo.clear()
        self.class_combo.addItems(list(reversed(names)))
        self.class_combo.setCurrentText(typed if typed in names else names[-1])

    # -- importing -------------------------------------------------------------------------------

    def import_or_open(self) -> None:
        """The main button: trace the model, or open the one traced (after its warnings)."""
        if self.pending is not None:
            self._open(self.pending)
        else:
            self.start_import()

    def start_import(self) -> None:
        """Check the form and trace on the thread pool (``model_traced`` or ``import_failed``)."""
        if self.busy:
            return
        try:
            source = model_source(self.file_edit.text(), self.class_combo.currentText())
            shape = parse_shape(self.shape_edit.text(), optional=is_onnx(source))
        except ValueError as exc:
            self._failed(str(exc))
            return
        weights = self.weights_edit.text().strip() or None
        self.call = BackgroundCall(functools.partial(trace_model, source, shape, weights), self)
        self.call.succeeded.connect(self._traced)
        self.call.failed.connect(self._failed)
        self._show_message()
        self._show_busy(True)
        self.call.start()

    @Slot(object)
    def _traced(self, imported: ImportedModel) -> None:
        self._show_busy(False)
        self.model_traced.emit(imported)
        if not imported.warnings:
            self._open(imported)
            return
        self.pending = imported
        lines = [imported.summary(), *[f"⚠ {w}" for w in imported.warnings],
                 *[_capital(n) for n in imported.notes]]
        self._show_message(notes="\n".join(lines))
        self.import_button.setText("Open")
        self.import_button.setFocus()

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._show_busy(False)
        self._show_message(error=message)
        self.import_failed.emit(message)

    def _open(self, imported: ImportedModel) -> None:
        if self.open_model(imported):
            self.accept()

    def _form_edited(self, *_args) -> None:
        """A changed form needs a new trace before anything opens."""
        self.pending = None
        self.import_button.setText("Import")
        onnx = is_onnx(self.file_edit.text())  # an ONNX file: no class, its own input shape
        self.class_combo.setEnabled(not onnx)
        self.shape_edit.setPlaceholderText(
            "optional for an ONNX file: its own input shape is used" if onnx else
            "e.g. 1×28×28 or 2 (one sample, no batch)")

    def _show_busy(self, busy: bool) -> None:
        self.busy = busy
        self.busy_bar.setVisible(busy)
        self.busy_label.setVisible(busy)
        cancel = self.buttons.button(QDialogButtonBox.StandardButton.Cancel)
        for widget in (self.import_button, cancel, self.file_edit, self.file_browse,
                       self.class_combo, self.shape_edit, self.weights_edit, self.weights_browse):
            widget.setEnabled(not busy)
        self.class_combo.setEnabled(not busy and not is_onnx(self.file_edit.text()))
        grow_to_fit(self)

    def _show_message(self, notes: str = "", error: str = "") -> None:
        show_texts(self, (self.notes_label, notes), (self.error_label, error))

    def reject(self) -> None:
        if not self.busy:  # a trace cannot be interrupted; its result must find the dialog
            super().reject()


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _line_edit(name: str, placeholder: str) -> QLineEdit:
    edit = QLineEdit()
    edit.setObjectName(name)
    edit.setPlaceholderText(placeholder)
    edit.setClearButtonEnabled(True)
    return edit


def _row(edit: QLineEdit, button: QPushButton) -> QHBoxLayout:
    button.setAutoDefault(False)  # Enter imports, whatever has the focus
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(button)
    return row


def run_import_dialog(window) -> None:
    """File -> Import model… in ``window`` (modal)."""
    dialog = ImportDialog.for_window(window)
    dialog.exec()
    dialog.deleteLater()
