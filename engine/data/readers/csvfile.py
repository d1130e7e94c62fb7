"""CSV files through pandas: one row per sample, one column the target.

- A header row is recognised when a cell of the first row is text where the second row holds a
  number; without one, columns are named by their 1-based position in messages and
  ``target`` must be a column index.
- Feature columns are numbers or text. A column is text (categorical) when most of its first
  :data:`SNIFF_ROWS` non-missing cells are not numbers; ``categorical`` turns each into one-hot
  columns (``"onehot"``, default, named ``column=value``) or into one column of integer codes
  (``"codes"``, the sorted distinct values numbered from 0, for an Embedding). A text cell in a
  number column is an error that names the file, line, column and the cell.
- Missing values are empty cells or one of :data:`MISSING_MARKERS`. ``missing``: ``"error"``
  (default) names the first one; ``"drop"`` drops every row holding one; ``"mean"`` fills a
  number column with its mean and a text column with its most frequent value (rows whose target
  is missing are dropped).
- The target (``target``: name or index, default the last column) is classification for whole
  numbers or text labels, regression for other numbers, unless ``task`` says which.

pandas parses the file in chunks (progress per chunk); on a fault the file is scanned again with
the ``csv`` module to name the exact line, so the fast path never tracks line numbers.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.data.common import RawData, encode_int_labels, encode_text_labels, require_file
from engine.data.progress import Progress
from engine.data.readers.base import located, throttled
from engine.data.tables import ArrayTable
from engine.errors import DataError

MISSING_MARKERS = ("", "NA", "N/A", "n/a", "null", "NULL")
SNIFF_ROWS = 1000  # rows that decide a header and which columns hold text
CHUNK_ROWS = 200_000  # rows per pandas chunk (one progress call each)
MAX_ONEHOT = 1000  # distinct values above which one-hot columns are refused
MISSING_HINT = "; set dataset.params.missing to 'drop' or 'mean' to accept missing values"


def _pd():
    import pandas

    return pandas


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _options(delimiter: str) -> dict:
    return {"sep": delimiter, "header": None, "keep_default_na": False,
            "na_values": list(MISSING_MARKERS), "skipinitialspace": True,
            "skip_blank_lines": True, "encoding": "utf-8-sig", "index_col": False,
            "engine": "c"}


# ---- the exact line of a fault: a second pass with the csv module ------------------------------

def scan_rows(path: Path, shown: str, delimiter: str, limit: int | None = None):
    """(rows of stripped cells, the 1-based line each ends on) of the non-blank rows, header
    included, up to ``limit`` rows."""
    rows, lines = [], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=delimiter, skipinitialspace=True)
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
        raise _not_text(shown, exc) from None
    except OSError as exc:
        raise DataError(f"{shown}: cannot be read ({exc.strerror or exc})") from None
    return rows, lines


def _not_text(shown: str, exc: UnicodeDecodeError) -> DataError:
    return DataError(f"{shown}: is not UTF-8 text ({exc.reason} at byte {exc.start})")


def _ragged(path: Path, shown: str, delimiter: str, ncols: int | None = None) -> None:
    """Raise the error for the first row whose number of cells differs from the first row's."""
    rows, lines = scan_rows(path, shown, delimiter)
    ncols = len(rows[0]) if rows and ncols is None else ncols
    for row, line in zip(rows, lines):
        if len(row) != ncols:
            raise DataError(f"{shown}, line {line}: expected {ncols} columns, found {len(row)}")


# ---- the head: header, columns, their kinds ----------------------------------------------------

@dataclass
class Head:
    """What the first rows of a file say: its columns, header and which columns hold text."""

    path: Path
    shown: str
    delimiter: str
    ncols: int
    header: list[str] | None
    rows: list[list[str]]  # up to SNIFF_ROWS data rows, stripped, missing cells ''

    def column(self, j: int) -> str:
        return f"'{self.header[j]}'" if self.header else str(j + 1)

    def is_text(self, j: int) -> bool:
        cells = [row[j] for row in self.rows if row[j] not in MISSING_MARKERS]
        numbers = sum(_is_number(cell) for cell in cells)
        return numbers < len(cells) - numbers

    def target(self, target) -> int:
        n, field = self.ncols, "dataset.params.target"
        if target is None:
            return n - 1
        if isinstance(target, int):
            if -n <= target < n:
                return target % n
            raise DataError(f"{field}: column index {target} is out of range; "
                            f"{self.shown} has {n} columns")
        if self.header is None:
            raise DataError(f"{field}: {self.shown} has no header row, so the target must be "
                            f"a column index; got {target!r}")
        if target in self.header:
            return self.header.index(target)
        raise DataError(f"{field}: {self.shown} has no column {target!r}; "
                        f"columns: {', '.join(self.header)}")


