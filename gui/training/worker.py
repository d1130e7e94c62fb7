"""The training thread: the engine's ``Trainer`` built and run by a worker object moved to a
``QThread`` (the Qt worker-object pattern). Its outcome comes back as queued signals; pause, resume
and stop go straight to the trainer, which takes them from any thread.
"""
from __future__ import annotations

import os
import threading
import traceback

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import LayerlabError


GO_TIMEOUT_S = 10.0  # fit() starts anyway if the window never says go


def cpu_threads() -> int:
    """Intra-op threads for CPU training: all cores but one, so the window keeps a core."""
    return max(1, (os.cpu_count() or 2) - 1)


class TrainingWorker(QObject):
    """Builds a Trainer and runs ``fit()`` in the thread it was moved to."""

    built = Signal(object)  # RunInfo; fit() waits for go() (the window sets up its views first)
    finished = Signal(object)  # FitResult
    failed = Signal(str, object, str)  # message, node id (or None), details (a traceback for bugs)
    data_progressed = Signal(int, int, str)  # done, total, what: reading a large dataset

    def __init__(self, project, callbacks, device: str | None = None, epochs: int | None = None,
                 log_every: int = 10, threads: int | None = None):
        super().__init__()
        self.project, self.callbacks = project, list(callbacks)
        self.device, self.epochs, self.log_every, self.threads = device, epochs, log_every, threads
        self.trainer = None
        self.log_dir = None  # where TensorBoard event files go, when the project asks
        self._lock = threading.Lock()
        self._paused = self._stopped = False
        self._go = threading.Event()

    @Slot()
    def run(self) -> None:
        try:
            trainer = self._build()
            if trainer is not None:
                self.built.emit(self._info(trainer))
                self._go.wait(GO_TIMEOUT_S)
                self.finished.emit(trainer.fit())
        except LayerlabError as exc:
            self.failed.emit(str(exc), getattr(exc, "node", None), "")
        except Exception as exc:  # noqa: BLE001 - a bug must reach the window, not kill it
            self.failed.emit(f"{type(exc).__name__}: {exc}", None, traceback.format_exc())
        finally:
            QThread.currentThread().quit()

    def _build(self):
        import torch

        from engine.training import Trainer

        if self.threads:
            torch.set_num_threads(self.threads)
        from engine.runs import RunRecorder

        # a lesson's runs share one history: each is named after its project (the legend)
        name = self.project.name if self.project.runs_stem else None
        self.recorder = RunRecorder(self.project, source="window", name=name)
        trainer = Trainer(self.project, device=self.device, epochs=self.epochs,
                          callbacks=self.callbacks + self._tensorboard() + [self.recorder],
                          log_every=self.log_every, progress=self._data_progress)
        with self._lock:
            self.trainer = trainer
            if self._paused:
                trainer.pause()
            if self._stopped:
                trainer.stop()
        return trainer

    def _data_progress(self, done: int, total: int, what: str) -> None:
        """Reading the data: tell the window (it throttles), and stop if Stop was pressed."""
        from engine.data.progress import Cancelled

        if self._stopped:
            raise Cancelled("reading the dataset was stopped")
        self.data_progressed.emit(int(done), int(total), str(what))

    def _tensorboard(self) -> list:
        """A TensorBoard logger when the training block asks for one (``"tensorboard": true``
        writes to runs/PROJECT/tensorboard beside the project file, as ``train`` does)."""
        from engine.training.config import parse_training
        from engine.training.tensorboard import TensorBoardLogger, log_dir_for
        from engine.training_cli import default_out

        setting = parse_training(self.project.training).tensorboard
        base = self.project.base_dir
        out = base / default_out(str(self.project.path or "project"))
        log_dir = log_dir_for(setting, out, base)
        self.log_dir = log_dir
        return [TensorBoardLogger(log_dir)] if log_dir is not None else []

    def _info(self, trainer):
        from gui.training.bridge import run_info

        return run_info(trainer)

    # -- from the window's thread -------------------------------------------------------------
    def pause(self) -> None:
        with self._lock:
            self._paused = True
            if self.trainer is not None:
                self.trainer.pause()

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            if self.trainer is not None:
                self.trainer.resume()

    def step_once(self) -> None:
        """One batch from a pause, then paused again."""
        with self._lock:
            if self.trainer is not None:
                self.trainer.step_once()

    def go(self) -> None:
        """Let ``fit()`` begin (called once the window is ready to show the run)."""
        self._go.set()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self.trainer is not None:
                self.trainer.stop()
        self._go.set()


class TrainingThread(QObject):
    """A worker and the QThread it runs in."""

    def __init__(self, worker: TrainingWorker, parent: QObject | None = None):
        super().__init__(parent)
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName("layerlabTraining")
        worker.moveToThread(self.thread)
        self.thread.started.connect(worker.run)

    def start(self) -> None:
        self.thread.start()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def wait(self, ms: int = 30_000) -> bool:
        """Block until the thread ends (after ``worker.stop()``); False on time-out."""
        return self.thread.wait(ms)
