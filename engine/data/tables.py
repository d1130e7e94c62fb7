"""Sample tables: a dataset as an index of samples, read a batch at a time.

A :class:`SampleTable` knows how many samples a set holds, their shapes and labels' meaning,
and reads any batch of them with :meth:`SampleTable.get` - from arrays in memory
(:class:`ArrayTable`), a memory-mapped file, or image files decoded on demand. The streamed path
hands a table to ``torch.utils.data.DataLoader`` worker processes, so a table must pickle small
and fast: it holds paths and small index arrays, and opens files and memory maps lazily, in the
process that reads (:meth:`SampleTable._open`), never in ``__init__``.

Nothing here imports torch.
"""
from __future__ import annotations

import math

import numpy as np

from engine.data.common import RawData


class SampleTable:
    """The samples of a dataset, read by index.

    Attributes: ``kind`` ('classification' | 'regression' | 'unlabeled'), ``num_classes``,
    ``class_names``, ``feature_names``, ``task_hint``, ``source`` (the file or folder),
    ``shapes`` (``{'x': per-sample shape, 'y': shape}``, 'y' absent when unlabelled) and
    ``in_memory`` (True when the samples already sit in arrays, so reading them all is cheap).
    """

    kind: str = "unlabeled"
    num_classes: int | None = None
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    task_hint: str | None = None
    source: str | None = None
    shapes: dict
    in_memory: bool = False
    _lazy: tuple[str, ...] = ()  # attributes opened in the reading process; never pickled

    def __len__(self) -> int:
        raise NotImplementedError

    def get(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(x, y)`` of the samples at ``indices`` (any order, repeats allowed): x float32 of
        shape ``(k, *shapes['x'])``; y int64 class indices ``(k,)``, float32 ``(k, m)``, or None.
        Raises DataError naming the file (and sample) at fault."""
        raise NotImplementedError

    def sample_nbytes(self) -> int:
        """Bytes of one sample as float32: its x plus its y."""
        nbytes = math.prod(self.shapes["x"]) * 4
        if "y" in self.shapes:
            nbytes += math.prod(self.shapes["y"]) * 4
        return nbytes

    # -- map-style dataset protocol (a DataLoader may read the table directly) -----------------
    def __getitem__(self, i: int):
        x, y = self.get(np.asarray([i], dtype=np.int64))
        return x[0], None if y is None else y[0]

    def __getitems__(self, indices) -> tuple[np.ndarray, np.ndarray | None]:
        """One call per batch: ``(x, y)`` of the whole batch (collate it as a pair)."""
        return self.get(np.asarray(indices, dtype=np.int64))

    # -- the whole set, for the in-memory path --------------------------------------------------
    def raw(self) -> RawData:
        x, y = self.get(np.arange(len(self), dtype=np.int64))
        return RawData(x, y, self.kind, self.num_classes, self.class_names, self.feature_names,
                       self.task_hint, self.source)

    # -- pickling: no open files or maps travel ---------------------------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in self._lazy:
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _open(self) -> None:
        """Open files or memory maps into the ``_lazy`` attributes (called on first read)."""

    def _labels_meta(self, raw: RawData) -> None:
        self.kind, self.num_classes, self.class_names = raw.kind, raw.num_classes, \
            raw.class_names
        self.feature_names, self.task_hint, self.source = raw.feature_names, raw.task_hint, \
            raw.source

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.source!r}, n={len(self)}, kind={self.kind!r}, "
                f"shapes={self.shapes})")


class ArrayTable(SampleTable):
    """A table over arrays already in memory: a built-in set, a parsed CSV, an importer's
    :class:`RawData`."""

    in_memory = True

    def __init__(self, raw: RawData):
        self.raw_data = raw
        self._labels_meta(raw)
        self.shapes = {"x": tuple(raw.x.shape[1:])}
        if raw.y is not None:
            self.shapes["y"] = tuple(raw.y.shape[1:])

    def __len__(self) -> int:
        return len(self.raw_data.x)

    def get(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        y = self.raw_data.y
        return self.raw_data.x[indices], None if y is None else y[indices]

    def raw(self) -> RawData:
        return self.raw_data
