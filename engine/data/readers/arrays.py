"""NumPy files: ``.npy`` arrays and ``.npz`` archives of ``x`` (and ``y``).

The inputs stay on disk: a ``.npy`` is memory-mapped (``np.load(mmap_mode="r")``) and so is an
``.npz`` member stored uncompressed (``np.savez``), through its byte offset inside the zip; a
compressed member (``np.savez_compressed``) cannot be mapped and is loaded. Labels are small and
always loaded. Nothing is ever unpickled (``allow_pickle=False``): an array of Python objects is
refused with a message naming the file.

- ``npz``: params ``path`` (the archive) and ``task``.
- ``npy``: params ``path`` (the inputs, one sample per row of the first axis), ``labels`` (an
  optional ``.npy`` of targets, one per sample) and ``task``.

``task`` (None: classification for one whole-number label per sample, else regression).
"""
from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data.common import encode_int_labels, require_file
from engine.data.progress import Progress
from engine.data.readers.base import FILE_ERRORS, located
from engine.data.tables import SampleTable
from engine.errors import DataError

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK"


def _magic(path: Path, shown: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(6)
    except OSError as exc:
        raise DataError(f"{shown}: cannot be read ({exc.strerror or exc})") from None


def _read_header(fh) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) from the .npy header at the file position."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fh)
    return np.lib.format._read_array_header(fh, version)  # 3.0: no public reader


@dataclass
class ArrayRef:
    """Where one array lies: a file, the byte offset of its data (None when it cannot be
    mapped: a compressed member), its shape and type; ``member`` names it inside an .npz."""

    path: str
    shown: str  # how messages name it: "data.npz: array 'x'" or "x.npy"
    shape: tuple
    dtype: np.dtype
    fortran: bool
    offset: int | None
    member: str | None = None

    @property
    def mappable(self) -> bool:
        return self.offset is not None or self.member is None

    def check(self, numbers: bool = True) -> None:
        if self.dtype.hasobject:
            raise DataError(f"{self.shown} holds Python objects, which are stored pickled; "
                            "pickled data are refused (allow_pickle is off); save numbers")
        if numbers and self.dtype.kind not in "biuf":
            raise DataError(f"{self.shown} must hold numbers; it holds {self.dtype}")

    def load(self, mmap: bool) -> np.ndarray:
        """The array: memory-mapped when ``mmap`` and possible, else read into memory."""
        try:
            if self.member is None:
                return np.load(self.path, mmap_mode="r" if mmap else None, allow_pickle=False)
            if mmap and self.offset is not None:
                return np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset,
                                 shape=self.shape, order="F" if self.fortran else "C")
            with np.load(self.path, allow_pickle=False) as archive:
                return archive[self.member]
        except (*FILE_ERRORS, KeyError) as exc:
            raise DataError(f"{self.shown} cannot be read ({exc})") from None


def npy_ref(path: Path, shown: str) -> ArrayRef:
    magic = _magic(path, shown)
    if magic.startswith(ZIP_MAGIC):
        raise DataError(f"{shown}: is an .npz archive, not a single .npy array; use the 'npz' "
                        "importer")
    if magic != NPY_MAGIC:
        raise DataError(f"{shown}: is not a .npy file (it does not start with the NumPy magic "
                        "string)")
    try:
        with open(path, "rb") as fh:
            shape, fortran, dtype = _read_header(fh)
            offset = fh.tell()
    except FILE_ERRORS as exc:
        raise DataError(f"{shown}: is not a readable .npy file ({exc})") from None
    return ArrayRef(str(path), shown, tuple(shape), dtype, fortran, offset)


def _member_ref(path: Path, shown: str, archive: zipfile.ZipFile, name: str) -> ArrayRef | None:
    """The ArrayRef of member ``name`` (without .npy) of an .npz; None if absent."""
    try:
        info = archive.getinfo(name + ".npy")
    except KeyError:
        return None
    where = f"{shown}: array '{name}'"
    with archive.open(info) as fh:
        shape, fortran, dtype = _read_header(fh)
    offset = None
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
        with open(path, "rb") as raw:
            raw.seek(info.header_offset)
            local = raw.read(30)
            if local[:4] == b"PK\x03\x04":
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                raw.seek(info.header_offset + 30 + name_len + extra_len)
                _read_header(raw)
                offset = raw.tell()
    return ArrayRef(str(path), where, tuple(shape), dtype, fortran, offset, name)


def npz_refs(path: Path, shown: str) -> tuple[ArrayRef, ArrayRef | None]:
    """(x, y or None) of an .npz archive, from the headers alone."""
    require_file(path, shown)
    if _magic(path, shown) == NPY_MAGIC:
        raise DataError(f"{shown}: is a single array, not an .npz archive with 'x' (and 'y'); "
                        "use the 'npy' importer")
    try:
        with zipfile.ZipFile(path) as archive:
            x = _member_ref(path, shown, archive, "x")
            if x is None:
                names = [n[:-4] if n.endswith(".npy") else n for n in archive.namelist()]
                raise DataError(f"{shown}: has no array 'x' (arrays: {', '.join(names) or 'none'})")
            y = _member_ref(path, shown, archive, "y")
    except (*FILE_ERRORS, KeyError) as exc:
        raise DataError(f"{shown}: is not a readable .npz archive ({exc})") from None
    return x, y


def _check_pair(shown: str, x: ArrayRef, y: ArrayRef | None) -> None:
    x.check()
    if len(x.shape) == 0 or x.shape[0] == 0:
        raise DataError(f"{shown}: array 'x' holds no samples (shape {x.shape})")
    if y is not None:
        y.check()
        if len(y.shape) == 0 or y.shape[0] != x.shape[0]:
            raise DataError(f"{shown}: 'x' has {x.shape[0]} samples but 'y' has shape {y.shape}")


