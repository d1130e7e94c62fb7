"""Importers for the user's own data: CSV, NPZ, IDX (MNIST format) and image folders.

Each importer has a loader, ``(params, base_dir) -> RawData``, and a cheap shape reader,
``(params, base_dir) -> {'x': shape, 'y': shape}``, that looks only at headers or first rows.
Every problem with a file becomes a DataError that names the file (and the line, for a CSV).
"""
from __future__ import annotations

import csv
import gzip
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data.common import (RawData, Rule, encode_int_labels, encode_text_labels,
                                require_file, require_folder, resolve_path)
from engine.errors import DataError

IMPORTERS = ("csv", "npz", "idx", "image_folder")

IMPORTER_PARAMS: dict[str, dict] = {
    "csv": {"path": None, "target": None, "task": None, "delimiter": ","},
    "npz": {"path": None, "task": None},
    "idx": {"path": None},
    "image_folder": {"path": None, "size": [28, 28], "grayscale": True},
}

IMPORTER_RULES: dict[str, Rule] = {
    "path": Rule("path", required=True),
    "target": Rule("column"),
    "task": Rule("choice", choices=(None, "classification", "regression")),
    "delimiter": Rule("choice", choices=(",", ";", "\t", "|", " ")),
    "size": Rule("size"),
    "grayscale": Rule("bool"),
}

_FILE_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, struct.error)


def _located(params: dict, base_dir) -> tuple[Path, str]:
    """The resolved path, and the path as the user wrote it (used in messages)."""
    return resolve_path(params["path"], base_dir), str(params["path"])


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# ---- CSV -------------------------------------------------------------------------------------

@dataclass
class _Table:
    shown: str
    header: list[str] | None
    rows: list[list[str]]  # data rows only, cells stripped
    lines: list[int]  # the 1-based line on which each data row ends
    ncols: int

    def column(self, j: int) -> str:
        return f"'{self.header[j]}'" if self.header else str(j + 1)

    def where(self, i: int, j: int) -> str:
        return f"{self.shown}, line {self.lines[i]}: column {self.column(j)}"


def _read_rows(path: Path, shown: str, delimiter: str, limit: int | None):
    rows, lines = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            try:
                for row in reader:
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue  # a blank line
                    rows.append([cell.strip() for cell in row])
                    lines.append(reader.line_num)
                    if limit is not None and len(rows) >= limit:
                        break
            except csv.Error as exc:
                raise DataError(f"{shown}, line {reader.line_num}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{shown}: is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{shown}: cannot be read ({exc.strerror or exc})") from None
    return rows, lines


def _has_header(rows: list[list[str]]) -> bool:
    """A header: some cell of the first row is text where the second row holds a number."""
    if len(rows) < 2:
        return bool(rows) and not any(_is_number(c) for c in rows[0])
    return any(not _is_number(a) and _is_number(b) for a, b in zip(rows[0], rows[1]))


def _read_table(path: Path, shown: str, delimiter: str, limit: int | None = None) -> _Table:
    rows, lines = _read_rows(path, shown, delimiter, limit)
    if not rows:
        raise DataError(f"{shown}: is empty")
    ncols = len(rows[0])
    if ncols < 2:
        raise DataError(f"{shown}, line {lines[0]}: needs at least two columns (features and a "
                        f"target); found 1 with the delimiter {delimiter!r}")
    skip = 1 if _has_header(rows) else 0
    for row, line in zip(rows, lines):
        if len(row) != ncols:
            raise DataError(f"{shown}, line {line}: expected {ncols} columns, found {len(row)}")
    if len(rows) == skip:
        raise DataError(f"{shown}: has a header row but no data rows")
    return _Table(shown, rows[0] if skip else None, rows[skip:], lines[skip:], ncols)


def _target_index(table: _Table, target) -> int:
    n, field = table.ncols, "dataset.params.target"
    if target is None:
        return n - 1
    if isinstance(target, int):
        if -n <= target < n:
            return target % n
        raise DataError(f"{field}: column index {target} is out of range; "
                        f"{table.shown} has {n} columns")
    if table.header is None:
        raise DataError(f"{field}: {table.shown} has no header row, so the target must be a "
                        f"column index; got {target!r}")
    if target in table.header:
        return table.header.index(target)
    raise DataError(f"{field}: {table.shown} has no column {target!r}; "
                    f"columns: {', '.join(table.header)}")


