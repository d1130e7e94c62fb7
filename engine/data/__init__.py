"""Datasets: the built-in generated sets and the importers for the user's own files.

Public API::

    BUILTIN_DATASETS            name -> BuiltinSpec (.name, .doc, .params, .task_hint, .num_classes())
    IMPORTERS                   ("csv", "npz", "idx", "image_folder")
    IMPORTER_PARAMS             importer -> {param: default}
    dataset_shapes(config, base_dir=None) -> {"x": shape, "y": shape}   (cheap; no torch)
    load_dataset(config, *, seed=0, device="cpu", base_dir=None) -> Dataset
    Dataset                     train/validation tensors on a device

``config`` is a project's dataset block, e.g.
``{"name": "spirals", "params": {"n_samples": 1000, "noise": 0.1}, "val_split": 0.2}``.
Every bad input raises :class:`engine.errors.DataError`. Importing this package imports neither
torch nor scikit-learn.
"""
from __future__ import annotations

from engine.data.builtin import BUILTIN_DATASETS, BuiltinSpec
from engine.data.dataset import (KNOWN_DATASETS, Dataset, dataset_shapes, load_dataset,
                                 parse_config, split_indices)
from engine.data.importers import IMPORTER_PARAMS, IMPORTERS
from engine.errors import DataError

__all__ = [
    "BUILTIN_DATASETS", "BuiltinSpec", "IMPORTERS", "IMPORTER_PARAMS", "KNOWN_DATASETS",
    "Dataset", "DataError", "dataset_shapes", "load_dataset", "parse_config", "split_indices",
]
