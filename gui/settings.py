"""The window's remembered state (QSettings): geometry, dock layout, theme, recent files.

``LAYERLAB_SETTINGS_DIR`` redirects the settings to an INI file in that folder (tests and
benchmarks use it so they never touch the user's settings); ``LAYERLAB_DATA_DIR`` does the same
for the folder that holds recovery files and cached thumbnails.
"""
from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

ORGANIZATION = "Layerlab"
APPLICATION = "Layerlab"
MAX_RECENT = 10


def data_dir() -> Path:
    """Where recovery files and thumbnails live (created on demand)."""
    override = os.environ.get("LAYERLAB_DATA_DIR")
    if override:
        path = Path(override)
    else:
        location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
        path = Path(location) if location else Path.home() / ".layerlab"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Settings:
    """Typed access to the few things Layerlab remembers between runs."""

    def __init__(self):
        override = os.environ.get("LAYERLAB_SETTINGS_DIR")
        if override:
            self._q = QSettings(str(Path(override) / "layerlab.ini"), QSettings.Format.IniFormat)
        else:
            self._q = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                                ORGANIZATION, APPLICATION)

    @property
    def qsettings(self) -> QSettings:
        return self._q

    def sync(self) -> None:
        self._q.sync()

    # -- theme ---------------------------------------------------------------------------------
    def theme(self) -> str:
        value = self._q.value("view/theme", "light")
        return value if value in ("light", "dark") else "light"

    def set_theme(self, name: str) -> None:
        self._q.setValue("view/theme", name)

    # -- window --------------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        return self._bytes("window/geometry")

    def window_state(self) -> QByteArray | None:
        return self._bytes("window/state")

    def set_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self._q.setValue("window/geometry", geometry)
        self._q.setValue("window/state", state)

    def _bytes(self, key: str) -> QByteArray | None:
        value = self._q.value(key)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    # -- files ---------------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        value = self._q.value("files/recent", [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list
            value = [value]
        return [str(v) for v in value or [] if v]

    def add_recent_file(self, path: str | os.PathLike) -> list[str]:
        path = str(Path(path).resolve())
        recent = [p for p in self.recent_files() if p != path]
        recent.insert(0, path)
        self._q.setValue("files/recent", recent[:MAX_RECENT])
        return recent[:MAX_RECENT]

    def remove_recent_file(self, path: str) -> None:
        self._q.setValue("files/recent", [p for p in self.recent_files() if p != path])

    def clear_recent_files(self) -> None:
        self._q.setValue("files/recent", [])

    def last_dir(self) -> str:
        return str(self._q.value("files/last_dir", "") or "")

    def set_last_dir(self, folder: str | os.PathLike) -> None:
        self._q.setValue("files/last_dir", str(folder))
