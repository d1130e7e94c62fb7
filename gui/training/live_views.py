"""The Live views dock: the loss curves always in sight, beside a tab per view of the inside of
the network.

Snapshots are taken in at once (numpy appends), drawing is paced: :meth:`LiveViews.draw_next`
redraws at most one view per call, each at most every ``DRAW_INTERVAL_S``, and only views on
screen; a hidden tab keeps its data and draws when it is shown. So a frame of the window costs
one plot's repaint at most, however busy training is.
"""
from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QTabWidget, QVBoxLayout, QWidget

from widgets.plots import (ActivationsView, BoundaryView, ConfusionView, CurvesView,
                           GradientsView, HistogramsView, SamplesView)
from widgets.plots.activations import ATTENTION
from widgets.plots.graph import GraphView
from widgets.plots.network import NetworkView
from widgets.plots.rl import RLView

GENERATIVE = ("gan", "vae", "reconstruction")
STEP_LOGS = {"gan": ("d_loss", "g_loss")}
ACCURACY_LOGS = ("train_loss", "val_loss", "val_accuracy")
EPOCH_LOGS = {"classification": ACCURACY_LOGS, "node_classification": ACCURACY_LOGS,
              "graph_classification": ACCURACY_LOGS,
              "gan": ("d_loss", "g_loss"), "vae": ("train_loss", "val_loss", "val_mse", "val_kl"),
              "dqn": ("train_loss", "mean_return"), "policy_gradient": ("train_loss", "mean_return")}
RL_TASKS = ("dqn", "policy_gradient")  # their curves: the epoch's loss and mean return only
GRAPH_TASKS = ("node_classification", "graph_classification")  # the Graph tab
DRAW_INTERVAL_S = 0.5  # a view is redrawn at most this often
RL_DRAW_INTERVAL_S = 0.2  # the environment moves: drawn more often (a cheap QPainter scene)


