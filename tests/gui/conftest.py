"""What the window tests share."""
from __future__ import annotations

import gc

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QMessageBox


@pytest.fixture(autouse=True)
def _previous_windows_gone(qapp):
    """Delete what earlier tests left behind before this one starts: pytest-qt closes a test's
    widgets with ``deleteLater`` and Python's cycle collector frees their wrappers whenever it
    next runs, which would otherwise happen in the middle of the next test, while its training
    or sweep thread runs. Here both happen at a known moment with no thread of ours running."""
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    yield


@pytest.fixture
def gui_isolated(tmp_path, monkeypatch):
    """Settings, data and runs in a temporary folder; message boxes are recorded as
    ``(kind, title, text)``, never shown."""
    monkeypatch.setenv("LAYERLAB_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LAYERLAB_RUNS_DIR", str(tmp_path / "runs"))
    shown = []
    for name in ("critical", "warning", "question", "information"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(
            lambda *a, _n=name, **k: shown.append((_n, a[1], a[2])) or
            QMessageBox.StandardButton.Ok))
    return shown
