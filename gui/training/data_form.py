"""The Data tab of the training panel: choose a built-in dataset or import one (CSV, NPZ, an IDX
folder, an image folder), set its parameters, the validation split, how it is held (in memory or
streamed) and its augmentation, and see a preview (augmented samples beside their originals).

Every change emits ``edited(new dataset block, undo text, field)``; the panel turns it into an
undoable command. The preview is loaded on a pool thread (torch only to augment) and drawn when
it arrives; a newer request makes an older answer stale. Reading or indexing a large set shows a
progress line with a Cancel button.
"""
from __future__ import annotations

import copy
import threading
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal, Slot
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton, QSizePolicy,
                               QSpinBox, QVBoxLayout, QWidget)

from engine.data import BUILTIN_DATASETS, IMPORTER_PARAMS, IMPORTERS
from engine.errors import LayerlabError
from gui.training.augment_form import AugmentForm
from gui.training.lazy import LazyWidget
from widgets.theme import format_shape

IMPORTER_LABELS = {"csv": "CSV file…", "npz": "NPZ file (x, y)…", "npy": "NPY array file…",
                   "idx": "IDX folder (MNIST format)…", "image_folder": "Image folder…"}
FILE_FILTERS = {"csv": "CSV files (*.csv *.tsv *.txt);;All files (*)",
                "npz": "NumPy archives (*.npz);;All files (*)",
                "npy": "NumPy arrays (*.npy);;All files (*)"}
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar", " ": "space"}
PREVIEW_SAMPLES = 1500
PREVIEW_DELAY_MS = 200
AUGMENTED_PAIRS = 12
MEMORY_MODES = (("Automatic", "auto"), ("In memory", True), ("Streamed", False))
PROGRESS_INTERVAL_S = 0.1


def _source_kinds() -> dict:
    """Data kinds besides the built-in sets and importers that a dataset block can name (the
    graph sets and graph importers; environments have their own block)."""
    from engine.data.source import source_kinds

    return {k: v for k, v in source_kinds().items() if k != "environment"}


def load_preview(config: dict, base_dir, progress=None) -> dict:
    """Up to PREVIEW_SAMPLES samples in a seeded random order (``x``, ``y``, class ``names``,
    the ``total`` count), how training would hold the set (``how``) and, when the block augments
    images, ``pairs``: originals and their augmented copies, alternating."""
    from engine.data.augment import parse_augment
    from engine.data.dataset import open_table, parse_config
    from engine.data.source import choose_in_memory, split_memory_params

    name, params, val_split = parse_config(config)
    _, memory = split_memory_params(name, config.get("params"))
    kind = _source_kinds().get(name)
    if kind is not None:  # a graph: no samples to show, what it holds in words
        source = kind.load(params, val_split=val_split, seed=0, device="cpu", base_dir=base_dir)
        source.close()
        return {"x": None, "how": f"In memory: {source.reason}",
                "note": "A graph: it is drawn, coloured by predicted class, in the Graph tab of "
                        "the live views while it trains."}
    table = open_table(name, params, 0, base_dir, progress)
    n = len(table)
    in_memory, reason = choose_in_memory(n * table.sample_nbytes(), memory)
    pick = np.random.default_rng(0).permutation(n)[:PREVIEW_SAMPLES]
    order = np.argsort(pick)  # read in file order, shown in the random one
    x, y = table.get(pick[order])
    back = np.argsort(order)
    x, y = x[back], None if y is None else y[back]
    how = ("In memory" if in_memory else "Streamed from disk") + f": {reason}"
    result = {"x": x, "y": y, "names": table.class_names, "total": n, "how": how}
    augment = parse_augment(config.get("augment"), table.shapes["x"])
    if augment.random_steps and x.ndim == 4:
        import torch

        torch.manual_seed(0)
        originals = torch.from_numpy(np.ascontiguousarray(x[:AUGMENTED_PAIRS]))
        changed = augment.train_random(originals).clamp(float(x.min()), float(x.max()))
        result["pairs"] = torch.stack([originals, changed], 1).flatten(0, 1).numpy()
    return result


