"""File -> Export…: one model of the open project in one of the engine's formats.

The weights are the best ones at hand, in this order: the last training run in this window, the
weights that came with an imported model, the ``<name>.weights.pt`` beside the project file;
with none of those the user must tick "Export untrained (random) weights". The export runs on
the thread pool (ONNX is checked with onnxruntime, which takes a while) and the dialog shows
what was written, what the checks measured, or the engine's message. The engine writes through
temporaries, so a failed export leaves nothing half-written behind.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QDialog, QDialogButtonBox,
                               QFileDialog, QFormLayout, QGridLayout, QHBoxLayout, QLabel,
                               QLineEdit, QPushButton, QRadioButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from engine.export import DESCRIPTIONS, FORMATS, default_out_path, pick_model
from gui.dialog_support import (OK_STYLE, BackgroundCall, action_buttons, busy_indicator,
                                grow_to_fit, import_here, message_box, show_texts)
from gui.settings import Settings

TITLES = {"onnx": "ONNX", "torchscript": "TorchScript", "safetensors": "safetensors",
          "state_dict": "state_dict", "python": "Python code"}
FILTERS = {"onnx": "ONNX models (*.onnx)", "torchscript": "TorchScript modules (*.pt)",
           "safetensors": "safetensors files (*.safetensors)",
           "state_dict": "PyTorch state_dict files (*.pt)"}
NO_WEIGHTS = ("There are no trained weights to export: train the network first (Training "
              "panel, then “Save model”), or tick “Export untrained (random) weights”.")
NO_PATH = "Choose where to write the export (Save to)."
UNTRAINED_TEXT = "Export untrained (random) weights"
BUSY_TEXT = {"onnx": "Exporting… (the ONNX file is checked with onnxruntime)"}
KEY_FORMAT, KEY_FOLDER = "export/format", "export/folder"
# what the exporters import on first use, imported on the GUI thread (see import_here)
EXPORT_MODULES = ("engine.export.build", "engine.export.formats", "engine.export.pycode",
                  "engine.training", "torch.onnx", "onnx", "onnxruntime", "safetensors.torch")


@dataclass
class WeightsSource:
    """Where an export's weights come from, in words, and the weights (None: none found)."""

    label: str
    weights: object = None  # {model: state_dict}, a flat state_dict, or a weights file


def find_weights(window) -> WeightsSource:
    """The weights an export from ``window`` uses (see the module doc for the order)."""
    doc = window.document
    return (_trained_weights(window) or _imported_weights(doc) or _file_beside(doc)
            or WeightsSource("None found: no finished training run in this window, and no "
                             "weights file beside the project."))


def _trained_weights(window) -> WeightsSource | None:
    from gui.training.controller import DONE

    training = getattr(window, "training", None)
    controller = training.controller if training is not None else None
    if controller is None or controller.trainer is None or controller.state != DONE \
            or training.run_document is not window.document:
        return None
    from engine.training.checkpoints import cpu_state

    state = {name: cpu_state(m) for name, m in controller.trainer.models.items()}
    label = "The last training run in this window"
    if not same_network(controller.project, window.document.project):
        label += " (the network was edited since; the export checks that the weights still fit)"
    return WeightsSource(label, state)


def _imported_weights(document) -> WeightsSource | None:
    from gui.import_dialog import imported_weights

    state = imported_weights(document)
    return WeightsSource("The weights imported with the model", state) if state else None


def _file_beside(document) -> WeightsSource | None:
    from gui.training.results import weights_path

    if document.path is None:
        return None
    path = weights_path(document.path)
    if not path.is_file():
        return None
    return WeightsSource(f"{path.name}, the weights file beside the project", path)


def same_network(a, b) -> bool:
    """Whether two projects have the same models (layers, parameters, wires; not positions)."""
    from engine.project import graph_to_dict

    def shape(project):
        graphs = {n: graph_to_dict(g) for n, g in project.models.items()}
        for graph in graphs.values():
            graph["nodes"] = [{k: v for k, v in n.items() if k != "pos"} for n in graph["nodes"]]
        return graphs

    return shape(a) == shape(b)


def written_files(result) -> list[Path]:
    """The files an export wrote: the file, or the files of a python export's folder."""
    if result.path.is_dir():
        return sorted(p for p in result.path.iterdir() if p.is_file())
    return [result.path]


def result_text(result) -> str:
    """What the dialog says after an export: where, what was checked, the engine's notes."""
    lines = [f"Exported model “{result.model}” as {TITLES[result.format]} to:"]
    lines += [f"    {p}  ({_size(p)})" for p in written_files(result)]
    diff = result.checks.get("max_abs_diff")
    if diff is not None:
        how = "with onnxruntime" if result.format == "onnx" else "against the model"
        match = "equal the model's" if diff == 0 else f"match the model's within {diff:.2g}"
        lines.append(f"Checked {how}: the outputs {match} at batch sizes 1 and 7.")
    elif "tensors" in result.checks:
        lines.append(f"{result.checks['tensors']} tensors.")
    return "\n".join(lines + [f"Note: {n}" for n in result.notes])


