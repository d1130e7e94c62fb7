"""The window's command line, start-up, settings and themes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage, QPalette
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.examples import EXAMPLES_DIR
from gui import app as gui_app
from gui.main_window import MainWindow
from gui.settings import Settings
from gui.theme import apply_theme

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(tmp_path / "data"))
    # closing the last window must not quit the test's application (later tests could no
    # longer activate windows)
    QApplication.instance().setQuitOnLastWindowClosed(False)
    for name in ("critical", "warning", "question"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(
            lambda *a, **k: pytest.fail(f"unexpected message box: {a[1:3]}")))
    yield
    apply_theme(QApplication.instance(), "light")  # later tests expect the default theme


def test_screenshot_of_the_real_window(qapp, tmp_path):
    shot = tmp_path / "shots" / "gan.png"
    code = gui_app.main([str(EXAMPLES_DIR / "gan_ring.layerlab.json"), "--screenshot", str(shot),
                         "--quit-after", "0.4", "--theme", "dark"])
    assert code == 0
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1400, 860)
    assert image.pixelColor(700, 300).lightness() < 80  # the dark canvas


def test_a_file_that_cannot_be_opened_is_reported_and_the_default_shown(qapp, tmp_path, capsys):
    missing = tmp_path / "nowhere.layerlab.json"
    shot = tmp_path / "shot.png"
    assert gui_app.main([str(missing), "--screenshot", str(shot), "--quit-after", "0.2"]) == 0
    err = capsys.readouterr().err
    assert "nowhere.layerlab.json" in err and "no such file" in err
    assert "Traceback" not in err and shot.exists()


def test_start_without_a_project_shows_the_default_example(qtbot):
    window = gui_app.create_window(gui_app.parse_args(["--quit-after", "1"]))
    qtbot.addWidget(window)
    assert window.document.project.name == "CNN on digits"
    assert window.document.path is None  # saving must not overwrite the shipped example
    assert "CNN on digits" in window.windowTitle()
    assert len(window.current_canvas().graph) == 12


def test_arguments():
    args = gui_app.parse_args(["p.layerlab.json", "--train", "--theme", "dark",
                               "--quit-after", "2.5"])
    assert (args.project, args.train, args.theme, args.quit_after) == \
        ("p.layerlab.json", True, "dark", 2.5)
    with pytest.raises(SystemExit):
        gui_app.parse_args(["--theme", "purple"])


def test_the_editor_starts_without_torch():
    code = ("import sys; import gui.app, gui.main_window, gui.files, widgets.inspector; "
            "from gui.document import Document; from engine.examples import DEFAULT_EXAMPLE; "
            "Document.open(DEFAULT_EXAMPLE); print('torch' in sys.modules)")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_theme_switch_is_remembered_and_follows_the_canvas(qtbot):
    window = MainWindow(Settings(), theme="light")
    qtbot.addWidget(window)
    window.set_document(gui_app.initial_document(None)[0])
    window.actions_["dark"].trigger()
    assert window.theme_name == "dark" and Settings().theme() == "dark"
    assert QApplication.instance().palette().color(QPalette.ColorRole.Window).lightness() < 80
    assert window.current_canvas().scene.theme.dark
    window.toggle_dark(False)
    assert Settings().theme() == "light" and not window.current_canvas().scene.theme.dark


def test_window_layout_is_remembered(qtbot):
    first = MainWindow(Settings(), theme="light")
    qtbot.addWidget(first)
    first.set_document(gui_app.initial_document(None)[0])
    first.show()
    first.resize(700, 520)  # inside the offscreen screen (800×600)
    first.summary_dock.hide()
    size = (first.width(), first.height())  # the docks may keep it wider than asked
    assert first.close()
    second = MainWindow(Settings(), theme="light")
    qtbot.addWidget(second)
    second.restore_layout()
    second.show()
    assert (second.width(), second.height()) == size
    assert not second.summary_dock.isVisible()


def test_shortcuts_use_the_standard_keys(qtbot):
    window = MainWindow(Settings(), theme="light")
    qtbot.addWidget(window)
    keys = {name: window.actions_[name].shortcut().toString() for name in
            ("new", "open", "save", "undo", "copy", "paste", "duplicate", "auto_layout",
             "zoom_fit")}
    assert keys == {"new": "Ctrl+N", "open": "Ctrl+O", "save": "Ctrl+S", "undo": "Ctrl+Z",
                    "copy": "Ctrl+C", "paste": "Ctrl+V", "duplicate": "Ctrl+D",
                    "auto_layout": "Ctrl+L", "zoom_fit": "Ctrl+0"}
    menus = [a.text() for a in window.menuBar().actions()]
    assert menus == ["&File", "&Edit", "&View", "&Arrange", "&Training", "&Help"]
