"""The window's side of a training run: start, pause, resume, stop, and a coalescing timer that
hands the views at most five updates a second, whatever the step rate.

The controller trains a copy of the project (taken when Start is pressed), so the trainer never
sees a graph that changes under it. torch is imported when the first run starts, not before.
Its signals are the only way the rest of the window hears about training: ``state_changed``,
``run_started(RunInfo)``, ``updated(Snapshot)``, ``run_finished(FitResult)`` and
``run_failed(message, node, details)``.
"""
from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from engine.project import parse_project, project_to_dict
from gui import collector
from gui.training.latency import LatencyProbe
from gui.training.worker import TrainingThread, TrainingWorker, cpu_threads

if TYPE_CHECKING:  # the bridge pulls in the engine's trainer; only annotations need it
    from gui.training.bridge import Snapshot

REFRESH_MS = 200  # the views take news five times a second (each draws twice a second at most)
SETTLE_MS = 100  # from the views' set-up to the first step
RATE_WINDOW_S = 3.0
BOUNDARY_GRID = 80

IDLE, STARTING, RUNNING, PAUSED, STOPPING, DONE, FAILED = (
    "idle", "starting", "running", "paused", "stopping", "done", "failed")
BUSY = (STARTING, RUNNING, PAUSED, STOPPING)


def snapshot_project(project):
    """An independent copy of ``project`` (graphs included) at the same path."""
    copy = parse_project(project_to_dict(project), str(project.path or project.name))
    copy.path = project.path
    if project.runs_stem:  # a lesson's shared run history (gui.lessons)
        copy.runs_stem = project.runs_stem
    return copy


_STILL_RUNNING: list = []  # training threads that outlived their window's close


