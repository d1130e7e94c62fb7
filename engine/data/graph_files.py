"""Importers for a user's own graph, its nodes classified: two CSV files, or a PyG ``.pt`` file.

Both give a :class:`~engine.data.graphs.NodeGraphSource` (task ``node_classification``).

``graph_csv`` reads two CSV files, each with a header row:

- ``nodes``: one row per node - an id column (``id_column``, default ``"id"``), a label column
  (``label_column``, default ``"label"``) and, in every other column, a number: a feature. Node
  ids may be any text or numbers; they are numbered 0..N-1 in the order of the file. Labels are
  whole numbers (used as the class indices) or text (class names, numbered in sorted order).
- ``edges``: one row per edge - the ids of its source and target nodes (``source_column``,
  ``target_column``, default ``"source"`` and ``"target"``); other columns are ignored. With
  ``directed`` false (the default) every edge is added both ways, once each, without self loops;
  with ``directed`` true the edges are kept as the file lists them.

Columns are named (or numbered from 0) by the ``*_column`` params; ``delimiter`` applies to both
files. Every fault is a DataError naming the file, the line (the header is line 1) and the
column: ``edges.csv, line 7: column 'target': node 'x9' is not in nodes.csv``.

``pyg_data`` reads a file written by ``torch.save``, loaded with ``torch.load(weights_only=True)``
(no file can run code): a dict of tensors ``x`` (N×F), ``edge_index`` (2×E, integer node ids
0..N-1) and ``y`` (N, integer classes), or a torch_geometric ``Data`` with those attributes (PyG's
``Data`` and its storage classes are the only classes allowed in). Bool ``train_mask`` /
``val_mask`` (N,) are used when the file has them (one of them alone: the other is its
complement); otherwise ``val_split`` draws the validation nodes. The edges are used as stored: PyG
stores an undirected graph with both directions of every edge. An optional ``class_names`` list
names the classes.

Splits are seeded (:func:`~engine.data.graphs.node_split`). ``shapes`` reads the files once per
change of their size or time (small files fully, so that the edge count is exact; a large CSV
pair by its node ids only, and ``2×E`` stands for the edges).
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from engine.data.common import (Rule, encode_int_labels, encode_text_labels, require_file,
                                resolve_path)
from engine.data.graphs import NodeGraphSource, graph_shapes, node_split, undirected
from engine.data.readers.csvfile import MISSING_MARKERS, scan_rows
from engine.data.source import SourceKind, register
from engine.errors import DataError

EXACT_SHAPES_BYTES = 32 * 2**20  # CSV pairs up to this size are read whole for their shapes

CSV_PARAMS = {"nodes": None, "edges": None, "id_column": "id", "label_column": "label",
              "source_column": "source", "target_column": "target", "directed": False,
              "delimiter": ","}
CSV_RULES = {"nodes": Rule("path", required=True), "edges": Rule("path", required=True),
             "id_column": Rule("column"), "label_column": Rule("column"),
             "source_column": Rule("column"), "target_column": Rule("column"),
             "directed": Rule("bool"),
             "delimiter": Rule("choice", choices=(",", ";", "\t", "|", " "))}
PYG_PARAMS = {"path": None}
PYG_RULES = {"path": Rule("path", required=True)}


# -- graph_csv ---------------------------------------------------------------------------------

def _pd():
    import pandas

    return pandas


def _read_csv(path: Path, shown: str, delimiter: str, usecols=None, nrows=None):
    """The file as a DataFrame of stripped text cells (missing cells ''), its header the column
    names; a DataError for an unreadable, empty or ragged file."""
    pd = _pd()
    require_file(path, shown)
    try:
        with warnings.catch_warnings():  # a row longer than the header: an error, not a warning
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(path, sep=delimiter, header=0, dtype=str,
                                keep_default_na=False, na_filter=False, skipinitialspace=True,
                                skip_blank_lines=True, encoding="utf-8-sig", index_col=False,
                                engine="c", usecols=usecols, nrows=nrows)
    except pd.errors.EmptyDataError:
        raise DataError(f"{shown}: is empty; it needs a header row") from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        _ragged(path, shown, delimiter)
        raise DataError(f"{shown}: cannot be read as CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{shown}: is not UTF-8 text ({exc.reason} at byte {exc.start})") \
            from None
    except OSError as exc:
        raise DataError(f"{shown}: cannot be read ({exc.strerror or exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.fillna("")  # short rows


def _ragged(path: Path, shown: str, delimiter: str) -> None:
    rows, lines = scan_rows(path, shown, delimiter)
    for row, line in zip(rows[1:], lines[1:]):
        if len(row) != len(rows[0]):
            raise DataError(f"{shown}, line {line}: expected {len(rows[0])} columns (as the "
                            f"header), found {len(row)}")


class _Lines:
    """Data row -> its line in the file (the header is line 1), found by a second pass over
    the file with the csv module only when a message needs one."""

    def __init__(self, path: Path, shown: str, delimiter: str):
        self.path, self.shown, self.delimiter = path, shown, delimiter
        self._lines: list[int] | None = None

    def line(self, row: int) -> int:
        if self._lines is None:
            self._lines = scan_rows(self.path, self.shown, self.delimiter)[1][1:]
        return self._lines[row] if row < len(self._lines) else row + 2

    def at(self, row: int, column: str) -> str:
        return f"{self.shown}, line {self.line(row)}: column '{column}'"


def _column(columns: list[str], want, shown: str, param: str) -> str:
    """The name of the column ``want`` (a name, or an index from 0) of a file."""
    listed = ", ".join(f"'{c}'" for c in columns)
    if isinstance(want, int):
        if -len(columns) <= want < len(columns):
            return columns[want]
        raise DataError(f"dataset.params.{param}: column index {want} is out of range; {shown} "
                        f"has {len(columns)} columns: {listed}")
    if want in columns:
        return want
    raise DataError(f"{shown}: has no column '{want}' (set dataset.params.{param}); its "
                    f"columns: {listed}")


def _node_columns(columns: list[str], params: dict, shown: str) -> tuple[str, str, list[str]]:
    """(id column, label column, feature columns) of the nodes file."""
    id_col = _column(columns, params["id_column"], shown, "id_column")
    label_col = _column(columns, params["label_column"], shown, "label_column")
    if id_col == label_col:
        raise DataError(f"dataset.params.label_column: '{label_col}' is also the id column")
    features = [c for c in columns if c not in (id_col, label_col)]
    if not features:
        raise DataError(f"{shown}: has no feature columns besides '{id_col}' and "
                        f"'{label_col}'; add at least one column of numbers (a column of 1s "
                        "will do)")
    return id_col, label_col, features


def _missing(column) -> np.ndarray:
    return column.isin(MISSING_MARKERS).to_numpy()


def _read_nodes(params: dict, base_dir):
    """(ids, features (N, F) float32, feature names, labels, num classes, class names)."""
    path, shown = resolve_path(params["nodes"], base_dir), str(params["nodes"])
    delimiter = params["delimiter"]
    frame = _read_csv(path, shown, delimiter)
    id_col, label_col, features = _node_columns(list(frame.columns), params, shown)
    if len(frame) == 0:
        raise DataError(f"{shown}: has a header row but no nodes")
    where = _Lines(path, shown, delimiter)
    ids = frame[id_col].str.strip()
    missing = _missing(ids)
    if missing.any():
        raise DataError(f"{where.at(int(np.argmax(missing)), id_col)}: missing node id")
    repeated = ids.duplicated().to_numpy()
    if repeated.any():
        row = int(np.argmax(repeated))
        first = int(np.argmax((ids == ids.iloc[row]).to_numpy()))
        raise DataError(f"{where.at(row, id_col)}: node '{ids.iloc[row]}' is already on line "
                        f"{where.line(first)}")
    x = _features(frame, features, where)
    y, num_classes, class_names = _labels(frame[label_col].str.strip(), label_col, where)
    return ids.tolist(), x, features, y, num_classes, class_names


def _features(frame, features: list[str], where: _Lines) -> np.ndarray:
    pd = _pd()
    cells = frame[features].apply(lambda c: c.str.strip())
    values = cells.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        row, j = np.unravel_index(int(np.argmax(bad)), bad.shape)  # the first, row by row
        cell = cells.iat[row, j]
        if cell in MISSING_MARKERS:
            what = "missing value (every feature cell needs a number)"
        elif _is_number(cell):
            what = f"{cell!r} is not a finite number"
        else:
            what = f"{cell!r} is not a number (every column besides the id and the label is a " \
                   "feature)"
        raise DataError(f"{where.at(int(row), features[j])}: {what}")
    return values.astype(np.float32)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _labels(labels, label_col: str, where: _Lines):
    missing = _missing(labels)
    if missing.any():
        raise DataError(f"{where.at(int(np.argmax(missing)), label_col)}: missing label (every "
                        "node needs a class)")
    numbers = _pd().to_numeric(labels, errors="coerce").to_numpy(dtype=np.float64)
    if np.isfinite(numbers).all() and (numbers == np.round(numbers)).all():
        return encode_int_labels(numbers.astype(np.int64))
    return encode_text_labels(labels.tolist())


def _read_edges(params: dict, base_dir, ids: list[str], nodes_shown: str) -> np.ndarray:
    """The edges (2, E) as node indices, as the file lists them."""
    pd = _pd()
    path, shown = resolve_path(params["edges"], base_dir), str(params["edges"])
    delimiter = params["delimiter"]
    frame = _read_csv(path, shown, delimiter)
    columns = list(frame.columns)
    src = _column(columns, params["source_column"], shown, "source_column")
    dst = _column(columns, params["target_column"], shown, "target_column")
    if src == dst:
        raise DataError(f"dataset.params.target_column: '{dst}' is also the source column")
    where = _Lines(path, shown, delimiter)
    index = pd.Index(ids)
    ends = []
    for column in (src, dst):
        names = frame[column].str.strip()
        ends.append((column, names, index.get_indexer(names)))
    unknown = np.stack([found < 0 for _, _, found in ends], axis=1)  # (E, 2)
    if unknown.any():
        row, side = np.unravel_index(int(np.argmax(unknown)), unknown.shape)
        column, names, _ = ends[side]
        name = names.iloc[row]
        if name in MISSING_MARKERS:
            raise DataError(f"{where.at(int(row), column)}: missing node id")
        raise DataError(f"{where.at(int(row), column)}: node '{name}' is not in {nodes_shown}")
    return np.stack([found for _, _, found in ends]).astype(np.int64).reshape(2, -1)


def read_graph_csv(params: dict, base_dir=None) -> dict:
    """The graph of a nodes file and an edges file, as numpy arrays and names (see the module
    docstring); every fault is a DataError naming the file, line and column."""
    ids, x, feature_names, y, num_classes, class_names = _read_nodes(params, base_dir)
    edges = _read_edges(params, base_dir, ids, str(params["nodes"]))
    if not params["directed"]:
        edges = undirected(edges)
    return {"x": x, "edge_index": edges, "y": y, "num_classes": num_classes,
            "class_names": class_names, "feature_names": feature_names, "ids": ids}


def _stat(path: Path) -> tuple:
    try:
        st = os.stat(path)
    except OSError:
        return (str(path), None, None)
    return (str(path), st.st_mtime_ns, st.st_size)


def _csv_shapes(params: dict, base_dir=None) -> dict:
    nodes = resolve_path(params["nodes"], base_dir)
    edges = resolve_path(params["edges"], base_dir)
    key = tuple(sorted(params.items()))
    return graph_shapes(*_csv_counts(key, _stat(nodes), _stat(edges), base_dir))


@lru_cache(maxsize=8)
def _csv_counts(key: tuple, nodes_stat, edges_stat, base_dir) -> tuple[int, int, int]:
    """(N, F, E) of a CSV pair, cached while the files keep their size and time."""
    params = dict(key)
    if (nodes_stat[2] or 0) + (edges_stat[2] or 0) <= EXACT_SHAPES_BYTES:
        graph = read_graph_csv(params, base_dir)
        return len(graph["ids"]), graph["x"].shape[1], graph["edge_index"].shape[1]
    path, shown = resolve_path(params["nodes"], base_dir), str(params["nodes"])
    require_file(resolve_path(params["edges"], base_dir), str(params["edges"]))
    columns = list(_read_csv(path, shown, params["delimiter"], nrows=0).columns)
    id_col, _, features = _node_columns(columns, params, shown)
    n = len(_read_csv(path, shown, params["delimiter"], usecols=[id_col]))
    return n, len(features), 0  # E unknown until loaded: the wire reads 2×E


def _csv_load(params, *, val_split=0.2, seed=0, device="cpu", base_dir=None):
    graph = read_graph_csv(params, base_dir)
    n = len(graph["ids"])
    train, val = node_split(n, val_split, seed)
    how = "directed" if params["directed"] else "undirected"
    return NodeGraphSource("graph_csv", graph["x"], graph["edge_index"], graph["y"], train, val,
                           device=device, class_names=graph["class_names"],
                           feature_names=graph["feature_names"],
                           source=f"{params['nodes']} and {params['edges']} ({how})")


# -- pyg_data ----------------------------------------------------------------------------------

def _pyg_classes() -> list:
    """PyG's Data and the classes a saved Data is made of, to allow them in torch.load; none
    when torch_geometric is not installed (a dict of tensors loads without it)."""
    try:
        from torch_geometric.data import data, storage
    except ImportError:
        return []
    names = [(data, "Data"), (data, "DataEdgeAttr"), (data, "DataTensorAttr"),
             (storage, "BaseStorage"), (storage, "GlobalStorage"), (storage, "NodeStorage"),
             (storage, "EdgeStorage")]
    return [getattr(module, name) for module, name in names if hasattr(module, name)]


def _torch_load(path: Path, shown: str, mmap: bool = False):
    import torch

    require_file(path, shown)
    try:
        with torch.serialization.safe_globals(_pyg_classes()):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if found is None:  # not a pickle at all, or a damaged one
            raise DataError(f"{shown}: is not a file torch.save wrote, or is damaged "
                            f"({_weights_reason(exc)})") from None
        raise DataError(f"{shown}: cannot be loaded with torch.load(weights_only=True): it "
                        f"holds {found.group(1)}, which is neither a tensor, a plain container "
                        "nor PyG's Data; save a dict of tensors (x, edge_index, y) or a "
                        "torch_geometric Data") from None
    except (RuntimeError, OSError, EOFError, ValueError, AttributeError, TypeError) as exc:
        if mmap:
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{shown}: is not a file torch.save wrote, or is damaged ({reason})") \
            from None


def _weights_reason(exc: Exception) -> str:
    """The unpickler's own words from torch's long weights_only message."""
    found = re.search(r"WeightsUnpickler error:\s*(.+)", str(exc))
    return found.group(1).strip() if found else type(exc).__name__


def _load_file(path: Path, shown: str, mmap: bool):
    if not mmap:
        return _torch_load(path, shown)
    try:  # memory-mapped where the file allows it (torch.save's zip format): reads little
        return _torch_load(path, shown, mmap=True)
    except DataError:
        raise
    except Exception:  # noqa: BLE001 - an old format or a damaged file: read it plainly
        return _torch_load(path, shown)


def _fields(obj, shown: str) -> dict:
    """The graph's fields from a loaded object: a dict, or PyG's Data."""
    try:
        from torch_geometric.data import HeteroData
    except ImportError:
        HeteroData = ()
    if HeteroData and isinstance(obj, HeteroData):
        raise DataError(f"{shown}: holds a HeteroData (several kinds of node); save one graph "
                        "with one kind of node: a Data or a dict of x, edge_index and y")
    if not isinstance(obj, dict) and hasattr(obj, "to_dict") and hasattr(obj, "edge_index"):
        obj = obj.to_dict()  # torch_geometric.data.Data
    if isinstance(obj, (list, tuple)) and len(obj) == 1:
        return _fields(obj[0], shown)
    if not isinstance(obj, dict):
        what = f"a {type(obj).__name__}" + (f" of {len(obj)}" if isinstance(obj, (list, tuple))
                                            else "")
        raise DataError(f"{shown}: holds {what}; save one graph: a dict of tensors with keys "
                        "x, edge_index and y, or a torch_geometric Data")
    return obj


def _tensor(fields: dict, key: str, shown: str):
    import torch

    if key not in fields:
        keys = ", ".join(str(k) for k in fields) or "none"
        raise DataError(f"{shown}: has no '{key}' (its keys: {keys}); a graph needs x (node "
                        "features, N×F), edge_index (2×E) and y (a class per node, N)")
    value = fields[key]
    if not isinstance(value, torch.Tensor):
        raise DataError(f"{shown}: '{key}' must be a tensor; got {type(value).__name__}")
    return value


def _shape(t) -> str:
    return "(" + ", ".join(str(d) for d in t.shape) + ("," if t.dim() == 1 else "") + ")"


def read_pyg(params: dict, base_dir=None, *, mmap: bool = False) -> dict:
    """The checked tensors of a pyg_data file (CPU): x, edge_index, y, masks or None;
    ``mmap`` maps the file rather than reading it (for shapes: the tensors stay tied to it)."""
    import torch

    path, shown = resolve_path(params["path"], base_dir), str(params["path"])
    fields = _fields(_load_file(path, shown, mmap), shown)
    x, edge_index, y = (_tensor(fields, k, shown) for k in ("x", "edge_index", "y"))
    if x.dim() != 2 or x.is_complex():
        raise DataError(f"{shown}: 'x' must be node features of shape (N, F), one row of "
                        f"numbers per node; got shape {_shape(x)}, {x.dtype}")
    n = int(x.shape[0])
    if n == 0:
        raise DataError(f"{shown}: 'x' has no nodes")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise DataError(f"{shown}: 'edge_index' must have shape (2, E): the source and target "
                        f"node of every edge; got shape {_shape(edge_index)}")
    if edge_index.is_floating_point() or edge_index.is_complex() or \
            edge_index.dtype == torch.bool:
        raise DataError(f"{shown}: 'edge_index' must hold integer node ids; it holds "
                        f"{edge_index.dtype}")
    edge_index = edge_index.to(torch.int64)
    if edge_index.numel():
        outside = (edge_index < 0) | (edge_index >= n)
        if bool(outside.any()):
            i = int(outside.any(dim=0).nonzero()[0])
            bad = int(edge_index[0, i] if outside[0, i] else edge_index[1, i])
            raise DataError(f"{shown}: 'edge_index' edge {i} names node {bad}, but 'x' has {n} "
                            f"nodes (ids 0..{n - 1})")
    if y.dim() != 1 or y.shape[0] != n:
        raise DataError(f"{shown}: 'y' must have shape ({n},): one class per node of 'x'; got "
                        f"shape {_shape(y)}")
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise DataError(f"{shown}: 'y' must hold integer class indices; it holds {y.dtype}")
    if bool((y < 0).any()):
        raise DataError(f"{shown}: 'y' holds a negative class ({int(y.min())}); classes are "
                        "0, 1, 2, ...")
    masks = {}
    for key in ("train_mask", "val_mask"):
        if fields.get(key) is None:
            masks[key] = None
            continue
        mask = _tensor(fields, key, shown)
        if mask.dtype != torch.bool or tuple(mask.shape) != (n,):
            raise DataError(f"{shown}: '{key}' must be a bool tensor of shape ({n},), true for "
                            f"the nodes it selects; got shape {_shape(mask)}, {mask.dtype}")
        masks[key] = mask
    names = fields.get("class_names")
    classes = int(y.max()) + 1
    if names is not None and (not isinstance(names, (list, tuple)) or len(names) != classes
                              or not all(isinstance(s, str) for s in names)):
        raise DataError(f"{shown}: 'class_names' must be a list of {classes} texts, one per "
                        "class")
    return {"x": x, "edge_index": edge_index, "y": y, **masks, "class_names": names}


def _pyg_masks(data: dict, val_split: float, seed: int, shown: str):
    train, val = data["train_mask"], data["val_mask"]
    if train is None and val is None:
        return node_split(int(data["x"].shape[0]), val_split, seed)
    train = ~val if train is None else train
    val = ~train if val is None else val
    if not bool(train.any()):
        raise DataError(f"{shown}: 'train_mask' selects no node: none to train on")
    return train, val


def _pyg_shapes(params: dict, base_dir=None) -> dict:
    path = resolve_path(params["path"], base_dir)
    return graph_shapes(*_pyg_counts(_stat(path), str(params["path"]), base_dir))


@lru_cache(maxsize=8)
def _pyg_counts(stat: tuple, path: str, base_dir) -> tuple[int, int, int]:
    data = read_pyg({"path": path}, base_dir, mmap=True)
    return int(data["x"].shape[0]), int(data["x"].shape[1]), int(data["edge_index"].shape[1])


def _pyg_load(params, *, val_split=0.2, seed=0, device="cpu", base_dir=None):
    shown = str(params["path"])
    data = read_pyg(params, base_dir)
    train, val = _pyg_masks(data, val_split, seed, shown)
    masks = "its masks" if data["train_mask"] is not None or data["val_mask"] is not None \
        else "a seeded split"
    return NodeGraphSource("pyg_data", data["x"].float(), data["edge_index"], data["y"], train,
                           val, device=device, class_names=data["class_names"],
                           source=f"{shown} ({masks})")


# -- registration ------------------------------------------------------------------------------
KINDS = [
    register(SourceKind(
        name="graph_csv",
        doc="your own graph from two CSV files: nodes (an id, a label and numeric feature "
            "columns) and edges (source and target ids); undirected unless directed is true "
            "(node classification)",
        params=dict(CSV_PARAMS), rules=CSV_RULES, shapes=_csv_shapes, load=_csv_load,
        task_hint="node_classification")),
    register(SourceKind(
        name="pyg_data",
        doc="your own graph from a torch.save file: a dict of tensors x, edge_index, y (and "
            "optionally train_mask, val_mask) or a torch_geometric Data, loaded with "
            "weights_only=True (node classification)",
        params=dict(PYG_PARAMS), rules=PYG_RULES, shapes=_pyg_shapes, load=_pyg_load,
        task_hint="node_classification")),
]

__all__ = ["read_graph_csv", "read_pyg"]
