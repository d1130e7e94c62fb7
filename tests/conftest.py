"""Test configuration: Qt runs headless and the repository root is importable."""
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# runs recorded by tests (train commands, the window) go to a scratch folder, not beside the
# examples; tests about the run history set their own
if "LAYERLAB_RUNS_DIR" not in os.environ:
    import tempfile

    os.environ["LAYERLAB_RUNS_DIR"] = tempfile.mkdtemp(prefix="layerlab-test-runs-")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pytest_sessionfinish(session, exitstatus):
    """Empty the clipboard a test filled: Qt would free its Python-made data at exit, after
    Python has shut down, and crash the process (exit code 139) after every test passed."""
    app = sys.modules.get("PySide6.QtWidgets")
    if app is not None and app.QApplication.instance() is not None:
        app.QApplication.clipboard().clear()
