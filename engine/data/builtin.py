"""The built-in datasets: small, generated (or bundled) sets that need no download.

Every generator takes checked parameters and a seeded ``numpy.random.Generator`` and returns a
:class:`RawData` of numpy arrays; nothing here imports torch, and scikit-learn is never imported
(the digits are read from the file scikit-learn ships, falling back to ``load_digits``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from engine.data.common import MAX_SAMPLES, RawData, Rule, balanced_labels
from engine.errors import DataError

Generator = Callable[[dict, np.random.Generator], RawData]

N_SAMPLES = Rule("int", 4, MAX_SAMPLES)
NOISE = Rule("float", 0, 10)
LENGTH = Rule("int", 2, 1000)
CLASSES = Rule("int", 2, 100)
SHAPE_NAMES = ["circle", "square", "triangle"]


@dataclass(frozen=True)
class BuiltinSpec:
    """One built-in dataset: its parameters (name -> default), a one-sentence doc and a generator."""

    name: str
    doc: str
    params: dict
    task_hint: str  # 'classification' | 'regression' | 'forecasting' | 'unlabeled'
    generate: Generator = field(repr=False)
    shapes_of: Callable[[dict], dict] = field(repr=False)
    rules: dict = field(default_factory=dict, repr=False)
    classes: int | str | None = None  # a count, the name of the param holding it, or None

    def num_classes(self, params: dict | None = None) -> int | None:
        if isinstance(self.classes, str):
            return int({**self.params, **(params or {})}[self.classes])
        return self.classes

    def shapes(self, params: dict | None = None) -> dict[str, tuple[int, ...]]:
        return self.shapes_of({**self.params, **(params or {})})


def _labelled(x: np.ndarray, y: np.ndarray, classes: int, names=None) -> RawData:
    return RawData(x.astype(np.float32), y.astype(np.int64), "classification", classes,
                   class_names=names)


def _noisy(points: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    return points + rng.normal(0.0, noise, points.shape) if noise else points


def _polar(radius: np.ndarray, angle: np.ndarray) -> np.ndarray:
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


# ---- 2-D classification --------------------------------------------------------------------

def _spirals(p: dict, rng: np.random.Generator) -> RawData:
    y = balanced_labels(p["n_samples"], 2)
    t = rng.uniform(0.0, 1.0, y.shape)
    points = _polar(0.1 + 1.3 * t, 3.0 * math.pi * t + math.pi * y)
    return _labelled(_noisy(points, p["noise"], rng), y, 2)


def _moons(p: dict, rng: np.random.Generator) -> RawData:
    y = balanced_labels(p["n_samples"], 2)
    t = rng.uniform(0.0, math.pi, y.shape)
    outer = np.stack([np.cos(t), np.sin(t)], axis=1)
    inner = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)
    points = np.where(y[:, None] == 0, outer, inner) - np.array([0.5, 0.25])
    return _labelled(_noisy(points, p["noise"], rng), y, 2)


def _circles(p: dict, rng: np.random.Generator) -> RawData:
    y = balanced_labels(p["n_samples"], 2)
    angle = rng.uniform(0.0, 2 * math.pi, y.shape)
    points = _polar(np.where(y == 0, 1.0, 0.5), angle)
    return _labelled(_noisy(points, p["noise"], rng), y, 2)


def _xor(p: dict, rng: np.random.Generator) -> RawData:
    """Uniform points in the square, away from the axes; class 1 where the signs differ."""
    y = balanced_labels(p["n_samples"], 2)
    first = rng.choice([-1.0, 1.0], y.shape)
    second = np.where(y == 1, -first, first)
    magnitude = rng.uniform(0.05, 1.0, (len(y), 2))
    points = magnitude * np.stack([first, second], axis=1)
    return _labelled(_noisy(points, p["noise"], rng), y, 2)


def _blobs(p: dict, rng: np.random.Generator) -> RawData:
    k = p["classes"]
    if p["n_samples"] < k:
        raise DataError(f"dataset.params.n_samples: must be at least classes ({k}) for 'blobs'; "
                        f"got {p['n_samples']}")
    y = balanced_labels(p["n_samples"], k)
    angles = rng.uniform(0.0, 2 * math.pi) + 2 * math.pi * np.arange(k) / k
    centres = _polar(np.ones(k), angles)
    return _labelled(_noisy(centres[y], p["noise"], rng), y, k)


# ---- regression and sequences ----------------------------------------------------------------

def _sine(p: dict, rng: np.random.Generator) -> RawData:
    x = rng.uniform(-math.pi, math.pi, (p["n_samples"], 1))
    y = _noisy(np.sin(x), p["noise"], rng)
    return RawData(x.astype(np.float32), y.astype(np.float32), "regression",
                   task_hint="regression")


def _sine_sequence(p: dict, rng: np.random.Generator) -> RawData:
    """Windows of sines with random period (8..32 steps), phase and amplitude; y = next value."""
    n, length = p["n_samples"], p["length"]
    period = rng.uniform(8.0, 32.0, (n, 1))
    phase = rng.uniform(0.0, 2 * math.pi, (n, 1))
    amplitude = rng.uniform(0.5, 1.0, (n, 1))
    steps = np.arange(length + 1)
    series = _noisy(amplitude * np.sin(2 * math.pi * steps / period + phase), p["noise"], rng)
    x = series[:, :length, None].astype(np.float32)
    y = series[:, length:].astype(np.float32)
    return RawData(x, y, "regression", task_hint="forecasting")


def _parity(p: dict, rng: np.random.Generator) -> RawData:
    bits = rng.integers(0, 2, (p["n_samples"], p["length"]))
    return _labelled(bits[:, :, None], bits.sum(axis=1) % 2, 2)


def _first_input(p: dict, rng: np.random.Generator) -> RawData:
    """Sequences of random -1/+1 steps; the class is the FIRST step (0 for -1, 1 for +1), so a
    model must carry it past every later step. ``noise`` adds Gaussian noise to every step."""
    y = balanced_labels(p["n_samples"], 2)
    steps = rng.choice([-1.0, 1.0], (len(y), p["length"]))
    steps[:, 0] = 2.0 * y - 1.0
    return _labelled(_noisy(steps, p["noise"], rng)[:, :, None], y, 2, ["-1", "+1"])


def _marker_copy(p: dict, rng: np.random.Generator) -> RawData:
    """Sequences of random tokens, one-hot (``vocab`` channels), with a last channel that is 1 at
    one random step (the marker) and 0 elsewhere; the class is the token at the marked step."""
    n, length, vocab = p["n_samples"], p["length"], p["vocab"]
    y = balanced_labels(n, vocab)
    tokens = rng.integers(0, vocab, (n, length))
    marked = rng.integers(0, length, n)
    rows = np.arange(n)
    tokens[rows, marked] = y
    x = np.zeros((n, length, vocab + 1), dtype=np.float32)
    x[rows[:, None], np.arange(length)[None, :], tokens] = 1.0
    x[rows, marked, vocab] = 1.0
    return _labelled(x, y, vocab, [str(t) for t in range(vocab)])


# ---- images ----------------------------------------------------------------------------------

def _digits_table() -> np.ndarray:
    """The rows of scikit-learn's bundled digits.csv.gz (64 pixels, then the label)."""
    import gzip
    import importlib.util
    import os

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("dataset.name: 'digits' needs scikit-learn, which is not installed")
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    if os.path.exists(path):
        with gzip.open(path, "rt") as fh:
            return np.loadtxt(fh, delimiter=",")
    from sklearn.datasets import load_digits  # fallback for a differently packaged sklearn

    bunch = load_digits()
    return np.concatenate([bunch.data, bunch.target[:, None]], axis=1)


