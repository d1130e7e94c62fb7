"""The data-source contract: what the trainer and the task recipes ask of data.

A :class:`DataSource` has per-key sample shapes (``shapes``), a train/validation split
(``train_size``, ``val_size``; ``train_size`` is None for an endless source such as an
environment), batches on the device (``train_batches`` and ``val_batches`` give batches,
``take`` turns one into ``{key: tensor}`` on the training device), a preview (``head``) and the
reason for the way it holds its data (``in_memory``, ``reason``, ``describe()``).

Two implementations serve datasets:

- :class:`engine.data.dataset.Dataset` keeps every sample in one tensor per field on the training
  device; a batch is an index tensor, ``tensor[idx]`` - the fast path for anything that fits.
- :class:`StreamedSource` keeps only an index (a :class:`engine.data.tables.SampleTable`) and reads
  batches through a ``torch.utils.data.DataLoader`` with worker processes, pinned memory and
  prefetch; a batch is ``{key: tensor}`` already on the device.

``load_source`` picks one: ``dataset.params.in_memory`` is ``true``, ``false`` or ``"auto"``
(default): in memory unless the float32 samples would pass ``memory_budget_mb`` (default 2048, or
the ``LAYERLAB_MEMORY_BUDGET_MB`` environment variable). Both paths give the same batches for
the same seed: the streamed loader reads the batches of the same seeded permutation.

Other kinds of data (an environment, a graph) register a :class:`SourceKind` in
``SOURCE_KINDS``; ``load_project_source`` looks a project's ``dataset`` name up there after the
built-in sets and importers, and sends an ``environment`` block to ``SOURCE_KINDS["environment"]``
with params ``{"id": block.name, **block.params}``. Modules named in ``EXTRA_KINDS`` are imported on
first use so that they can register themselves without slowing every start.
"""
from __future__ import annotations

import importlib
import math
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from engine.data.augment import Augment
from engine.data.common import Rule, check_value, fail

CONTRACT_READY = True  # helpers integrating against this contract poll for this line

DEFAULT_BUDGET_MB = 2048
BUDGET_ENV = "LAYERLAB_MEMORY_BUDGET_MB"
# parameters every dataset takes besides its own: how it is held in memory and read
MEMORY_PARAMS: dict[str, Any] = {"in_memory": "auto", "memory_budget_mb": None, "workers": None}
MEMORY_RULES: dict[str, Rule] = {
    "in_memory": Rule("choice", choices=(True, False, "auto")),
    "memory_budget_mb": Rule("float", 0.01, 10_000_000),
    "workers": Rule("int", 0, 64),
}
READ_CHUNK = 512  # samples per worker task while reading a set into memory
# input bytes (float32) of one streamed validation batch at most: the trainer asks for chunks of
# 1024 samples, and a convolution's activations of 1024 96x96 RGB images take over a gigabyte
VAL_BATCH_BYTES = 16 * 2**20


def val_chunk(size: int, batch_size: int, sample_bytes: int) -> int:
    """Samples per validation forward pass: ``size`` at most, and at most ``VAL_BATCH_BYTES``
    of input, but never fewer than the training batch (which the run holds anyway)."""
    by_bytes = VAL_BATCH_BYTES // max(1, int(sample_bytes))
    return max(1, min(int(size), max(int(batch_size), by_bytes)))


EXTRA_KINDS = ("engine.data.environment", "engine.data.graphs", "engine.data.graph_files")


@dataclass
class SourceKind:
    """A kind of data that is neither a built-in set nor an importer (an environment, a graph).

    ``shapes(params, base_dir)`` is cheap (nothing loaded); ``load(params, *, val_split, seed,
    device, base_dir)`` returns a :class:`DataSource`."""

    name: str
    doc: str
    params: dict
    rules: dict
    shapes: Callable[..., dict]
    load: Callable[..., "DataSource"]
    task_hint: str | None = None


SOURCE_KINDS: dict[str, SourceKind] = {}
_extras_loaded = False
_extras_lock = threading.Lock()


def register(kind: SourceKind) -> SourceKind:
    SOURCE_KINDS[kind.name] = kind
    return kind


def source_kinds() -> dict[str, SourceKind]:
    """``SOURCE_KINDS`` after importing the modules that register themselves in it."""
    global _extras_loaded
    if not _extras_loaded:
        with _extras_lock:
            for module in EXTRA_KINDS:
                try:
                    importlib.import_module(module)
                except ModuleNotFoundError as exc:
                    if exc.name != module:
                        raise
            _extras_loaded = True
    return SOURCE_KINDS


