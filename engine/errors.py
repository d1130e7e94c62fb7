"""The error types the engine raises for user mistakes.

Every error a user can cause derives from :class:`LayerlabError`; front ends catch that one type
and show its message. Anything else escaping the engine is a bug.
"""
from __future__ import annotations


class LayerlabError(Exception):
    """Base of every error caused by the user's input (a file, a graph edit, a parameter)."""


class GraphError(LayerlabError):
    """A graph edit that cannot be done; the message names the nodes involved."""


class UnknownNodeError(GraphError):
    pass


class DuplicateNodeError(GraphError):
    pass


class UnknownLayerError(GraphError):
    pass


class PortError(GraphError):
    pass


class CycleError(GraphError):
    pass


class DuplicateEdgeError(GraphError):
    pass


class DataError(LayerlabError):
    """A dataset that cannot be built or a data file that cannot be read."""


class TrainingError(LayerlabError):
    """Training cannot start or had to stop (bad settings, non-finite loss, shape error)."""

    def __init__(self, message: str, node: str | None = None):
        super().__init__(message)
        self.node = node


class ExportError(LayerlabError):
    """A model cannot be exported or imported."""


def first_line(exc: BaseException | None) -> str:
    """The first non-empty line of an error's message, cut to 300 characters (its type's name
    when it has no message): what a one-line report of someone else's exception shows."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()] \
        if exc is not None else []
    return lines[0][:300] if lines else type(exc).__name__
