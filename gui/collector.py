"""Python's cycle collector beside a big, long-lived object graph (the window of a 5,000-node
graph holds some 300k objects: Qt wrappers, canvas items, torch, pyqtgraph).

A full collection walks every tracked object with the interpreter lock held: at that size a
pause of 50-100 ms, taken at random while the user pans or drags. :func:`settled` runs a
block of work (building a document's canvases) with the collector off, then collects once
and *freezes* what is alive (``gc.freeze``): later collections walk only what was made since,
and garbage keeps being collected as usual. The freeze is undone (``gc.unfreeze``) before the
next document replaces this one, so the previous document's objects can be collected; a
training run (gui.training.controller) freezes on top and, when it ends, :func:`run_ended`
puts the document's freeze back after one collection.
"""
from __future__ import annotations

import contextlib
import gc

_HOLDS: set[str] = set()  # "document", "training"
_DEPTH = [0]  # settled() blocks open (reading the file, then building the canvases)
_HELD = [False]  # the outermost block found a document's freeze (and undid it)
BIG = 500  # objects of a graph with fewer nodes than this are few: no freeze needed
_BIG = [False, False]  # set by mark_big() inside the block: [a document was built, it is big]


def mark_big(nodes: int) -> None:
    """Inside :func:`settled`: a document of ``nodes`` nodes was built (frozen if big)."""
    _BIG[0] = True
    _BIG[1] = _BIG[1] or nodes >= BIG


@contextlib.contextmanager
def settled(reason: str = "document"):
    """Run the block with the collector off; then, for a big document (:func:`mark_big`),
    collect once and freeze what is alive. Nested blocks settle once, when the outermost
    ends."""
    _DEPTH[0] += 1
    if _DEPTH[0] == 1:
        _BIG[:] = [False, False]
        _HELD[0] = reason in _HOLDS
        if _HELD[0]:
            _HOLDS.discard(reason)
            gc.unfreeze()  # what the previous document froze can be collected again
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        _DEPTH[0] -= 1
        if was_enabled:
            gc.enable()
        # a big document came, or none came (a failed open) and the big one stays
        if _DEPTH[0] == 0 and (_BIG[1] or (_HELD[0] and not _BIG[0])):
            gc.collect()
            gc.freeze()
            _HOLDS.add(reason)


def run_started() -> None:
    """A training run starts: what is alive now stays out of collections while it runs."""
    gc.freeze()
    _HOLDS.add("training")


def run_ended() -> None:
    """A training run ended: its objects can be collected again; the document's freeze is put
    back after one collection (so the run's garbage is not frozen with it)."""
    _HOLDS.discard("training")
    gc.unfreeze()
    if _HOLDS:
        gc.collect()
        gc.freeze()