def _task(shown: str, y_shape: tuple, y_dtype: np.dtype, task: str | None) -> str:
    single = len(y_shape) == 1 or tuple(y_shape[1:]) == (1,)
    if task is None:
        return "classification" if y_dtype.kind in "biu" and single else "regression"
    if task == "classification" and not single:
        raise DataError(f"{shown}: class labels 'y' must hold one label per sample; "
                        f"'y' has shape {tuple(y_shape)}")
    return task


def _shapes(shown: str, x: ArrayRef, y: ArrayRef | None, task: str | None) -> dict:
    shapes = {"x": tuple(x.shape[1:]) or (1,)}
    if y is not None:
        kind = _task(shown, y.shape, y.dtype, task)
        shapes["y"] = () if kind == "classification" else (int(np.prod(y.shape[1:])),)
    return shapes


class ArrayFileTable(SampleTable):
    """Samples of a NumPy array: memory-mapped from its file (opened in the reading process)
    or, for a compressed .npz member, held in memory; labels always in memory."""

    _lazy = ("_x",)
    _x = None

    def __init__(self, x: ArrayRef, y: np.ndarray | None, *, kind: str, num_classes=None,
                 class_names=None, source: str, progress: Progress | None = None):
        self.x_ref, self.y = x, y
        self.kind, self.num_classes, self.class_names = kind, num_classes, class_names
        self.task_hint, self.source = kind, source
        self.shapes = {"x": tuple(x.shape[1:]) or (1,)}
        if y is not None:
            self.shapes["y"] = tuple(y.shape[1:])
        self.data = None  # the float32 inputs, when they cannot be mapped
        if not x.mappable:
            if progress is not None:
                progress(0, 1, f"reading {x.shown}")
            self.data = self._checked(np.asarray(x.load(mmap=False), dtype=np.float32),
                                      np.arange(x.shape[0]))
            if progress is not None:
                progress(1, 1, f"reading {x.shown}")
        self.in_memory = self.data is not None

    def __len__(self) -> int:
        return int(self.x_ref.shape[0])

    def array(self) -> np.ndarray:
        """The inputs as stored: a memory map (np.memmap) when the file allows one."""
        if self.data is not None:
            return self.data
        if self._x is None:
            self._x = self.x_ref.load(mmap=True)
        return self._x

    def get(self, indices: np.ndarray):
        indices = np.asarray(indices, dtype=np.int64)
        if self.data is not None:
            x = self.data[indices]
        else:
            x = self._checked(np.ascontiguousarray(self.array()[indices], dtype=np.float32),
                              indices)
        x = x.reshape(len(indices), *self.shapes["x"])
        return x, None if self.y is None else self.y[indices]

    def _checked(self, x: np.ndarray, indices: np.ndarray) -> np.ndarray:
        if self.x_ref.dtype.kind == "f":
            finite = np.isfinite(x.reshape(len(x), -1)).all(axis=1)
            if not finite.all():
                sample = int(indices[int(np.flatnonzero(~finite)[0])])
                raise DataError(f"{self.x_ref.shown} holds NaN or infinite values "
                                f"(sample {sample})")
        return x


def _labels(shown: str, y: np.ndarray, task: str | None) -> dict:
    """The table's label arguments from the raw label array."""
    kind = _task(shown, y.shape, y.dtype, task)
    if kind == "regression":
        return {"y": np.asarray(y, dtype=np.float32).reshape(len(y), -1), "kind": kind}
    if y.dtype.kind == "f" and (not np.all(np.isfinite(y)) or not np.all(y == np.round(y))):
        raise DataError(f"{shown}: class labels 'y' must be whole numbers")
    labels, count, names = encode_int_labels(y)
    return {"y": labels, "kind": kind, "num_classes": count, "class_names": names}


def _table(shown: str, source: Path, x: ArrayRef, y: ArrayRef | None, task, progress):
    _check_pair(shown, x, y)
    if y is None:
        return ArrayFileTable(x, None, kind="unlabeled", source=str(source), progress=progress)
    labels = _labels(shown, np.asarray(y.load(mmap=False)), task)
    return ArrayFileTable(x, source=str(source), progress=progress, **labels)


# ---- NPZ -------------------------------------------------------------------------------------

def open_npz(params: dict, base_dir=None, progress: Progress | None = None) -> ArrayFileTable:
    path, shown = located(params, base_dir)
    x, y = npz_refs(path, shown)
    return _table(shown, path, x, y, params["task"], progress)


def npz_shapes(params: dict, base_dir=None) -> dict:
    path, shown = located(params, base_dir)
    x, y = npz_refs(path, shown)
    _check_pair(shown, x, y)
    return _shapes(shown, x, y, params["task"])


# ---- NPY -------------------------------------------------------------------------------------

def _npy_refs(params: dict, base_dir) -> tuple[str, ArrayRef, ArrayRef | None]:
    path, shown = located(params, base_dir)
    require_file(path, shown)
    x = npy_ref(path, shown)
    x.shown = f"{shown}: array 'x'"
    y = None
    if params.get("labels") is not None:
        labels_path, labels_shown = located(params, base_dir, "labels")
        require_file(labels_path, labels_shown)
        y = npy_ref(labels_path, labels_shown)
        y.shown = f"{labels_shown}: array 'y'"
    return shown, x, y


def open_npy(params: dict, base_dir=None, progress: Progress | None = None) -> ArrayFileTable:
    shown, x, y = _npy_refs(params, base_dir)
    return _table(shown, Path(x.path), x, y, params["task"], progress)


def npy_shapes(params: dict, base_dir=None) -> dict:
    shown, x, y = _npy_refs(params, base_dir)
    _check_pair(shown, x, y)
    return _shapes(shown, x, y, params["task"])