class DataSource:
    """What the trainer and the tasks ask of data (see the module docstring)."""

    # set by every source
    name: str
    kind: str  # 'classification' | 'regression' | 'unlabeled' | another kind's own
    shapes: dict  # key -> per-sample shape
    num_classes: int | None
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    task_hint: str | None = None
    source: str | None = None
    in_memory: bool = True
    reason: str = ""
    endless: bool = False
    augment: Augment  # set by every source that serves images; Augment() when none

    @property
    def train_size(self) -> int | None:
        raise NotImplementedError

    @property
    def val_size(self) -> int:
        return 0

    def describe(self) -> str:
        """One line: how the data are held, and why."""
        how = "in memory" if self.in_memory else "streamed"
        return f"{self.name}: {how}" + (f" ({self.reason})" if self.reason else "")

    def train_batches(self, batch_size: int, generator, device, strategy):
        """This epoch's training batches: a sized, indexable sequence."""
        raise NotImplementedError

    def val_batches(self, size: int):
        """The validation set in order, in batches of at most ``size`` samples."""
        raise NotImplementedError

    def take(self, batch, split: str = "train") -> dict:
        """``{key: tensor on the device}`` for one batch; training inputs are augmented."""
        raise NotImplementedError

    def head(self, key: str, n: int, split: str = "val"):
        """The first ``n`` samples of one field of a split, on the device (for probes and
        previews); None when the split is empty or has no such field."""
        raise NotImplementedError

    def item(self, i: int, split: str = "val") -> dict:
        """``{key: tensor of one sample, batch dimension kept}`` on the device."""
        raise NotImplementedError

    def shard_validation(self, rank: int, world_size: int) -> "DataSource":
        """This process's contiguous part of the validation split."""
        return self

    def close(self) -> None:
        """Release worker processes and open files."""


# -- choosing the way ----------------------------------------------------------------------------

def split_memory_params(name: str, params: Any) -> tuple[Any, dict]:
    """(the dataset's own params, the checked memory params) of a ``dataset.params`` object."""
    if not isinstance(params, dict):
        return params, dict(MEMORY_PARAMS)
    own = {k: v for k, v in params.items() if k not in MEMORY_PARAMS}
    memory = {k: None if params.get(k, d) is None else
              check_value(f"dataset.params.{k}", params.get(k, d), MEMORY_RULES[k])
              for k, d in MEMORY_PARAMS.items()}
    return own, memory


def memory_budget(memory: dict) -> float:
    """The budget in MB: the project's, else the environment variable's, else the default."""
    if memory.get("memory_budget_mb") is not None:
        return float(memory["memory_budget_mb"])
    env = os.environ.get(BUDGET_ENV)
    if env:
        try:
            value = float(env)
        except ValueError:
            raise fail(BUDGET_ENV, "must be a number of megabytes", env) from None
        if not value > 0:
            raise fail(BUDGET_ENV, "must be above 0", env)
        return value
    return float(DEFAULT_BUDGET_MB)


def choose_in_memory(nbytes: int, memory: dict) -> tuple[bool, str]:
    """(in memory?, the reason in words) for a set of ``nbytes`` float32 bytes."""
    size = _megabytes(nbytes)
    mode = memory["in_memory"]
    if mode is True:
        return True, f"{size}, in_memory: true"
    if mode is False:
        return False, f"{size}, in_memory: false"
    budget = memory_budget(memory)
    if nbytes <= budget * 2**20:
        return True, f"{size} fits the memory budget of {budget:g} MB"
    return False, f"{size} would pass the memory budget of {budget:g} MB"


def _megabytes(nbytes: int) -> str:
    mb = nbytes / 2**20
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.1f} MB" if mb >= 0.1 else "<0.1 MB"


def default_workers(memory: dict) -> int:
    if memory.get("workers") is not None:
        return int(memory["workers"])
    return max(1, min(4, (os.cpu_count() or 1)))


# -- reading through a DataLoader -------------------------------------------------------------------

class _TableDataset:
    """A map-style dataset over a SampleTable that reads a whole batch per call."""

    def __init__(self, table):
        self.table = table

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int):
        return self.table.get(np.asarray([i]))

    def __getitems__(self, indices):
        return self.table.get(np.asarray(indices, dtype=np.int64))


class _Batches:
    """The batch sampler of a persistent loader; its list of batches is replaced each pass."""

    def __init__(self):
        self.batches: list = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _collate(data) -> tuple:
    import torch

    x, y = data
    return torch.from_numpy(np.ascontiguousarray(x)), \
        None if y is None else torch.from_numpy(np.ascontiguousarray(y))


def _context():
    """fork from the main thread (fast start); forkserver from another thread (the window's
    training thread), where fork would copy locks held by other threads."""
    import multiprocessing

    if threading.current_thread() is threading.main_thread() or os.name != "posix":
        return None
    return multiprocessing.get_context("forkserver")


def make_loader(table, workers: int, pin: bool):
    """A persistent DataLoader over ``table`` and the batch sampler that steers it. It has a
    generator of its own, so that starting it leaves torch's global random stream (dropout,
    augmentation) as it was: streamed and in-memory runs of one seed stay identical."""
    import torch
    from torch.utils.data import DataLoader

    sampler = _Batches()
    extra = {"prefetch_factor": 4, "persistent_workers": True,
             "multiprocessing_context": _context()} if workers else {}
    loader = DataLoader(_TableDataset(table), batch_sampler=sampler, num_workers=workers,
                        collate_fn=_collate, pin_memory=pin,
                        generator=torch.Generator().manual_seed(0), **extra)
    return loader, sampler


