"""Test configuration: Qt runs headless and the repository root is importable."""
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pytest_sessionfinish(session, exitstatus):
    """Empty the clipboard a test filled: Qt would free its Python-made data at exit, after
    Python has shut down, and crash the process (exit code 139) after every test passed."""
    app = sys.modules.get("PySide6.QtWidgets")
    if app is not None and app.QApplication.instance() is not None:
        app.QApplication.clipboard().clear()
