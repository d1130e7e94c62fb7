"""Probes: cheap views of the inside of a training network, for the window to draw.

A :class:`Probes` callback keeps, on the device, the gradient norm of every parameter (one
``torch._foreach_norm`` per model update: of the first few, then of every ``grad_every``-th
but at most one per ``grad_interval`` seconds, so that their cost stays a small share of the
time however short the steps). Every ``every`` steps and at an epoch's end - but at most once
per ``interval`` seconds, and always at the run's end - it refreshes :attr:`Probes.latest`, a
plain dict of small numpy arrays (the device is read only then):

``step``, ``epoch``
``grad_norms``     {model: {"nodes": [node ids], "steps": (k,), "values": (k, nodes)}}, the
                   last ``keep`` steps (a reader that polls now and then misses none)
``means``          {model: {node id: mean |activation| on the probe batch}}     (means=True)
``activations``    {model: {node id: array (batch, ...)}}  the first ``batch`` samples, at most
                   ``max_channels`` channels of a feature map and ``max_units`` units
``histograms``     {model: {node id: {"weight": (counts, lo, hi), "grad": (counts, lo, hi)}}}
``samples``        GAN samples from fixed noise, VAE samples from the prior (samples=True)
``reconstructions`` {"inputs", "outputs"} for autoencoders and VAEs (samples=True)
``real``           real points beside GAN samples of 2-D data
``boundary``       {"xs", "ys", "classes", "score"} over a grid for 2-D classification
``confusion``      (classes, classes) counts on the validation set, rows = true class
                   (epoch ends only)
``graph``          node_classification: {"pred": (N,) predicted class of every node,
                   "embedding": (N, 2) PCA of the node features after ``embedding_node``
                   (default: the last graph layer before the Output), "embedding_node": id};
                   graph_classification: {"embedding": (G, 2) PCA of the pooled vectors of
                   the probe graphs, "labels": (G,), "pred": (G,), "embedding_node": id}
                   (graph=True)

Everything is detached and cut down on the device; only what was asked for is copied. The probe
batch, the noise and the grid are fixed, and probe passes run in eval mode without gradients and
draw no random numbers from the training streams, so turning probes on changes no loss.
``latest`` is replaced as a whole, so another thread can read it at any time; ``version`` counts
refreshes. :meth:`configure` changes what is probed from any thread (read at the next refresh).
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch

from engine.training.callbacks import Callback
from engine.training.tasks import evaluating

GRAPH_TASKS = ("node_classification", "graph_classification")
PROBE_SEED = 271828  # the fixed noise of sample probes, independent of the training streams


class _GradNorms:
    """Per-step gradient norms of one model's parameters, kept on the device until collected.

    A step costs one ``torch._foreach_norm``; the norms are stacked once per ``chunk`` steps.
    """

    def __init__(self, model, device, chunk: int = 50):
        inverse = {attr: node for node, attr in model.node_attrs.items()}
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for _, p in named]
        owners = [inverse.get(n.split(".")[0], n.split(".")[0]) for n, _ in named]
        self.nodes = list(dict.fromkeys(owners))
        member = torch.zeros(len(named), len(self.nodes), device=device)
        for i, owner in enumerate(owners):
            member[i, self.nodes.index(owner)] = 1.0
        self.member = member
        self.zero = torch.zeros((), device=device)
        self.chunk = chunk
        self.pending: list = []  # lists of 0-d norm tensors, one per recorded step
        self.stacked: list = []  # (steps, params) tensors
        self.steps: list[int] = []  # the step of each recorded row
        self.rows = 0

    def record(self, step: int) -> None:
        grads = [p.grad if p.grad is not None else self.zero for p in self.params]
        self.pending.append(torch._foreach_norm(grads))
        self.steps.append(step)
        self.rows += 1
        if len(self.pending) >= self.chunk:
            self._stack()

    def _stack(self) -> None:
        flat = [t for norms in self.pending for t in norms]
        self.stacked.append(torch.stack(flat).view(len(self.pending), len(self.params)))
        self.pending = []

    def collect(self, step: int) -> dict | None:
        if not self.rows or not self.params:
            return None
        if self.pending:
            self._stack()
        rows = torch.cat(self.stacked) if len(self.stacked) > 1 else self.stacked[0]
        per_node = ((rows.float() ** 2) @ self.member).sqrt().cpu().numpy()
        steps = np.asarray(self.steps, dtype=np.int64)
        self.stacked, self.rows, self.steps = [], 0, []
        return {"nodes": self.nodes, "steps": steps, "values": per_node}


class Probes(Callback):
    """Collects what the live views show; cheap enough to leave on (see the module doc)."""

    def __init__(self, every: int = 50, interval: float = 0.1, nodes=(), histograms=(),
                 samples: bool = False, boundary: bool = False, confusion: bool = False,
                 grad_norms: bool = True, means: bool = True, batch: int = 16,
                 n_samples: int = 64, bins: int = 30, grid: int = 64, max_units: int = 256,
                 max_channels: int = 16, keep: int = 1000, graph: bool = False,
                 embedding_node: str | None = None, grad_every: int = 4,
                 network: bool = False, grad_interval: float = 0.002):
        self.every = max(1, int(every))
        # gradient norms of the first updates, then of every grad_every-th: the gradient-flow
        # view reads trends
        # over hundreds of steps, and one norm per parameter per step was the probes' largest
        # per-step cost on small models
        self.grad_every = max(1, int(grad_every))
        # and at most one per grad_interval seconds: a norm costs 10-60 us beside the step, a
        # large share of a tiny model's step, and a view plots a trend, not every step
        self.grad_interval = float(grad_interval)
        self._norm_at: dict[str, float] = {}  # when each model's last norm was taken
        self.network = network  # the dense layers' weights, gradients and units (network view)
        self.interval = interval
        self.nodes = tuple(nodes)
        self.histograms = tuple(histograms)
        self.samples, self.boundary, self.confusion = samples, boundary, confusion
        self.grad_norms, self.means = grad_norms, means
        self.batch, self.n_samples, self.bins, self.grid = batch, n_samples, bins, grid
        self.max_units, self.max_channels, self.keep = max_units, max_channels, keep
        self.graph, self.embedding_node = graph, embedding_node
        self.latest: dict = {}
        self.version = 0
        self._norms: dict[str, _GradNorms] = {}
        self._windows: dict = {}
        self._inputs: dict = {}
        self._grid = None
        self._refreshed = 0.0
        self._stale = False

    def configure(self, **settings) -> None:
        """Change what is probed (e.g. ``nodes=("conv1",)``); takes effect at the next refresh."""
        for key, value in settings.items():
            if not hasattr(self, key) or key.startswith("_") or key in ("latest", "version"):
                raise TypeError(f"Probes has no setting {key!r}")
            setattr(self, key, tuple(value) if key in ("nodes", "histograms") else value)

    # -- hooks -----------------------------------------------------------------------------
    def on_train_start(self, trainer) -> None:
        self._norms = {n: _GradNorms(m, trainer.device) for n, m in trainer.models.items()}
        self._windows = {}
        self._norm_at = {}
        self._refreshed = time.monotonic()  # the first refresh comes one interval in
        self._stale = False  # an epoch end went by without a refresh
        self._inputs = trainer.task.probe_inputs(self.batch)
        self._grid = None  # built at the first boundary probe

    def on_after_backward(self, trainer, model_name: str, model) -> None:
        step = trainer.step + 1  # the update being made (counted after it)
        if not self.grad_norms:
            return
        if step < self.grad_every:
            self._norms[model_name].record(step)
        elif step % self.grad_every == 0:
            now = time.perf_counter()
            if now - self._norm_at.get(model_name, -math.inf) >= self.grad_interval:
                self._norm_at[model_name] = now
                self._norms[model_name].record(step)

    def on_batch_end(self, trainer, step: int, logs: dict) -> None:
        if step % self.every == 0 and time.monotonic() - self._refreshed >= self.interval:
            logs["probes"] = self.refresh(trainer)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        """Epochs shorter than ``interval`` are not each probed (a view reads no faster);
        the run's last epoch always is (see :meth:`on_train_end`)."""
        self._stale = time.monotonic() - self._refreshed < self.interval
        if not self._stale:
            self.refresh(trainer, epoch_end=True)

    def on_train_end(self, trainer, logs: dict) -> None:
        """The run ends on its last step: refreshed unless the last refresh was at it (an
        epoch end skipped as too soon, or a stop inside an epoch, leaves steps unseen)."""
        if self._stale or self.latest.get("step") != trainer.step:
            self.refresh(trainer, epoch_end=True)
        self._stale = False

    # -- collecting ------------------------------------------------------------------------
    def refresh(self, trainer, epoch_end: bool = False) -> dict:
        """Collect every requested probe now and publish it as :attr:`latest`.

        The hooks call this from the training thread; another thread may call it only while
        the trainer is paused or finished (it runs the model in eval mode)."""
        data = {"step": trainer.step, "epoch": trainer.epoch + (0 if epoch_end else 1)}
        try:
            self._collect(trainer, data, epoch_end)
        except RuntimeError as exc:  # a probe must never end training (e.g. out of memory)
            data["error"] = f"probes: {str(exc).strip().splitlines()[0][:200]}"
        self.latest = data
        self.version += 1
        self._refreshed = time.monotonic()
        return data

    def _collect(self, trainer, data: dict, epoch_end: bool) -> None:
        if self.grad_norms:
            for name, norms in self._norms.items():
                self._window(name, norms.collect(trainer.step))
            data["grad_norms"] = dict(self._windows)
        with torch.no_grad():
            if self.means or self.nodes:
                self._activations(trainer, data)
            if self.histograms:
                data["histograms"] = self._histograms(trainer)
            if self.samples:
                self._samples(trainer, data)
            if self.boundary:
                boundary = self._boundary(trainer)
                if boundary is not None:
                    data["boundary"] = boundary
            if self.network:
                network = network_probe(trainer, self._inputs)
                if network is not None:
                    data["network"] = network
            if self.graph and trainer.task.name in GRAPH_TASKS:
                data["graph"] = _graph_probe(trainer, self.embedding_node, self._inputs)
            if self.confusion and epoch_end:
                matrix = _confusion(trainer)
                if matrix is not None:
                    data["confusion"] = matrix

    def _window(self, name: str, new: dict | None) -> None:
        old = self._windows.get(name)
        if new is None:
            return
        if old is not None:
            new = {"nodes": new["nodes"],
                   "steps": np.concatenate([old["steps"], new["steps"]])[-self.keep:],
                   "values": np.concatenate([old["values"], new["values"]])[-self.keep:]}
        self._windows[name] = new

    def _wanted(self, model_name: str, model, names) -> list[str]:
        found = []
        for name in names:
            model_part, _, node = name.rpartition(":")
            if model_part in ("", model_name) and node in model.node_attrs:
                found.append(node)
        return found

    def _activations(self, trainer, data: dict) -> None:
        means, acts = {}, {}
        for model_name, inputs in self._inputs.items():
            model = trainer.models[model_name]
            wanted = self._wanted(model_name, model, self.nodes)
            nodes = list(model.node_attrs) if self.means else wanted
            m, a = self._run_hooked(model, inputs, nodes, set(wanted))
            if self.means:
                means[model_name] = m
            if wanted:
                acts[model_name] = a
        if self.means:
            data["means"] = means
        if acts:
            data["activations"] = acts

    def _run_hooked(self, model, inputs, nodes, keep) -> tuple[dict, dict]:
        captured: dict = {}

        def hook_for(node):
            def hook(module, args, output):
                captured[node] = output[0] if isinstance(output, tuple) else output
            return hook

        handles = [getattr(model, model.node_attrs[n]).register_forward_hook(hook_for(n))
                   for n in nodes]
        try:
            with evaluating(model):
                model(*inputs)
        finally:
            for handle in handles:
                handle.remove()
        tensors = {n: t for n, t in captured.items() if torch.is_tensor(t)}
        means = {}
        if self.means and tensors:
            stacked = torch.stack([t.detach().float().abs().mean() for t in tensors.values()])
            means = dict(zip(tensors, stacked.cpu().tolist()))
        acts = {n: self._cut(t).cpu().numpy() for n, t in tensors.items() if n in keep}
        return means, acts

    def _cut(self, t):
        t = t.detach()[:self.batch].float()
        if t.dim() == 4:
            return t[:, :self.max_channels]
        if t.dim() == 3:
            return t[:, :, :self.max_units]
        if t.dim() == 2:
            return t[:, :self.max_units]
        return t

    def _histograms(self, trainer) -> dict:
        result = {}
        for model_name, model in trainer.models.items():
            for node in self._wanted(model_name, model, self.histograms):
                params = [p for p in getattr(model, model.node_attrs[node]).parameters()]
                if params:
                    entry = {"weight": self._histogram([p.detach() for p in params])}
                    grads = [p.grad for p in params if p.grad is not None]
                    if grads:
                        entry["grad"] = self._histogram(grads)
                    result.setdefault(model_name, {})[node] = entry
        return result

    def _histogram(self, tensors) -> tuple:
        flat = torch.cat([t.reshape(-1).float() for t in tensors])
        lo, hi = torch.aminmax(flat)
        counts = torch.histc(flat, bins=self.bins, min=0, max=0)  # the data's own range
        both = torch.cat([counts, torch.stack([lo, hi])]).cpu().numpy()
        return both[:-2], float(both[-2]), float(both[-1])

    def _samples(self, trainer, data: dict) -> None:
        task = trainer.task
        fixed = torch.Generator().manual_seed(PROBE_SEED)
        samples = task.sample(self.n_samples, fixed)
        if samples is not None:
            data["samples"] = samples.detach().float().cpu().numpy()
            if task.name == "gan" and tuple(samples.shape[1:]) == (2,):
                data["real"] = self._real_points(trainer)
        reconstruct = getattr(task, "reconstruct", None)
        if reconstruct is not None:
            (inputs,) = self._inputs[task.model_name]
            data["reconstructions"] = {"inputs": inputs.float().cpu().numpy(),
                                       "outputs": reconstruct((inputs,)).float().cpu().numpy()}

    def _real_points(self, trainer):
        return trainer.dataset.head("x", self.n_samples, "train").float().cpu().numpy()

    def _boundary(self, trainer) -> dict | None:
        if self._grid is None or (self._grid and len(self._grid[0]) != self.grid):
            self._grid = _boundary_grid(trainer, self.grid) or ()
        if not self._grid:
            return None  # not a 2-D classifier
        xs, ys, points = self._grid
        task = trainer.task
        with evaluating(task.model):
            out = task.forward((points,)).float()
        if task.binary:
            score = out[:, 0].sigmoid() if task.threshold == 0.0 else out[:, 0]
        else:
            score = out.softmax(dim=1).amax(dim=1)
        both = torch.stack([task.predict(out).float(), score]).cpu().numpy()
        shape = (len(ys), len(xs))
        return {"xs": xs, "ys": ys, "classes": both[0].reshape(shape).astype(np.int64),
                "score": both[1].reshape(shape)}


