"""Turning training failures into messages that name the node at fault.

Nothing here runs while training goes well. When something fails, the failing forward pass is run
again through a ``torch.fx.Interpreter`` that watches every node of the compiled graph: the first
node whose output is NaN or infinite, or the node whose operation raised, is mapped back from the
fx node to the graph's node id. Out-of-memory becomes advice, not a crash.
"""
from __future__ import annotations

import contextlib
import copy

import torch
import torch.fx as fx

from engine.compiler import attr_name
from engine.errors import TrainingError


class NodeFailure(Exception):
    """Raised inside the watched forward pass: an fx node raised, or produced non-finite values."""

    def __init__(self, model_name: str, fx_node, error: BaseException | None = None,
                 kind: str | None = None):
        super().__init__(fx_node.name)
        self.model_name, self.fx_node, self.error, self.kind = model_name, fx_node, error, kind


class _Watcher(fx.Interpreter):
    def __init__(self, module, model_name: str, check_finite: bool):
        super().__init__(module)
        self.model_name = model_name
        self.check_finite = check_finite

    def run_node(self, n):
        try:
            result = super().run_node(n)
        except NodeFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the node's own operation
            raise NodeFailure(self.model_name, n, error=exc) from exc
        if self.check_finite and n.op != "output":
            kind = nonfinite_kind(result)
            if kind:
                raise NodeFailure(self.model_name, n, kind=kind)
        return result


def nonfinite_kind(value) -> str | None:
    """'NaN' or 'infinite' when a tensor (or a tuple of them) holds such values, else None."""
    tensors = value if isinstance(value, (tuple, list)) else (value,)
    for t in tensors:
        if isinstance(t, (tuple, list)):
            kind = nonfinite_kind(t)
            if kind:
                return kind
        elif torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return "NaN" if bool(torch.isnan(t).any()) else "infinite"
    return None


@contextlib.contextmanager
def watched(models: dict, check_finite: bool):
    """Within the block, calling a model runs it through a :class:`_Watcher` (instance-level
    ``forward``, so the model object and its hooks stay the same)."""
    try:
        for name, model in models.items():
            model.forward = _runner(model, name, check_finite)
        yield
    finally:
        for model in models.values():
            model.__dict__.pop("forward", None)


def _runner(model, name: str, check_finite: bool):
    def forward(*args):
        return _Watcher(model, name, check_finite).run(*args)
    return forward


def node_id(trainer, model_name: str, fx_node) -> str:
    """The graph node id behind an fx node (call_module targets and renamed ops alike)."""
    gm = trainer.models[model_name]
    by_attr = {attr_name(n): n for n in trainer.graphs[model_name].node_ids()}
    by_attr.update({attr: n for n, attr in gm.node_attrs.items()})
    if fx_node.op == "call_module":
        return by_attr.get(str(fx_node.target).split(".")[0], str(fx_node.target))
    name = fx_node.name
    matches = [a for a in by_attr if name == a or name.startswith(a + "_")]
    return by_attr[max(matches, key=len)] if matches else name


def describe(trainer, model_name: str, node: str) -> str:
    graph = trainer.graphs[model_name]
    kind = graph.node(node).type if node in graph else "operation"
    suffix = f" of model '{model_name}'" if len(trainer.models) > 1 else ""
    return f"this {kind} layer{suffix}"


# -- out of memory ---------------------------------------------------------------------------

def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return "out of memory" in text.lower() or "can't allocate memory" in text


def oom_error(trainer, exc: BaseException, during: str = "training") -> TrainingError:
    if trainer.device.type == "cuda":
        torch.cuda.empty_cache()
    first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else "out of memory"
    return TrainingError(f"training.batch_size: out of memory on {trainer.device} while "
                         f"{during} with batch_size {trainer.config.batch_size} ({first}); use a "
                         f"smaller batch_size or model. The model is intact.")


# -- runtime errors --------------------------------------------------------------------------

def runtime_error(trainer, exc: BaseException, rerun, during: str) -> TrainingError:
    """Name the node that raised ``exc`` by running ``rerun()`` (the failed forward) watched."""
    if is_oom(exc):
        return oom_error(trainer, exc, during)
    try:
        with torch.no_grad(), watched(trainer.models, check_finite=False):
            rerun()
    except NodeFailure as failure:
        node = node_id(trainer, failure.model_name, failure.fx_node)
        return TrainingError(f"{node}: {describe(trainer, failure.model_name, node)} failed "
                             f"while {during}: {first_line(failure.error)}", node)
    except Exception:  # noqa: BLE001 - the rerun failed outside the models: the loss
        pass
    return TrainingError(f"training.loss: failed while {during}: {first_line(exc)}")


def first_line(exc: BaseException | None) -> str:
    """The first line of an error message, cut to 300 characters."""
    text = str(exc).strip() if exc is not None else ""
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


# -- non-finite losses -----------------------------------------------------------------------