def _numeric_column(table: _Table, j: int) -> np.ndarray:
    cells = [row[j] for row in table.rows]
    try:
        values = np.array(cells, dtype=str).astype(np.float64)
    except ValueError:
        for i, cell in enumerate(cells):
            if not cell:
                raise DataError(f"{table.where(i, j)} is empty") from None
            if not _is_number(cell):
                raise DataError(f"{table.where(i, j)} is not a number ({cell!r})") from None
        raise DataError(f"{table.shown}: column {table.column(j)} holds a cell that is not "
                        "a number") from None
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{table.where(i, j)} is not a finite number ({cells[i]!r})")
    return values


def _auto_task(table: _Table, t: int) -> str:
    """Classification for integer or (few distinct) text labels, regression for numbers."""
    values = [row[t] for row in table.rows]
    if all(_is_int(v) for v in values):
        return "classification"
    numeric = [_is_number(v) for v in values]
    if all(numeric):
        return "regression"
    if any(n and not _is_int(v) for n, v in zip(numeric, values)):
        i = numeric.index(False)  # fractions mixed with text: a number column with a bad cell
        raise DataError(f"{table.where(i, t)} is not a number ({values[i]!r})")
    distinct = len(set(values))
    if distinct > 20 and distinct > len(values) / 2:
        raise DataError(f"{table.shown}: target column {table.column(t)} holds {distinct} "
                        f"distinct text values in {len(values)} rows, which do not look like "
                        "class labels; set dataset.params.task to 'classification' to use them")
    return "classification"


def _class_labels(table: _Table, t: int):
    values = [row[t] for row in table.rows]
    if "" in values:
        raise DataError(f"{table.where(values.index(''), t)} is empty")
    if all(_is_int(v) for v in values):
        return encode_int_labels(np.array([int(v) for v in values], dtype=np.int64))
    if all(_is_number(v) and float(v).is_integer() for v in values):
        return encode_int_labels(np.array([float(v) for v in values]).astype(np.int64))
    return encode_text_labels(values)


def _csv_task(params: dict, table: _Table, t: int) -> str:
    return params["task"] or _auto_task(table, t)


def load_csv(params: dict, base_dir=None) -> RawData:
    path, shown = _located(params, base_dir)
    require_file(path, shown)
    table = _read_table(path, shown, params["delimiter"])
    t = _target_index(table, params["target"])
    features = [j for j in range(table.ncols) if j != t]
    x = np.stack([_numeric_column(table, j) for j in features], axis=1).astype(np.float32)
    names = [table.header[j] for j in features] if table.header else None
    if _csv_task(params, table, t) == "regression":
        y = _numeric_column(table, t).astype(np.float32).reshape(-1, 1)
        return RawData(x, y, "regression", feature_names=names, task_hint="regression",
                       source=str(path))
    y, count, class_names = _class_labels(table, t)
    return RawData(x, y, "classification", count, class_names, names, "classification",
                   str(path))


def csv_shapes(params: dict, base_dir=None) -> dict:
    path, shown = _located(params, base_dir)
    require_file(path, shown)
    limit = 2 if params["task"] else None  # without a task, the target column decides it
    table = _read_table(path, shown, params["delimiter"], limit)
    t = _target_index(table, params["target"])
    y = (1,) if _csv_task(params, table, t) == "regression" else ()
    return {"x": (table.ncols - 1,), "y": y}


# ---- NPZ -------------------------------------------------------------------------------------

def _npz_arrays(path: Path, shown: str) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        archive = np.load(path, allow_pickle=False)
    except _FILE_ERRORS as exc:
        raise DataError(f"{shown}: is not a readable .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{shown}: is a single array, not an .npz archive with 'x' (and 'y')")
    with archive:
        if "x" not in archive.files:
            raise DataError(f"{shown}: has no array 'x' "
                            f"(arrays: {', '.join(archive.files) or 'none'})")
        try:
            return archive["x"], (archive["y"] if "y" in archive.files else None)
        except _FILE_ERRORS as exc:
            raise DataError(f"{shown}: an array cannot be read ({exc})") from None


def _npy_header(archive: zipfile.ZipFile, name: str):
    """(shape, dtype) of a member of an .npz, reading only its header; None if absent."""
    if name + ".npy" not in archive.namelist():
        return None
    with archive.open(name + ".npy") as fh:
        version = np.lib.format.read_magic(fh)
        read = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}[version]
        shape, _, dtype = read(fh)
    return shape, dtype


def _npz_task(shown: str, y_shape: tuple, y_dtype: np.dtype, task: str | None) -> str:
    single = len(y_shape) == 1 or tuple(y_shape[1:]) == (1,)
    if task is None:
        return "classification" if y_dtype.kind in "biu" and single else "regression"
    if task == "classification" and not single:
        raise DataError(f"{shown}: class labels 'y' must hold one label per sample; "
                        f"'y' has shape {tuple(y_shape)}")
    return task


