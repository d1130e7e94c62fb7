"""IDX files (the MNIST format) in a folder: an images file and its labels file, optionally
gzipped. The folder's pair whose names hold 'train' is used, else its only pair.

An uncompressed images file is memory-mapped past its header; a gzipped one is unpacked into
memory once (as its bytes, not float32), with progress per block. Pixels of ``uint8`` files are
scaled to 0..1.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from engine.data.common import encode_int_labels, require_folder
from engine.data.progress import Progress
from engine.data.readers.base import located
from engine.data.tables import SampleTable
from engine.errors import DataError

IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
BLOCK = 1 << 20  # bytes unpacked per progress call


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _header(fh, shown: str) -> tuple[np.dtype, tuple[int, ...]]:
    head = fh.read(4)
    if len(head) < 4:
        raise DataError(f"{shown}: truncated IDX file (the header is incomplete)")
    zero, code, ndim = struct.unpack(">HBB", head)
    if zero != 0 or code not in IDX_TYPES or ndim == 0:
        raise DataError(f"{shown}: not an IDX file (bad magic number 0x{head.hex()})")
    raw = fh.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise DataError(f"{shown}: truncated IDX file (the header is incomplete)")
    return np.dtype(IDX_TYPES[code]), struct.unpack(f">{ndim}I", raw)


def _read_all(fh, what: str, expected: int, progress: Progress | None) -> bytes:
    if progress is None:
        return fh.read()
    parts, done = [], 0
    progress(0, max(expected, 1), what)
    while True:
        part = fh.read(BLOCK)
        if not part:
            break
        parts.append(part)
        done += len(part)
        progress(min(done, max(expected, 1)), max(expected, 1), what)
    return b"".join(parts)


def read_idx(path: Path, shown: str, header_only: bool = False, progress: Progress | None = None):
    """The array of an IDX file (``header_only``: its (dtype, dims))."""
    try:
        with _open_binary(path) as fh:
            dtype, dims = _header(fh, shown)
            if header_only:
                return dtype, dims
            count = int(np.prod(dims))
            data = _read_all(fh, f"reading {shown}", count * dtype.itemsize, progress)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{shown}: cannot be read ({exc})") from None
    _check_size(shown, count * dtype.itemsize, len(data))
    return np.frombuffer(data, dtype, count=count).reshape(dims)


def _check_size(shown: str, expected: int, found: int) -> None:
    if found < expected:
        raise DataError(f"{shown}: truncated IDX file (expected {expected} data bytes after the "
                        f"header, found {found})")


def _key(name: str) -> str:
    name = name.lower()
    return name[:-3] if name.endswith(".gz") else name


def find_pair(folder: Path, shown: str) -> tuple[Path, Path]:
    """(images, labels) files in folder: the pair whose names hold 'train', else the only pair."""
    files = {_key(p.name): p for p in sorted(folder.iterdir(), reverse=True) if p.is_file()}
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


def _files(params: dict, base_dir):
    folder, shown = located(params, base_dir)
    require_folder(folder, shown)
    images, labels = find_pair(folder, shown)
    return images, labels, os.path.join(shown, images.name), os.path.join(shown, labels.name)


def _check_images(shown: str, dims: tuple) -> None:
    if len(dims) != 3 or dims[0] == 0:
        raise DataError(f"{shown}: expected images of shape (N, H, W); found {tuple(dims)}")


class IdxTable(SampleTable):
    """MNIST-format images: memory-mapped when uncompressed, else unpacked bytes in memory;
    labels in memory."""

    _lazy = ("_images",)
    _images = None

    def __init__(self, params: dict, base_dir=None, progress: Progress | None = None):
        images_path, labels_path, images_shown, labels_shown = _files(params, base_dir)
        self.path, self.shown = str(images_path), images_shown
        self.data = None  # the unpacked array of a gzipped file
        if images_path.name.lower().endswith(".gz"):
            self.data = read_idx(images_path, images_shown, progress=progress)
            self.dtype, self.dims = self.data.dtype, self.data.shape
        else:
            self.dtype, self.dims = read_idx(images_path, images_shown, header_only=True)
            self.offset = 4 + 4 * len(self.dims)
            _check_size(images_shown, int(np.prod(self.dims)) * self.dtype.itemsize,
                        os.path.getsize(images_path) - self.offset)
        _check_images(images_shown, self.dims)
        labels = read_idx(labels_path, labels_shown)
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != self.dims[0]:
            raise DataError(f"{labels_shown}: expected {self.dims[0]} integer labels; found an "
                            f"array of shape {labels.shape} and type {labels.dtype}")
        self.y, self.num_classes, self.class_names = encode_int_labels(labels)
        self.kind = self.task_hint = "classification"
        self.source = str(images_path)
        self.shapes = {"x": (1, *self.dims[1:]), "y": ()}
        self.scale = 255.0 if self.dtype == np.uint8 else 1.0
        self.in_memory = self.data is not None

    def __len__(self) -> int:
        return int(self.dims[0])

    def array(self) -> np.ndarray:
        """The images as stored: a memory map of the file, or the unpacked bytes."""
        if self.data is not None:
            return self.data
        if self._images is None:
            self._images = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset,
                                     shape=tuple(self.dims))
        return self._images

    def get(self, indices: np.ndarray):
        indices = np.asarray(indices, dtype=np.int64)
        x = (np.asarray(self.array()[indices]).astype(np.float32) / self.scale)[:, None]
        return np.ascontiguousarray(x), self.y[indices]


def open_table(params: dict, base_dir=None, progress: Progress | None = None) -> IdxTable:
    return IdxTable(params, base_dir, progress)


def shapes(params: dict, base_dir=None) -> dict:
    images_path, _, images_shown, _ = _files(params, base_dir)
    _, dims = read_idx(images_path, images_shown, header_only=True)
    if len(dims) != 3:
        raise DataError(f"{images_shown}: expected images of shape (N, H, W); found {dims}")
    return {"x": (1, dims[1], dims[2]), "y": ()}
