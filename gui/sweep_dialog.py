"""Training → Sweep…: search the open project's settings with Optuna from the window.

The dialog lists the searched parameters (a key such as ``training.optimizer.lr`` or
``fc1.out_features``, its kind and range: the ``KEY=SPEC`` of ``main.py sweep``, see
:mod:`engine.sweep`), the number of trials, the epochs per trial, the sampler, the pruner and
the metric. Start runs the trials one after another in a background thread
(:func:`engine.sweep.run_worker` on a snapshot of the project, the study in
``runs/STEM/sweeps.db`` beside the project); each trial is a Trainer run recorded in the run
history. Stop ends the sweep after the running trial. Finished trials fill the trial table, the
best-so-far curve, the parameter importances (from 3 complete trials on) and the parallel
coordinates. "Apply best" writes the best trial's values into the open project as one undo step.

A setting that cannot be searched is reported in the dialog in the engine's words, and nothing
starts.
"""
from __future__ import annotations

import copy
import json
import math
import sys
import threading
import traceback
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDialog, QFormLayout,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QPushButton, QSizePolicy, QSpinBox, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from engine.errors import LayerlabError
from engine.sweep import PRUNERS, SAMPLERS, Space, SweepError
from gui.dialog_support import BUG_NOTE, import_here, message_box

KINDS = ("float", "int", "choice")
PARAM_COLUMNS = ("Parameter", "Kind", "Low", "High", "Step", "Log", "Choices")
TRIAL_COLUMNS = ("#", "State", "Value", "Parameters", "Epochs", "Seconds")
IMPORTANCE_AFTER = 3  # complete trials before the importances mean anything
ACTIVATIONS = ("ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Tanh", "Sigmoid")
STOP_WAIT_MS = 60_000  # how long closing the window waits for a stopped trial to end
# imported on the GUI thread before the sweep's thread needs them (see import_here)
SWEEP_MODULES = ("torch", "optuna", "optuna.importance", "optuna.samplers", "optuna.pruners",
                 "optuna.storages", "sqlalchemy", "engine.training", "engine.runs",
                 "engine.training.callbacks")


# -- what can be searched ---------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """A key the project offers, with a starting kind and range for its row."""

    key: str
    kind: str
    low: str = ""
    high: str = ""
    log: bool = False
    choices: str = ""