class TrainingController(QObject):
    """Runs one training at a time for the window (see the module doc)."""

    state_changed = Signal(str)
    run_started = Signal(object)  # RunInfo
    updated = Signal(object)  # Snapshot
    run_finished = Signal(object)  # FitResult
    run_failed = Signal(str, object, str)  # message, node id or None, details
    data_progressed = Signal(int, int, str)  # done, total, what: while the data are read

    def __init__(self, parent: QObject | None = None, refresh_ms: int = REFRESH_MS):
        super().__init__(parent)
        self.state = IDLE
        self.timer = QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self._pull)
        self.latency = LatencyProbe(self)
        # the 5 ms timer is an instrument (``--train --quit-after``, tests, benchmarks): it
        # wakes the window 200 times a second, which an ordinary run need not pay for
        self.measure_latency = False
        self.thread: TrainingThread | None = None
        self.bridge = None  # LiveBridge of the current run
        self.probes = None  # LiveProbes of the current run
        self.rl = None  # LiveRL of the current run (reinforcement learning's views)
        self.info = None
        self.project = None  # the copy being (or last) trained
        self.trainer = None  # the last run's trainer, once it ended
        self.result = None
        self.updates = 0  # snapshots handed out (tests and benchmarks read it)
        self.probe_nodes: tuple[str, ...] = ()
        self.embedding_node: str | None = None  # the layer the Graph tab projects; None: default
        self.shown_probes: frozenset | None = None  # costly probes on screen; None: all
        self.threads: int | None = None  # CPU threads for torch; None: all cores but one
        self._probe_version = -1
        self._last_step = -1
        self._rates: deque = deque()

    # -- queries -----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.state in BUSY

    @property
    def steps(self) -> int:
        return self.bridge.step if self.bridge is not None else 0

    # -- control -----------------------------------------------------------------------------
    def start(self, project, epochs: int | None = None) -> bool:
        """Train a copy of ``project`` in the training thread; False while a run is going."""
        if self.busy:
            return False
        from gui.training.bridge import LiveBridge, LiveProbes  # imports torch: not at start-up
        from gui.training.rl_bridge import LiveRL

        self.project = snapshot_project(project)
        self.trainer = self.result = self.info = None
        self.bridge = LiveBridge()
        # graph=True: the Probes compute it for graph tasks only (the task is known once built)
        self.probes = LiveProbes(nodes=self.probe_nodes, histograms=self.probe_nodes,
                                 samples=True, boundary=True, confusion=True, grid=BOUNDARY_GRID,
                                 graph=True, embedding_node=self.embedding_node)
        if self.shown_probes is not None:
            self.probes.show_only(self.shown_probes)
        self.rl = LiveRL()
        worker = TrainingWorker(self.project, [self.bridge, self.probes, self.rl], epochs=epochs,
                                threads=self.threads or cpu_threads())
        worker.built.connect(self._built)
        worker.finished.connect(self._finished)
        worker.failed.connect(self._failed)
        worker.data_progressed.connect(self._data_progressed)
        self.thread = TrainingThread(worker, self)
        self._probe_version, self._rates, self._last_step = -1, deque(), -1
        self._set_state(STARTING)
        self.thread.start()
        return True

    def pause(self) -> None:
        if self.state in (STARTING, RUNNING):
            self.thread.worker.pause()
            self._set_state(PAUSED)

    def resume(self) -> None:
        if self.state == PAUSED:
            self.thread.worker.resume()
            self._set_state(RUNNING if self.info is not None else STARTING)
            self._rates.clear()

    def step_once(self) -> None:
        """While paused: one batch, then paused again (the probes show it)."""
        if self.state == PAUSED:
            self.thread.worker.step_once()

    def stop(self) -> None:
        """Ask the run to end after its current step; ``run_finished`` follows."""
        if self.busy:
            self.thread.worker.stop()
            self._set_state(STOPPING)

    def shutdown(self, timeout_ms: int = 60_000) -> None:
        """Stop and wait for the training thread (the window is closing)."""
        if self.thread is not None and self.thread.is_running():
            self.thread.worker.stop()
            if not self.thread.wait(timeout_ms):
                # a QThread destroyed while it runs aborts the process: keep this one until
                # the process ends
                _STILL_RUNNING.append(self.thread)
        self.timer.stop()
        self.latency.stop()

    def select_nodes(self, names) -> None:
        """Probe the activations and histograms of these ``model:node`` names from now on."""
        self.probe_nodes = tuple(names)
        if self.probes is not None:
            self.probes.configure(nodes=self.probe_nodes, histograms=self.probe_nodes)

    def choose_embedding(self, node: str) -> None:
        """Project this layer's node (or graph) embeddings in the Graph tab from now on. A run
        that ended is probed again at once, so the choice shows without training."""
        self.embedding_node = node
        if self.probes is None:
            return
        self.probes.configure(embedding_node=node)
        if self.state in (DONE, FAILED) and self.trainer is not None and self.info is not None:
            self.probes.refresh(self.trainer, epoch_end=True)  # its thread has ended: safe
            self._pull()

    def show_probes(self, names) -> None:
        """Compute the costly probes (``bridge.COSTLY``) of these views only: those on screen."""
        self.shown_probes = frozenset(names)
        if self.probes is not None:
            self.probes.show_only(self.shown_probes)

    # -- the thread's news (queued from the training thread: the @Slot decorators make PySide
    # deliver them in this object's thread; an undecorated method would run in the emitter's)
    @Slot(int, int, str)
    def _data_progressed(self, done: int, total: int, what: str) -> None:
        if self.state in (STARTING, STOPPING):
            self.data_progressed.emit(done, total, what)

    @Slot(object)
    def _built(self, info) -> None:
        self.info = info
        if self.state == STARTING:
            self._set_state(RUNNING)
        self.run_started.emit(info)  # the views set up first: one-off work, not measured
        # The window holds some 300k objects (Qt, torch, pyqtgraph): a full collection of the
        # cycle collector walks them all with the interpreter lock held, a quarter-second
        # stall of both training and the window. The objects alive now are left out of
        # collections until the run ends; what the run allocates is collected as usual.
        collector.run_started()
        worker = self.thread.worker
        QTimer.singleShot(SETTLE_MS, lambda: self._go(worker))

    def _go(self, worker) -> None:
        """The first step, once the window has laid out and painted the views it just set up:
        that one-off work and training never compete (nor is it taken for latency)."""
        if self.thread is None or worker is not self.thread.worker:
            return  # that run was stopped and another started within the settling time
        worker.go()
        if self.busy:
            self.timer.start()
            if self.measure_latency:
                self.latency.start()

    @Slot(object)
    def _finished(self, result) -> None:
        self._end()
        self.result = result
        self._set_state(DONE)
        self.run_finished.emit(result)

    @Slot(str, object, str)
    def _failed(self, message: str, node, details: str) -> None:
        self._end()
        self._set_state(FAILED)
        self.run_failed.emit(message, node, details)

    def _end(self) -> None:
        collector.run_ended()
        self.thread.wait()
        self.trainer = self.thread.worker.trainer
        self.timer.stop()
        self.latency.stop()
        if self.info is not None:
            self._pull()  # the last losses and the epoch-end probes

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    # -- the coalescing timer ------------------------------------------------------------------
    def _pull(self) -> None:
        snap = self.bridge.take()
        probes = self.probes
        if probes.version != self._probe_version:
            self._probe_version = probes.version
            snap.probes = probes.latest
            snap.attention = probes.attention
        snap.rl = self.rl.take()
        if not (snap.steps or snap.epochs or snap.probes or snap.rl) and \
                snap.step == self._last_step:
            return  # nothing new (paused, or a slow step): no work for the window
        self._last_step = snap.step
        snap.state = self.state
        self._rate(snap)
        self.updates += 1
        self.updated.emit(snap)

    def _rate(self, snap: Snapshot) -> None:
        now = time.perf_counter()
        rates = self._rates
        rates.append((now, snap.step))
        while len(rates) > 2 and now - rates[0][0] > RATE_WINDOW_S:
            rates.popleft()
        info = self.info
        snap.total_steps = info.epochs * info.steps_per_epoch
        (t0, s0), (t1, s1) = rates[0], rates[-1]
        if t1 - t0 > 0.3 and s1 > s0 and self.state == RUNNING:
            steps_per_s = (s1 - s0) / (t1 - t0)
            snap.samples_per_s = steps_per_s * info.batch_size
            snap.seconds_left = (snap.total_steps - snap.step) / steps_per_s