def _boundary_grid(trainer, resolution: int):
    """(xs, ys, points on the device) over the training inputs, or None when not 2-D
    classification with a single input."""
    task = trainer.task
    if task.name != "classification" or task.keys != ("x",):
        return None
    x = task.x_train[0] if task.in_memory else trainer.dataset.head("x", 10_000, "train")
    if tuple(x.shape[1:]) != (2,):
        return None
    lo, hi = x.amin(dim=0).cpu().numpy(), x.amax(dim=0).cpu().numpy()
    pad = (hi - lo) * 0.1 + 1e-6
    xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], resolution, dtype=np.float32)
    ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], resolution, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    points = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], axis=1)).to(trainer.device)
    return xs, ys, points


def _confusion(trainer):
    task = trainer.task
    if task.name not in ("classification", "graph_classification") or not task.has_val:
        return None
    k = task.classes
    counts = torch.zeros(k * k, dtype=torch.int64, device=trainer.device)
    with evaluating(task.model):
        for inputs, _, truth in task.val_parts():
            pred = task.predict(task.forward(inputs).float())
            counts += torch.bincount(truth * k + pred, minlength=k * k)
    return counts.view(k, k).cpu().numpy()


def embedding_candidates(trainer) -> list[str]:
    """Nodes whose output can be projected: every compiled node that gives one feature vector
    per node (node_classification) or per graph (graph_classification), in graph order; the
    last graph layer (or GraphPool) first."""
    from engine.layers.spec import graph_level

    task = trainer.task
    graph, shapes = trainer.graphs[task.model_name], trainer.shapes[task.model_name]
    model = trainer.models[task.model_name]
    found, preferred = [], None
    for node_id in graph.topological_order():
        if node_id not in model.node_attrs:
            continue
        shape = shapes.info[node_id].out_shapes.get("out")
        per_node = graph_level(shape) == "nodes" and len(shape) == 1
        if task.name == "node_classification" and per_node:
            found.append(node_id)
            if graph.node(node_id).spec.extra.get("graph") and node_id not in task.output_feeders:
                preferred = node_id
        elif task.name == "graph_classification" and shape is not None and \
                graph_level(shape) is None and len(shape) == 1:
            found.append(node_id)
            if graph.node(node_id).type == "GraphPool":
                preferred = node_id
    if preferred is not None:
        found.remove(preferred)
        found.insert(0, preferred)
    return found


