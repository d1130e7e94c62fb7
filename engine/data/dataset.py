"""The Dataset class, and turning a project's ``dataset`` block into one.

torch is imported only inside the functions that build or move tensors, so importing this module
(and :func:`dataset_shapes`) stays cheap.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.data.augment import STATS_SAMPLES, Augment, parse_augment
from engine.data.builtin import BUILTIN_DATASETS
from engine.data.common import (RawData, check_seed, check_val_split, fail, resolve_params,
                                rng_for)
from engine.data.importers import IMPORTER_PARAMS, IMPORTER_RULES, IMPORTERS, LOADERS
from engine.data.importers import open_table as importer_table
from engine.data.source import (DataSource, StreamedSource, choose_in_memory,
                                default_workers, read_all, source_kinds, split_memory_params)
from engine.data.tables import ArrayTable
from engine.errors import DataError

KNOWN_DATASETS = (*BUILTIN_DATASETS, *IMPORTERS)  # and the names registered in SOURCE_KINDS
SPLIT_STREAM = 1  # the generator stream of the train/validation permutation
GENERATE_STREAM = 0


def known_datasets() -> tuple[str, ...]:
    return (*KNOWN_DATASETS, *(k for k in source_kinds() if k != "environment"))


@dataclass(eq=False)
class Dataset(DataSource):
    """Train and validation tensors on one device, with what a task needs to know about them:
    the in-memory :class:`DataSource`. A training batch is an index tensor, a validation batch a
    slice.

    ``y_train``/``y_val`` are None for unlabelled data. Inputs are float32; class targets are
    int64 of shape (N,); regression targets float32 of shape (N, k).
    """

    name: str
    x_train: Any
    y_train: Any
    x_val: Any
    y_val: Any
    num_classes: int | None
    kind: str  # 'classification' | 'regression' | 'unlabeled'
    shapes: dict
    feature_names: list[str] | None = None
    class_names: list[str] | None = None
    task_hint: str | None = None  # as BuiltinSpec.task_hint ('forecasting' for sequences)
    source: str | None = None  # the file or folder an importer read
    reason: str = ""
    augment: Augment = field(default_factory=Augment)

    def __len__(self) -> int:
        return int(self.x_train.shape[0])

    # -- the DataSource contract ------------------------------------------------------------
    @property
    def train_size(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def val_size(self) -> int:
        return 0 if self.x_val is None else int(self.x_val.shape[0])

    def train_batches(self, batch_size: int, generator, device, strategy):
        return strategy.batches(self.train_size, batch_size, generator, device)

    def val_batches(self, size: int) -> list:
        n = self.val_size
        return [slice(i, min(i + size, n)) for i in range(0, n, size)]

    def take(self, batch, split: str = "train") -> dict:
        x, y = (self.x_train, self.y_train) if split == "train" else (self.x_val, self.y_val)
        fields = {"x": x[batch]}
        if split == "train" and self.augment.random_steps:
            fields["x"] = self.augment.train_random(fields["x"])
        if y is not None:
            fields["y"] = y[batch]
        return fields

    def head(self, key: str, n: int, split: str = "val"):
        tensor = getattr(self, f"{key}_{split}", None)
        return None if tensor is None or tensor.shape[0] == 0 else tensor[:n]

    def item(self, i: int, split: str = "val") -> dict:
        return {key: getattr(self, f"{key}_{split}")[i:i + 1] for key in ("x", "y")
                if getattr(self, f"{key}_{split}") is not None}

    def shard_validation(self, rank: int, world_size: int) -> "Dataset":
        if self.x_val is None or int(self.x_val.shape[0]) < world_size:
            return self

        def part(tensor):
            return None if tensor is None else tensor.tensor_split(world_size)[rank]
        return dataclasses.replace(self, x_val=part(self.x_val), y_val=part(self.y_val))

    @property
    def device(self):
        return self.x_train.device

    def to(self, device) -> "Dataset":
        """Move every tensor to ``device`` (in place) and return this dataset."""
        for attr in ("x_train", "y_train", "x_val", "y_val"):
            tensor = getattr(self, attr)
            if tensor is not None:
                setattr(self, attr, _move(tensor, device))
        return self

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, kind={self.kind!r}, train={len(self)}, "
                f"val={int(self.x_val.shape[0])}, shapes={self.shapes}, "
                f"num_classes={self.num_classes})")


def _move(tensor, device):
    try:
        return tensor.to(device)
    except (RuntimeError, AssertionError, TypeError, ValueError) as exc:
        raise DataError(f"device: cannot move the dataset to {device!r} ({exc})") from None


def parse_config(config: Any) -> tuple[str, dict, float]:
    """Check a project's dataset block; return (name, params with defaults, val_split)."""
    if not isinstance(config, dict):
        raise fail("dataset", "must be an object with a 'name'", config)
    name = config.get("name")
    if name not in known_datasets():
        what = "missing" if name is None else f"unknown dataset {name!r}"
        raise DataError(f"dataset.name: {what}; known: {', '.join(known_datasets())}")
    given, _ = split_memory_params(name, config.get("params"))
    if name in BUILTIN_DATASETS:
        spec = BUILTIN_DATASETS[name]
        params = resolve_params(name, given, spec.params, spec.rules)
    elif name in IMPORTER_PARAMS:
        defaults = IMPORTER_PARAMS[name]
        rules = {key: IMPORTER_RULES[key] for key in defaults}
        params = resolve_params(name, given, defaults, rules)
    else:
        kind = source_kinds()[name]
        params = resolve_params(name, given, kind.params, kind.rules)
    return name, params, check_val_split(config.get("val_split"))


