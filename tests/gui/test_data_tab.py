"""The Data tab's memory choice, augmentation editor and preview, driven through its widgets."""
from __future__ import annotations

import copy

import pytest
from PySide6.QtCore import Qt

from engine.examples import EXAMPLES_DIR
from engine.project import load_project, parse_project, project_to_dict
from gui.document import Document
from gui.main_window import MainWindow
from gui.settings import Settings


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(tmp_path / "data"))


def open_digits(qtbot, **dataset) -> MainWindow:
    data = project_to_dict(load_project(EXAMPLES_DIR / "cnn_digits.layerlab.json"))
    data["dataset"].update(dataset)
    window = MainWindow(Settings(), theme="light", interactive=True)
    qtbot.addWidget(window, before_close_func=lambda w: setattr(w, "interactive", False))
    window.set_document(Document(parse_project(copy.deepcopy(data), "test project")))
    window.show()
    qtbot.waitExposed(window)
    window.training.training_dock.raise_()
    window.training.panel.tabs.setCurrentIndex(0)
    return window


def test_the_memory_choice_is_an_undoable_edit_and_says_why(qtbot):
    window = open_digits(qtbot)
    doc, data = window.document, window.training.panel.data
    qtbot.waitUntil(lambda: data.memory_note.text().startswith("In memory"), timeout=10_000)
    assert data.memory_note.text() == "In memory: 0.4 MB fits the memory budget of 2048 MB"
    data.memory.setFocus()
    qtbot.keyClick(data.memory, Qt.Key.Key_End)  # the last choice: Streamed
    assert doc.project.dataset["params"]["in_memory"] is False
    qtbot.waitUntil(lambda: data.memory_note.text().startswith("Streamed"), timeout=10_000)
    assert "in_memory: false" in data.memory_note.text()
    doc.undo_stack.undo()
    assert "in_memory" not in doc.project.dataset.get("params", {})
    assert data.memory.currentData() == "auto"
    data.budget.setFocus()
    data.budget.selectAll()
    qtbot.keyClicks(data.budget, "512")
    qtbot.keyClick(data.budget, Qt.Key.Key_Return)
    assert doc.project.dataset["params"]["memory_budget_mb"] == 512
    data.workers.setFocus()
    data.workers.selectAll()
    qtbot.keyClicks(data.workers, "2")
    qtbot.keyClick(data.workers, Qt.Key.Key_Return)
    assert doc.project.dataset["params"]["workers"] == 2


def test_augmentations_are_added_edited_removed_and_previewed(qtbot):
    window = open_digits(qtbot)
    doc, data = window.document, window.training.panel.data
    form = data.augment
    assert not form.rows.isVisible() and not form.remove.isEnabled()
    flip = next(a for a in form.add.menu().actions() if a.text() == "RandomHorizontalFlip")
    flip.trigger()
    assert doc.project.dataset["augment"] == [{"type": "RandomHorizontalFlip", "p": 0.5}]
    assert form.rows.count() == 1 and form.rows.item(0).text() == "RandomHorizontalFlip · p 0.5"
    spin = form.findChild(type(data.val_split), "augmentArg_p")
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, "1")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert doc.project.dataset["augment"] == [{"type": "RandomHorizontalFlip", "p": 1.0}]
    qtbot.waitUntil(lambda: data.preview.built, timeout=5_000)
    preview = data.preview.content
    qtbot.waitUntil(lambda: preview.has_data and preview.pairs, timeout=10_000)
    images = preview.grid.images
    assert (images[1] == images[0][:, ::-1]).all()  # each copy beside its original, flipped
    assert preview.grid.cols % 2 == 0
    qtbot.mouseClick(form.remove, Qt.MouseButton.LeftButton)
    assert "augment" not in doc.project.dataset
    doc.undo_stack.undo()
    assert doc.project.dataset["augment"] == [{"type": "RandomHorizontalFlip", "p": 1.0}]
    assert form.rows.count() == 1


def test_a_bad_augmentation_is_named_in_the_preview(qtbot):
    window = open_digits(qtbot, augment=[{"type": "Blur"}])
    data = window.training.panel.data
    qtbot.waitUntil(lambda: data.preview.built, timeout=5_000)
    hint = data.preview.content.hint
    qtbot.waitUntil(lambda: "Blur" in hint.text(), timeout=10_000)
    assert "dataset.augment[0].type: unknown transform 'Blur'" in hint.text()