def _has_header(rows: list[list[str]]) -> bool:
    """A header: some cell of the first row is text where the second row holds a number."""
    if len(rows) < 2:
        return bool(rows) and not any(_is_number(c) for c in rows[0])
    return any(not _is_number(a) and _is_number(b) for a, b in zip(rows[0], rows[1]))


def read_head(path: Path, shown: str, delimiter: str) -> Head:
    require_file(path, shown)
    pd = _pd()
    try:
        frame = pd.read_csv(path, nrows=SNIFF_ROWS + 1, dtype=str, na_filter=False,
                            **_options(delimiter))
    except pd.errors.EmptyDataError:
        raise DataError(f"{shown}: is empty") from None
    except pd.errors.ParserError as exc:
        _ragged(path, shown, delimiter)
        raise DataError(f"{shown}: cannot be read as CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise _not_text(shown, exc) from None
    except OSError as exc:
        raise DataError(f"{shown}: cannot be read ({exc.strerror or exc})") from None
    rows = frame.fillna("").map(str.strip).values.tolist()
    if not rows:
        raise DataError(f"{shown}: is empty")
    ncols = frame.shape[1]
    if ncols < 2:
        line = scan_rows(path, shown, delimiter, limit=1)[1][0]
        raise DataError(f"{shown}, line {line}: needs at least two columns (features and a "
                        f"target); found 1 with the delimiter {delimiter!r}")
    skip = 1 if _has_header(rows) else 0
    if len(rows) == skip:
        raise DataError(f"{shown}: has a header row but no data rows")
    return Head(path, shown, delimiter, ncols, rows[0] if skip else None,
                rows[skip:SNIFF_ROWS + skip])


# ---- the whole file --------------------------------------------------------------------------

class _Lines:
    """Data-row index -> line number, found by a second pass only when a message needs one."""

    def __init__(self, head: Head):
        self.head = head
        self._rows: list | None = None
        self._lines: list | None = None

    def _load(self):
        if self._rows is None:
            head = self.head
            rows, lines = scan_rows(head.path, head.shown, head.delimiter)
            skip = 1 if head.header is not None else 0
            self._rows, self._lines = rows[skip:], lines[skip:]
        return self._rows, self._lines

    def where(self, i: int, j: int) -> str:
        return f"{self.head.shown}, line {self._load()[1][i]}: column {self.head.column(j)}"

    def cells(self, i: int) -> list[str]:
        return self._load()[0][i]

    def check_ragged(self, rows: np.ndarray) -> None:
        cells, lines = self._load()
        n = self.head.ncols
        for i in rows:
            if len(cells[i]) != n:
                raise DataError(f"{self.head.shown}, line {lines[i]}: expected {n} columns, "
                                f"found {len(cells[i])}")


def _parse(head: Head, text_columns: list[int], progress: Progress | None,
           usecols: list[int] | None = None):
    """The data rows as a DataFrame with columns 0..ncols-1; text columns as strings."""
    pd = _pd()
    options = {**_options(head.delimiter), "header": 0 if head.header is not None else None,
               "names": list(range(head.ncols)), "dtype": {j: str for j in text_columns}}
    if usecols is not None:
        options["usecols"] = usecols
    size = max(1, os.path.getsize(head.path))
    what = f"reading {head.shown}"
    chunks = []
    try:
        with open(head.path, "rb") as fh:
            if progress is not None:
                progress(0, size, what)
            with pd.read_csv(fh, chunksize=CHUNK_ROWS, **options) as reader:
                for chunk in reader:
                    chunks.append(chunk)
                    if progress is not None:
                        progress(min(fh.tell(), size - 1), size, what)
    except pd.errors.ParserError as exc:
        _ragged(head.path, head.shown, head.delimiter, head.ncols)
        raise DataError(f"{head.shown}: cannot be read as CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise _not_text(head.shown, exc) from None
    except OSError as exc:
        raise DataError(f"{head.shown}: cannot be read ({exc.strerror or exc})") from None
    if progress is not None:
        progress(size, size, what)
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    return frame


def _numbers(frame, j: int, lines: _Lines) -> np.ndarray:
    """Column j as float64 (missing cells NaN); a text or non-finite cell is an error."""
    pd = _pd()
    column = frame[j]
    if column.dtype.kind in "biuf":
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        missing = column.isna().to_numpy()
    else:
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64,
                                                                  na_value=np.nan)
        missing = column.isna().to_numpy()
        bad = np.flatnonzero(~missing & np.isnan(values))
        if bad.size:
            i = int(bad[0])
            cell = str(column.iloc[i]).strip()
            if not _is_number(cell):
                raise DataError(f"{lines.where(i, j)} is not a number ({cell!r})")
            raise DataError(f"{lines.where(i, j)} is not a finite number ({cell!r})")
    bad = np.flatnonzero(np.isinf(values))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{lines.where(i, j)} is not a finite number "
                        f"({lines.cells(i)[j]!r})")
    return values


