"""Training in the main window: the Training dock (controls, progress, data, settings, results),
the Live views dock, the canvas overlays, the status bar's device, and the rule that the network
is not edited while it trains.

Editing while training is refused: the editing actions (cut, paste, duplicate, delete, undo,
redo, auto-layout), the palette, the inspector and the data and settings tabs are disabled, and
any other edit request (a wire drawn, a layer dropped on the canvas) is turned away with a status
message. Selecting layers, panning, zooming and moving layers (their position is layout, not the
network) stay possible. Opening another document stops the run.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel

from gui import dialogs
from gui.commands import MoveNodes
from gui.training.commands import SetProjectBlock
from gui.training.controller import TrainingController
from gui.training.lazy import LazyWidget
from gui.training.overlays import CanvasOverlay
from gui.training.pacing import CpuBudget
from gui.training.results import try_sample, weights_path
from gui.training_panel import TrainingPanel
from widgets.plots.progress import format_duration

LOCKED_ACTIONS = ("cut", "paste", "duplicate", "delete", "undo", "redo", "auto_layout")
LOCKED_MESSAGE = "Training is running: stop it to edit the network"
VIEWS_HEIGHT = 0.42  # of the window, for the Live views dock while training
PROGRESS_INTERVAL_S = 0.5
FIT_DELAY_MS = 100
DRAW_GAP_S = 0.15  # at most one plot or canvas redraw in this long: they never pile up
DRAW_AT_LEAST_S = 1.0  # and one at least in this long, even when the CPU budget is spent
TASK_NAMES = {"gan": "GAN", "vae": "VAE"}
METRIC_NAMES = {"val_accuracy": "validation accuracy", "val_loss": "validation loss",
                "train_loss": "training loss", "d_loss": "discriminator loss",
                "g_loss": "generator loss", "val_mse": "validation MSE"}


class TrainingUi(QObject):
    """Everything training adds to a :class:`~gui.main_window.MainWindow`."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.controller = TrainingController(self)
        self.panel = TrainingPanel()
        self.views_holder = LazyWidget(_new_live_views)  # plots: built when first needed
        self.views_holder.built_callbacks.append(self._views_built)
        self.overlay = CanvasOverlay(window)
        self.rng = np.random.default_rng()
        self.explicit: tuple[str, str] | None = None  # a layer the user selected
        self.run_document = None  # the document the current (or last) run trains
        self._theme = None
        self._turn = False
        self._progress_at = 0.0
        self._drawn_at = 0.0
        self.budget = CpuBudget(cpu=self._drawing_seconds)
        self._drawing = 0.0  # CPU seconds spent handing the views and the canvas their data
        self._docks()
        self._status()
        self._guard_edits()
        self._connect()
        window.installEventFilter(self)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.controller.shutdown)
        if window.document is not None:
            self._document_changed(window.document)
        self._apply_theme()

    # -- building ------------------------------------------------------------------------------
    def _docks(self) -> None:
        w = self.window
        self.training_dock = w.add_panel("Training", self.panel, Qt.DockWidgetArea.RightDockWidgetArea,
                                         "trainingDock")
        w.tabifyDockWidget(w.inspector_dock, self.training_dock)
        self.views_dock = w.add_panel("Live views", self.views_holder,
                                      Qt.DockWidgetArea.BottomDockWidgetArea, "liveViewsDock")
        w.tabifyDockWidget(w.summary_dock, self.views_dock)
        w.inspector_dock.raise_()
        w.summary_dock.raise_()

    def _status(self) -> None:
        self.device_label = QLabel()
        self.device_label.setObjectName("statusDevice")
        self.window.statusBar().addPermanentWidget(self.device_label)

    def _guard_edits(self) -> None:
        editing = self.window.editing
        push = editing.push

        def guarded(command) -> None:
            if self.controller.busy and not isinstance(command, MoveNodes):
                self.window.show_status(LOCKED_MESSAGE)
                return
            push(command)

        editing.push = guarded

    def _connect(self) -> None:
        c, p = self.controller, self.panel
        p.start_requested.connect(self.start)
        p.pause_requested.connect(c.pause)
        p.resume_requested.connect(c.resume)
        p.step_requested.connect(c.step_once)
        p.stop_requested.connect(c.stop)
        p.save_requested.connect(self.save_model)
        p.try_requested.connect(self.try_sample)
        p.block_edited.connect(self._block_edited)
        c.state_changed.connect(self._state_changed)
        c.data_progressed.connect(self._data_progressed)
        c.run_started.connect(self._run_started)
        c.updated.connect(self._updated)
        c.run_finished.connect(self._run_finished)
        c.run_failed.connect(self._run_failed)
        self.window.document_changed.connect(self._document_changed)
        self.window.tabs.currentChanged.connect(lambda _i: self._selection_changed())

    # -- the document ----------------------------------------------------------------------------
    def _document_changed(self, document) -> None:
        if self.controller.busy:
            self.controller.shutdown()
            self.window.show_status("Training stopped: another project was opened")
        self.controller.trainer = None
        self.overlay = CanvasOverlay(self.window)
        self.explicit = None
        document.undo_stack.indexChanged.connect(self._stack_changed)
        for canvas in self.window.canvases.values():
            canvas.scene.selectionChanged.connect(self._selection_changed)
        self.panel.refresh(document)
        self.panel.set_state("idle")

    def _stack_changed(self, _index: int) -> None:
        doc = self.window.document
        if doc is None:
            return
        if self.controller.busy:
            self._lock(True)  # the stack re-enabled undo/redo: keep them off
            return
        self.panel.refresh(doc)
        self.overlay.clear()
        canvas = self.window.current_canvas()
        if canvas is not None and not canvas.scene.selected_node_ids():
            self.window.inspector.show_project(doc.project, doc.input_shapes, doc.dataset_error)

    def _block_edited(self, block: str, value, text: str, field: str) -> None:
        doc = self.window.document
        if doc is None or self.controller.busy:
            return
        doc.push(SetProjectBlock(doc, block, value, text, field))

    # -- control --------------------------------------------------------------------------------
    def start(self, epochs: int | None = None) -> bool:
        """Train the open document (``epochs`` overrides the training block's, for benchmarks
        and tests); False when a run is going or there is no document."""
        doc = self.window.document
        if doc is None or self.controller.busy:
            return False
        self.controller.select_nodes(self._probe_names())
        self.overlay.clear()
        self.views  # noqa: B018 - build the plots now, not while training runs
        self._show_docks()
        self.run_document = doc
        return self.controller.start(doc.project, epochs=epochs)

    def _show_docks(self) -> None:
        """Bring the Training and Live views docks forward, give the views room, and fit the
        network into what is left of the canvas."""
        w = self.window
        self.training_dock.raise_()
        self.views_dock.raise_()
        w.resizeDocks([self.views_dock], [int(w.height() * VIEWS_HEIGHT)],
                      Qt.Orientation.Vertical)
        QTimer.singleShot(FIT_DELAY_MS, w.zoom_to_fit)  # once the docks have their new size

    def _probe_names(self) -> list[str]:
        chosen = self.explicit or self._default_layer()
        return [f"{chosen[0]}:{chosen[1]}"] if chosen else []

    def _default_layer(self) -> tuple[str, str] | None:
        """The first layer with weights of the current model (what a newcomer wants to see)."""
        canvas = self.window.current_canvas()
        if canvas is None or canvas.model not in self.window.document.project.models:
            return None  # a block definition's tab: its layers train inside Block nodes
        for node in canvas.graph.topological_order():
            info = canvas.shapes.info.get(node)
            if info is not None and info.stats.params > 0:
                return canvas.model, node
        return None

    def _selection_changed(self) -> None:
        canvas = self.window.current_canvas()
        if canvas is None:
            return
        if not shiboken6.isValid(canvas.scene):
            return  # the window is closing and Qt deleted the scene first
        ids = canvas.scene.selected_node_ids()
        if len(ids) != 1 or canvas.model not in self.window.document.project.models:
            return
        self.explicit = (canvas.model, ids[0])
        self.controller.select_nodes([f"{canvas.model}:{ids[0]}"])
        if self.views_holder.built:
            self.views.select(canvas.model, ids[0])

    # -- the controller's news -------------------------------------------------------------------
    def _state_changed(self, state: str) -> None:
        self.panel.set_state(state, has_results=self.controller.trainer is not None)
        self._lock(self.controller.busy)
        progress = self.panel.progress
        if state == "starting":
            progress.set_message("Preparing the data and the model…", "Starting…")
            self.device_label.setText("")
        elif state == "paused":
            progress.set_message("Paused — Resume to go on, Stop to end here.", "Paused")
        elif state == "stopping":
            progress.set_message("Stopping after this step…")

    def _data_progressed(self, done: int, total: int, what: str) -> None:
        if self.controller.state == "starting" and total:
            self.panel.progress.set_message(f"{what.capitalize()} the data: {done:,} of "
                                            f"{total:,} samples…", f"{done / total:.0%}")

    def _lock(self, locked: bool) -> None:
        w = self.window
        for name in LOCKED_ACTIONS:
            w.actions_[name].setEnabled(not locked)
        if not locked and w.document is not None:
            stack = w.document.undo_stack
            w.actions_["undo"].setEnabled(stack.canUndo())
            w.actions_["redo"].setEnabled(stack.canRedo())
        w.palette.setEnabled(not locked)
        w.inspector.setEnabled(not locked)

    def _run_started(self, info) -> None:
        self.device_label.setText(f"Training on {_device_text(info.device_name)}")
        self.window.show_status(f"Training on {_device_text(info.device_name)}")
        for warning in info.warnings:
            self.window.show_status(warning)
        self.panel.progress.set_message(
            f"{_task_text(info.task)} on {_device_text(info.device_name)}  ·  batch "
            f"{info.batch_size}  ·  {info.steps_per_epoch} steps per epoch", "Epoch 1")
        self.views.begin_run(info)
        names = self.controller.probe_nodes
        model, _, node = names[0].rpartition(":") if names else ("", "", "")
        self.views.select(model or None, node or None)
        self._view_tab_changed(-1)
        self.window.repaint()  # the run's first frame now, before the ongoing updates
        self.budget.reset()  # that frame was set-up, not a cost of the ongoing updates

    def _updated(self, snap) -> None:
        """Take the snapshot in, then redraw one thing at most (a plot or the canvas), and only
        when the window's thread has CPU to spare (see :mod:`gui.training.pacing`)."""
        self.views.apply(snap)
        self.overlay.feed(snap.probes)
        self._show_progress(snap)
        if snap.epochs and self.controller.info is not None:
            from engine.training.compiling import describe  # torch: loaded by the run already

            said = [line for logs in snap.epochs for line in describe(logs)]
            if said:
                self.window.show_status("  ·  ".join(said))
        if self.controller.state == "paused":  # a Step, or the last news before the pause:
            self.views.draw_next(force=True)  # no next frame will come to draw it
            self.overlay.draw(force=True)
            return
        now = time.perf_counter()
        since = now - self._drawn_at
        if since < DRAW_GAP_S or not (self.budget.allows() or since >= DRAW_AT_LEAST_S):
            return  # drop this frame: the data wait, and the next frame shows them all
        self._turn = not self._turn
        draws = (self.overlay.draw, self.views.draw_next)
        start = time.thread_time()
        for draw in (draws if self._turn else draws[::-1]):
            if draw():
                self._drawn_at = time.perf_counter()
                break
        self._drawing += time.thread_time() - start

    def _drawing_seconds(self) -> float:
        """What drawing has cost so far: handing over the data, and painting the plots."""
        from widgets.plots.style import GraphicsArea  # with the plots, not at start-up

        return self._drawing + GraphicsArea.painted

    def _show_progress(self, snap) -> None:
        info = self.controller.info
        now = time.perf_counter()
        if info is None or self.controller.state != "running" or \
                now - self._progress_at < PROGRESS_INTERVAL_S:
            return
        self._progress_at = now
        self.panel.progress.set_progress(snap.epoch, info.epochs, snap.step, snap.total_steps,
                                         snap.samples_per_s, snap.seconds_left)

    def _stale(self) -> bool:
        """The run belonged to a document that is no longer open: forget its results."""
        if self.run_document is self.window.document:
            return False
        self.controller.trainer = None
        return True

    def _run_finished(self, result) -> None:
        if self._stale():
            return
        self.views.draw_next(force=True)
        self.overlay.draw(force=True)
        info = self.controller.info
        device = _device_text(info.device_name) if info else "?"
        self.device_label.setText(f"Trained on {device}")
        verb = {"completed": "Finished", "early_stopping": "Stopped early (no progress)",
                "stopped": "Stopped"}.get(result.stopped, "Finished")
        summary = _summary(result.history)
        text = f"{verb} after {result.epochs} epochs, {result.steps:,} steps in " \
               f"{_took(result.seconds)}" + (f"  ·  {summary}" if summary else "")
        self.panel.progress.set_message(text, f"{verb}  ·  epoch {result.epochs}")
        if result.stopped == "completed":
            self.panel.progress.bar.setValue(self.panel.progress.bar.maximum())
        log_dir = self.controller.thread.worker.log_dir if self.controller.thread else None
        board = f" TensorBoard event files are in {log_dir}." if log_dir else ""
        self.panel.result_label.setText(text + ". Save the weights beside the project, or try "
                                        "the model on a sample." + board)
        self.panel.set_state("done", has_results=True)
        self.window.show_status(text)

    def _run_failed(self, message: str, node, details: str) -> None:
        if self._stale():
            return
        self.device_label.setText("")
        self.panel.progress.set_message(f"Failed: {message.splitlines()[0]}", "Failed")
        self.panel.set_state("failed", has_results=self.controller.trainer is not None)
        if node:
            self._show_node(node)
        if details:
            print(details, file=sys.stderr)
            message += "\n\nThis is a bug in Layerlab; the details are on the console."
        dialogs.show_error(self.window, "Training stopped", message, self.window.interactive)

    def _show_node(self, node: str) -> None:
        """Select the failing layer on its canvas and flag it."""
        w = self.window
        current = w.current_canvas()
        canvases = [current] + [c for c in w.canvases.values() if c is not current]
        for canvas in canvases:
            if canvas is not None and node in canvas.graph:
                w.tabs.setCurrentWidget(canvas.view)
                canvas.scene.select_nodes([node])
                canvas.scene.set_node_badge(node, "training failed here", "error")
                item = canvas.scene.node_item(node)
                if item is not None:
                    canvas.view.ensureVisible(item, 60, 60)
                return

    # -- results ---------------------------------------------------------------------------------
    def save_model(self) -> None:
        trainer, doc = self.controller.trainer, self.window.document
        if trainer is None or doc is None:
            return
        if doc.path is None and not self.window.save_document_as():
            self.window.show_status("Save the project first: the weights go beside it")
            return
        path = weights_path(doc.path)
        try:
            trainer.save_weights(path)
        except OSError as exc:
            dialogs.show_error(self.window, "Cannot save the model", f"{path}: {exc}",
                               self.window.interactive)
            return
        self.panel.result_label.setText(f"Saved the weights to {path.name} (beside the "
                                        f"project).")
        self.window.show_status(f"Saved the weights to {path}")

    def try_sample(self) -> None:
        trainer = self.controller.trainer
        if trainer is None:
            return
        self.panel.trial.content.show_trial(try_sample(trainer, self.rng))

    # -- window events ---------------------------------------------------------------------------
    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        kind = event.type()
        if obj is self.window and kind == QEvent.Type.Close:
            self.controller.shutdown()
        elif obj is self.window and kind in (QEvent.Type.PaletteChange,
                                             QEvent.Type.ApplicationPaletteChange):
            QTimer.singleShot(0, self._apply_theme)
        return False

    @property
    def views(self):
        """The Live views (built on first use)."""
        return self.views_holder.content

    def _views_built(self, views) -> None:
        views.set_dark(self._theme == "dark")
        views.tabs.currentChanged.connect(self._view_tab_changed)
        views.graph.embedding_chosen.connect(self._embedding_chosen)

    def _embedding_chosen(self, node: str) -> None:
        """The Graph tab's layer changed: probe it (a finished run is probed again now)."""
        self.controller.choose_embedding(node)
        if not self.controller.busy:
            self.views.draw_next(force=True)

    def _view_tab_changed(self, _index: int) -> None:
        self.controller.show_probes(self.views.shown_probes())

    def _apply_theme(self) -> None:
        name = getattr(self.window, "theme_name", "light")
        if name != self._theme:
            self._theme = name
            if self.views_holder.built:
                self.views.set_dark(name == "dark")
            self.panel.set_dark(name == "dark")