def _digits(p: dict, rng: np.random.Generator) -> RawData:
    table = _digits_table()
    x = (table[:, :64] / 16.0).reshape(-1, 1, 8, 8)
    return _labelled(x, table[:, 64].astype(np.int64), 10, [str(d) for d in range(10)])


_GRID = np.mgrid[0:28, 0:28].astype(np.float32) + 0.5  # (2, 28, 28): row and column centres


def _shape_masks(kind: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n filled shapes of one kind, random half-size 4..11 px and random position, (n, 28, 28)."""
    half = rng.uniform(4.0, 11.0, (n, 1, 1)).astype(np.float32)
    cy = rng.uniform(0.0, 1.0, (n, 1, 1)).astype(np.float32) * (28 - 2 * half) + half
    cx = rng.uniform(0.0, 1.0, (n, 1, 1)).astype(np.float32) * (28 - 2 * half) + half
    dy, dx = _GRID[0] - cy, _GRID[1] - cx
    if kind == 0:
        return dy * dy + dx * dx <= half * half
    if kind == 1:
        side = 0.85 * half
        return (np.abs(dx) <= side) & (np.abs(dy) <= side)
    return (dy <= half) & (np.abs(dx) <= (dy + half) / 2)  # apex up, base at the bottom


def _shapes(p: dict, rng: np.random.Generator) -> RawData:
    y = balanced_labels(p["n_samples"], 3)
    images = np.empty((len(y), 28, 28), dtype=np.float32)
    for kind in range(3):
        where = np.flatnonzero(y == kind)
        masks = _shape_masks(kind, len(where), rng)
        brightness = rng.uniform(0.7, 1.0, (len(where), 1, 1)).astype(np.float32)
        images[where] = masks * brightness
    if p["noise"]:
        images += rng.normal(0.0, p["noise"], images.shape).astype(np.float32)
        np.clip(images, 0.0, 1.0, out=images)
    return _labelled(images[:, None], y, 3, list(SHAPE_NAMES))


DIRECTIONS = ["right", "left", "down", "up"]
_STEPS = np.array([[0, 1], [0, -1], [1, 0], [-1, 0]], dtype=np.float32)  # (dy, dx) per frame


def _moving_shapes(p: dict, rng: np.random.Generator) -> RawData:
    """Short videos of one shape (circle, square or triangle, any of them in every class)
    moving one pixel per frame; the class is the direction it moves. One frame alone cannot
    tell the class: a model must compare frames."""
    n, frames, size = p["n_samples"], p["frames"], p["size"]
    if frames - 1 > size - 6:
        raise DataError(f"dataset.params.frames: {frames} frames of one pixel each do not fit "
                        f"frames of size {size}; use at most {size - 5} frames or a larger size")
    y = balanced_labels(n, 4)
    kind = rng.integers(0, 3, n)
    half = rng.uniform(1.5, max(1.6, min(3.5, (size - frames) / 2 - 0.5)), n).astype(np.float32)
    travel = frames - 1
    lo, hi = half + 0.5, size - half - 0.5  # the centre's range that keeps the shape inside
    step = _STEPS[y]  # (n, 2)
    start = np.empty((n, 2), dtype=np.float32)
    for axis in range(2):
        moving = step[:, axis] != 0
        low = np.where(moving & (step[:, axis] < 0), lo + travel, lo)
        high = np.where(moving & (step[:, axis] > 0), hi - travel, hi)
        start[:, axis] = low + rng.uniform(0.0, 1.0, n).astype(np.float32) * (high - low)
    t = np.arange(frames, dtype=np.float32)
    centre = start[:, None, :] + t[None, :, None] * step[:, None, :]  # (n, T, 2)
    grid = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dy = grid[0][None, None] - centre[..., 0, None, None]
    dx = grid[1][None, None] - centre[..., 1, None, None]
    h = half[:, None, None, None]
    masks = np.where((kind == 0)[:, None, None, None], dy * dy + dx * dx <= h * h,
                     np.where((kind == 1)[:, None, None, None],
                              (np.abs(dx) <= 0.85 * h) & (np.abs(dy) <= 0.85 * h),
                              (dy <= h) & (dy >= -h) & (np.abs(dx) <= (dy + h) / 2)))
    brightness = rng.uniform(0.7, 1.0, (n, 1, 1, 1)).astype(np.float32)
    video = masks.astype(np.float32) * brightness
    if p["noise"]:
        video += rng.normal(0.0, p["noise"], video.shape).astype(np.float32)
        np.clip(video, 0.0, 1.0, out=video)
    return _labelled(video[:, :, None], y, 4, list(DIRECTIONS))


# ---- unlabelled ------------------------------------------------------------------------------

def _ring(p: dict, rng: np.random.Generator) -> RawData:
    component = rng.integers(0, 8, p["n_samples"])
    points = _polar(np.full(len(component), 2.0), 2 * math.pi * component / 8)
    x = _noisy(points, p["noise"], rng).astype(np.float32)
    return RawData(x, None, "unlabeled", task_hint="unlabeled")


# ---- the registry ----------------------------------------------------------------------------

def _point_shapes(p: dict) -> dict:
    return {"x": (2,), "y": ()}


def _spec(name, doc, generate, task, shapes_of, count=None, **params) -> BuiltinSpec:
    rules = {"n_samples": N_SAMPLES, "noise": NOISE, "length": LENGTH, "classes": CLASSES,
             "vocab": CLASSES}
    if name == "shapes":
        rules = {**rules, "n_samples": Rule("int", 4, 100_000)}
    if name == "moving_shapes":
        rules = {**rules, "n_samples": Rule("int", 4, 50_000), "frames": Rule("int", 2, 32),
                 "size": Rule("int", 8, 64)}
    return BuiltinSpec(name, doc, dict(params), task, generate, shapes_of,
                       {k: rules[k] for k in params}, count)


BUILTIN_DATASETS: dict[str, BuiltinSpec] = {s.name: s for s in [
    _spec("spirals", "Two interleaved spirals in the plane, one class each.", _spirals,
          "classification", _point_shapes, 2, n_samples=1000, noise=0.1),
    _spec("moons", "Two interleaving half circles, one class each.", _moons,
          "classification", _point_shapes, 2, n_samples=1000, noise=0.1),
    _spec("circles", "A small circle inside a large one, one class each.", _circles,
          "classification", _point_shapes, 2, n_samples=1000, noise=0.05),
    _spec("xor", "Points in a square labelled by whether the signs of x1 and x2 differ.", _xor,
          "classification", _point_shapes, 2, n_samples=1000, noise=0.05),
    _spec("blobs", "Gaussian clusters around a circle, one class per cluster.", _blobs,
          "classification", _point_shapes, "classes", n_samples=1000, noise=0.2, classes=2),
    _spec("sine", "Noisy samples of y = sin(x) for x in [-pi, pi].", _sine,
          "regression", lambda p: {"x": (1,), "y": (1,)}, n_samples=1000, noise=0.05),
    _spec("sine_sequence", "Windows of noisy sine waves; predict the next value.",
          _sine_sequence, "forecasting", lambda p: {"x": (p["length"], 1), "y": (1,)},
          n_samples=1000, noise=0.05, length=20),
    _spec("parity", "Random bit strings labelled by the parity of their ones.", _parity,
          "classification", lambda p: {"x": (p["length"], 1), "y": ()}, 2,
          n_samples=2000, length=12),
    _spec("first_input", "Sequences of random -1/+1 steps labelled by their first step, "
          "which a model must remember to the end.", _first_input, "classification",
          lambda p: {"x": (p["length"], 1), "y": ()}, 2, n_samples=2000, length=50, noise=0.0),
    _spec("marker_copy", "One-hot token sequences with one step flagged by a marker channel; "
          "the class is the flagged token.", _marker_copy, "classification",
          lambda p: {"x": (p["length"], p["vocab"] + 1), "y": ()}, "vocab",
          n_samples=2000, length=20, vocab=8),
    _spec("digits", "scikit-learn's bundled 8x8 handwritten digits, 1,797 images.", _digits,
          "classification", lambda p: {"x": (1, 8, 8), "y": ()}, 10),
    _spec("shapes", "Generated 28x28 images of circles, squares and triangles.", _shapes,
          "classification", lambda p: {"x": (1, 28, 28), "y": ()}, 3,
          n_samples=1500, noise=0.05),
    _spec("moving_shapes", "Short videos of a shape moving across the frame; the class is "
          "its direction (right, left, down, up).", _moving_shapes, "classification",
          lambda p: {"x": (p["frames"], 1, p["size"], p["size"]), "y": ()}, 4,
          n_samples=1200, frames=8, size=16, noise=0.05),
    _spec("ring", "A mixture of eight Gaussians on a circle of radius 2 (no labels).", _ring,
          "unlabeled", lambda p: {"x": (2,)}, n_samples=1000, noise=0.05),
]}