def _npz_check(shown: str, x_shape, x_dtype, y_shape, y_dtype) -> None:
    if len(x_shape) == 0 or x_shape[0] == 0:
        raise DataError(f"{shown}: array 'x' holds no samples (shape {tuple(x_shape)})")
    for name, dtype in (("x", x_dtype), ("y", y_dtype)):
        if dtype is not None and dtype.kind not in "biuf":
            raise DataError(f"{shown}: array '{name}' must hold numbers; it holds {dtype}")
    if y_shape is not None and (len(y_shape) == 0 or y_shape[0] != x_shape[0]):
        raise DataError(f"{shown}: 'x' has {x_shape[0]} samples but 'y' has shape "
                        f"{tuple(y_shape)}")


def _npz_shapes_from(shown, x_shape, y_shape, y_dtype, task) -> dict:
    shapes = {"x": tuple(x_shape[1:]) or (1,)}
    if y_shape is not None:
        kind = _npz_task(shown, y_shape, y_dtype, task)
        shapes["y"] = () if kind == "classification" else (int(np.prod(y_shape[1:])),)
    return shapes


def _npz_labels(shown: str, y: np.ndarray):
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise DataError(f"{shown}: class labels 'y' must be whole numbers")
    return encode_int_labels(y)


def load_npz(params: dict, base_dir=None) -> RawData:
    path, shown = _located(params, base_dir)
    require_file(path, shown)
    x, y = _npz_arrays(path, shown)
    _npz_check(shown, x.shape, x.dtype, None if y is None else y.shape,
               None if y is None else y.dtype)
    x = x.astype(np.float32).reshape(len(x), -1) if x.ndim == 1 else x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{shown}: array 'x' holds NaN or infinite values")
    if y is None:
        return RawData(x, None, "unlabeled", task_hint="unlabeled", source=str(path))
    if _npz_task(shown, y.shape, y.dtype, params["task"]) == "regression":
        y = y.astype(np.float32).reshape(len(y), -1)
        return RawData(x, y, "regression", task_hint="regression", source=str(path))
    labels, count, names = _npz_labels(shown, y)
    return RawData(x, labels, "classification", count, names, task_hint="classification",
                   source=str(path))


def npz_shapes(params: dict, base_dir=None) -> dict:
    path, shown = _located(params, base_dir)
    require_file(path, shown)
    try:
        with zipfile.ZipFile(path) as archive:
            x_head, y_head = _npy_header(archive, "x"), _npy_header(archive, "y")
    except (*_FILE_ERRORS, KeyError):
        x_head = None  # an unusual file: the full reader explains it or copes
    if x_head is None:
        x, y = _npz_arrays(path, shown)  # raises the error that names the arrays present
        x_head, y_head = (x.shape, x.dtype), (None if y is None else (y.shape, y.dtype))
    y_shape, y_dtype = y_head if y_head else (None, None)
    _npz_check(shown, x_head[0], x_head[1], y_shape, y_dtype)
    return _npz_shapes_from(shown, x_head[0], y_shape, y_dtype, params["task"])


# ---- IDX (MNIST format) ----------------------------------------------------------------------

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _idx_header(fh, shown: str) -> tuple[np.dtype, tuple[int, ...]]:
    head = fh.read(4)
    if len(head) < 4:
        raise DataError(f"{shown}: truncated IDX file (the header is incomplete)")
    zero, code, ndim = struct.unpack(">HBB", head)
    if zero != 0 or code not in _IDX_TYPES or ndim == 0:
        raise DataError(f"{shown}: not an IDX file (bad magic number 0x{head.hex()})")
    raw = fh.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise DataError(f"{shown}: truncated IDX file (the header is incomplete)")
    return np.dtype(_IDX_TYPES[code]), struct.unpack(f">{ndim}I", raw)


def _read_idx(path: Path, shown: str, header_only: bool = False):
    try:
        with _open_binary(path) as fh:
            dtype, dims = _idx_header(fh, shown)
            if header_only:
                return dtype, dims
            data = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{shown}: cannot be read ({exc})") from None
    count = int(np.prod(dims))
    if len(data) < count * dtype.itemsize:
        raise DataError(f"{shown}: truncated IDX file (expected {count * dtype.itemsize} "
                        f"data bytes after the header, found {len(data)})")
    return np.frombuffer(data, dtype, count=count).reshape(dims)


def _idx_key(name: str) -> str:
    name = name.lower()
    return name[:-3] if name.endswith(".gz") else name