class LiveViews(QWidget):
    """Curves on the left, the other views in tabs on the right."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.curves = CurvesView()
        self.activations = ActivationsView()
        self.gradients = GradientsView()
        self.histograms = HistogramsView()
        self.samples = SamplesView()
        self.boundary = BoundaryView()
        self.confusion = ConfusionView()
        self.rl = RLView()
        self.graph = GraphView()
        self.network = NetworkView()
        self.tabs = QTabWidget()
        self.tabs.setObjectName("liveViewTabs")
        self.tabs.setDocumentMode(True)
        for view, title in ((self.rl, "Environment"), (self.graph, "Graph"),
                            (self.boundary, "Boundary"),
                            (self.samples, "Samples"),
                            (self.activations, "Activations"), (self.gradients, "Gradients"),
                            (self.histograms, "Histograms"), (self.confusion, "Confusion"),
                            (self.network, "Network")):
            self.tabs.addTab(view, title)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.curves)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(0, 4)
        self.splitter.setStretchFactor(1, 5)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.splitter)
        self.info = None
        self.selected: tuple[str, str] | None = None  # (model, node) shown in activations
        self._pending: dict = {}  # view -> latest arguments, for tabs drawn when shown
        self._stale: set = set()  # history views that received data while hidden
        self._norms_upto: dict = {}  # model -> the last step whose gradient norms were taken
        self._multi = False
        self._drawn_at: dict = {}
        self._turn = 0

    def views(self) -> list:
        return [self.curves, self.activations, self.gradients, self.histograms, self.samples,
                self.boundary, self.confusion, self.rl, self.graph, self.network]

    def set_dark(self, dark: bool) -> None:
        for view in self.views():
            view.set_dark(dark)

    # -- runs ----------------------------------------------------------------------------------
    def begin_run(self, info) -> None:
        """A run starts: fresh views (earlier curves stay as overlays), tabs that fit the task."""
        self.info = info
        self._multi = len(info.models) > 1
        self._pending, self._stale = {}, set()
        self._norms_upto = {}
        self.curves.begin_run(info.steps_per_epoch, info.epochs)
        self.curves.prepare(STEP_LOGS.get(info.task, ("loss",)),
                            EPOCH_LOGS.get(info.task, ("train_loss", "val_loss", "val_mse")))
        for view in self.views()[1:]:
            view.clear()
        self.gradients.set_span(info.epochs * info.steps_per_epoch)
        self.histograms.set_span(info.epochs * info.steps_per_epoch)
        self.gradients.prepare([self._label(m, n) for m, nodes in info.param_nodes.items()
                                for n in nodes])
        classification = info.task == "classification"
        two_d = classification and info.points is not None
        env = getattr(info, "environment", None)
        graph = getattr(info, "graph", None) if info.task in GRAPH_TASKS else None
        confusion = classification or info.task == "graph_classification"
        shown = {self.boundary: two_d, self.samples: info.task in GENERATIVE,
                 self.confusion: confusion, self.rl: env is not None,
                 self.graph: graph is not None,
                 self.network: any(t == "Linear" for types in info.layer_types.values()
                                   for t in types.values())}
        for view, visible in shown.items():
            self.tabs.setTabVisible(self.tabs.indexOf(view), visible)
        if two_d:
            self.boundary.set_points(info.points, info.labels, info.num_classes or 2)
        self.confusion.set_class_names(info.class_names)
        if confusion and info.num_classes:
            self.confusion.prepare(info.num_classes)
        if env is not None:
            self.rl.begin(env["env_id"], env["drawing"], env["kind"])
        if graph is not None:
            self.graph.begin(graph)
        first = self.rl if env is not None else self.graph if graph is not None else \
            self.boundary if two_d else self.samples if info.task in GENERATIVE else \
            self.activations
        self.tabs.setCurrentWidget(first)

    def select(self, model: str | None, node: str | None) -> None:
        """The layer whose activations and histograms are shown."""
        self.selected = (model, node) if node else None
        label = self._label(model, node) if node else None
        self.activations.set_layer(label)
        self.histograms.set_layer(label)

    def shown_probes(self) -> set[str]:
        """The costly probes (see ``bridge.COSTLY``) that the tab on screen draws."""
        needs = {self.samples: "samples", self.boundary: "boundary",
                 self.confusion: "confusion", self.activations: "attention",
                 self.graph: "graph", self.network: "network"}
        need = needs.get(self.tabs.currentWidget())
        return {need} if need else set()

    def _label(self, model: str, node: str) -> str:
        return f"{model}:{node}" if self._multi else node

    # -- snapshots -----------------------------------------------------------------------------
    def apply(self, snap) -> None:
        rl = self.info is not None and self.info.task in RL_TASKS
        if getattr(snap, "rl", None):
            self.rl.take(snap.rl)
        if rl:  # per-step losses are mostly the steps without an update: epoch figures only
            snap.steps = []
            snap.epochs = [{k: v for k, v in logs.items()
                            if k in ("epoch", "train_loss", "mean_return")} for logs in snap.epochs]
        if snap.steps:
            names = sorted({k for _, logs in snap.steps for k in logs})
            steps = np.array([s for s, _ in snap.steps], dtype=np.float64)
            values = {n: np.array([logs.get(n, np.nan) for _, logs in snap.steps])
                      for n in names}
            self.curves.add_steps(steps, values, draw=False)
        for logs in snap.epochs:
            self.curves.add_epoch(logs, draw=False)
        if snap.probes:
            self._probes(snap.probes, snap.attention or {})

    def _probes(self, probes: dict, attention: dict) -> None:
        step = probes.get("step", 0)
        for model, norms in probes.get("grad_norms", {}).items():
            self._grad_norms(model, norms)
        if self.selected is not None:
            model, node = self.selected
            hist = probes.get("histograms", {}).get(model, {}).get(node)
            if hist is not None:
                self._history(self.histograms, self.histograms.add, step, hist.get("weight"),
                              hist.get("grad"))
            self._activation(model, node, probes, attention)
        if "samples" in probes or "reconstructions" in probes:
            self._latest(self.samples, self.samples.show_probe, probes.get("samples"),
                         probes.get("reconstructions"), probes.get("real"))
        if "boundary" in probes:
            b = probes["boundary"]
            self._latest(self.boundary, self.boundary.show_boundary, b["xs"], b["ys"],
                         b["classes"], b["score"])
        if "confusion" in probes:
            self._latest(self.confusion, self.confusion.show_matrix, probes["confusion"])
        if "network" in probes:
            self._latest(self.network, self.network.show_probe, probes["network"],
                         probes.get("step"))
        if "graph" in probes:  # recolours the nodes and moves the embedding: drawn paced
            self._latest(self.graph, self.graph.show_probe, probes["graph"], probes.get("epoch"))

    def _grad_norms(self, model: str, norms: dict) -> None:
        """Add the steps not seen yet: each probe holds the last few thousand steps, so that
        a reader polling now and then misses none."""
        steps = np.asarray(norms["steps"])
        new = steps > self._norms_upto.get(model, -1)
        if new.any():
            self._norms_upto[model] = int(steps[new][-1])
            layers = [self._label(model, n) for n in norms["nodes"]]
            self._history(self.gradients, self.gradients.append, steps[new], layers,
                          np.asarray(norms["values"])[new])

    def _activation(self, model: str, node: str, probes: dict, attention: dict) -> None:
        label = self._label(model, node)
        if attention.get("node") == node and attention.get("model") == model:
            self._latest(self.activations, self.activations.show_activation, label,
                         attention["weights"], None, ATTENTION)
            return
        array = probes.get("activations", {}).get(model, {}).get(node)
        if array is not None:
            kind = self.info.layer_types.get(model, {}).get(node) if self.info else None
            self._latest(self.activations, self.activations.show_activation, label, array, kind)

    def _latest(self, view, method, *args) -> None:
        """Views showing only the latest probe: keep the arguments until the view draws."""
        self._pending[view] = (method, args)

    def _history(self, view, method, *args) -> None:
        """Views keeping a history: record now, draw later."""
        method(*args, draw=False)
        self._stale.add(view)

    # -- drawing -------------------------------------------------------------------------------
    def _needs_drawing(self, view) -> bool:
        if view is self.curves:
            return self.curves.dirty
        if view is self.rl:
            return self.rl.dirty
        return view in self._pending or view in self._stale

    def _draw(self, view, force: bool = False) -> None:
        if view is self.curves:
            self.curves.redraw()
        if view is self.rl:
            self.rl.redraw(force)
        pending = self._pending.pop(view, None)
        if pending is not None:
            pending[0](*pending[1])
        if view in self._stale:
            self._stale.discard(view)
            view.redraw()
        self._drawn_at[view] = time.perf_counter()

    def draw_next(self, force: bool = False) -> bool:
        """Redraw one view on screen that has news and has rested long enough; True if one
        did. ``force`` draws every view on screen now (the run ended)."""
        on_screen = [self.curves, self.tabs.currentWidget()]
        if force:
            for view in on_screen:
                if self._needs_drawing(view):
                    self._draw(view, force=True)
            return True
        now = time.perf_counter()
        for i in range(len(on_screen)):
            view = on_screen[(self._turn + i) % len(on_screen)]
            if self._needs_drawing(view) and \
                    now - self._drawn_at.get(view, 0.0) >= (
                        RL_DRAW_INTERVAL_S if view is self.rl else DRAW_INTERVAL_S):
                self._turn = (self._turn + i + 1) % len(on_screen)
                self._draw(view)
                return True
        return False

    def _tab_changed(self, _index: int) -> None:
        view = self.tabs.currentWidget()
        if self._needs_drawing(view):
            self._draw(view)
