"""Helpers shared by the data modules: parameter checking, seeding, paths, labels.

Nothing here imports torch or scikit-learn.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import DataError

MAX_SAMPLES = 1_000_000


@dataclass(frozen=True)
class Rule:
    """How one dataset parameter is checked.

    kind: 'int', 'float', 'bool', 'choice', 'path', 'size' (two ints, height and width) or
    'column' (a column name or index). ``lo``/``hi`` bound numbers (inclusive); ``choices`` lists
    the values a 'choice' may take (None among them means "optional").
    """

    kind: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()
    required: bool = False


@dataclass
class RawData:
    """What a generator or importer produces, before splitting and moving to a device."""

    x: np.ndarray
    y: np.ndarray | None
    kind: str  # 'classification' | 'regression' | 'unlabeled'
    num_classes: int | None = None
    class_names: list[str] | None = None
    feature_names: list[str] | None = None
    task_hint: str | None = None
    source: str | None = None


def fail(field: str, message: str, value: Any = ...) -> DataError:
    """Build the DataError for a bad config field: 'dataset.params.noise: must be ...; got -1'."""
    got = "" if value is ... else f"; got {value!r}"
    return DataError(f"{field}: {message}{got}")


def _number(field: str, value: Any, kind: str) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        noun = "an integer" if kind == "int" else "a number"
        raise fail(field, f"must be {noun}", value)
    if isinstance(value, float) and not math.isfinite(value):
        raise fail(field, "must be a finite number", value)
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise fail(field, "must be an integer", value)
        return int(value)
    try:
        return float(value)
    except OverflowError:  # a JSON integer too large for a float
        raise fail(field, "must be a finite number", value) from None


def _bounded(field: str, value: Any, rule: Rule) -> int | float:
    number = _number(field, value, rule.kind)
    if rule.lo is not None and number < rule.lo:
        raise fail(field, f"must be at least {rule.lo}", value)
    if rule.hi is not None and number > rule.hi:
        raise fail(field, f"must be at most {rule.hi}", value)
    return number


def _size(field: str, value: Any) -> tuple[int, int]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise fail(field, "must be [height, width]", value)
    rule = Rule("int", 1, 4096)
    return tuple(_bounded(f"{field}[{i}]", v, rule) for i, v in enumerate(value))


def check_value(field: str, value: Any, rule: Rule) -> Any:
    """Return ``value`` checked and normalised according to ``rule``; raise DataError if bad."""
    if value is None:
        if rule.required:
            raise fail(field, "is required")
        if rule.kind in ("column", "path") or None in rule.choices:
            return None
        raise fail(field, "must not be null")
    if rule.kind in ("int", "float"):
        return _bounded(field, value, rule)
    if rule.kind == "bool":
        if not isinstance(value, bool):
            raise fail(field, "must be true or false", value)
        return value
    if rule.kind == "choice":
        if value not in rule.choices:
            allowed = ", ".join(repr(c) for c in rule.choices if c is not None)
            raise fail(field, f"must be one of {allowed}", value)
        return value
    if rule.kind == "path":
        if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
            raise fail(field, "must be a file or folder path", value)
        return value
    if rule.kind == "size":
        return _size(field, value)
    if rule.kind == "column":
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise fail(field, "must be a column name or a column index", value)
        return value
    raise AssertionError(f"unknown rule kind {rule.kind!r}")


def resolve_params(name: str, given: Any, defaults: dict, rules: dict[str, Rule]) -> dict:
    """Merge ``given`` over ``defaults`` and check every value; unknown names are an error."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise fail("dataset.params", "must be an object mapping parameter names to values", given)
    for key in given:
        if key not in defaults:
            allowed = ", ".join(defaults) or "none"
            raise fail(f"dataset.params.{key}",
                       f"unknown parameter for '{name}'; allowed: {allowed}")
    merged = {**defaults, **given}
    return {k: check_value(f"dataset.params.{k}", v, rules[k]) for k, v in merged.items()}


def check_val_split(value: Any) -> float:
    if value is None:
        return 0.2
    number = _number("dataset.val_split", value, "float")
    if not 0 <= number < 1:
        raise fail("dataset.val_split", "must be at least 0 and below 1", value)
    return number


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise fail("seed", "must be an integer", seed)
    return int(seed)


def rng_for(seed: int, stream: int) -> np.random.Generator:
    """A numpy generator for (seed, stream); streams keep generation and splitting independent."""
    return np.random.default_rng([stream, seed % 2**64, int(seed < 0)])


def resolve_path(value: str | os.PathLike, base_dir: str | os.PathLike | None) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return path


def require_file(path: Path, shown: str) -> None:
    if not path.exists():
        raise DataError(f"{shown}: file not found ({path})")
    if not path.is_file():
        raise DataError(f"{shown}: is not a file ({path})")


def require_folder(path: Path, shown: str) -> None:
    if not path.exists():
        raise DataError(f"{shown}: folder not found ({path})")
    if not path.is_dir():
        raise DataError(f"{shown}: is not a folder ({path})")


def encode_int_labels(labels: np.ndarray) -> tuple[np.ndarray, int, list[str] | None]:
    """Integer labels -> (class indices, num_classes, class_names).

    Non-negative labels are used as the indices themselves (num_classes = max + 1); labels with
    negative values are mapped, in sorted order, to 0..k-1 and keep their values as names.
    """
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if labels.size and labels.min() >= 0:
        return labels, int(labels.max()) + 1, None
    values, index = np.unique(labels, return_inverse=True)
    return index.astype(np.int64), len(values), [str(v) for v in values]


def encode_text_labels(labels: list[str]) -> tuple[np.ndarray, int, list[str]]:
    """Text labels -> (indices of the sorted distinct labels, count, the sorted labels)."""
    values, index = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    return index.astype(np.int64).reshape(-1), len(values), [str(v) for v in values]


def balanced_labels(n: int, k: int) -> np.ndarray:
    """n class indices, as equal in count as possible over k classes, in class order."""
    base, extra = divmod(n, k)
    return np.repeat(np.arange(k, dtype=np.int64), [base + (i < extra) for i in range(k)])