def _pca2(t) -> np.ndarray:
    """The first two principal components of the rows of ``t`` (zeros for a missing one)."""
    t = t.detach().float().reshape(t.shape[0], -1)
    t = t - t.mean(dim=0, keepdim=True)
    out = torch.zeros(t.shape[0], 2, device=t.device)
    if t.shape[0] > 1 and t.shape[1] > 0:
        q = min(2, t.shape[1], t.shape[0])
        u, s, _ = torch.linalg.svd(t, full_matrices=False)
        out[:, :q] = u[:, :q] * s[:q]
    return out.cpu().numpy()


def _graph_probe(trainer, wanted: str | None, inputs: dict) -> dict:
    task = trainer.task
    model = trainer.models[task.model_name]
    candidates = embedding_candidates(trainer)
    node = wanted if wanted in candidates else (candidates[0] if candidates else None)
    captured = {}
    handle = None
    if node is not None:
        def hook(module, args, output):
            captured["out"] = output[0] if isinstance(output, tuple) else output
        handle = getattr(model, model.node_attrs[node]).register_forward_hook(hook)
    try:
        with evaluating(model):
            out = model(*inputs[task.model_name])
    finally:
        if handle is not None:
            handle.remove()
    out = out[0] if isinstance(out, tuple) else out
    data = {"pred": out.argmax(dim=1).cpu().numpy(), "embedding_node": node,
            "candidates": candidates}
    if "out" in captured:
        data["embedding"] = _pca2(captured["out"])
    if task.name == "graph_classification":
        data["labels"] = trainer.dataset.collate(task.probe_index)["y"].cpu().numpy()
    return data


