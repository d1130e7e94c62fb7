"""Training on several processes with DistributedDataParallel, as started by ``torchrun``.

``process_group()`` joins the group that torchrun describes in the environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``): gloo on the CPU, nccl on CUDA
with ``LOCAL_RANK`` picking the GPU. It yields a :class:`DistributedStrategy` for the trainer and
destroys the group when the block ends, also on error.

Semantics, per process (rank):

- the project's ``batch_size`` is the batch of one process; a step sees ``batch_size x world
  size`` samples in all, and DDP averages the gradients over the processes;
- every epoch each rank takes its shard of one permutation, as ``DistributedSampler`` does
  (seeded by the run's shuffle seed + the epoch, padded so every rank has as many batches);
- every rank starts from the same weights (same seed; DDP also broadcasts rank 0's), while its
  own random stream (dropout, GAN noise, denoising noise) is reseeded each epoch from
  (seed, epoch, rank), so the ranks do not draw the same noise;
- validation is split between the ranks and the epoch's figures are averaged over all of them
  (``all_reduce``), so rank 0 reports global numbers; only rank 0 writes files or prints.
"""
from __future__ import annotations

import dataclasses
import contextlib
import math
import os

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from engine.errors import TrainingError
from engine.training.runtime import resolve_device

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


class UsageError(TrainingError):
    """``--distributed`` in an environment that torchrun did not set up (the CLI exits 2)."""


def launched() -> bool:
    """Whether a launcher such as torchrun started this process (``WORLD_SIZE`` is set)."""
    return "WORLD_SIZE" in os.environ


class ShardSampler:
    """``torch.utils.data.DistributedSampler``'s indices for one rank, as one index tensor.

    The same order as the library's sampler (``randperm`` seeded with ``seed + epoch``, padded
    by repeating its start up to a multiple of ``num_replicas``, then every
    ``num_replicas``-th index from ``rank``), without a Python int per sample.
    """

    def __init__(self, n: int, num_replicas: int, rank: int, seed: int = 0,
                 shuffle: bool = True):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.n, self.num_replicas, self.rank = n, num_replicas, rank
        self.seed, self.shuffle, self.epoch = seed, shuffle, 0
        self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> torch.Tensor:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(
                self.seed + self.epoch))
        else:
            order = torch.arange(self.n)
        repeats = -(-self.total_size // max(self.n, 1))
        return order.repeat(repeats)[:self.total_size][self.rank::self.num_replicas]


class DistributedStrategy:
    """The trainer's strategy for one rank of a DistributedDataParallel run (see the module)."""

    def __init__(self, device: torch.device, rank: int | None = None,
                 world_size: int | None = None):
        self.device = torch.device(device)
        self.rank = dist.get_rank() if rank is None else rank
        self.world_size = dist.get_world_size() if world_size is None else world_size
        self.is_main = self.rank == 0
        self.epoch = 0

    def wrap(self, name: str, model):
        """The model in DDP; one without trainable parameters stays as it is (the optimizer
        names that mistake). Models with several Outputs may leave parameters without gradient
        (the tasks train on the first Output), so DDP looks for unused ones only there."""
        if not any(p.requires_grad for p in model.parameters()):
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        unused = len(getattr(model, "output_names", ())) > 1
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=unused)

    def shard_validation(self, dataset):
        """This rank's contiguous part of the validation split (all of it when it has fewer
        samples than there are ranks)."""
        shard = getattr(dataset, "shard_validation", None)
        if shard is not None:  # a data source knows how its validation split is held
            return shard(self.rank, self.world_size)
        if dataset.x_val is None or int(dataset.x_val.shape[0]) < self.world_size:
            return dataset

        def part(tensor):
            return None if tensor is None else tensor.tensor_split(self.world_size)[self.rank]
        return dataclasses.replace(dataset, x_val=part(dataset.x_val), y_val=part(dataset.y_val))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self, n: int, batch_size: int, generator: torch.Generator, device) -> tuple:
        """This rank's batches of the epoch; ``generator`` gives the run's shuffle seed."""
        seed = generator.initial_seed()
        sampler = ShardSampler(n, self.world_size, self.rank, seed)
        sampler.set_epoch(self.epoch)
        torch.manual_seed(rank_seed(seed, self.epoch, self.rank))
        return sampler.indices().to(device).split(batch_size)

    def steps_per_epoch(self, n: int, batch_size: int) -> int:
        return math.ceil(math.ceil(n / self.world_size) / batch_size)

    def reduce(self, values: dict, weight: float = 1.0) -> dict:
        """The ``weight``-weighted mean of each value over all ranks (the same on every rank)."""
        if not values:
            return values
        sums = torch.tensor([float(v) * weight for v in values.values()] + [float(weight)],
                            dtype=torch.float64, device=self.device)
        dist.all_reduce(sums)
        total = sums[-1].item()
        means = (sums[:-1] / total).tolist() if total else [math.nan] * len(values)
        return dict(zip(values, means))


def rank_seed(seed: int, epoch: int, rank: int) -> int:
    """A seed for one rank's random stream in one epoch, mixed from the three numbers."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


@contextlib.contextmanager
def process_group(requested_device: str | None, configured_device: str = "auto"):
    """Join torchrun's process group; yield this rank's :class:`DistributedStrategy`; leave
    the group at the end, also on error."""
    _check_env()
    device = rank_device(resolve_device(requested_device, configured_device))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    try:
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    except (RuntimeError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise TrainingError(f"--distributed: cannot join the {backend} process group "
                            f"({first[:200]})") from None
    try:
        yield DistributedStrategy(device)
        dist.barrier()  # leave together: rank 0 still saves and reports after the last step
    finally:
        dist.destroy_process_group()


def _check_env() -> None:
    missing = [name for name in TORCHRUN_ENV if name not in os.environ]
    if missing:
        raise UsageError(f"--distributed: WORLD_SIZE is set but {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} not; start the processes with "
                         f"torchrun, e.g. torchrun --standalone --nproc_per_node 2 main.py "
                         f"train PROJECT --distributed")


def rank_device(device: torch.device) -> torch.device:
    """The device of this rank: the CPU, or the GPU that ``LOCAL_RANK`` names."""
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise TrainingError(f"--distributed: DistributedDataParallel runs on cpu (gloo) or cuda "
                            f"(nccl), not {device.type}; use --device cpu")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    count = torch.cuda.device_count()
    if local >= count:
        raise TrainingError(f"--distributed: LOCAL_RANK {local} has no GPU of its own (this "
                            f"machine has {count}); start at most {count} processes per machine "
                            f"(--nproc_per_node {count}) or use --device cpu")
    return torch.device("cuda", local)
