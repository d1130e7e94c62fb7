"""Plain-Python change events: the engine's stand-in for Qt signals."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable


class Event:
    """A list of callbacks called in order by :meth:`emit`."""

    def __init__(self, name: str):
        self.name = name
        self._callbacks: list[Callable] = []
        self._blocked = 0

    def connect(self, callback: Callable) -> Callable:
        self._callbacks.append(callback)
        return callback

    def disconnect(self, callback: Callable) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args) -> None:
        if self._blocked:
            return
        for callback in list(self._callbacks):
            callback(*args)

    @contextmanager
    def blocked(self):
        """Silence this event inside a ``with`` block (to avoid feedback loops)."""
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1


class Events:
    """A named group of :class:`Event` s, reachable as attributes."""

    def __init__(self, *names: str):
        self._names = names
        for name in names:
            setattr(self, name, Event(name))

    def __iter__(self):
        return (getattr(self, n) for n in self._names)
