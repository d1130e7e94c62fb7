"""Lessons: one concept each, a bundled project (or a few) and a note that says what to do,
what to look at and what it means, with the number that proves it (measured by
``tests/engine/test_lessons.py``). The window's File → Lessons shows them (``gui/lessons.py``).

A lesson is ``resources/lessons/NN_slug.lesson.json`` (NN orders the gallery)::

    {"format": "layerlab-lesson", "version": 1, "title": ..., "concept": ...,
     "projects": ["file.layerlab.json", ...], "steps": ["Press Train ...", ...],
     "look_at": "boundary", "meaning": "...", "figure": "..."}

``projects`` name files beside the lesson; ``look_at`` one of :data:`LOOK_AT`, the view that
shows the concept. No Qt here.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import LayerlabError
from .examples import RESOURCES

LESSONS_DIR = RESOURCES / "lessons"
SUFFIX = ".lesson.json"
LOOK_AT = ("curves", "boundary", "samples", "activations", "gradients", "histograms",
           "confusion", "embedding", "attention", "network")
TEXT_FIELDS = ("title", "concept", "look_at", "meaning", "figure")


class LessonError(LayerlabError):
    """A lesson file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Lesson:
    path: Path
    slug: str
    title: str
    concept: str
    projects: tuple[Path, ...]
    steps: tuple[str, ...]
    look_at: str
    meaning: str
    figure: str


def load_lesson(path) -> Lesson:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LessonError(f"{path.name}: cannot be read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise LessonError(f"{path.name}: not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != "layerlab-lesson":
        raise LessonError(f"{path.name}: format: must be \"layerlab-lesson\"")
    for key in TEXT_FIELDS:
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise LessonError(f"{path.name}: {key}: must be a non-empty text")
    if data["look_at"] not in LOOK_AT:
        raise LessonError(f"{path.name}: look_at: must be one of {', '.join(LOOK_AT)}; got "
                          f"{data['look_at']!r}")
    for key in ("projects", "steps"):
        value = data.get(key)
        if not isinstance(value, list) or not value or \
                not all(isinstance(v, str) and v.strip() for v in value):
            raise LessonError(f"{path.name}: {key}: must be a non-empty list of texts")
    projects = []
    for name in data["projects"]:
        project = path.parent / name
        if not project.is_file():
            raise LessonError(f"{path.name}: projects: {name}: no such file beside the lesson")
        projects.append(project)
    slug = path.name[:-len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem
    return Lesson(path, slug, data["title"].strip(), data["concept"].strip(), tuple(projects),
                  tuple(s.strip() for s in data["steps"]), data["look_at"],
                  data["meaning"].strip(), data["figure"].strip())


def lesson_paths() -> list[Path]:
    return sorted(LESSONS_DIR.glob("*" + SUFFIX))


def list_lessons() -> list[Lesson]:
    """Every bundled lesson, in gallery order (LessonError names a broken one)."""
    return [load_lesson(p) for p in lesson_paths()]


def find_lesson(name: str) -> Lesson | None:
    """The lesson whose slug (``01_perceptron``, or without its number) or title is ``name``."""
    for lesson in list_lessons():
        if name in (lesson.slug, lesson.slug.split("_", 1)[-1], lesson.title):
            return lesson
    return None


# -- measures the lessons quote ------------------------------------------------------------------
RING_MODES, RING_RADIUS = 8, 2.0  # the ring dataset: eight Gaussians on a circle of radius 2


def ring_modes_covered(samples: np.ndarray, n_modes: int = RING_MODES,
                       radius: float = RING_RADIUS, within: float = 0.5,
                       least: float = 0.02) -> int:
    """How many of the ring's modes a GAN's samples cover: a mode counts when at least
    ``least`` of the samples lie within ``within`` of its centre (the ring dataset's modes sit
    at angles 2πk/8 on a circle of radius 2, with noise 0.05 by default)."""
    points = np.asarray(samples, dtype=np.float64).reshape(-1, 2)
    if not len(points):
        return 0
    angles = 2 * math.pi * np.arange(n_modes) / n_modes
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    distance = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=2)
    near = distance.min(axis=1) <= within
    nearest = distance.argmin(axis=1)
    counts = np.bincount(nearest[near], minlength=n_modes)
    return int((counts >= least * len(points)).sum())
