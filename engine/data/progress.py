"""Progress of reading or indexing a large dataset, and cancelling it.

Readers call ``progress(done, total, what)`` now and then; the callback may raise
:class:`Cancelled` to stop the read.
"""
from __future__ import annotations

from engine.errors import DataError


class Cancelled(DataError):
    """Reading the dataset was cancelled by the user."""