def dataset_shapes(config: dict, base_dir: str | os.PathLike | None = None) -> dict:
    """Per-sample shapes without the batch dimension, e.g. {'x': (2,), 'y': ()} for spirals.

    Cheap: nothing is generated, and importers read only headers or first rows (a CSV without
    an explicit ``task`` reads its target column). Unlabelled data ('ring') has only 'x'.
    """
    name, params, _ = parse_config(config)
    if name in BUILTIN_DATASETS:
        return BUILTIN_DATASETS[name].shapes(params)
    if name in LOADERS:
        return LOADERS[name][1](params, base_dir)
    return source_kinds()[name].shapes(params, base_dir)


def load_dataset(config: dict, *, seed: int = 0, device="cpu", base_dir=None) -> Dataset:
    """Generate or import the data of a dataset block, split off ``val_split`` with a seeded
    permutation (validation = its first round(val_split * N) indices), move it to ``device``:
    always in memory (see :func:`load_source` for the choice)."""
    name, params, val_split = parse_config(config)
    seed = check_seed(seed)
    return _build(name, _generate(name, params, seed, base_dir), val_split, seed, device)


def _generate(name: str, params: dict, seed: int, base_dir) -> RawData:
    if name in BUILTIN_DATASETS:
        return BUILTIN_DATASETS[name].generate(params, rng_for(seed, GENERATE_STREAM))
    return LOADERS[name][0](params, base_dir)


def open_table(name: str, params: dict, seed: int, base_dir, progress=None):
    """The sample table of a built-in set (its arrays, generated) or an importer: an index the
    streamed path reads from (memory maps, image files decoded on demand), built by the reader
    of :mod:`engine.data.readers` without reading every sample."""
    if name in BUILTIN_DATASETS:
        return ArrayTable(_generate(name, params, seed, base_dir))
    return importer_table(name, params, base_dir, progress)


def load_source(config: dict, *, seed: int = 0, device="cpu", base_dir=None,
                progress=None) -> DataSource:
    """The :class:`DataSource` of a dataset block: in memory or streamed (see
    :mod:`engine.data.source`), with its ``augment`` list parsed and Normalize's statistics
    computed from the training split."""
    name, params, val_split = parse_config(config)
    _, memory = split_memory_params(name, config.get("params"))
    seed = check_seed(seed)
    if name not in BUILTIN_DATASETS and name not in LOADERS:
        return source_kinds()[name].load(params, val_split=val_split, seed=seed, device=device,
                                         base_dir=base_dir)
    table = open_table(name, params, seed, base_dir, progress)
    augment = parse_augment(config.get("augment"), table.shapes["x"])
    in_memory, reason = choose_in_memory(len(table) * table.sample_nbytes(), memory)
    workers = default_workers(memory)
    if in_memory:
        x, y = read_all(table, workers, progress)
        raw = RawData(x, y, table.kind, table.num_classes, table.class_names,
                      table.feature_names, table.task_hint, table.source)
        dataset = _build(name, raw, val_split, seed, device)
        dataset.reason, dataset.augment = reason, augment
        if augment.normalize is not None:
            augment.fit_stats(dataset.x_train)
            dataset.x_train = augment.always(dataset.x_train)
            if dataset.x_val is not None:
                dataset.x_val = augment.always(dataset.x_val)
        return dataset
    train, val = split_indices(len(table), val_split, seed)
    if augment.normalize is not None:
        import torch

        augment.fit_stats(torch.from_numpy(table.get(np.sort(train[:STATS_SAMPLES]))[0]))
    return StreamedSource(name, table, train, val, device=device, workers=workers,
                          reason=reason, augment=augment)


def load_project_source(project, *, seed: int = 0, device="cpu", progress=None) -> DataSource:
    """The data a project trains on: its ``environment`` block when it has one, else its
    ``dataset`` block."""
    environment = getattr(project, "environment", None) or project.extra.get("environment")
    if environment:
        kinds = source_kinds()
        if "environment" not in kinds:
            raise DataError("environment: reinforcement learning is not available here "
                            "(gymnasium is not installed)")
        if not isinstance(environment, dict) or "name" not in environment:
            raise fail("environment", "must be an object with a 'name'", environment)
        params = {"id": environment["name"], **(environment.get("params") or {})}
        return kinds["environment"].load(params, val_split=0.0, seed=check_seed(seed),
                                         device=device, base_dir=project.base_dir)
    return load_source(project.dataset, seed=seed, device=device, base_dir=project.base_dir,
                       progress=progress)


def split_indices(n: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) of a seeded permutation of range(n)."""
    n_val = int(round(val_split * n))
    if n - n_val < 1:
        raise DataError(f"dataset.val_split: {val_split} of {n} samples leaves none to train on")
    order = rng_for(seed, SPLIT_STREAM).permutation(n)
    return order[n_val:], order[:n_val]


def _build(name: str, raw: RawData, val_split: float, seed: int, device) -> Dataset:
    import torch

    train, val = split_indices(len(raw.x), val_split, seed)

    def tensors(array):
        if array is None:
            return None, None
        return (torch.from_numpy(np.ascontiguousarray(array[train])),
                torch.from_numpy(np.ascontiguousarray(array[val])))

    x_train, x_val = tensors(raw.x)
    y_train, y_val = tensors(raw.y)
    shapes = {"x": tuple(raw.x.shape[1:])}
    if raw.y is not None:
        shapes["y"] = tuple(raw.y.shape[1:])
    dataset = Dataset(name, x_train, y_train, x_val, y_val, raw.num_classes, raw.kind, shapes,
                      raw.feature_names, raw.class_names, raw.task_hint or raw.kind, raw.source)
    return dataset.to(device)