def _num(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _float_candidate(key: str, value, lo=None, hi=None) -> Candidate:
    value = float(value)
    if value > 0:
        low, high, log = value / 10, value * 10, True
        if lo is not None:
            low = max(low, lo)
        if hi is not None:
            high = min(high, hi)
        log = low > 0 and high / low >= 10
    else:
        low = lo if lo is not None else 0.0
        high = hi if hi is not None else 1.0
        log = False
    return Candidate(key, "float", _num(float(low)), _num(float(high)), log)


def _int_candidate(key: str, value, lo=None, hi=None) -> Candidate:
    value = int(value)
    low = max(int(lo) if lo is not None else 1, value // 4 or 1)
    high = max(value * 2, low + 1)
    if hi is not None:
        high = min(high, int(hi))
    return Candidate(key, "int", str(low), str(high), low > 0 and high / low >= 8)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def candidates(project) -> list[Candidate]:
    """The keys offered in the parameter column: the training settings, the dataset's numeric
    settings, every node's numeric parameters, the type of each activation and whether each
    layer with one input is kept."""
    from engine.layers import CATALOG, REQUIRED

    found: list[Candidate] = []
    training = project.training or {}
    optimizer = training.get("optimizer") or {}
    found.append(_float_candidate("training.optimizer.lr", optimizer.get("lr", 0.01)))
    for name, value in optimizer.items():
        if name != "lr" and _number(value) and isinstance(value, float):
            found.append(_float_candidate(f"training.optimizer.{name}", value))
    found.append(_int_candidate("training.batch_size", training.get("batch_size", 32)))
    for name, value in (project.dataset.get("params") or {}).items():
        if _number(value):
            key = f"dataset.params.{name}"
            found.append(_int_candidate(key, value) if isinstance(value, int)
                         else _float_candidate(key, value))
    several = len(project.models) > 1
    for model, graph in project.models.items():
        prefix = f"{model}:" if several else ""
        for node in graph.nodes():
            spec = CATALOG.get(node.type)
            if spec is None or spec.category == "I/O":
                continue
            for param in spec.params:
                value = node.params.get(param.name, param.default)
                if param.kind == "int" and _number(value) and (param.min or 0) >= 1:
                    found.append(_int_candidate(f"{prefix}{node.id}.{param.name}", value,
                                                param.min, param.max))
                elif param.kind == "float" and _number(value) and value is not REQUIRED:
                    found.append(_float_candidate(f"{prefix}{node.id}.{param.name}", value,
                                                  param.min, param.max))
            if node.type in ACTIVATIONS:
                others = [t for t in ACTIVATIONS if t != node.type][:2]
                found.append(Candidate(f"{prefix}{node.id}.type", "choice",
                                       choices=",".join([node.type, *others])))
            if len(graph.in_edges(node.id)) == 1:
                found.append(Candidate(f"{prefix}{node.id}.include", "choice",
                                       choices="true,false"))
    return found


def plain_message(text: str) -> str:
    """The engine's message without the command-line option it names (``--param KEY: ...``
    reads ``KEY: ...`` here)."""
    first = str(text).strip().splitlines()[0] if str(text).strip() else str(text)
    for option in ("--param ", "--sampler: ", "--pruner: ", "--metric: ", "--storage: "):
        if first.startswith(option):
            rest = first[len(option):]
            return rest if option == "--param " else f"{option[2:-2].capitalize()}: {rest}"
    return first


# -- one row of the parameter table ------------------------------------------------------------
class ParamRow(QObject):
    """The widgets of one searched parameter; :meth:`spec_text` is its ``KEY=SPEC``."""

    def __init__(self, options: list[Candidate], parent: QObject | None = None):
        super().__init__(parent)
        self.options = {c.key: c for c in options}
        self.key = QComboBox()
        self.key.setObjectName("sweepKey")
        self.key.setEditable(True)
        self.key.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.key.addItems(list(self.options))
        self.key.setCurrentIndex(-1)
        self.key.lineEdit().setPlaceholderText("e.g. training.optimizer.lr")
        self.kind = QComboBox()
        self.kind.setObjectName("sweepKind")
        self.kind.addItems(KINDS)
        self.low, self.high = QLineEdit(), QLineEdit()
        self.low.setObjectName("sweepLow")
        self.high.setObjectName("sweepHigh")
        self.low.setPlaceholderText("low")
        self.high.setPlaceholderText("high")
        self.step = QLineEdit()
        self.step.setObjectName("sweepStep")
        self.step.setPlaceholderText("1")
        self.step.setToolTip("int: search every STEP-th value from low (e.g. 16 for 16, 32, 48…)")
        self.log = QCheckBox()
        self.log.setObjectName("sweepLog")
        self.log.setToolTip("Search on a log scale (for learning rates and other values "
                            "spanning powers of ten)")
        self.choices = QLineEdit()
        self.choices.setObjectName("sweepChoices")
        self.choices.setPlaceholderText("A,B,C")
        self.log_holder = _centered(self.log)
        self.key.currentTextChanged.connect(self._key_changed)
        self.kind.currentTextChanged.connect(self._kind_changed)
        self._kind_changed(self.kind.currentText())

    def widgets(self) -> list[QWidget]:
        return [self.key, self.kind, self.low, self.high, self.step, self.log_holder,
                self.choices]

    def fill(self, candidate: Candidate) -> None:
        self.key.blockSignals(True)
        self.key.setCurrentText(candidate.key)
        self.key.blockSignals(False)
        self._fill_fields(candidate)

    def _fill_fields(self, c: Candidate) -> None:
        self.kind.setCurrentText(c.kind)
        self.low.setText(c.low)
        self.high.setText(c.high)
        self.log.setChecked(c.log)
        self.choices.setText(c.choices)

    def _key_changed(self, text: str) -> None:
        candidate = self.options.get(text.strip())
        if candidate is not None:
            self._fill_fields(candidate)

    def _kind_changed(self, kind: str) -> None:
        ranged = kind in ("float", "int")
        for widget in (self.low, self.high, self.log):
            widget.setEnabled(ranged)
        self.step.setEnabled(kind == "int")
        self.choices.setEnabled(not ranged)

    def spec_text(self) -> str:
        key, kind = self.key.currentText().strip(), self.kind.currentText()
        if kind == "choice":
            return f"{key}=choice:{self.choices.text().strip()}"
        spec = f"{kind}:{self.low.text().strip()}:{self.high.text().strip()}"
        step = self.step.text().strip()
        if kind == "int" and step and step != "1":
            spec += f":{step}"
        return f"{key}={spec}{':log' if self.log.isChecked() else ''}"


def _centered(widget: QWidget) -> QWidget:
    holder = QWidget()
    row = QHBoxLayout(holder)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(widget, 0, Qt.AlignmentFlag.AlignCenter)
    return holder


# -- the background thread ---------------------------------------------------------------------
_STILL_RUNNING: list = []  # (thread, worker) of sweeps that outlived their window's close


def _abort_callback(flag: threading.Event):
    """A Trainer callback that ends the running trial once ``flag`` is set (the window
    closes)."""
    from engine.training.callbacks import Callback

    class Abort(Callback):
        def on_batch_end(self, trainer, step, logs) -> None:
            if flag.is_set():
                trainer.stop()

    return Abort()


class SweepWorker(QObject):
    """Runs :func:`engine.sweep.run_worker` in the thread it was moved to; every finished
    trial comes back as ``trial_done(row)``, the importances as ``importances_ready``."""

    trial_done = Signal(object)  # the engine's trial row (a dict)
    importances_ready = Signal(object)  # {parameter: importance}
    finished = Signal(bool)  # True when Stop ended it early
    failed = Signal(str, str)  # message, details (a traceback for bugs)

    def __init__(self, project, settings):
        super().__init__()
        self.project, self.settings = project, settings
        self.stop_flag = threading.Event()
        self.abort_flag = threading.Event()
        self.complete = 0

    @Slot()
    def run(self) -> None:
        from engine.sweep import run_worker

        try:
            run_worker(self.project, self.settings, self._emit, callbacks=[self._after],
                       trainer_callbacks=[_abort_callback(self.abort_flag)])
            self.finished.emit(self.stop_flag.is_set())
        except LayerlabError as exc:
            self.failed.emit(str(exc), "")
        except Exception as exc:  # noqa: BLE001 - a bug must reach the dialog, not kill it
            self.failed.emit(f"{type(exc).__name__}: {exc}", traceback.format_exc())
        finally:
            QThread.currentThread().quit()

    def _emit(self, row: dict) -> None:
        self.trial_done.emit(copy.deepcopy(row))

    def _after(self, study, trial) -> None:
        """After each trial is recorded: the importances, and Stop."""
        import optuna

        if trial.state == optuna.trial.TrialState.COMPLETE:
            self.complete += 1
            if self.complete >= IMPORTANCE_AFTER:
                try:
                    from engine.sweep import importances

                    self.importances_ready.emit(importances(self.project, self.settings))
                except Exception:  # noqa: BLE001 - a missing view must not end the sweep
                    traceback.print_exc(file=sys.stderr)
        if self.stop_flag.is_set() or self.abort_flag.is_set():
            study.stop()

    def stop(self) -> None:
        """End after the running trial."""
        self.stop_flag.set()

    def abort(self) -> None:
        """End the running trial now too (the window is closing)."""
        self.stop_flag.set()
        self.abort_flag.set()


# -- the dialog -------------------------------------------------------------------------------
class SweepDialog(QDialog):
    """Training → Sweep… (not modal: the window stays usable while trials run)."""

    sweep_finished = Signal(str)  # a one-line summary

    def __init__(self, window):
        super().__init__(window)
        self.main_window = window
        self.setObjectName("sweepDialog")
        self.setWindowTitle("Sweep — search the training settings")
        self.document = None  # the document the current (or last) sweep searched
        self.worker: SweepWorker | None = None
        self.sweep_thread: QThread | None = None
        self.spaces: list[Space] = []
        self.trials: list[dict] = []
        self.maximize = False
        self.metric_name = "val_loss"
        self.study_names: set[str] = set()
        self.rows: list[ParamRow] = []
        self._build()
        self._layout()
        self.refresh_project()
        self._set_running(False)
        window.document_changed.connect(self._document_changed)
        window.installEventFilter(self)
        self.set_dark(getattr(window, "theme_name", "light") == "dark")
        self.resize(1180, 860)

    # -- building ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.param_table = QTableWidget(0, len(PARAM_COLUMNS))
        self.param_table.setObjectName("sweepParams")
        self.param_table.setHorizontalHeaderLabels(PARAM_COLUMNS)
        self.param_table.verticalHeader().setVisible(False)
        self.param_table.verticalHeader().setDefaultSectionSize(32)
        self.param_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        header = self.param_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col, width in ((1, 90), (2, 90), (3, 90), (4, 54), (5, 44), (6, 170)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
            self.param_table.setColumnWidth(col, width)
        self.param_table.setMinimumHeight(100)
        self.param_table.setMaximumHeight(170)  # about four rows; the views get the rest
        self.add_button = QPushButton("Add parameter")
        self.add_button.setObjectName("sweepAddRow")
        self.add_button.clicked.connect(lambda: self.add_row())
        self.remove_button = QPushButton("Remove")
        self.remove_button.setObjectName("sweepRemoveRow")
        self.remove_button.clicked.connect(self.remove_row)
        self.trials_spin = _spin("sweepTrials", 1, 10_000, 20)
        self.epochs_spin = _spin("sweepEpochs", 1, 100_000, 10)
        self.sampler_combo = _combo("sweepSampler", SAMPLERS)
        self.sampler_combo.setToolTip("tpe learns from the trials so far; random draws "
                                      "independently; grid tries every combination of "
                                      "choices and whole numbers")
        self.pruner_combo = _combo("sweepPruner", PRUNERS)
        self.pruner_combo.setToolTip("Stop poor trials early on the metric (median: worse "
                                     "than the median of earlier trials at that epoch)")
        self.metric_combo = _combo("sweepMetric", ("val_loss", "val_accuracy"))
        self.start_button = QPushButton("Start")
        self.start_button.setObjectName("sweepStart")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setObjectName("sweepStop")
        self.stop_button.setToolTip("Stop after the running trial")
        self.stop_button.clicked.connect(self.stop)
        self.apply_button = QPushButton("Apply best")
        self.apply_button.setObjectName("sweepApplyBest")
        self.apply_button.setToolTip("Set the best trial's values in the project (undoable)")
        self.apply_button.clicked.connect(self.apply_best)
        self.close_button = QPushButton("Close")
        self.close_button.setAutoDefault(False)
        self.close_button.clicked.connect(self.hide)
        self.error_label = message_box("errorBox")
        self.error_label.setObjectName("errorBox")
        self.error_label.hide()
        self.status_label = QLabel("Choose what to search, then Start.")
        self.status_label.setObjectName("mutedText")
        self.status_label.setWordWrap(True)
        self.trial_table = QTableWidget(0, len(TRIAL_COLUMNS))
        self.trial_table.setObjectName("sweepTrials")
        self.trial_table.setHorizontalHeaderLabels(TRIAL_COLUMNS)
        self.trial_table.verticalHeader().setVisible(False)
        self.trial_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.trial_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        th = self.trial_table.horizontalHeader()
        for col in range(len(TRIAL_COLUMNS)):
            th.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        th.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.trial_table.setWordWrap(False)  # one line per trial; the tooltip has it all
        self.trial_table.setTextElideMode(Qt.TextElideMode.ElideRight)
        from widgets.plots.sweep import BestSoFarView, ImportanceView, ParallelView

        self.best_view = BestSoFarView()
        self.importance_view = ImportanceView()
        self.parallel_view = ParallelView()

    def _layout(self) -> None:
        params_box = QVBoxLayout()
        title = QLabel("SEARCHED PARAMETERS")
        title.setObjectName("sectionTitle")
        params_box.addWidget(title)
        params_box.addWidget(self.param_table, 1)
        row_buttons = QHBoxLayout()
        row_buttons.addWidget(self.add_button)
        row_buttons.addWidget(self.remove_button)
        row_buttons.addStretch(1)
        params_box.addLayout(row_buttons)
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.addRow("Trials", self.trials_spin)
        form.addRow("Epochs per trial", self.epochs_spin)
        form.addRow("Sampler", self.sampler_combo)
        form.addRow("Pruner", self.pruner_combo)
        form.addRow("Metric", self.metric_combo)
        settings_box = QVBoxLayout()
        title = QLabel("SWEEP")
        title.setObjectName("sectionTitle")
        settings_box.addWidget(title)
        settings_box.addLayout(form)
        settings_box.addStretch(1)
        top = QHBoxLayout()
        top.addLayout(params_box, 3)
        top.addSpacing(12)
        top.addLayout(settings_box, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addSpacing(12)
        buttons.addWidget(self.apply_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        views = QSplitter(Qt.Orientation.Vertical)
        upper, lower = QSplitter(Qt.Orientation.Horizontal), QSplitter(Qt.Orientation.Horizontal)
        upper.addWidget(self.trial_table)
        upper.addWidget(self.best_view)
        lower.addWidget(self.importance_view)
        lower.addWidget(self.parallel_view)
        for splitter in (upper, lower):
            splitter.setChildrenCollapsible(False)
            splitter.setSizes([560, 560])
        views.addWidget(upper)
        views.addWidget(lower)
        views.setChildrenCollapsible(False)
        views.setSizes([330, 300])
        box = QVBoxLayout(self)
        box.addLayout(top)
        box.addWidget(self.error_label)
        box.addLayout(buttons)
        box.addWidget(self.status_label)
        box.addWidget(views, 1)

    # -- the parameter rows ----------------------------------------------------------------------
    def refresh_project(self) -> None:
        """Offer the open project's keys; a project's epochs as the default per trial."""
        doc = self.main_window.document
        if doc is None:
            return
        self.options = candidates(doc.project)
        for row in self.rows:
            current = row.key.currentText()
            row.options = {c.key: c for c in self.options}
            row.key.blockSignals(True)
            row.key.clear()
            row.key.addItems(list(row.options))
            row.key.setCurrentText(current)
            row.key.blockSignals(False)
        if not self.running:
            self.epochs_spin.setValue(int(doc.project.training.get("epochs") or 10))
            metrics = ["val_loss", "val_accuracy"]
            if doc.project.environment:
                metrics = ["mean_return"]
            if [self.metric_combo.itemText(i) for i in range(self.metric_combo.count())] \
                    != metrics:
                self.metric_combo.clear()
                self.metric_combo.addItems(metrics)
        if not self.rows:
            self.add_row(self.options[0] if self.options else None)

    def add_row(self, candidate: Candidate | None = None) -> ParamRow:
        row = ParamRow(self.options, self)
        if candidate is not None:
            row.fill(candidate)
        index = self.param_table.rowCount()
        self.param_table.insertRow(index)
        for col, widget in enumerate(row.widgets()):
            self.param_table.setCellWidget(index, col, widget)
        self.rows.append(row)
        if candidate is None:
            row.key.setFocus()
        return row

    def remove_row(self) -> None:
        selected = sorted({i.row() for i in self.param_table.selectedIndexes()})
        if not selected:
            focus = self.focusWidget()
            selected = [i for i, row in enumerate(self.rows)
                        if focus is not None and any(w is focus or w.isAncestorOf(focus)
                                                     for w in row.widgets())]
        if not selected and self.rows:
            selected = [len(self.rows) - 1]
        for index in reversed(selected):
            self.param_table.removeRow(index)
            self.rows.pop(index).deleteLater()

    # -- reading the form -------------------------------------------------------------------------
    def read_settings(self):
        """The sweep's :class:`~engine.sweep.SweepSettings` from the form; a
        :class:`SweepError` in plain words when something cannot be searched."""
        from engine.project import project_to_dict
        from engine.runs import maximize
        from engine.sweep import SweepSettings, apply_values, make_pruner, make_sampler, \
            parse_space

        doc = self.main_window.document
        if doc is None:
            raise SweepError("Open a project first.")
        if not self.rows:
            raise SweepError("Add a parameter to search (Add parameter).")
        spaces, seen = [], set()
        for row in self.rows:
            space = parse_space(row.spec_text())
            if space.key in seen:
                raise SweepError(f"{space.key}: the parameter is listed twice")
            seen.add(space.key)
            spaces.append(space)
        data = project_to_dict(doc.project)
        for space in spaces:  # a key the project does not have fails here, not in a trial
            sample = space.choices[0] if space.kind == "choice" else \
                (int(space.low) if space.kind == "int" else space.low)
            apply_values(data, {space.key: sample})
        metric = self.metric_combo.currentText()
        settings = SweepSettings(spaces=spaces, trials=self.trials_spin.value(), metric=metric,
                                 direction="maximize" if maximize(metric) else "minimize",
                                 sampler=self.sampler_combo.currentText(),
                                 pruner=self.pruner_combo.currentText(),
                                 epochs=self.epochs_spin.value())
        make_sampler(settings.sampler, spaces, None)  # grid needs lists of values
        make_pruner(settings.pruner, settings.epochs)
        return settings

    # -- running ----------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.sweep_thread is not None and self.sweep_thread.isRunning()

    def start(self) -> bool:
        """Check the form and start the trials; False (with the reason shown) otherwise."""
        if self.running:
            return False
        try:
            settings = self.read_settings()
        except LayerlabError as exc:
            self._show_error(plain_message(str(exc)))
            return False
        self._show_error("")
        from engine.project import parse_project, project_to_dict
        from engine.runs import project_stem
        from engine.sweep import default_storage
        from gui.training.worker import cpu_threads

        doc = self.main_window.document
        project = parse_project(copy.deepcopy(project_to_dict(doc.project)),
                                str(doc.path or "<project>"))
        project.path = doc.project.path
        settings.storage = default_storage(project)
        settings.study = self._study_name(f"{project_stem(project)}-"
                                          f"{datetime.now():%Y%m%d-%H%M%S}")
        settings.threads = cpu_threads()
        import_here(*SWEEP_MODULES)
        self.document, self.settings = doc, settings
        self.spaces, self.metric_name = list(settings.spaces), settings.metric
        self.maximize = settings.direction == "maximize"
        self.trials = []
        self._clear_views()
        self.worker = SweepWorker(project, settings)
        self.sweep_thread = QThread()
        self.sweep_thread.setObjectName("layerlabSweep")
        self.worker.moveToThread(self.sweep_thread)
        self.sweep_thread.started.connect(self.worker.run)
        self.worker.trial_done.connect(self._trial_done)
        self.worker.importances_ready.connect(self._importances_ready)
        self.worker.finished.connect(self._finished)
        self.worker.failed.connect(self._failed)
        self.sweep_thread.finished.connect(lambda: self._set_running(False))
        self.sweep_thread.start()
        self._set_running(True)
        self.status_label.setText(f"Study {settings.study}: trial 1 of {settings.trials} "
                                  f"running ({settings.epochs} epochs each)…")
        return True

    def _study_name(self, name: str) -> str:
        base, n = name, 1
        while name in self.study_names:
            n += 1
            name = f"{base}-{n}"
        self.study_names.add(name)
        return name

    def stop(self) -> None:
        if self.running and self.worker is not None:
            self.worker.stop()
            self.stop_button.setEnabled(False)
            self.status_label.setText("Stopping after the running trial…")

    def shutdown(self) -> None:
        """End the sweep now (the window closes): the running trial stops at its next step."""
        if self.running and self.worker is not None:
            self.worker.abort()
            self.sweep_thread.wait(STOP_WAIT_MS)
        if self.sweep_thread is not None and self.sweep_thread.isRunning():
            # a trial that did not stop in time: a QThread destroyed while it runs aborts the
            # process, so this one is kept until the process ends
            _STILL_RUNNING.append((self.sweep_thread, self.worker))
        self.worker = self.sweep_thread = None  # freed now, not by a later collection

    def _set_running(self, running: bool) -> None:
        running = running and self.running
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for widget in (self.param_table, self.add_button, self.remove_button, self.trials_spin,
                       self.epochs_spin, self.sampler_combo, self.pruner_combo,
                       self.metric_combo):
            widget.setEnabled(not running)
        self._update_apply()

    # -- the worker's news ------------------------------------------------------------------------
    def _trial_done(self, row: dict) -> None:
        self.trials.append(row)
        self._add_trial_row(row)
        self._update_views()
        done = len(self.trials)
        total = self.settings.trials
        if self.running and done < total and not self.worker.stop_flag.is_set():
            self.status_label.setText(f"Study {self.settings.study}: {done} of {total} trials "
                                      f"done, trial {done + 1} running…  ·  "
                                      f"{self._best_text()}")
        self._update_apply()

    def _importances_ready(self, importances: dict) -> None:
        if importances:
            self.importance_view.set_importances(importances)

    def _finished(self, stopped: bool) -> None:
        verb = "Stopped" if stopped else "Finished"
        text = f"{verb}: {len(self.trials)} trials  ·  {self._best_text()}"
        self.status_label.setText(text)
        self.main_window.show_status(f"Sweep {text[0].lower()}{text[1:]}")
        self.sweep_finished.emit(text)

    def _failed(self, message: str, details: str) -> None:
        if details:
            print(details, file=sys.stderr)
            message = f"{message}\n\n{BUG_NOTE}"
        self._show_error(f"The sweep stopped: {plain_message(message)}")
        self.status_label.setText(f"Failed after {len(self.trials)} trials.")

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    # -- the views ---------------------------------------------------------------------------------
    def _clear_views(self) -> None:
        self.trial_table.setRowCount(0)
        self.best_view.clear()
        self.importance_view.clear()
        self.importance_view.show_hint(self._importance_hint(0))
        self.parallel_view.clear()

    def _importance_hint(self, complete: int) -> str:
        return (f"Parameter importance appears after {IMPORTANCE_AFTER} complete trials "
                f"({complete} so far).")

    def complete_trials(self) -> list[dict]:
        return [t for t in self.trials if t.get("state") == "complete"
                and _finite(t.get("value"))]

    def best_trial(self) -> dict | None:
        done = self.complete_trials()
        if not done:
            return None
        pick = max if self.maximize else min
        return pick(done, key=lambda t: t["value"])

    def _best_text(self) -> str:
        best = self.best_trial()
        if best is None:
            return "no complete trial yet"
        return f"best {self.metric_name} {best['value']:.4g} (trial #{best['trial']})"

    def _add_trial_row(self, row: dict) -> None:
        table = self.trial_table
        index = table.rowCount()
        table.insertRow(index)
        value = row.get("value")
        cells = (str(row.get("trial", "")), row.get("state", ""),
                 f"{value:.4g}" if _finite(value) else "—",
                 ", ".join(f"{k}={_value_text(v)}" for k, v in row.get("params", {}).items()),
                 str(row.get("epochs", "")), f"{row.get('seconds', 0):.1f}")
        for col, text in enumerate(cells):
            item = QTableWidgetItem(text)
            if col in (0, 2, 4, 5):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if row.get("message"):
                item.setToolTip(row["message"])
            elif col == 3:
                item.setToolTip(text.replace(", ", "\n"))
            table.setItem(index, col, item)
        self._mark_best()
        table.scrollToBottom()

    def _mark_best(self) -> None:
        best = self.best_trial()
        for index in range(self.trial_table.rowCount()):
            is_best = best is not None and self.trial_table.item(index, 0).text() == \
                str(best["trial"])
            for col in range(self.trial_table.columnCount()):
                item = self.trial_table.item(index, col)
                font = QFont(item.font())
                font.setBold(is_best)
                item.setFont(font)

    def _update_views(self) -> None:
        finished = [t for t in self.trials if t.get("state") in ("complete", "pruned")]
        self.best_view.set_trials([t["trial"] for t in finished],
                                  [t.get("value", float("nan")) for t in finished],
                                  [t["state"] == "complete" for t in finished],
                                  self.maximize, self.metric_name)
        done = self.complete_trials()
        if len(done) < IMPORTANCE_AFTER:
            self.importance_view.show_hint(self._importance_hint(len(done)))
        self._update_parallel(done)

    def _update_parallel(self, done: list[dict]) -> None:
        from widgets.plots.sweep import shade_of

        if not done:
            self.parallel_view.clear()
            return
        values = np.array([t["value"] for t in done], dtype=np.float64)
        axes, columns = [], []
        for space in self.spaces:
            column, ticks = _normalised(space, [t["params"].get(space.key) for t in done])
            axes.append((_short(space.key), ticks))
            columns.append(column)
        lo, hi = float(values.min()), float(values.max())
        columns.append((values - lo) / (hi - lo) if hi > lo else np.full(len(values), 0.5))
        axes.append((self.metric_name, [(0.0, f"{lo:.4g}"), (1.0, f"{hi:.4g}")] if hi > lo
                     else [(0.5, f"{lo:.4g}")]))
        best = self.best_trial()
        best_index = next((i for i, t in enumerate(done) if t is best), None)
        self.parallel_view.set_caption(f"Parallel coordinates  ·  colour: {self.metric_name} "
                                       "(yellow is best)")
        self.parallel_view.set_trials(axes, np.column_stack(columns),
                                      shade_of(values, self.maximize), best_index)

    def set_dark(self, dark: bool) -> None:
        from shiboken6 import isValid

        views = (self.best_view, self.importance_view, self.parallel_view)
        if not isValid(self) or not all(isValid(v.graphics) for v in views):
            return  # the window closed before the deferred theme change ran
        for view in views:
            view.set_dark(dark)
        if self.trials:
            self._update_views()

    # -- apply best ------------------------------------------------------------------------------
    def _update_apply(self) -> None:
        doc = self.main_window.document
        self.apply_button.setEnabled(self.best_trial() is not None and doc is not None
                                     and doc is self.document)

    def apply_best(self) -> bool:
        """Set the best trial's values in the open project, as one undo step."""
        best, doc = self.best_trial(), self.main_window.document
        if best is None or doc is None or doc is not self.document:
            return False
        training = getattr(self.main_window, "training", None)
        if training is not None and training.controller.busy:
            self._show_error("Training is running: stop it to change the project.")
            return False
        try:
            command = apply_values_command(doc, best["params"],
                                           f"Apply sweep trial #{best['trial']}")
        except LayerlabError as exc:
            self._show_error(f"Cannot apply trial #{best['trial']}: "
                             f"{plain_message(str(exc))}")
            return False
        self._show_error("")
        if command is None:
            self.main_window.show_status(f"The project already has trial #{best['trial']}'s values")
            return True
        self.main_window.editing.push(command)
        self.main_window.show_status(f"Applied sweep trial #{best['trial']} ({self._best_text()});"
                                " Undo restores the previous settings")
        return True

    # -- window events ----------------------------------------------------------------------------
    def _document_changed(self, _document) -> None:
        self.refresh_project()
        self._update_apply()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        kind = event.type()
        if obj is self.main_window and kind == QEvent.Type.Close:
            self.shutdown()
        elif obj is self.main_window and kind in (QEvent.Type.PaletteChange,
                                             QEvent.Type.ApplicationPaletteChange):
            QTimer.singleShot(0, lambda: self.set_dark(
                getattr(self.main_window, "theme_name", "light") == "dark"))
        return False

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        event.accept()  # the dialog hides; a running sweep goes on (Training → Sweep… shows it)


def _spin(name: str, low: int, high: int, value: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setObjectName(name)
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
    return spin


def _combo(name: str, items) -> QComboBox:
    combo = QComboBox()
    combo.setObjectName(name)
    combo.addItems(list(items))
    return combo


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        math.isfinite(value)


def _value_text(value) -> str:
    if isinstance(value, bool) or value is None:
        return json.dumps(value)  # true and false, as they are written in a choice
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _short(key: str) -> str:
    """An axis name: ``training.optimizer.lr`` reads ``lr``, ``fc1.out_features`` stays."""
    for prefix in ("training.optimizer.", "training.", "dataset.params."):
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _normalised(space: Space, values: list) -> tuple[np.ndarray, list]:
    """A parameter's values in 0..1 over its searched range (log ranges on a log scale;
    choices evenly spaced), with the axis's ticks: [(0..1, label)]."""
    if space.kind == "choice":
        choices = list(space.choices)
        n = len(choices) - 1
        at = [i / n if n else 0.5 for i in range(len(choices))]
        column = np.array([at[choices.index(v)] if v in choices else 0.5 for v in values])
        return column, [(y, _value_text(c)) for y, c in zip(at, choices)]
    low, high = float(space.low), float(space.high)
    x = np.array([float(v) if _finite(v) else np.nan for v in values])
    if space.log and low > 0:
        x, low_t, high_t = np.log10(x), math.log10(low), math.log10(high)
    else:
        low_t, high_t = low, high
    span = high_t - low_t
    column = (x - low_t) / span if span else np.full(len(values), 0.5)
    ticks = [(0.0, _num(space.low)), (1.0, _num(space.high))] if span else \
        [(0.5, _num(space.low))]
    return np.clip(np.nan_to_num(column, nan=0.5), 0, 1), ticks


# -- the undo command of "Apply best" ----------------------------------------------------------
def apply_values_command(document, values: dict, text: str):
    """One undo command that gives the open project the searched ``values`` (what
    :func:`engine.sweep.apply_values` makes of it): the training and dataset blocks replaced,
    node parameters set, and layers removed, added or retyped through the graph's own commands,
    so that the canvas, the inspector and shape inference follow. None when nothing changes."""
    from engine.project import project_to_dict
    from engine.sweep import apply_values
    from gui import commands as C
    from gui.training.commands import SetProjectBlock

    project = document.project
    target = apply_values(project_to_dict(project), values)
    command = C.macro(text)
    for name, graph in project.models.items():
        _graph_changes(graph, target["models"][name], command)
    for block in ("training", "dataset"):
        new = target.get(block) or {}
        if _plain(new) != _plain(getattr(project, block)):
            command.kids.append(SetProjectBlock(document, block, new, text))
    return command if command.kids else None


def _plain(value):
    """JSON-like data with tuples as lists (a graph keeps some parameters as tuples)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _graph_changes(graph, target: dict, parent) -> None:
    """Child commands of ``parent`` that turn ``graph`` into the ``target`` model dict."""
    from engine.graph import UNSET, Edge
    from gui import commands as C

    nodes = {n["id"]: n for n in target.get("nodes", [])}
    gone = [n for n in graph.node_ids() if n not in nodes or nodes[n]["type"] != graph.node(n).type]
    kept = set(graph.node_ids()) - set(gone)
    wanted = [Edge(e["from"], e["to"], e.get("from_port", "out"), e.get("to_port", "in"))
              for e in target.get("edges", [])]
    existing = set(graph.edges())
    for edge in graph.edges():
        if edge.src in kept and edge.dst in kept and edge not in wanted:
            C.Disconnect(graph, edge, parent=parent)
    if gone:
        C.RemoveItems(graph, gone, parent=parent)
    for node_id, spec in nodes.items():
        if node_id not in kept:
            C.AddNode(graph, spec["type"], spec.get("pos"), spec.get("params"), node_id,
                      parent=parent)
            continue
        old, new = graph.node(node_id).params, spec.get("params") or {}
        for name in dict.fromkeys([*old, *new]):
            if name not in new:
                C.SetParam(graph, node_id, name, UNSET, parent=parent)
            elif name not in old or _plain(old[name]) != _plain(new[name]):
                C.SetParam(graph, node_id, name, new[name], parent=parent)
    for edge in wanted:
        if not (edge in existing and edge.src in kept and edge.dst in kept):
            C.Connect(graph, edge, parent=parent)


# -- the menu action ---------------------------------------------------------------------------
def show_sweep_dialog(window) -> SweepDialog | None:
    """Training → Sweep…: the window's sweep dialog (made on first use), shown and raised."""
    if window.document is None:
        return None
    dialog = getattr(window, "sweep_dialog", None)
    if dialog is None:
        dialog = window.sweep_dialog = SweepDialog(window)
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog
