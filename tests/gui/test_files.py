"""Files: save and reopen, broken files, the unsaved-changes prompt, autosave and recovery,
recent files and the examples gallery."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from engine.examples import EXAMPLES_DIR, example_paths
from engine.project import load_project, project_to_dict
from gui import files
from gui.document import Document
from gui.main_window import MainWindow
from gui.settings import Settings

CNN = EXAMPLES_DIR / "cnn_digits.layerlab.json"


class Boxes:
    """Records message boxes instead of showing them; answers with ``answer``."""

    def __init__(self, monkeypatch):
        self.calls: list[tuple[str, str, str]] = []
        self.answer = QMessageBox.StandardButton.Cancel
        for kind in ("critical", "warning", "question", "information"):
            monkeypatch.setattr(QMessageBox, kind, staticmethod(self._record(kind)))

    def _record(self, kind):
        def box(parent, title, text, *args, **kwargs):
            self.calls.append((kind, title, text))
            return self.answer
        return box


@pytest.fixture
def boxes(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(tmp_path / "data"))
    # closing the last window must not quit the test's application (later tests could no
    # longer activate windows)
    QApplication.instance().setQuitOnLastWindowClosed(False)
    return Boxes(monkeypatch)


@pytest.fixture
def window(qtbot, boxes):
    w = MainWindow(Settings(), theme="light")
    qtbot.addWidget(w, before_close_func=lambda w: setattr(w, "interactive", False))
    w.set_document(Document.open(CNN))
    w.show()
    qtbot.waitExposed(w)
    return w


def make_change(window) -> None:
    canvas = window.current_canvas()
    canvas.scene.select_nodes(["fc1"])
    window.inspector.editors["out_features"].submit(40)


def test_save_as_then_reopen_gives_the_same_project(window, tmp_path, monkeypatch):
    make_change(window)
    target = tmp_path / "mine"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(target), "")))
    window.actions_["save_as"].trigger()
    saved = tmp_path / "mine.layerlab.json"
    assert saved.exists() and window.document.path == saved
    assert not window.isWindowModified()
    assert project_to_dict(load_project(saved)) == project_to_dict(window.document.project)
    assert window.settings.recent_files()[0] == str(saved.resolve())
    window.open_path(saved)
    assert window.document.graph("model").node("fc1").params["out_features"] == 40
    assert json.loads(json.dumps(project_to_dict(window.document.project))) == \
        json.loads(saved.read_text())


def test_a_broken_file_is_reported_and_the_document_kept(window, boxes, tmp_path):
    broken = tmp_path / "broken.layerlab.json"
    broken.write_text('{"format": "layerlab-project", "models": {"model": {"nodes": [{"id": 1}]}')
    make_change(window)
    document, before = window.document, project_to_dict(window.document.project)
    boxes.answer = QMessageBox.StandardButton.Discard  # the unsaved-changes question first
    assert not window.open_path(broken)
    kind, title, text = boxes.calls[-1]
    assert kind == "critical" and "broken.layerlab.json" in text and "JSON" in text
    assert window.document is document and project_to_dict(document.project) == before
    assert window.current_canvas().graph is document.graph("model")


def test_closing_with_unsaved_changes_asks(window, boxes, qtbot):
    make_change(window)
    boxes.answer = QMessageBox.StandardButton.Cancel
    assert not window.close()
    assert boxes.calls[-1][:2] == ("warning", "Unsaved changes") and window.isVisible()
    boxes.answer = QMessageBox.StandardButton.Discard
    assert window.close()
    assert len(boxes.calls) == 2


def test_close_with_save_writes_the_file(window, boxes, tmp_path):
    target = tmp_path / "saved.layerlab.json"
    window.document.save(target)
    make_change(window)
    boxes.answer = QMessageBox.StandardButton.Save
    assert window.close()
    assert load_project(target).models["model"].node("fc1").params["out_features"] == 40


def test_autosave_writes_a_recovery_file_and_a_clean_save_removes_it(window, tmp_path):
    saver = window.autosaver
    assert saver.timer.interval() == 30_000 and saver.timer.isActive()
    assert not saver.autosave()  # nothing to save yet
    make_change(window)
    assert saver.autosave() and saver.file.exists()
    data = json.loads(saver.file.read_text())
    assert data["project"]["models"]["model"]["nodes"][8]["params"]["out_features"] == 40
    assert files.find_recovery_files() == []  # this process is alive: not a crash
    window.document.save(tmp_path / "x.layerlab.json")
    assert not saver.file.exists()


def test_recovery_after_a_crash_is_offered_and_restores(window, boxes, tmp_path):
    make_change(window)
    window.autosaver.autosave()
    data = json.loads(window.autosaver.file.read_text())
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    data["pid"] = int(dead)  # as if written by a Layerlab that has since crashed
    crashed = files.recovery_dir() / "autosave-crashed.json"
    crashed.write_text(json.dumps(data))
    window.document.undo_stack.setClean()
    window.set_document(Document.open(CNN))
    boxes.answer = QMessageBox.StandardButton.Yes
    assert window.offer_recovery()
    assert boxes.calls[-1][0] == "question"
    assert window.document.graph("model").node("fc1").params["out_features"] == 40
    assert window.isWindowModified() and not crashed.exists()
    assert window.autosaver.file.exists()  # the restored work is protected again at once


def test_recent_files_menu(window, tmp_path):
    path = tmp_path / "a.layerlab.json"
    window.document.save(path)
    window.open_path(path)
    window._fill_recent_menu()
    texts = [a.text() for a in window.actions_.recent_menu.actions()]
    assert any("a.layerlab.json" in t for t in texts)
    window.settings.clear_recent_files()
    assert window.settings.recent_files() == []


def test_examples_gallery_lists_every_example_with_a_thumbnail(window, qtbot):
    dialog = files.ExamplesDialog(window)
    qtbot.addWidget(dialog)
    assert dialog.list.count() == len(example_paths())
    for example in dialog.examples:
        assert example.description.endswith("."), example.path.name
    dialog.render_all()
    thumb = files.example_thumbnail(dialog.examples[0].path)
    assert not thumb.isNull() and thumb.width() == files.THUMB_SIZE.width()
    image = thumb.toImage()
    corner, middle = image.pixelColor(2, 2), image.pixelColor(thumb.width() // 2,
                                                               thumb.height() // 2)
    colors = {image.pixelColor(x, thumb.height() // 2).name() for x in range(0, thumb.width(), 4)}
    assert len(colors) > 3 and (corner != middle or len(colors) > 3)  # something was drawn
    cached = list((files.data_dir() / "thumbnails").glob("*.png"))
    assert len(cached) == len(example_paths())
    dialog.list.setCurrentRow(2)
    assert dialog.selected_path() == dialog.examples[2].path


def test_opening_an_example_gives_an_untitled_copy(window, monkeypatch):
    monkeypatch.setattr(files.ExamplesDialog, "exec", lambda self: True)
    window.open_examples()
    assert window.document.path is None
    assert window.document.project.name == load_project(example_paths()[0]).name


def test_new_starts_an_untitled_project_with_an_input_and_an_output(window, boxes):
    make_change(window)
    boxes.answer = QMessageBox.StandardButton.Cancel
    window.actions_["new"].trigger()
    assert window.document.project.name == "CNN on digits"  # cancelled: nothing replaced
    boxes.answer = QMessageBox.StandardButton.Discard
    window.actions_["new"].trigger()
    graph = window.current_canvas().graph
    assert window.document.path is None and [n.type for n in graph.nodes()] == ["Input", "Output"]
    assert window.document.problems("model") == [] and not window.isWindowModified()
