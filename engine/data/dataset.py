"""The Dataset class, and turning a project's ``dataset`` block into one.

torch is imported only inside the functions that build or move tensors, so importing this module
(and :func:`dataset_shapes`) stays cheap.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.data.builtin import BUILTIN_DATASETS
from engine.data.common import (RawData, check_seed, check_val_split, fail, resolve_params,
                                rng_for)
from engine.data.importers import IMPORTER_PARAMS, IMPORTER_RULES, IMPORTERS, LOADERS
from engine.errors import DataError

KNOWN_DATASETS = (*BUILTIN_DATASETS, *IMPORTERS)
SPLIT_STREAM = 1  # the generator stream of the train/validation permutation
GENERATE_STREAM = 0


@dataclass(eq=False)
class Dataset:
    """Train and validation tensors on one device, with what a task needs to know about them.

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

    def __len__(self) -> int:
        return int(self.x_train.shape[0])

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
    if name not in KNOWN_DATASETS:
        what = "missing" if name is None else f"unknown dataset {name!r}"
        raise DataError(f"dataset.name: {what}; known: {', '.join(KNOWN_DATASETS)}")
    if name in BUILTIN_DATASETS:
        spec = BUILTIN_DATASETS[name]
        params = resolve_params(name, config.get("params"), spec.params, spec.rules)
    else:
        defaults = IMPORTER_PARAMS[name]
        rules = {key: IMPORTER_RULES[key] for key in defaults}
        params = resolve_params(name, config.get("params"), defaults, rules)
    return name, params, check_val_split(config.get("val_split"))


def dataset_shapes(config: dict, base_dir: str | os.PathLike | None = None) -> dict:
    """Per-sample shapes without the batch dimension, e.g. {'x': (2,), 'y': ()} for spirals.

    Cheap: nothing is generated, and importers read only headers or first rows (a CSV without
    an explicit ``task`` reads its target column). Unlabelled data ('ring') has only 'x'.
    """
    name, params, _ = parse_config(config)
    if name in BUILTIN_DATASETS:
        return BUILTIN_DATASETS[name].shapes(params)
    return LOADERS[name][1](params, base_dir)


def load_dataset(config: dict, *, seed: int = 0, device="cpu", base_dir=None) -> Dataset:
    """Generate or import the data of a dataset block, split off ``val_split`` with a seeded
    permutation (validation = its first round(val_split * N) indices), move it to ``device``."""
    name, params, val_split = parse_config(config)
    seed = check_seed(seed)
    if name in BUILTIN_DATASETS:
        raw = BUILTIN_DATASETS[name].generate(params, rng_for(seed, GENERATE_STREAM))
    else:
        raw = LOADERS[name][0](params, base_dir)
    return _build(name, raw, val_split, seed, device)


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