class _Sink(QObject):
    done = Signal(int, object)
    progressed = Signal(int, int, int, str)  # token, done, total, what


_RUNNING: set = set()  # preview jobs not yet finished (the app cancels and waits at exit)
_RUNNING_LOCK = threading.Lock()


def finish_previews(timeout_ms: int = 10000) -> None:
    """Cancel the preview reads still going and wait for their pool threads (at exit: a pool
    thread running on while Python finalizes crashes the process)."""
    with _RUNNING_LOCK:
        for job in _RUNNING:
            job.cancelled.set()
    QThreadPool.globalInstance().clear()
    QThreadPool.globalInstance().waitForDone(timeout_ms)


class _PreviewJob(QRunnable):
    def __init__(self, token: int, config: dict, base_dir, sink: _Sink):
        super().__init__()
        self.token, self.config, self.base_dir, self.sink = token, config, base_dir, sink
        self.cancelled = threading.Event()
        self._told = 0.0

    def progress(self, done: int, total: int, what: str) -> None:
        from engine.data.progress import Cancelled

        if self.cancelled.is_set():
            raise Cancelled("reading the dataset was cancelled")
        now = time.monotonic()
        if now - self._told >= PROGRESS_INTERVAL_S or done >= total:
            self._told = now
            self.sink.progressed.emit(self.token, int(done), int(total), str(what))

    def run(self) -> None:
        with _RUNNING_LOCK:
            _RUNNING.add(self)
        try:
            try:
                result = load_preview(self.config, self.base_dir, self.progress)
            except LayerlabError as exc:
                result = exc
            except Exception as exc:  # noqa: BLE001 - shown as a message, not a crash
                result = exc
            if self.cancelled.is_set():
                return  # nobody waits for it (a newer preview, or the app is closing)
            try:
                self.sink.done.emit(self.token, result)
            except RuntimeError:  # the form closed while the preview loaded: nobody to tell
                pass
        finally:
            with _RUNNING_LOCK:
                _RUNNING.discard(self)