NETWORK_UNITS = 32  # a layer this wide or narrower is drawn unit by unit; wider: a summary


def network_probe(trainer, inputs: dict) -> dict | None:
    """The first model's dense layers as the network view draws them, Playground-style:
    ``{"model", "layers": [{"node", "shape": (out, in), "weight": (out, in), "grad": (out, in)
    or None, "units": (out,) values for the first probe sample}], "inputs": (in,) that sample,
    "summary": bool}``. With a layer wider than NETWORK_UNITS (or an input of more than that
    many values) the arrays give way to per-layer figures (``mean_abs``, ``grad_norm``), so a
    big network costs no more than a small one. None without a Linear layer."""
    name = next(iter(trainer.models))
    model, graph = trainer.models[name], trainer.graphs[name]
    linears = [n for n in graph.topological_order() if n in model.node_attrs
               and graph.node(n).type == "Linear"]
    if not linears:
        return None
    modules = {n: getattr(model, model.node_attrs[n]) for n in linears}
    summary = any(max(m.weight.shape) > NETWORK_UNITS for m in modules.values())
    units: dict = {}
    first = inputs.get(name)
    sample = None
    if first:
        captured = {}
        handles = [m.register_forward_hook(
            lambda _m, _a, out, n=n: captured.setdefault(n, out)) for n, m in modules.items()]
        try:
            with evaluating(model):
                model(*(x[:1] for x in first))
        finally:
            for handle in handles:
                handle.remove()
        units = {n: t[0].reshape(-1).float().cpu().numpy() for n, t in captured.items()
                 if torch.is_tensor(t)}
        sample = first[0][:1].reshape(-1).float().cpu().numpy()
    layers = []
    for node, module in modules.items():
        w, g = module.weight.detach(), module.weight.grad
        layer = {"node": node, "shape": tuple(w.shape)}
        if summary:
            layer["mean_abs"] = float(w.abs().mean())
            layer["grad_norm"] = None if g is None else float(g.norm())
        else:
            layer["weight"] = w.float().cpu().numpy()
            layer["grad"] = None if g is None else g.detach().float().cpu().numpy()
            layer["units"] = units.get(node)
        layers.append(layer)
    return {"model": name, "layers": layers, "summary": summary, "limit": NETWORK_UNITS,
            "inputs": None if summary else sample}