def nonfinite_error(trainer, rerun, *, epoch: int, step: int, loss_name: str,
                    value: float) -> TrainingError:
    """Explain a NaN/Inf loss: first non-finite weights, then the first non-finite node output
    of ``rerun()`` (the batch's forward passes, RNG as in the original step)."""
    what = "NaN" if value != value else "infinite"
    where = f"at epoch {epoch}, step {step}"
    advice = _advice(trainer)
    bad_weights = _nonfinite_weights(trainer)
    if bad_weights:
        model_name, node = bad_weights
        return TrainingError(f"{node}: the weights of {describe(trainer, model_name, node)} "
                             f"became non-finite {where} ({loss_name} is {what}); training "
                             f"stopped. {advice}", node)
    try:
        with torch.no_grad(), watched(trainer.models, check_finite=True):
            rerun()
    except NodeFailure as failure:
        node = node_id(trainer, failure.model_name, failure.fx_node)
        if failure.fx_node.op == "placeholder":
            return TrainingError(f"{node}: the data fed to this Input contain {failure.kind} "
                                 f"values ({where}); clean the dataset", node)
        if failure.error is not None:
            return TrainingError(f"{node}: {describe(trainer, failure.model_name, node)} failed "
                                 f"{where}: {first_line(failure.error)}", node)
        return TrainingError(f"{node}: the output of {describe(trainer, failure.model_name, node)}"
                             f" became {failure.kind} {where} ({loss_name} is {what}); training "
                             f"stopped. {advice}", node)
    return TrainingError(f"training.loss: {loss_name} became {what} {where} although every "
                         f"layer's output was finite; the loss got values it cannot take (BCELoss "
                         f"needs outputs in [0, 1]) or the gradients exploded. {advice}")


def _advice(trainer) -> str:
    opt = next(iter(trainer.optimizers.values()))
    lr = opt.param_groups[0]["lr"]
    return (f"Lower the learning rate (now {lr:g}), set training.grad_clip, or check the data "
            f"for extreme values.")


def _nonfinite_weights(trainer) -> tuple[str, str] | None:
    for model_name, model in trainer.models.items():
        inverse = {attr: n for n, attr in model.node_attrs.items()}
        for name, param in model.named_parameters():
            if not bool(torch.isfinite(param).all()):
                attr = name.split(".")[0]
                return model_name, inverse.get(attr, attr)
    return None


# -- going back after a NaN ------------------------------------------------------------------

class Rewind:
    """A cheap in-memory copy of the training state (weights, buffers, optimizer and scheduler
    states, RNG), taken at the start of each epoch and at most once a second after a clean
    loss check, so that a NaN can be replayed up to the step that produced it.

    Tensors are copied into buffers allocated once (``torch._foreach_copy_``), so taking a
    snapshot costs a few microseconds for a small model.
    """

    def __init__(self, trainer):
        self.trainer = trainer
        self._live: list = []
        self._copies: list = []
        self._shape = None  # (parameter objects, optimizer state sizes) the lists were built for
        self.batch = 0

    def _live_tensors(self) -> list:
        live = []
        for model in self.trainer.models.values():
            live += [p.data for p in model.parameters()]
            live += list(model.buffers())
        for opt in self.trainer.optimizers.values():
            for state in opt.state.values():
                live += [v for v in state.values() if torch.is_tensor(v)]
        return live

    def _structure(self) -> tuple:
        t = self.trainer
        return (tuple(id(g["params"][0]) for o in t.optimizers.values() for g in o.param_groups
                      if g["params"]),
                tuple(len(o.state) for o in t.optimizers.values()))

    def take(self, batch: int) -> None:
        from engine.training.runtime import rng_state

        t = self.trainer
        shape = self._structure()
        with torch.no_grad():
            if shape != self._shape:  # first call, or the optimizers created their state
                self._live = self._live_tensors()
                self._copies = [x.detach().clone() for x in self._live]
                self._shape = shape
            elif self._live:
                torch._foreach_copy_(self._copies, self._live)
        self._groups = [[{k: v for k, v in g.items() if k != "params"} for g in o.param_groups]
                        for o in t.optimizers.values()]
        self._states = [set(o.state) for o in t.optimizers.values()] if shape[1] != self._full \
            else None
        self._schedulers = {n: copy.deepcopy(s.state_dict()) for n, s in t.schedules.items()}
        self._scalers = {n: s.state_dict() for n, s in t.scalers.items()}
        self._rng = rng_state(t.device, t._shuffle)
        self.batch = batch

    @property
    def _full(self) -> tuple:
        """Optimizer state sizes once every parameter has its state (nothing new can appear)."""
        return tuple(sum(len(g["params"]) for g in o.param_groups)
                     for o in self.trainer.optimizers.values())

    def restore(self) -> None:
        from engine.training.runtime import set_rng_state

        t = self.trainer
        states = self._states or [None] * len(t.optimizers)
        for opt, groups, known in zip(t.optimizers.values(), self._groups, states):
            for param in [p for p in opt.state if known is not None and p not in known]:
                del opt.state[param]  # created after the snapshot: gone, as it was
            for group, saved in zip(opt.param_groups, groups):
                group.update(saved)
        with torch.no_grad():
            if self._live:
                torch._foreach_copy_(self._live, self._copies)
        for name, state in self._schedulers.items():
            t.schedules[name].load_state_dict(copy.deepcopy(state))
        for name, state in self._scalers.items():
            t.scalers[name].load_state_dict(state)
        set_rng_state(self._rng, t._shuffle)
