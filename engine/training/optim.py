"""Optimizers, learning-rate schedulers and losses built from a checked :class:`TrainConfig`."""
from __future__ import annotations

import torch
import torch.nn as nn

from engine.errors import TrainingError
from engine.training.config import Choice


class HingeLoss(nn.Module):
    """Hinge loss on raw scores: binary (one output, 0/1 targets) or multi-class (class targets).

    Binary targets 0/1 become -1/+1, and the loss is ``mean(max(0, margin - t * score))``; with
    several outputs it is torch's multi-class margin loss.
    """

    def __init__(self, margin: float = 1.0):
        super().__init__()
        self.margin = margin
        self.multi = nn.MultiMarginLoss(margin=margin)

    def forward(self, scores, target):
        if target.dtype == torch.int64:
            return self.multi(scores, target)
        signs = target * 2 - 1
        return torch.clamp(self.margin - signs * scores, min=0).mean()


def build_loss(choice: Choice) -> nn.Module:
    kwargs = dict(choice.kwargs)
    if choice.type == "HingeLoss":
        return HingeLoss(**kwargs)
    if "pos_weight" in kwargs:
        kwargs["pos_weight"] = torch.tensor(kwargs["pos_weight"])
    return getattr(nn, choice.type)(**kwargs)


FUSED_TYPES = ("Adam", "AdamW", "SGD")  # torch's fused (one-kernel) implementations on CUDA


def fast_path(opt_type: str, kwargs: dict, params) -> dict:
    """``fused=True`` for Adam, AdamW and SGD when every parameter is a floating CUDA tensor
    and the project sets neither ``fused`` nor ``foreach`` (one kernel per step instead of one
    per parameter group); the settings unchanged otherwise (the CPU keeps torch's foreach)."""
    if opt_type not in FUSED_TYPES or "fused" in kwargs or kwargs.get("foreach") is not None:
        return kwargs
    if kwargs.get("differentiable") or not params:
        return kwargs
    if all(p.is_cuda and p.is_floating_point() for p in params) and _has_fused(opt_type):
        return {**kwargs, "fused": True}
    return kwargs


def _has_fused(opt_type: str) -> bool:
    """Whether this torch's optimizer takes ``fused`` (SGD gained it later than Adam)."""
    import inspect

    return "fused" in inspect.signature(getattr(torch.optim, opt_type)).parameters


def build_optimizer(choice: Choice, params, where: str = "training.optimizer"):
    params = [p for p in params if p.requires_grad]
    if not params:
        raise TrainingError(f"{where}: the model has no trainable parameters")
    kwargs = fast_path(choice.type, dict(choice.kwargs), params)
    try:
        return getattr(torch.optim, choice.type)(params, **kwargs)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise TrainingError(f"{where}: {choice.type} refused its settings ({exc})") from None


class Schedule:
    """A learning-rate scheduler and when to step it: after every batch or every epoch."""

    def __init__(self, scheduler, per_batch: bool, needs_metric: bool):
        self.scheduler = scheduler
        self.per_batch = per_batch
        self.needs_metric = needs_metric

    def epoch_end(self, metric: float | None) -> None:
        if self.per_batch:
            return
        if self.needs_metric:
            if metric is not None:
                self.scheduler.step(metric)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        total = getattr(self.scheduler, "total_steps", None)
        self.scheduler.load_state_dict(state)
        if total is not None:  # OneCycleLR: this run's length wins (resumed with other --epochs)
            self.scheduler.total_steps = total


def build_scheduler(choice: Choice | None, optimizer, *, epochs: int, steps_per_epoch: int,
                    where: str = "training.scheduler") -> Schedule | None:
    if choice is None:
        return None
    from torch.optim import lr_scheduler

    kwargs = dict(choice.kwargs)
    if choice.type == "CosineAnnealingLR":
        kwargs.setdefault("T_max", epochs)
    elif choice.type == "OneCycleLR":
        kwargs.setdefault("max_lr", optimizer.param_groups[0]["lr"])
        kwargs["total_steps"] = max(1, epochs * steps_per_epoch)
        defaults = optimizer.defaults
        if "momentum" not in defaults and "betas" not in defaults:
            kwargs["cycle_momentum"] = False  # e.g. Adagrad has no momentum to cycle
        elif kwargs.get("cycle_momentum", True) and defaults.get("momentum", 1) == 0 \
                and "betas" not in defaults:
            kwargs["cycle_momentum"] = False
    try:
        scheduler = getattr(lr_scheduler, choice.type)(optimizer, **kwargs)
    except (ValueError, TypeError) as exc:
        raise TrainingError(f"{where}: {choice.type} refused its settings ({exc})") from None
    return Schedule(scheduler, per_batch=choice.type == "OneCycleLR",
                    needs_metric=choice.type == "ReduceLROnPlateau")


class Updater:
    """One model's update: zero the gradients, backward (scaled under mixed precision), the
    ``on_after_backward`` hooks, the L1 penalty, gradient clipping and the optimizer step."""

    def __init__(self, trainer, name: str, model, optimizer, *, scaler=None,
                 clip: float | None = None, l1: float = 0.0, hooks=(), step=None):
        self.trainer, self.name, self.model, self.optimizer = trainer, name, model, optimizer
        self.step = step or optimizer.step  # a CompiledStep under training.compile
        self.scaler = scaler
        self.clip = clip
        self.l1 = l1
        self.hooks = tuple(hooks)
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.l1_params = [p for p in self.params if p.dim() > 1]  # weights, not biases

    def __call__(self, loss) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.l1 and self.l1_params:
            loss = loss + self.l1 * torch.stack(torch._foreach_norm(self.l1_params, 1)).sum()
        scaler = self.scaler
        if scaler is None:
            loss.backward()
        else:
            scaler.scale(loss).backward()
            if self.hooks or self.clip:
                scaler.unscale_(self.optimizer)  # hooks and clipping see true gradients
        for hook in self.hooks:
            hook(self.trainer, self.name, self.model)
        if self.clip:
            torch.nn.utils.clip_grad_norm_(self.params, self.clip, foreach=True)
        if scaler is None:
            self.step()
        else:
            scaler.step(self.optimizer)
            scaler.update()
