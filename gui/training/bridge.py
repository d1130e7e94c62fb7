"""The trainer's side of the thread boundary: callbacks that run in the training thread and leave
small, CPU-only state behind for the window to pull.

:class:`LiveBridge` records progress and the logged losses (a few attribute writes and one list
append per logged step; nothing per plain step beyond an integer). :class:`LiveProbes` refreshes
the engine's probes on a clock (a few times a second, whatever the step rate) and adds the
attention weights of a selected attention layer. The window takes everything with
:meth:`LiveBridge.take` from a timer of its own, so however fast training runs, the window is
updated at its own pace.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from engine.training import Callback, Probes

PROBE_INTERVAL_S = 0.5  # a view draws at most this often (live_views.DRAW_INTERVAL_S)
COSTLY = ("samples", "boundary", "confusion", "attention", "graph",
          "network")  # only while on screen
CONFUSION_INTERVAL_S = 2.0  # a pass over the validation set, on screen only
PROBE_CAPACITY = 4096  # gradient-norm rows kept between two refreshes
MAX_POINTS = 1000  # data points copied for the boundary view


@dataclass
class RunInfo:
    """What the window needs to know about a run once the trainer is built."""

    device: str
    device_name: str
    task: str
    epochs: int
    steps_per_epoch: int
    batch_size: int
    models: dict  # model name -> [node ids with a module]
    param_nodes: dict  # model name -> [node ids with trainable weights], in gradient order
    layer_types: dict  # model name -> {node id: layer type}
    num_classes: int | None = None
    class_names: list | None = None
    points: np.ndarray | None = None  # 2-D inputs (for the decision boundary)
    labels: np.ndarray | None = None
    warnings: list = field(default_factory=list)
    environment: dict | None = None  # RL: env_id, drawing, num_actions, kind (rl_bridge)
    graph: dict | None = None  # graph tasks: the graph and its classes (graph_bridge)


@dataclass
class Snapshot:
    """Everything new since the previous :meth:`LiveBridge.take`."""

    step: int = 0
    epoch: int = 0  # the epoch running (1-based)
    elapsed: float = 0.0
    steps: list = field(default_factory=list)  # [(step, {loss name: value})]
    epochs: list = field(default_factory=list)  # history entries
    probes: dict | None = None  # Probes.latest when it changed
    attention: dict | None = None
    state: str = "running"
    total_steps: int = 0
    samples_per_s: float | None = None
    seconds_left: float | None = None
    rl: dict | None = None  # RL news (rl_bridge.LiveRL.take)


class LiveBridge(Callback):
    """Thread-safe progress and losses of a run, taken by the window's timer."""

    def __init__(self):
        self._lock = threading.Lock()
        self._steps: list = []
        self._epochs: list = []
        self.step = 0
        self.epoch = 0
        self.started_at: float | None = None
        self.info: RunInfo | None = None

    def on_train_start(self, trainer) -> None:
        self.started_at = time.perf_counter()
        self.step, self.epoch = trainer.step, trainer.epoch + 1

    def on_batch_end(self, trainer, step: int, logs: dict) -> None:
        self.step = step
        if len(logs) > 2:  # more than epoch and batch: the losses were read on this step
            values = {k: v for k, v in logs.items()
                      if k not in ("epoch", "batch", "lr", "probes")}
            with self._lock:
                self._steps.append((step, values))

    def on_epoch_start(self, trainer, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        with self._lock:
            self._epochs.append(dict(logs))

    def take(self) -> Snapshot:
        """The progress now and the losses logged since the last call."""
        with self._lock:
            steps, self._steps = self._steps, []
            epochs, self._epochs = self._epochs, []
        elapsed = time.perf_counter() - self.started_at if self.started_at else 0.0
        return Snapshot(self.step, self.epoch, elapsed, steps, epochs)


class LiveProbes(Probes):
    """Probes refreshed on a clock rather than every N steps, plus attention weights. The
    costly probes (:data:`COSTLY`: a forward pass each) run only for the views on screen
    (:meth:`show_only`); the run's last refresh computes everything, so every view ends with
    the final state."""

    def __init__(self, interval: float = PROBE_INTERVAL_S, **settings):
        settings.setdefault("every", PROBE_CAPACITY)
        settings.setdefault("keep", PROBE_CAPACITY)  # steps a probe holds: none is missed
        super().__init__(**settings)
        self.interval = interval
        self.attention: dict = {}  # {"node": id, "weights": (batch, queries, keys)}
        self.offered = {"samples": self.samples, "boundary": self.boundary,
                        "confusion": self.confusion, "attention": True, "graph": self.graph,
                        "network": True}
        self.shown = frozenset(COSTLY)
        self._due = self._epoch_due = 0.0
        self._complete = False  # the last refresh computed every probe

    def show_only(self, names) -> None:
        """Compute the costly probes of these views only (any of COSTLY; from any thread)."""
        self.shown = frozenset(names)

    def on_batch_end(self, trainer, step: int, logs: dict) -> None:
        now = time.perf_counter()
        if now >= self._due or trainer.stepping:  # a single step is always shown
            self._due = now + self.interval
            self.refresh(trainer)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        """Epoch ends bring the confusion matrix (a pass over the validation set): at most once
        per CONFUSION_INTERVAL_S however short the epochs, and always at the last one."""
        now = time.perf_counter()
        last = epoch >= trainer.epochs or trainer.stop_requested
        if now >= self._epoch_due or last:
            self._epoch_due = now + CONFUSION_INTERVAL_S
            self._due = now + self.interval
            self.refresh(trainer, epoch_end=True, everything=last)

    def on_train_end(self, trainer, logs: dict) -> None:
        if not self._complete:  # stopped inside an epoch, or stopped early
            self.refresh(trainer, epoch_end=True, everything=True)

    def refresh(self, trainer, epoch_end: bool = False, everything: bool = False) -> dict:
        on = {name for name, offered in self.offered.items()
              if offered and (everything or name in self.shown)}
        self.samples, self.boundary = "samples" in on, "boundary" in on
        self.confusion, self.graph = "confusion" in on, "graph" in on
        self.network = "network" in on
        data = super().refresh(trainer, epoch_end)
        self._complete = everything
        if "attention" in on:  # otherwise the last weights stay (their view is hidden)
            try:
                self.attention = attention_weights(trainer, self.nodes, self.batch)
            except RuntimeError:  # like the other probes: never end training
                self.attention = {}
        return data


def attention_weights(trainer, names, batch: int) -> dict:
    """The attention weights of the first selected attention layer (MultiheadAttention, or the
    self-attention of a TransformerEncoderLayer) on the probe batch, averaged over the heads
    ``{"node", "model", "weights": (batch, queries, keys)}``; {} when none is selected."""
    from engine.explain import attention_maps, attention_module
    from engine.training.tasks import evaluating

    for name in names:
        model_name, _, node = name.rpartition(":")
        for mname, model in trainer.models.items():
            if model_name not in ("", mname) or node not in model.node_attrs:
                continue
            if attention_module(getattr(model, model.node_attrs[node])) is None:
                continue
            with evaluating(model):
                maps = attention_maps(model, trainer.task.probe_inputs(batch)[mname], [node])
            if node not in maps:
                return {}
            return {"node": node, "model": mname, "weights": maps[node].mean(axis=1)}
    return {}


def _param_nodes(model) -> list[str]:
    """Nodes owning trainable parameters, in the order the gradient-norm probe lists them."""
    inverse = {attr: node for node, attr in model.node_attrs.items()}
    owners = [inverse.get(n.split(".")[0], n.split(".")[0])
              for n, p in model.named_parameters() if p.requires_grad]
    return list(dict.fromkeys(owners))


def run_info(trainer) -> RunInfo:
    """Read what the window shows about a built trainer (in the training thread)."""
    import torch

    device = trainer.device
    name = str(device)
    if device.type == "cuda":
        name = f"{device} ({torch.cuda.get_device_name(device)})"
    models = {n: list(m.node_attrs) for n, m in trainer.models.items()}
    params = {n: _param_nodes(m) for n, m in trainer.models.items()}
    types = {n: {node.id: node.type for node in g.nodes()} for n, g in trainer.graphs.items()}
    info = RunInfo(str(device), name, trainer.task_name, trainer.epochs,
                   trainer.steps_per_epoch, trainer.config.batch_size, models, params, types,
                   trainer.dataset.num_classes, trainer.dataset.class_names,
                   warnings=list(trainer.warnings))
    x, y = (trainer.dataset.head(k, MAX_POINTS, "train") for k in ("x", "y"))
    if x is not None and x.dim() == 2 and x.shape[1] == 2:
        info.points = x[:MAX_POINTS].float().cpu().numpy()
        info.labels = None if y is None else y[:MAX_POINTS].cpu().numpy()
    from gui.training.graph_bridge import graph_info
    from gui.training.rl_bridge import environment_info

    info.environment = environment_info(trainer)
    info.graph = graph_info(trainer)
    return info