def read_all(table, workers: int, progress=None) -> tuple:
    """Every sample of ``table`` as numpy arrays (x, y), read by ``workers`` processes."""
    n = len(table)
    if workers == 0 or n <= READ_CHUNK or getattr(table, "in_memory", False):
        if progress is not None:
            progress(0, n, "reading")
        x, y = table.get(np.arange(n))
        if progress is not None:
            progress(n, n, "reading")
        return x, y
    loader, sampler = make_loader(table, min(workers, math.ceil(n / READ_CHUNK)), pin=False)
    sampler.batches = [list(range(i, min(i + READ_CHUNK, n))) for i in range(0, n, READ_CHUNK)]
    xs, ys, done = [], [], 0
    try:
        for x, y in loader:
            xs.append(x.numpy())
            ys.append(None if y is None else y.numpy())
            done += len(x)
            if progress is not None:
                progress(done, n, "reading")
    finally:
        del loader
    y = None if ys[0] is None else np.concatenate(ys)
    return np.concatenate(xs), y


class _Pass:
    """One pass over batches of a streamed source: sized, iterable (through the loader, with
    prefetch) and indexable (a synchronous read, used to replay batches after a fault)."""

    def __init__(self, source: "StreamedSource", batches: list):
        self.source, self.batches = source, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        loader, sampler = self.source.loader()
        sampler.batches = self.batches
        for x, y in loader:
            yield self.source.to_device(x, y)

    def __getitem__(self, i: int) -> dict:
        x, y = _collate(self.source.table.get(np.asarray(self.batches[i], dtype=np.int64)))
        return self.source.to_device(x, y)


class StreamedSource(DataSource):
    """A dataset read batch by batch from its files by DataLoader worker processes."""

    in_memory = False

    def __init__(self, name: str, table, train_idx: np.ndarray, val_idx: np.ndarray, *,
                 device, workers: int, reason: str, augment: Augment | None = None):
        import torch

        self.name, self.table = name, table
        self.kind, self.shapes = table.kind, dict(table.shapes)
        self.num_classes, self.class_names = table.num_classes, table.class_names
        self.feature_names, self.source = table.feature_names, table.source
        self.task_hint = table.task_hint or table.kind
        self.train_idx, self.val_idx = np.asarray(train_idx), np.asarray(val_idx)
        self.device = torch.device(device)
        self.workers, self.reason = workers, f"{reason}; {workers} reader process(es)"
        self.augment = augment or Augment()
        self._loader = None
        self._batch_size = 1  # the training batch size, once known: validation batches' floor

    @property
    def train_size(self) -> int:
        return len(self.train_idx)

    @property
    def val_size(self) -> int:
        return len(self.val_idx)

    def loader(self):
        if self._loader is None:
            self._loader = make_loader(self.table, self.workers, self.device.type == "cuda")
        return self._loader

    def to_device(self, x, y) -> dict:
        blocking = self.device.type != "cuda"
        batch = {"x": self.augment.always(x.to(self.device, non_blocking=not blocking))}
        if y is not None:
            batch["y"] = y.to(self.device, non_blocking=not blocking)
        return batch

    def train_batches(self, batch_size: int, generator, device, strategy) -> _Pass:
        self._batch_size = max(self._batch_size, int(batch_size))
        positions = strategy.batches(self.train_size, batch_size, generator, "cpu")
        return _Pass(self, [self.train_idx[p.numpy()].tolist() for p in positions])

    def val_batches(self, size: int) -> _Pass:
        """The validation split in batches of at most ``size`` samples, and of at most
        ``VAL_BATCH_BYTES`` of input unless the training batch is larger: the activations of a
        big batch of large images would dwarf everything else the run holds."""
        size = val_chunk(size, self._batch_size, math.prod(self.shapes["x"]) * 4)
        n = self.val_size
        return _Pass(self, [self.val_idx[i:i + size].tolist() for i in range(0, n, size)])

    def take(self, batch: dict, split: str = "train") -> dict:
        if split == "train" and self.augment.random_steps:
            return {**batch, "x": self.augment.train_random(batch["x"])}
        return batch

    def head(self, key: str, n: int, split: str = "val"):
        idx = (self.val_idx if split == "val" else self.train_idx)[:n]
        if len(idx) == 0:
            return None
        batch = _Pass(self, [idx.tolist()])[0]
        return batch.get(key)

    def item(self, i: int, split: str = "val") -> dict:
        idx = self.val_idx if split == "val" else self.train_idx
        return _Pass(self, [[int(idx[i])]])[0]

    def shard_validation(self, rank: int, world_size: int) -> "StreamedSource":
        if len(self.val_idx) >= world_size:
            self.val_idx = np.array_split(self.val_idx, world_size)[rank]
        return self

    def close(self) -> None:
        loader, self._loader = self._loader, None
        if loader is not None:
            iterator = getattr(loader[0], "_iterator", None)
            if iterator is not None and hasattr(iterator, "_shutdown_workers"):
                iterator._shutdown_workers()

    def __repr__(self) -> str:
        return (f"StreamedSource({self.name!r}, kind={self.kind!r}, train={self.train_size}, "
                f"val={self.val_size}, shapes={self.shapes}, workers={self.workers})")