def _idx_pair(folder: Path, shown: str) -> tuple[Path, Path]:
    """(images, labels) files in folder: the pair whose names hold 'train', else the only pair."""
    files = {_idx_key(p.name): p for p in sorted(folder.iterdir(), reverse=True) if p.is_file()}
    pairs = []
    for key, images in sorted(files.items()):
        if "idx3" in key and "images" in key:
            labels = files.get(key.replace("images", "labels").replace("idx3", "idx1"))
            if labels is None:
                raise DataError(f"{os.path.join(shown, images.name)}: no matching labels file "
                                "(e.g. train-labels-idx1-ubyte) beside it")
            pairs.append((images, labels))
    train = [pair for pair in pairs if "train" in pair[0].name.lower()]
    if len(train) == 1 or len(pairs) == 1:
        return (train or pairs)[0]
    if not pairs:
        raise DataError(f"{shown}: holds no MNIST-format files (expected a pair like "
                        "train-images-idx3-ubyte and train-labels-idx1-ubyte, optionally .gz)")
    names = ", ".join(images.name for images, _ in (train or pairs))
    raise DataError(f"{shown}: holds several image files ({names}); keep one pair in the folder")


def _idx_files(params: dict, base_dir):
    folder, shown = _located(params, base_dir)
    require_folder(folder, shown)
    images, labels = _idx_pair(folder, shown)
    return images, labels, os.path.join(shown, images.name), os.path.join(shown, labels.name)


def load_idx(params: dict, base_dir=None) -> RawData:
    images_path, labels_path, images_shown, labels_shown = _idx_files(params, base_dir)
    images = _read_idx(images_path, images_shown)
    labels = _read_idx(labels_path, labels_shown)
    if images.ndim != 3 or images.shape[0] == 0:
        raise DataError(f"{images_shown}: expected images of shape (N, H, W); "
                        f"found {images.shape}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(images):
        raise DataError(f"{labels_shown}: expected {len(images)} integer labels; found an array "
                        f"of shape {labels.shape} and type {labels.dtype}")
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    x = (images.astype(np.float32) / scale)[:, None]
    y, count, names = encode_int_labels(labels)
    return RawData(x, y, "classification", count, names, task_hint="classification",
                   source=str(images_path))


def idx_shapes(params: dict, base_dir=None) -> dict:
    images_path, _, images_shown, _ = _idx_files(params, base_dir)
    _, dims = _read_idx(images_path, images_shown, header_only=True)
    if len(dims) != 3:
        raise DataError(f"{images_shown}: expected images of shape (N, H, W); found {dims}")
    return {"x": (1, dims[1], dims[2]), "y": ()}


# ---- image folder ----------------------------------------------------------------------------

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                   ".pgm", ".pbm"}


def _class_folders(root: Path, shown: str) -> list[Path]:
    require_folder(root, shown)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{shown}: holds no class subfolders (expected one folder per class)")
    return folders


def _load_image(path: Path, shown: str, size: tuple[int, int], grayscale: bool) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("L" if grayscale else "RGB")
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except Exception as exc:  # Pillow raises many types for a bad file; all mean "unreadable"
        raise DataError(f"{shown}: cannot be read as an image ({exc})") from None


def _image_files(folder: Path, shown: str) -> list[Path]:
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{shown}: class folder holds no images "
                        f"({', '.join(sorted(_IMAGE_SUFFIXES))})")
    return files


def load_image_folder(params: dict, base_dir=None) -> RawData:
    root, shown = _located(params, base_dir)
    folders = _class_folders(root, shown)
    images, labels = [], []
    for index, folder in enumerate(folders):
        folder_shown = os.path.join(shown, folder.name)
        for file in _image_files(folder, folder_shown):
            file_shown = os.path.join(folder_shown, file.name)
            images.append(_load_image(file, file_shown, params["size"], params["grayscale"]))
            labels.append(index)
    x = np.stack(images).astype(np.float32) / 255.0
    x = x[:, None] if params["grayscale"] else x.transpose(0, 3, 1, 2)
    return RawData(np.ascontiguousarray(x), np.array(labels, dtype=np.int64), "classification",
                   len(folders), [f.name for f in folders], task_hint="classification",
                   source=str(root))


def image_folder_shapes(params: dict, base_dir=None) -> dict:
    root, shown = _located(params, base_dir)
    _class_folders(root, shown)
    return {"x": (1 if params["grayscale"] else 3, *params["size"]), "y": ()}


LOADERS = {
    "csv": (load_csv, csv_shapes),
    "npz": (load_npz, npz_shapes),
    "idx": (load_idx, idx_shapes),
    "image_folder": (load_image_folder, image_folder_shapes),
}