def _new_live_views():
    from gui.training.live_views import LiveViews

    return LiveViews()


def _task_text(task: str) -> str:
    return TASK_NAMES.get(task, task.capitalize())


def _device_text(name: str) -> str:
    return "the CPU" if name == "cpu" else name


def _summary(history: list) -> str:
    if not history:
        return ""
    last = history[-1]
    for key in ("val_accuracy", "val_loss", "train_loss", "g_loss"):
        if key in last:
            value = last[key]
            shown = f"{value:.1%}" if key.endswith("accuracy") else f"{value:.4g}"
            return f"{METRIC_NAMES.get(key, key)} {shown}"
    return ""


def install_training(window) -> TrainingUi:
    """Add training to the main window (called once, from its constructor)."""
    window.training = TrainingUi(window)
    return window.training


class CliRun:
    """``--train``: start when the window is up; at the end report steps and latency."""

    def __init__(self, ui: TrainingUi):
        self.ui = ui
        ui.controller.measure_latency = True
        QTimer.singleShot(0, ui.start)

    def report(self) -> dict:
        controller = self.ui.controller
        controller.shutdown()
        return {"steps": int(controller.steps), "ui_latency_ms": controller.latency.summary()}

    def print_report(self) -> None:
        print(json.dumps(self.report()), flush=True)


def start_cli_training(window, args=None) -> CliRun:
    return CliRun(window.training)


def _took(seconds: float) -> str:
    """A run's length: ``4.2 s`` under a minute (a clock's ``0:04`` reads as a time of day),
    else ``3:25``."""
    return f"{seconds:.1f} s" if seconds < 59.5 else format_duration(seconds)