def _texts(frame, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Column j as stripped strings ('' where missing), and the missing mask."""
    column = frame[j]
    missing = column.isna().to_numpy()
    values = column.astype(object).where(~column.isna(), "").map(lambda v: str(v).strip())
    return values.to_numpy(dtype=object), missing


def auto_task(head: Head, lines: _Lines, texts: np.ndarray, missing: np.ndarray, t: int) -> str:
    """Classification for integer or (few distinct) text labels, regression for numbers."""
    pd = _pd()
    present = texts[~missing].astype(str)
    series = pd.Series(present, dtype=object)
    if series.str.fullmatch(r"[+-]?\d+").all():
        return "classification"
    numeric = pd.to_numeric(series, errors="coerce").notna().to_numpy()
    if numeric.all():
        return "regression"
    whole = series.str.fullmatch(r"[+-]?\d+").to_numpy()
    if (numeric & ~whole).any():  # fractions mixed with text: a number column with a bad cell
        i = int(np.flatnonzero(~missing)[int(np.flatnonzero(~numeric)[0])])
        raise DataError(f"{lines.where(i, t)} is not a number ({texts[i]!r})")
    distinct = len(set(present.tolist()))
    if distinct > 20 and distinct > len(present) / 2:
        raise DataError(f"{head.shown}: target column {head.column(t)} holds {distinct} "
                        f"distinct text values in {len(present)} rows, which do not look like "
                        "class labels; set dataset.params.task to 'classification' to use them")
    return "classification"


def _class_labels(texts: np.ndarray):
    pd = _pd()
    series = pd.Series(texts.astype(str), dtype=object)
    if series.str.fullmatch(r"[+-]?\d+").all():
        return encode_int_labels(series.astype(np.int64).to_numpy())
    numbers = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64,
                                                             na_value=np.nan)
    if np.isfinite(numbers).all() and (numbers == np.round(numbers)).all():
        return encode_int_labels(numbers.astype(np.int64))
    return encode_text_labels(texts.astype(str).tolist())


def _first_missing(missing: dict[int, np.ndarray]) -> tuple[int, int] | None:
    """(row, column) of the first missing cell in file order."""
    best = None
    for j, mask in missing.items():
        hit = np.flatnonzero(mask)
        if hit.size and (best is None or (hit[0], j) < best):
            best = (int(hit[0]), j)
    return best


def _missing_error(lines: _Lines, i: int, j: int) -> DataError:
    cells = lines.cells(i)
    cell = cells[j] if j < len(cells) else ""
    what = "is empty" if cell == "" else f"is missing a value ({cell!r})"
    return DataError(f"{lines.where(i, j)} {what}{MISSING_HINT}")


def _fill(values: np.ndarray, mask: np.ndarray, text: bool):
    if not mask.any():
        return values
    present = values[~mask]
    if present.size == 0:
        return None
    values = values.copy()
    if text:
        names, counts = np.unique(present.astype(str), return_counts=True)
        values[mask] = names[int(np.argmax(counts))]
    else:
        values[mask] = present.mean()
    return values


def _encode(values: np.ndarray, mask: np.ndarray, name: str | None, mode: str, head: Head,
            j: int):
    """(float32 columns (n, k), their names) of a text column: its distinct present values,
    sorted; a missing cell (a row about to be dropped) gets code 0."""
    names = np.unique(values[~mask].astype(str))
    codes = np.searchsorted(names, values.astype(str))
    codes[mask] = 0
    if mode == "codes":
        return codes.astype(np.float32)[:, None], [name] if name is not None else None
    if len(names) > MAX_ONEHOT:
        raise DataError(f"{head.shown}: column {head.column(j)} holds {len(names)} distinct "
                        f"text values, too many for one-hot columns; set "
                        "dataset.params.categorical to 'codes' (for an Embedding)")
    onehot = np.zeros((len(values), len(names)), dtype=np.float32)
    onehot[np.arange(len(values)), codes] = 1.0
    labels = [f"{name}={v}" for v in names] if name is not None else None
    return onehot, labels


def _categories(frame, j: int) -> int:
    values, missing = _texts(frame, j)
    return len(set(values[~missing].tolist()))


class _Reader:
    """One full read of a CSV: parse, check, fill or drop, encode."""

    def __init__(self, params: dict, base_dir, progress: Progress | None):
        self.params = params
        self.path, shown = located(params, base_dir)
        self.head = read_head(self.path, shown, params["delimiter"])
        self.t = self.head.target(params["target"])
        self.features = [j for j in range(self.head.ncols) if j != self.t]
        self.text = [j for j in self.features if self.head.is_text(j)]
        self.frame = _parse(self.head, [*self.text, self.t], throttled(progress))
        self.lines = _Lines(self.head)

    def read(self) -> RawData:
        frame, lines, mode = self.frame, self.lines, self.params["missing"]
        incomplete = frame.isna().any(axis=1).to_numpy()
        if incomplete.any():
            lines.check_ragged(np.flatnonzero(incomplete))
        columns = {j: (_texts(frame, j) if j in self.text else
                       self._numeric(j)) for j in self.features}
        y_text, y_missing = _texts(frame, self.t)
        missing = {j: m for j, (_, m) in columns.items()}
        task = self.params["task"] or auto_task(self.head, lines, y_text, y_missing, self.t)
        if mode == "error":
            first = _first_missing({**missing, self.t: y_missing})
            if first is not None:
                raise _missing_error(lines, *first)
        keep = ~y_missing
        if mode == "drop":
            for mask in missing.values():
                keep &= ~mask
        if not keep.any():
            raise DataError(f"{self.head.shown}: every row has a missing value, so none is left "
                            "to train on")
        x, names = self._features(columns, mode)
        source = str(self.path)
        if task == "regression":
            y = _numbers(self.frame, self.t, lines)[keep].astype(np.float32).reshape(-1, 1)
            return RawData(x[keep], y, "regression", feature_names=names,
                           task_hint="regression", source=source)
        codes, count, classes = _class_labels(y_text[~y_missing])  # every class in the file
        labels = np.zeros(len(y_text), dtype=np.int64)
        labels[~y_missing] = codes
        return RawData(x[keep], labels[keep], "classification", count, classes, names,
                       "classification", source)

    def _numeric(self, j: int):
        values = _numbers(self.frame, j, self.lines)
        return values, np.isnan(values)

    def _features(self, columns: dict, mode: str):
        blocks, names = [], [] if self.head.header is not None else None
        for j, (values, mask) in columns.items():
            text = j in self.text
            if mode == "mean":
                values = _fill(values, mask, text)
                if values is None:
                    raise DataError(f"{self.head.shown}: column {self.head.column(j)} holds no "
                                    "values to take the mean of")
                mask = np.zeros_like(mask)
            name = self.head.header[j] if self.head.header is not None else None
            if text:
                block, labels = _encode(values, mask, name, self.params["categorical"],
                                        self.head, j)
                blocks.append(block)
                if names is not None:
                    names.extend(labels)
            else:
                blocks.append(values.astype(np.float32)[:, None])
                if names is not None:
                    names.append(name)
        return np.concatenate(blocks, axis=1), names


def open_table(params: dict, base_dir=None, progress: Progress | None = None) -> ArrayTable:
    """The CSV parsed into float32 arrays (a parsed CSV is at its most compact in memory)."""
    return ArrayTable(_Reader(params, base_dir, progress).read())


def load(params: dict, base_dir=None) -> RawData:
    return _Reader(params, base_dir, None).read()


def shapes(params: dict, base_dir=None) -> dict:
    """Cheap: the first rows, plus the target column when ``task`` is not given and the text
    columns when they become one-hot columns (their distinct values set the width)."""
    path, shown = located(params, base_dir)
    head = read_head(path, shown, params["delimiter"])
    t = head.target(params["target"])
    features = [j for j in range(head.ncols) if j != t]
    text = [j for j in features if head.is_text(j)]
    wide = text if params["categorical"] == "onehot" else []
    need = ([] if params["task"] else [t]) + wide
    frame = _parse(head, need, None, usecols=need) if need else None
    width = len(features) - len(wide) + sum(_categories(frame, j) for j in wide)
    if params["task"]:
        task = params["task"]
    else:
        texts, missing = _texts(frame, t)
        task = auto_task(head, _Lines(head), texts, missing, t)
    return {"x": (width,), "y": (1,) if task == "regression" else ()}
