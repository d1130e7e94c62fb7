"""Importers for the user's own data: CSV, NPZ, NPY, IDX (MNIST format) and image folders.

Each importer has three entry points, each ``(params, base_dir, ...)``:

- ``TABLES[name](params, base_dir, progress=None) -> SampleTable`` (:mod:`engine.data.tables`):
  an index the streamed path reads batches from, cheap to send to DataLoader worker processes;
  ``progress(done, total, what)`` is called while indexing or reading and may raise
  :class:`engine.data.progress.Cancelled`;
- ``LOADERS[name] = (load, shapes)``: ``load -> RawData`` reads everything into memory (the same
  arrays as ``table.get(all)``), ``shapes -> {'x': shape, 'y': shape}`` looks only at headers or
  first rows.

The readers themselves live in :mod:`engine.data.readers`. Every problem with a file becomes a
DataError that names the file (and the line and column, field or sample).
"""
from __future__ import annotations

from engine.data.common import RawData, Rule
from engine.data.progress import Progress
from engine.data.readers import arrays, csvfile, idx, images
from engine.data.tables import SampleTable

IMPORTERS = ("csv", "npz", "npy", "idx", "image_folder")

IMPORTER_PARAMS: dict[str, dict] = {
    "csv": {"path": None, "target": None, "task": None, "delimiter": ",", "missing": "error",
            "categorical": "onehot"},
    "npz": {"path": None, "task": None},
    "npy": {"path": None, "labels": None, "task": None},
    "idx": {"path": None},
    "image_folder": {"path": None, "size": [28, 28], "grayscale": True},
}

IMPORTER_RULES: dict[str, Rule] = {
    "path": Rule("path", required=True),
    "labels": Rule("path"),
    "target": Rule("column"),
    "task": Rule("choice", choices=(None, "classification", "regression")),
    "delimiter": Rule("choice", choices=(",", ";", "\t", "|", " ")),
    "missing": Rule("choice", choices=("error", "drop", "mean")),
    "categorical": Rule("choice", choices=("onehot", "codes")),
    "size": Rule("size"),
    "grayscale": Rule("bool"),
}

IMPORTER_DOCS = {
    "csv": "a CSV file, one sample per row; the target column (default the last) is the label",
    "npz": "a NumPy .npz archive with arrays 'x' and optionally 'y' (memory-mapped when "
           "stored uncompressed)",
    "npy": "a NumPy .npy array of inputs (memory-mapped) and optionally a .npy of labels",
    "idx": "a folder of MNIST-format IDX files (an images file and its labels file, .gz too)",
    "image_folder": "a folder with one subfolder of images per class, decoded as needed",
}

TABLES = {
    "csv": csvfile.open_table,
    "npz": arrays.open_npz,
    "npy": arrays.open_npy,
    "idx": idx.open_table,
    "image_folder": images.open_table,
}


def _loader(name: str):
    def load(params: dict, base_dir=None) -> RawData:
        return TABLES[name](params, base_dir).raw()
    load.__name__ = load.__qualname__ = f"load_{name}"
    return load


load_csv = csvfile.load
load_npz, load_npy = _loader("npz"), _loader("npy")
load_idx, load_image_folder = _loader("idx"), _loader("image_folder")

LOADERS = {
    "csv": (load_csv, csvfile.shapes),
    "npz": (load_npz, arrays.npz_shapes),
    "npy": (load_npy, arrays.npy_shapes),
    "idx": (load_idx, idx.shapes),
    "image_folder": (load_image_folder, images.shapes),
}


def open_table(name: str, params: dict, base_dir=None,
               progress: Progress | None = None) -> SampleTable:
    """The sample table of importer ``name`` for checked ``params``."""
    return TABLES[name](params, base_dir, progress)
