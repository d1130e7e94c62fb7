"""Where and how the trainer runs: the device, the process strategy, early stopping, RNG states."""
from __future__ import annotations

import math

import torch

from engine.errors import TrainingError
from engine.training.config import EarlyStopping


def resolve_device(requested: str | None, configured: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU. The caller's choice wins over the
    training block's ``device``; an unavailable device is an error, not a silent fallback."""
    name = requested if requested not in (None, "auto") else configured
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise TrainingError(f"device: unknown device {name!r}; use auto, cpu, cuda, cuda:N "
                            f"or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"device: CUDA is not available here (torch "
                                f"{torch.__version__}); use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise TrainingError(f"device: there is no {name} (this machine has "
                                f"{torch.cuda.device_count()} CUDA device(s))")
    elif device.type == "mps" and not _mps_available():
        raise TrainingError("device: Apple MPS is not available here; use cpu or auto")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise TrainingError(f"device: {name!r} is not supported; use auto, cpu, cuda or mps")
    return device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


class SingleProcess:
    """The strategy of one process on one device.

    The trainer asks its strategy for the batches of an epoch, to wrap each model for training,
    for its part of the validation data, to average the epoch's figures over processes and
    whether this process writes output. :class:`engine.training.distributed.DistributedStrategy`
    (DistributedDataParallel under ``torchrun``) replaces this object: it wraps models in DDP,
    gives each rank its shard of the data and lets only rank 0 print and write checkpoints.
    """

    rank = 0
    world_size = 1
    is_main = True

    def wrap(self, name: str, model):
        return model

    def shard_validation(self, dataset):
        """This process's part of the validation split: all of it."""
        return dataset.shard_validation(0, 1)

    def set_epoch(self, epoch: int) -> None:
        """Called before each epoch's :meth:`batches` (DistributedSampler's ``set_epoch``)."""

    def batches(self, n: int, batch_size: int, generator: torch.Generator, device) -> tuple:
        """This epoch's batches: index tensors on ``device`` from one seeded permutation."""
        perm = torch.randperm(n, generator=generator)
        return perm.to(device).split(batch_size)

    def steps_per_epoch(self, n: int, batch_size: int) -> int:
        return math.ceil(n / batch_size)

    def reduce(self, values: dict, weight: float = 1.0) -> dict:
        """Average per-process metrics over all processes, each weighted by its ``weight``
        (its sample or batch count); nothing to do for one process."""
        return values


class EarlyStopper:
    """Counts epochs without improvement of the monitored value; keeps the best weights."""

    def __init__(self, cfg: EarlyStopping, monitor: str):
        self.cfg = cfg
        self.monitor = monitor
        from engine.runs import maximize

        self.sign = 1.0 if maximize(monitor) else -1.0  # accuracies and returns: larger
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.best_states: dict | None = None

    @property
    def should_stop(self) -> bool:
        return self.wait >= self.cfg.patience

    def update(self, logs: dict, epoch: int, models: dict) -> None:
        value = logs.get(self.monitor)
        if value is None or not math.isfinite(value):
            self.wait += 1
            return
        if self.best is None or self.sign * (value - self.best) > self.cfg.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.cfg.restore_best:
                self.best_states = {n: {k: v.detach().clone() for k, v in m.state_dict().items()}
                                    for n, m in models.items()}
        else:
            self.wait += 1

    def restore(self, models: dict) -> bool:
        if not (self.cfg.restore_best and self.best_states):
            return False
        for name, model in models.items():
            model.load_state_dict(self.best_states[name])
        return True

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "best_states": self.best_states}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.wait, self.best_states = state["wait"], state["best_states"]


def rng_state(device: torch.device, shuffle: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    elif device.type == "mps":
        state["mps"] = torch.mps.get_rng_state()
    return state


def set_rng_state(state: dict, shuffle: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    shuffle.set_state(state["shuffle"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "mps" in state and _mps_available():
        torch.mps.set_rng_state(state["mps"])


SMALL_MODEL_MACS = 100_000_000  # forward multiply-adds per batch, all models together


def suggested_threads(trainer) -> int | None:
    """1 intra-op thread for small models, else None (keep torch's default).

    Below about 1e8 multiply-adds per batch, a second intra-op thread saves little even on an
    idle machine, while on a shared one every parallel op waits for a descheduled thread
    (measured 4-6x slower steps on two busy cores). Larger models keep torch's default.
    """
    macs = sum(info.stats.macs for shapes in trainer.shapes.values()
               for info in shapes.info.values())
    return 1 if macs * trainer.config.batch_size < SMALL_MODEL_MACS else None
