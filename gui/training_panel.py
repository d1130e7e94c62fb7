"""The Training panel: Train / Pause / Stop, the progress of the run, and three tabs - the data
(see :mod:`gui.training.data_form`), the training settings, and the results (save the weights,
try the model on a sample).

The panel changes nothing itself: every edit is emitted as ``block_edited(block, value, text,
field)`` and becomes an undoable command; after undo or redo the window calls :meth:`refresh`.
"""
from __future__ import annotations

import copy

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout,
                               QLabel, QPushButton, QScrollArea, QSizePolicy, QSpinBox,
                               QTabWidget, QVBoxLayout, QWidget)

from engine.training.config import (LOSSES, OPTIMIZERS, SCHEDULERS, TASKS, ConfigError,
                                    TrainConfig, parse_training)
from gui.training.data_form import DataForm
from gui.training.lazy import LazyWidget
from widgets.plots.progress import ProgressView

IDLE_STATES = ("idle", "done", "failed")
AUTO = "auto"


class DeviceCombo(QComboBox):
    """auto and cpu, and the CUDA devices, listed the first time the list opens (asking torch
    costs a second, which the window should not pay at start-up)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.addItem("automatic", AUTO)
        self.setItemData(0, "The GPU when there is one (CUDA, then Apple MPS), else the CPU",
                         Qt.ItemDataRole.ToolTipRole)
        self.setToolTip("automatic: the GPU when there is one (CUDA, then Apple MPS), else "
                        "the CPU")
        self.addItem("CPU", "cpu")
        self.listed = False

    def showPopup(self) -> None:  # noqa: N802 - Qt override
        self.list_devices()
        super().showPopup()

    def list_devices(self) -> None:
        if self.listed:
            return
        self.listed = True
        import torch

        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                name = f"cuda:{i}"
                if self.findData(name) < 0:
                    self.addItem(f"{name} — {torch.cuda.get_device_name(i)}", name)

    def set_device(self, name: str) -> None:
        if self.findData(name) < 0:
            self.addItem(name, name)
        self.setCurrentIndex(self.findData(name))


class CompactSpinBox(QDoubleSpinBox):
    """A number box that shows 0.003 and 1e-05 rather than 0.0030000 and 0.0000100."""

    def textFromValue(self, value: float) -> str:  # noqa: N802 - Qt override
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802 - Qt override
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        from PySide6.QtGui import QValidator

        try:
            float(text)
            return QValidator.State.Acceptable, text, pos
        except ValueError:
            ok = text in ("", "-", ".") or text.lower().endswith(("e", "e-"))
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos


class SettingsForm(QWidget):
    """The training block: task, loss, optimizer, learning rate, scheduler, batch size, epochs,
    regularisation (weight decay, L1, early stopping), device, mixed precision and TensorBoard."""

    edited = Signal(object, str, str)  # training block, undo text, field

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.block: dict = {}
        self._filling = False
        self.task = self._combo("task", [("automatic (from the data)", AUTO)] +
                                [(t, t) for t in TASKS])
        self.loss = self._combo("loss", [("the task's default", AUTO)] +
                                [(name, name) for name in LOSSES])
        self.optimizer = self._combo("optimizer", [(name, name) for name in OPTIMIZERS])
        self.scheduler = self._combo("scheduler", [("none", AUTO)] +
                                     [(name, name) for name in SCHEDULERS])
        self.lr = self._double("lr", 1e-7, 10.0, 7)
        self.weight_decay = self._double("weight_decay", 0.0, 10.0, 7)
        self.l1 = self._double("l1", 0.0, 10.0, 7)
        self.batch_size = self._int("batch_size", 1, 1_000_000)
        self.epochs = self._int("epochs", 1, 1_000_000)
        self.early_stopping = self._int("early_stopping", 0, 100_000)
        self.early_stopping.setSpecialValueText("off")
        self.early_stopping.setSuffix(" epochs")
        self.device = DeviceCombo()
        self.device.setObjectName("setting_device")
        self.device.activated.connect(lambda i: self._set("device", self.device.itemData(i)))
        self.amp = QCheckBox("float16 on CUDA")
        self.amp.setToolTip("Mixed precision: float16 with loss scaling on a CUDA device; "
                            "ignored on the CPU")
        self.amp.setObjectName("setting_amp")
        self.amp.toggled.connect(lambda on: self._set("amp", bool(on)))
        self.compile = QCheckBox("torch.compile the network")
        self.compile.setObjectName("setting_compile")
        self.compile.setToolTip("Train through torch.compile (inductor): the first steps "
                                "compile (seconds), later ones run faster; falls back to eager "
                                "with a one-line reason where it cannot compile")
        self.compile.toggled.connect(lambda on: self._set("compile", bool(on)))
        self.tensorboard = QCheckBox("write event files")
        self.tensorboard.setObjectName("setting_tensorboard")
        self.tensorboard.setToolTip("Write the run's scalars, weight histograms and sample "
                                    "images for TensorBoard, by default into "
                                    "runs/PROJECT/tensorboard beside the project file")
        self.tensorboard.toggled.connect(lambda on: self._set("tensorboard", bool(on)))
        self.problems = QLabel()
        self.problems.setObjectName("errorText")
        self.problems.setWordWrap(True)
        _no_widening(self.problems)
        self._layout()

    def _layout(self) -> None:
        form = QFormLayout(self)
        form.setContentsMargins(6, 6, 6, 6)
        for label, widget in (("Task", self.task), ("Loss", self.loss),
                              ("Optimizer", self.optimizer), ("Learning rate", self.lr),
                              ("Scheduler", self.scheduler), ("Batch size", self.batch_size),
                              ("Epochs", self.epochs), ("Weight decay (L2)", self.weight_decay),
                              ("L1 penalty", self.l1), ("Early stopping", self.early_stopping),
                              ("Device", self.device),
                              ("Mixed precision", self.amp),
                              ("Compile", self.compile),
                              ("TensorBoard", self.tensorboard)):
            form.addRow(label, widget)
        hint = QLabel("Dropout is a layer: add it to the network on the canvas.")
        hint.setObjectName("mutedText")
        hint.setWordWrap(True)
        form.addRow(hint)
        form.addRow(self.problems)

    # -- editors ---------------------------------------------------------------------------
    def _combo(self, key: str, items) -> QComboBox:
        combo = QComboBox()
        combo.setObjectName(f"setting_{key}")
        for text, data in items:
            combo.addItem(text, data)
        combo.activated.connect(lambda i, k=key, c=combo: self._set(k, c.itemData(i)))
        return combo

    def _double(self, key: str, lo: float, hi: float, decimals: int) -> QDoubleSpinBox:
        spin = CompactSpinBox()
        spin.setObjectName(f"setting_{key}")
        spin.setRange(lo, hi)
        spin.setDecimals(decimals)
        spin.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        spin.valueChanged.connect(lambda v, k=key: self._set(k, float(f"{v:.7g}")))
        return spin

    def _int(self, key: str, lo: int, hi: int) -> QSpinBox:
        spin = QSpinBox()
        spin.setObjectName(f"setting_{key}")
        spin.setRange(lo, hi)
        spin.valueChanged.connect(lambda v, k=key: self._set(k, int(v)))
        return spin

    # -- showing ---------------------------------------------------------------------------
    def set_training(self, block: dict) -> None:
        self.block = copy.deepcopy(block or {})
        try:
            cfg, problems = parse_training(self.block), ""
        except ConfigError as exc:
            cfg, problems = TrainConfig(), str(exc)
        self._filling = True
        try:
            self._fill(cfg)
        finally:
            self._filling = False
        self.problems.setText(problems)
        self.problems.setVisible(bool(problems))

    def _fill(self, cfg: TrainConfig) -> None:
        pick = (lambda combo, value: combo.setCurrentIndex(max(0, combo.findData(value))))
        pick(self.task, cfg.task or AUTO)
        pick(self.loss, cfg.loss.type if cfg.loss else AUTO)
        pick(self.optimizer, cfg.optimizer.type)
        pick(self.scheduler, cfg.scheduler.type if cfg.scheduler else AUTO)
        self.lr.setValue(float(cfg.optimizer.kwargs.get("lr", 0.001)))
        self.weight_decay.setValue(float(cfg.optimizer.kwargs.get("weight_decay", 0.0)))
        self.l1.setValue(cfg.l1)
        self.batch_size.setValue(cfg.batch_size)
        self.epochs.setValue(cfg.epochs)
        self.early_stopping.setValue(cfg.early_stopping.patience if cfg.early_stopping else 0)
        gan = cfg.task == "gan"  # its losses do not measure progress: the engine refuses it
        self.early_stopping.setEnabled(not gan or cfg.early_stopping is not None)
        monitor = cfg.early_stopping.monitor if cfg.early_stopping else "val_loss"
        self.early_stopping.setToolTip(
            "Not available for a GAN: its losses do not measure progress" if gan else
            f"Stop when {monitor.replace('_', ' ')} has not improved for this many epochs, "
            "and keep the best weights")
        self.device.set_device(cfg.device)
        self.amp.setChecked(cfg.amp)
        self.compile.setChecked(bool(cfg.compile))
        mode = cfg.compile if isinstance(cfg.compile, str) else "default"
        self.compile.setText(f"torch.compile ({mode})" if cfg.compile else
                             "torch.compile the network")
        self.tensorboard.setChecked(bool(cfg.tensorboard))
        if isinstance(cfg.tensorboard, str):
            self.tensorboard.setText(f"write event files to {cfg.tensorboard}")
        else:
            self.tensorboard.setText("write event files")

    # -- editing ---------------------------------------------------------------------------
    def _set(self, key: str, value) -> None:
        if self._filling:
            return
        block = copy.deepcopy(self.block)
        text = apply_setting(block, key, value)
        if block != self.block:
            self.edited.emit(block, text, f"training.{key}")


def apply_setting(block: dict, key: str, value) -> str:
    """Write one setting into a training block (in place); return the undo text."""
    label = key.replace("_", " ")
    if key in ("lr", "weight_decay"):
        opt = block.get("optimizer")
        opt = {"type": opt} if isinstance(opt, str) else dict(opt or {"type": "Adam"})
        if key == "weight_decay" and not value:
            opt.pop(key, None)
        else:
            opt[key] = value
        block["optimizer"] = opt
        return f"Set {'learning rate' if key == 'lr' else label} to {value:g}"
    if key == "optimizer":
        old = block.get("optimizer")
        old = {"type": old} if isinstance(old, str) else dict(old or {})
        known = OPTIMIZERS[value]
        block["optimizer"] = {"type": value, **{k: v for k, v in old.items()
                                                if k != "type" and k in known}}
        return f"Use the {value} optimizer"
    if key == "early_stopping":
        return _set_early_stopping(block, value)
    if key == "scheduler":
        if value == AUTO:
            block.pop("scheduler", None)
        else:
            block["scheduler"] = {"type": value}
        return f"Set the scheduler to {value if value != AUTO else 'none'}"
    if key == "tensorboard" and value and block.get("tensorboard"):
        return "Write TensorBoard event files"  # keep a folder the project names
    if value in (AUTO, None) or (key in ("l1", "amp", "tensorboard", "compile") and not value):
        block.pop(key, None)
    else:
        block[key] = value
    return f"Set {label} to {value}"


def _set_early_stopping(block: dict, patience: int) -> str:
    """``patience`` 0 turns early stopping off; other settings of the block are kept."""
    if not patience:
        block.pop("early_stopping", None)
        return "Turn early stopping off"
    old = block.get("early_stopping")
    block["early_stopping"] = {**(old if isinstance(old, dict) else {}), "patience": patience}
    return f"Stop early after {patience} epochs without progress"


class TrainingPanel(QWidget):
    """Train, Pause/Resume and Stop; progress; data, settings and results tabs."""

    start_requested = Signal()
    pause_requested = Signal()
    resume_requested = Signal()
    step_requested = Signal()
    stop_requested = Signal()
    save_requested = Signal()
    try_requested = Signal()
    block_edited = Signal(str, object, str, object)  # block, value, undo text, field

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.state = "idle"
        self.train_button = QPushButton("▶  Train")
        self.train_button.setObjectName("trainButton")
        self.train_button.setToolTip("Train the network on the dataset (F5)")
        self.train_button.setShortcut("F5")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setObjectName("pauseButton")
        self.step_button = QPushButton("Step")
        self.step_button.setObjectName("stepButton")
        self.step_button.setToolTip("While paused: train one batch (forward and backward) and "
                                    "pause again; the Network view shows its values (F10)")
        self.step_button.setShortcut("F10")
        self.stop_button = QPushButton("■  Stop")
        self.stop_button.setObjectName("stopButton")
        self.progress = ProgressView()
        self.data = DataForm()
        self.settings = SettingsForm()
        self.save_button = QPushButton("Save model")
        self.save_button.setObjectName("saveModelButton")
        self.save_button.setToolTip("Save the trained weights beside the project file "
                                    "(<name>.weights.pt)")
        self.try_button = QPushButton("Try a sample")
        self.try_button.setObjectName("trySampleButton")
        self.try_button.setToolTip("Run the trained model on a random validation sample")
        self.result_label = QLabel("Train the network to see its results here.")
        self.result_label.setWordWrap(True)
        _no_widening(self.result_label)
        self.result_label.setObjectName("mutedText")
        self.trial = LazyWidget(_new_trial_card)  # pyqtgraph: built when first seen
        self.trial.built_callbacks.append(lambda card: card.set_dark(self._dark))
        self._dark = False
        self._wire()
        self._layout()
        self.set_state("idle")

    def _wire(self) -> None:
        self.train_button.clicked.connect(self.start_requested)
        self.pause_button.clicked.connect(self._pause_clicked)
        self.stop_button.clicked.connect(self.stop_requested)
        self.step_button.clicked.connect(self.step_requested)
        self.save_button.clicked.connect(self.save_requested)
        self.try_button.clicked.connect(self.try_requested)
        self.data.edited.connect(lambda v, t, f: self.block_edited.emit("dataset", v, t, f))
        self.settings.edited.connect(lambda v, t, f: self.block_edited.emit("training", v, t, f))

    def _layout(self) -> None:
        buttons = QHBoxLayout()
        for button in (self.train_button, self.pause_button, self.step_button, self.stop_button):
            buttons.addWidget(button)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("trainingTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.data, "Data")
        self.tabs.addTab(_scrolled(self.settings), "Settings")
        self.tabs.addTab(self._results_page(), "Results")
        box = QVBoxLayout(self)
        box.setContentsMargins(8, 8, 8, 4)
        box.addLayout(buttons)
        box.addWidget(self.progress)
        box.addWidget(self.tabs, 1)

    def _results_page(self) -> QWidget:
        page = QWidget()
        box = QVBoxLayout(page)
        box.setContentsMargins(6, 6, 6, 6)
        row = QHBoxLayout()
        row.addWidget(self.save_button)
        row.addWidget(self.try_button)
        box.addLayout(row)
        box.addWidget(self.result_label)
        box.addWidget(self.trial)
        box.addStretch(1)
        return page

    def _pause_clicked(self) -> None:
        if self.state == "paused":
            self.resume_requested.emit()
        else:
            self.pause_requested.emit()

    # -- state ---------------------------------------------------------------------------------
    def set_state(self, state: str, has_results: bool = False) -> None:
        """Enable what makes sense in ``state`` (idle, starting, running, paused, stopping,
        done, failed)."""
        self.state = state
        idle = state in IDLE_STATES
        self.train_button.setEnabled(idle)
        self.pause_button.setEnabled(state in ("starting", "running", "paused"))
        self.pause_button.setText("▶  Resume" if state == "paused" else "❚❚  Pause")
        self.stop_button.setEnabled(state in ("starting", "running", "paused"))
        self.step_button.setEnabled(state == "paused")
        self.data.setEnabled(idle)
        self.settings.setEnabled(idle)
        self.save_button.setEnabled(idle and has_results)
        self.try_button.setEnabled(idle and has_results)

    def refresh(self, document) -> None:
        """Show the document's dataset and training blocks."""
        project = document.project
        self.data.set_dataset(project.dataset, project.base_dir, document.input_shapes,
                              document.dataset_error)
        self.settings.set_training(project.training)

    def set_dark(self, dark: bool) -> None:
        self._dark = dark
        self.data.set_dark(dark)
        if self.trial.built:
            self.trial.content.set_dark(dark)


def _no_widening(label: QLabel) -> None:
    """A long text wraps instead of widening the dock (and squeezing the canvas)."""
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setMinimumWidth(40)


def _new_trial_card():
    from gui.training.results import TrialCard

    return TrialCard()


def _scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a vertical scroll area that fits the dock's width: combo boxes give up
    their longest item's width (the list still shows it in full) rather than clip the form."""
    for combo in widget.findChildren(QComboBox):
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(6)
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    return area