def _size(path: Path) -> str:
    size = path.stat().st_size
    for unit in ("bytes", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


def python_target(folder: Path, name: str) -> Path:
    """A folder picked for the python export: itself when empty, else a new folder inside."""
    if not folder.exists() or not any(folder.iterdir()):
        return folder
    return folder if (folder / "model.py").is_file() else folder / name


class ExportDialog(QDialog):
    """File -> Export…: format, model, target and weights; the export runs in the background."""

    export_finished = Signal(object)  # engine.export.ExportResult
    export_failed = Signal(str)

    def __init__(self, project, weights: WeightsSource, settings: Settings,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export model")
        self.setObjectName("exportDialog")
        self.project, self.weights, self.settings = project, weights, settings
        self.call: BackgroundCall | None = None
        self.busy = False  # a call is out: the form is locked until its answer is in
        self._build()
        self._layout()
        self._restore()
        QTimer.singleShot(0, self._warm_up)  # once the dialog is on screen

    def _warm_up(self) -> None:
        import_here(*EXPORT_MODULES)

    @classmethod
    def for_window(cls, window) -> "ExportDialog":
        dialog = cls(window.document.project, find_weights(window), window.settings, window)
        dialog.export_finished.connect(lambda r: window.show_status(r.summary()))
        return dialog

    # -- building --------------------------------------------------------------------------------
    def _build(self) -> None:
        self.format_group = QButtonGroup(self)
        self.format_buttons = {fmt: QRadioButton(TITLES[fmt]) for fmt in FORMATS}
        for fmt, button in self.format_buttons.items():
            button.setObjectName(f"format_{fmt}")
            self.format_group.addButton(button)
            button.toggled.connect(self._format_toggled)
        self.model_combo = QComboBox()
        self.model_combo.addItems(list(self.project.models))
        self.model_combo.setCurrentText(pick_model(self.project)[0])
        self.model_combo.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.model_combo.currentTextChanged.connect(lambda _t: self._suggest_path())
        self.path_edit = QLineEdit()
        self.path_edit.setObjectName("exportPath")
        self.path_edit.setMinimumWidth(380)
        self.browse_button = QPushButton("Browse…")
        self.browse_button.setAutoDefault(False)  # Enter exports, whatever has the focus
        self.browse_button.clicked.connect(self.browse)
        self._build_weights()
        self._build_feedback()

    def _build_weights(self) -> None:
        self.weights_label = QLabel(self.weights.label)
        self.weights_label.setWordWrap(True)
        self.untrained_check = QCheckBox(UNTRAINED_TEXT)
        self.untrained_check.setObjectName("untrainedCheck")
        self.untrained_check.setToolTip("Freshly initialised weights, seeded like training: "
                                        "useful to try a format, useless as a model")
        self.untrained_check.setVisible(self.weights.weights is None)

    def _build_feedback(self) -> None:
        self.busy_bar, self.busy_label = busy_indicator()
        self.result_label = message_box("exportResult", OK_STYLE)
        self.error_label = message_box("errorBox")
        self.buttons, self.export_button = action_buttons(
            self, QDialogButtonBox.StandardButton.Close, "Export", "exportButton",
            self.start_export)
        self._show_busy(False)
        self._show_message()

    def _layout(self) -> None:
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("Format", self._format_grid())
        form.addRow("Model", self.model_combo)
        form.setRowVisible(self.model_combo, len(self.project.models) > 1)
        target = QHBoxLayout()
        target.addWidget(self.path_edit, 1)
        target.addWidget(self.browse_button)
        form.addRow("Save to", target)
        form.addRow("Weights", self._weights_field())
        box = QVBoxLayout(self)
        box.addLayout(form)
        for widget in (self.busy_bar, self.busy_label, self.result_label, self.error_label):
            box.addWidget(widget)
        box.addStretch(1)
        box.addWidget(self.buttons)
        self.setMinimumWidth(620)

    def _weights_field(self) -> QWidget:
        holder = QWidget()  # a widget, not a nested layout: the wrapped label gets its height
        column = QVBoxLayout(holder)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.weights_label)
        column.addWidget(self.untrained_check)
        return holder

    def _format_grid(self) -> QWidget:
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(14)
        for row, fmt in enumerate(FORMATS):
            grid.addWidget(self.format_buttons[fmt], row, 0)
            description = QLabel(DESCRIPTIONS[fmt])
            description.setObjectName("mutedText")
            description.setWordWrap(True)
            grid.addWidget(description, row, 1)
        grid.setColumnStretch(1, 1)
        holder = QWidget()
        holder.setLayout(grid)
        return holder

    def _restore(self) -> None:
        fmt = str(self.settings.qsettings.value(KEY_FORMAT, "onnx"))
        self.format_buttons[fmt if fmt in FORMATS else "onnx"].setChecked(True)

    # -- reading the form -------------------------------------------------------------------------
    def chosen_format(self) -> str:
        return next(f for f, b in self.format_buttons.items() if b.isChecked())

    def chosen_model(self) -> str:
        return self.model_combo.currentText()

    def out_path(self) -> Path | None:
        text = self.path_edit.text().strip()
        if not text:
            return None
        path = Path(text).expanduser()
        return path if path.is_absolute() else self._start_folder() / path


    # -- the target -------------------------------------------------------------------------------
    def _format_toggled(self, checked: bool) -> None:
        if checked:
            self._suggest_path()

    def _suggest_path(self) -> None:
        """The engine's file name for this format and model, in the folder already chosen."""
        current = self.out_path()
        folder = current.parent if current is not None else self._start_folder()
        name = default_out_path(self.project, self.chosen_format(), self.chosen_model()).name
        self.path_edit.setText(str(folder / name))

    def _start_folder(self) -> Path:
        remembered = Path(str(self.settings.qsettings.value(KEY_FOLDER, "") or ""))
        if str(remembered) not in ("", ".") and remembered.is_dir():
            return remembered
        return self.project.base_dir if self.project.path is not None else Path.home()

    def browse(self) -> None:
        fmt, current = self.chosen_format(), self.out_path() or self._start_folder()
        if fmt == "python":
            folder = QFileDialog.getExistingDirectory(
                self, "Folder for the Python code", str(current.parent))
            path = python_target(Path(folder), current.name) if folder else None
        else:
            chosen, _ = QFileDialog.getSaveFileName(self, f"Export as {TITLES[fmt]}",
                                                    str(current), FILTERS[fmt])
            path = Path(chosen) if chosen else None
        if path is not None:
            self.path_edit.setText(str(path))

    # -- exporting --------------------------------------------------------------------------------
    def start_export(self) -> None:
        """Check the form, then export on the thread pool (``export_finished`` or
        ``export_failed`` follows; the form is locked meanwhile)."""
        if self.busy:
            return
        problem = self._form_problem()
        if problem:
            self._failed(problem)
            return
        fmt, out = self.chosen_format(), self.out_path()
        self.call = BackgroundCall(self._export_function(fmt, out), self)
        self.call.succeeded.connect(self._finished)
        self.call.failed.connect(self._failed)
        self._show_message()
        self._show_busy(True, BUSY_TEXT.get(fmt, "Exporting…"))
        self.call.start()

    def _form_problem(self) -> str | None:
        if self.out_path() is None:
            return NO_PATH
        if self.weights.weights is None and not self.untrained_check.isChecked():
            return NO_WEIGHTS
        return None

    def _export_function(self, fmt: str, out: Path):
        from engine.export import export_model
        from gui.training.controller import snapshot_project

        # a copy: the export reads the graph on another thread while the window may edit it
        return functools.partial(export_model, snapshot_project(self.project), fmt, out,
                                 weights=self.weights.weights, model=self.chosen_model(),
                                 untrained=self.weights.weights is None)

    @Slot(object)
    def _finished(self, result) -> None:
        self.settings.qsettings.setValue(KEY_FORMAT, result.format)  # where the next one starts
        self.settings.qsettings.setValue(KEY_FOLDER, str(result.path.parent))
        self._show_busy(False)
        self._show_message(result=result_text(result))
        self.export_finished.emit(result)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self._show_busy(False)
        self._show_message(error=message)
        self.export_failed.emit(message)

    def _show_busy(self, busy: bool, text: str = "") -> None:
        self.busy = busy
        self.busy_bar.setVisible(busy)
        self.busy_label.setVisible(busy)
        self.busy_label.setText(text)
        close = self.buttons.button(QDialogButtonBox.StandardButton.Close)
        for widget in (self.export_button, close, self.browse_button, self.path_edit,
                       self.model_combo, self.untrained_check, *self.format_buttons.values()):
            widget.setEnabled(not busy)
        grow_to_fit(self)

    def _show_message(self, result: str = "", error: str = "") -> None:
        show_texts(self, (self.result_label, result), (self.error_label, error))

    def reject(self) -> None:
        if self.busy:  # the export cannot be interrupted; closing now would orphan it
            self.busy_label.setText("The export is still running; close when it is done.")
            return
        super().reject()


def run_export_dialog(window) -> None:
    """File -> Export… in ``window`` (modal)."""
    if window.document is None:
        return
    dialog = ExportDialog.for_window(window)
    dialog.exec()
    dialog.deleteLater()