class DataForm(QWidget):
    """Dataset choice, parameters, validation split, sample shapes and a preview."""

    edited = Signal(object, str, object)  # dataset block, undo text, field (None: unmerged)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.dataset: dict = {}
        self.base_dir = Path.cwd()
        self.editors: dict[str, QWidget] = {}
        self.source = QComboBox()
        self.source.setObjectName("datasetSource")
        for name, spec in BUILTIN_DATASETS.items():
            self.source.addItem(name, name)
            self.source.setItemData(self.source.count() - 1, spec.doc, 3)  # ToolTipRole
        self.source.insertSeparator(self.source.count())
        for name in IMPORTERS:
            self.source.addItem(IMPORTER_LABELS[name], name)
        self.source.insertSeparator(self.source.count())
        for name, kind in _source_kinds().items():  # graphs
            self.source.addItem(name, name)
            self.source.setItemData(self.source.count() - 1, kind.doc, 3)  # ToolTipRole
        self.source.activated.connect(self._source_chosen)
        self.params = QFormLayout()
        self.params.setContentsMargins(0, 0, 0, 0)
        self.val_split = QDoubleSpinBox()
        self.val_split.setObjectName("valSplit")
        self.val_split.setRange(0.0, 0.9)
        self.val_split.setSingleStep(0.05)
        self.val_split.setDecimals(2)
        self.val_split.valueChanged.connect(self._val_split_changed)
        self.shapes = QLabel()
        self.shapes.setWordWrap(True)
        self.shapes.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._build_memory_editors()
        self.augment = AugmentForm()
        self.augment.edited.connect(self._augment_edited)
        self.progress = QLabel()
        self.progress.setObjectName("dataProgress")
        self.cancel = QPushButton("Cancel")
        self.cancel.setObjectName("dataCancel")
        self.cancel.clicked.connect(self._cancel_preview)
        self._job: _PreviewJob | None = None
        self.preview = LazyWidget(_new_preview)  # built when first seen
        self.preview.built_callbacks.append(self._preview_built)
        self._preview_data = None  # what the preview shows, kept until it is built
        self._build_layout()
        self._token = 0
        self._sink = _Sink(self)
        self._sink.done.connect(self._preview_loaded)
        self._sink.progressed.connect(self._preview_progressed)
        self._preview_timer = QTimer(self, singleShot=True, interval=PREVIEW_DELAY_MS)
        self._preview_timer.timeout.connect(self._load_preview)
        self._filling = False
        self._dark = False

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Dataset", self.source)
        box = QVBoxLayout(self)
        box.setContentsMargins(6, 6, 6, 6)
        box.addLayout(form)
        box.addLayout(self.params)
        split = QFormLayout()
        split.setContentsMargins(0, 0, 0, 0)
        split.addRow("Validation split", self.val_split)
        split.addRow("Memory", self.memory)
        split.addRow("Budget, readers", self.memory_row)
        box.addLayout(split)
        box.addWidget(self.memory_note)
        box.addWidget(self.shapes)
        augment = QFormLayout()
        augment.setContentsMargins(0, 0, 0, 0)
        augment.addRow("Augment", self.augment)
        box.addLayout(augment)
        progress = QHBoxLayout()
        progress.setContentsMargins(0, 0, 0, 0)
        progress.addWidget(self.progress, 1)
        progress.addWidget(self.cancel)
        box.addLayout(progress)
        self._show_progress(None)
        box.addWidget(self.preview, 1)

    def _build_memory_editors(self) -> None:
        self.memory = QComboBox()
        self.memory.setObjectName("dataMemory")
        for label, value in MEMORY_MODES:
            self.memory.addItem(label, value)
        self.memory.setToolTip("Automatic keeps the set in memory when it fits the budget and "
                               "streams it from disk with reader processes otherwise")
        self.memory.activated.connect(
            lambda i: self._param_changed("in_memory", self.memory.itemData(i)))
        self.budget = QSpinBox()
        self.budget.setObjectName("dataBudget")
        self.budget.setRange(0, 1_000_000)
        self.budget.setSpecialValueText("2048 MB")  # 0: the default budget
        self.budget.setSuffix(" MB")
        self.budget.setToolTip("Memory budget: a larger set is streamed (Automatic only)")
        self.budget.editingFinished.connect(
            lambda: self._param_changed("memory_budget_mb", self.budget.value() or None))
        self.workers = QSpinBox()
        self.workers.setObjectName("dataWorkers")
        self.workers.setRange(-1, 64)
        self.workers.setSpecialValueText("auto")
        self.workers.setPrefix("readers ")
        self.workers.setToolTip("Reader processes of the streamed path (auto: up to 4)")
        self.workers.editingFinished.connect(
            lambda: self._param_changed("workers", None if self.workers.value() < 0
                                        else self.workers.value()))
        self.memory_row = QWidget()
        row = QHBoxLayout(self.memory_row)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in (self.budget, self.workers):
            widget.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
            row.addWidget(widget, 1)
        self.memory_note = QLabel()
        self.memory_note.setObjectName("mutedText")
        self.memory_note.setWordWrap(True)
        self.memory_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def _sync_memory(self) -> None:
        params = self.dataset.get("params") or {}
        for editor, value in ((self.memory, params.get("in_memory", "auto")),
                              (self.budget, params.get("memory_budget_mb") or 0),
                              (self.workers, -1 if params.get("workers") is None
                               else params["workers"])):
            set_editor_value(editor, value)
        self.augment.set_steps(self.dataset.get("augment"))

    # -- showing the project's block ---------------------------------------------------------
    def set_dataset(self, dataset: dict, base_dir, input_shapes: dict, error: str | None) -> None:
        """Show a dataset block (after loading, or after undo/redo)."""
        changed = dataset != self.dataset
        renamed = (dataset or {}).get("name") != self.dataset.get("name") or not self.editors
        self.dataset, self.base_dir = copy.deepcopy(dataset or {}), Path(base_dir)
        self._filling = True
        try:
            name = self.dataset.get("name")
            self.source.setCurrentIndex(self.source.findData(name))
            self.val_split.setValue(float(self.dataset.get("val_split", 0.2) or 0.0))
            if renamed:  # editors are rebuilt only for another dataset: never under the cursor
                self._build_params(name)
            else:
                self._sync_values()
            self._sync_memory()
        finally:
            self._filling = False
        self._dark = False
        self._show_shapes(input_shapes, error)
        if changed:
            self._preview_timer.start()

    def _show_shapes(self, shapes: dict, error: str | None) -> None:
        if error:
            self.shapes.setText(f"⚠ {error}")
            self.shapes.setObjectName("errorText")
        else:
            parts = [f"{key}: {format_shape(shape)}" for key, shape in shapes.items()]
            self.shapes.setText("Each sample  ·  " + "  ·  ".join(parts) if parts else
                                "No dataset: the Input layers need a shape of their own.")
            self.shapes.setObjectName("mutedText")
        self.shapes.style().unpolish(self.shapes)
        self.shapes.style().polish(self.shapes)

    def _build_params(self, name: str | None) -> None:
        while self.params.rowCount():
            self.params.removeRow(0)
        self.editors = {}
        given = self.dataset.get("params") or {}
        if name in BUILTIN_DATASETS:
            spec = BUILTIN_DATASETS[name]
            for key, default in spec.params.items():
                rule = spec.rules.get(key)
                self._add_editor(key, given.get(key, default), rule)
        elif name in IMPORTER_PARAMS:
            from engine.data.importers import IMPORTER_RULES

            for key, default in IMPORTER_PARAMS[name].items():
                self._add_editor(key, given.get(key, default), IMPORTER_RULES.get(key))
        elif name in _source_kinds():
            kind = _source_kinds()[name]
            for key, default in kind.params.items():
                self._add_editor(key, given.get(key, default), kind.rules.get(key))

    def _sync_values(self) -> None:
        """Show the block's values in the existing editors (after undo or redo)."""
        name = self.dataset.get("name")
        kind = _source_kinds().get(name)
        defaults = (BUILTIN_DATASETS[name].params if name in BUILTIN_DATASETS else
                    kind.params if kind is not None else IMPORTER_PARAMS.get(name, {}))
        given = {**defaults, **(self.dataset.get("params") or {})}
        for key, editor in self.editors.items():
            set_editor_value(editor, given.get(key))

    def _add_editor(self, key: str, value, rule) -> None:
        kind = rule.kind if rule is not None else "str"
        editor = getattr(self, f"_editor_{kind}", self._editor_str)(key, value, rule)
        editor.setObjectName(f"dataParam_{key}")
        self.editors[key] = editor
        self.params.addRow(key.replace("_", " ").capitalize(), editor)

    # -- one editor per parameter kind ---------------------------------------------------------
    def _editor_int(self, key, value, rule) -> QWidget:
        spin = QSpinBox()
        spin.setRange(int(rule.lo if rule.lo is not None else 0),
                      int(min(rule.hi if rule.hi is not None else 1e9, 2**31 - 1)))
        spin.setValue(int(value))
        spin.valueChanged.connect(lambda v, k=key: self._param_changed(k, int(v)))
        return spin

    def _editor_float(self, key, value, rule) -> QWidget:
        spin = QDoubleSpinBox()
        spin.setDecimals(3)
        spin.setSingleStep(0.01)
        spin.setRange(float(rule.lo if rule.lo is not None else 0),
                      float(rule.hi if rule.hi is not None else 1e6))
        spin.setValue(float(value))
        spin.valueChanged.connect(lambda v, k=key: self._param_changed(k, round(float(v), 6)))
        return spin

    def _editor_bool(self, key, value, rule) -> QWidget:
        box = QCheckBox()
        box.setChecked(bool(value))
        box.toggled.connect(lambda v, k=key: self._param_changed(k, bool(v)))
        return box

    def _editor_choice(self, key, value, rule) -> QWidget:
        combo = QComboBox()
        for choice in rule.choices:
            label = "automatic" if choice is None else DELIMITERS.get(choice, str(choice))
            combo.addItem(label, choice)
        combo.setCurrentIndex(max(0, combo.findData(value)))
        combo.activated.connect(lambda i, k=key, c=combo: self._param_changed(k, c.itemData(i)))
        return combo

    def _editor_size(self, key, value, rule) -> QWidget:
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        spins = []
        for v in (value or [28, 28]):
            spin = QSpinBox()
            spin.setRange(1, 4096)
            spin.setValue(int(v))
            spins.append(spin)
            row.addWidget(spin)
        for spin in spins:
            spin.valueChanged.connect(
                lambda _v, k=key: self._param_changed(k, [s.value() for s in spins]))
        return holder

    def _editor_column(self, key, value, rule) -> QWidget:
        edit = QLineEdit("" if value is None else str(value))
        edit.setPlaceholderText("the last column")
        edit.editingFinished.connect(lambda k=key, e=edit: self._param_changed(
            k, _column(e.text())))
        return edit

    def _editor_path(self, key, value, rule) -> QWidget:
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        edit = QLineEdit("" if value is None else str(value))
        edit.setPlaceholderText("choose a file or folder")
        edit.editingFinished.connect(lambda k=key, e=edit: self._param_changed(k, e.text() or None))
        browse = QPushButton("Browse…")
        browse.clicked.connect(lambda _c=False, k=key: self._browse(self.dataset.get("name"), k))
        row.addWidget(edit, 1)
        row.addWidget(browse)
        holder.line_edit = edit
        return holder

    def _editor_str(self, key, value, rule) -> QWidget:
        edit = QLineEdit("" if value is None else str(value))
        edit.editingFinished.connect(lambda k=key, e=edit: self._param_changed(k, e.text()))
        return edit

    # -- edits -------------------------------------------------------------------------------
    def _source_chosen(self, index: int) -> None:
        name = self.source.itemData(index)
        if name == self.dataset.get("name"):
            return
        if name in IMPORTERS:
            path = self._ask_path(name)
            if not path:
                self.source.setCurrentIndex(self.source.findData(self.dataset.get("name")))
                return
            block = {"name": name, "params": {"path": path}}
            label = IMPORTER_LABELS[name].rstrip("…")
        else:
            block = {"name": name}
            label = name
        block["val_split"] = round(self.val_split.value(), 4)
        self.edited.emit(block, f"Use the dataset {label}", "dataset.name")

    def _browse(self, importer: str | None, key: str = "path") -> None:
        path = self._ask_path(importer)
        if path:
            self._param_changed(key, path)

    def _ask_path(self, importer: str) -> str | None:
        start = str(self.base_dir)
        if importer in FILE_FILTERS:
            path, _ = QFileDialog.getOpenFileName(self, "Import a dataset", start,
                                                  FILE_FILTERS[importer])
        else:
            path = QFileDialog.getExistingDirectory(self, "Import a dataset", start)
        return self._relative(path) if path else None

    def _relative(self, path: str) -> str:
        """Paths inside the project's folder are stored relative to it (the project moves)."""
        try:
            return Path(path).resolve().relative_to(self.base_dir.resolve()).as_posix()
        except ValueError:
            return str(Path(path))

    def _param_changed(self, key: str, value) -> None:
        if self._filling:
            return
        block = copy.deepcopy(self.dataset)
        params = dict(block.get("params") or {})
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
        block["params"] = params
        self.edited.emit(block, f"Set dataset {key.replace('_', ' ')}", f"dataset.params.{key}")

    def _augment_edited(self, steps: list, text: str, field) -> None:
        if self._filling:
            return
        block = copy.deepcopy(self.dataset)
        if steps:
            block["augment"] = steps
        else:
            block.pop("augment", None)
        self.edited.emit(block, text, field)

    def _val_split_changed(self, value: float) -> None:
        if self._filling:
            return
        block = copy.deepcopy(self.dataset)
        block["val_split"] = round(float(value), 4)
        self.edited.emit(block, "Set the validation split", "dataset.val_split")

    # -- preview -------------------------------------------------------------------------------
    def _hint(self, text: str) -> None:
        self._preview_data = text
        if self.preview.built:
            self.preview.content.show_hint(text)

    def _preview_built(self, view) -> None:
        view.set_dark(self._dark)
        if isinstance(self._preview_data, str):
            view.show_hint(self._preview_data)
        elif self._preview_data is not None:
            view.show_data(*self._preview_data)

    def set_dark(self, dark: bool) -> None:
        self._dark = dark
        if self.preview.built:
            self.preview.content.set_dark(dark)

    def _load_preview(self) -> None:
        self._token += 1
        if not self.dataset:
            self._hint("No dataset chosen.")
            return
        self._hint("Loading the preview…")
        if self._job is not None:
            self._job.cancelled.set()  # an older read stops at its next progress call
        job = _PreviewJob(self._token, copy.deepcopy(self.dataset), self.base_dir, self._sink)
        self._job = job
        QThreadPool.globalInstance().start(job)

    def _cancel_preview(self) -> None:
        if self._job is not None:
            self._job.cancelled.set()

    def _show_progress(self, text: str | None) -> None:
        self.progress.setText(text or "")
        self.progress.setVisible(bool(text))
        self.cancel.setVisible(bool(text))

    @Slot(int, int, int, str)
    def _preview_progressed(self, token: int, done: int, total: int, what: str) -> None:
        if token == self._token:
            self._show_progress(None if done >= total else
                                f"{what.capitalize()} {done:,} of {total:,}…")

    @Slot(int, object)  # emitted in a pool thread: the decorator makes it queued to this one
    def _preview_loaded(self, token: int, result) -> None:
        if token != self._token:
            return  # a newer dataset was chosen meanwhile
        self._job = None
        self._show_progress(None)
        if isinstance(result, BaseException):
            self.memory_note.setText("")
            self._hint(f"No preview: {result}")
            return
        self.memory_note.setText(result["how"])
        if result.get("x") is None:
            self._hint(result.get("note", ""))
            return
        pairs = result.get("pairs")
        if pairs is not None:  # originals and augmented copies, side by side
            self._preview_data = (pairs, None, None, result["total"], True)
        else:
            self._preview_data = (result["x"], result["y"], result["names"], result["total"])
        if self.preview.built:
            self.preview.content.show_data(*self._preview_data)


def _new_preview():
    from widgets.plots.preview import DatasetPreview

    return DatasetPreview()


def set_editor_value(editor: QWidget, value) -> None:
    """Put ``value`` into one of the editors above without emitting its change signals."""
    targets = [editor]
    if isinstance(editor, QWidget) and not isinstance(
            editor, (QSpinBox, QDoubleSpinBox, QCheckBox, QComboBox, QLineEdit)):
        targets = editor.findChildren(QSpinBox) or editor.findChildren(QLineEdit)
    for i, target in enumerate(targets):
        target.blockSignals(True)
        try:
            if isinstance(target, (QSpinBox, QDoubleSpinBox)):
                item = value[i] if isinstance(value, (list, tuple)) else value
                if item is not None:
                    target.setValue(item)
            elif isinstance(target, QCheckBox):
                target.setChecked(bool(value))
            elif isinstance(target, QComboBox):
                target.setCurrentIndex(max(0, target.findData(value)))
            elif isinstance(target, QLineEdit) and target.text() != ("" if value is None
                                                                      else str(value)):
                target.setText("" if value is None else str(value))
        finally:
            target.blockSignals(False)


def _column(text: str):
    text = text.strip()
    if not text:
        return None
    return int(text) if text.lstrip("-").isdigit() else text
