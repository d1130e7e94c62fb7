"""File → Lessons in the real window: the gallery lists every lesson; opening one opens its
project as a copy and shows its note in the Lesson dock; its first step ("Press Train") is
followed with a real click, and the view it names is brought on screen by its button."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from engine.lessons import list_lessons
from gui.document import Document
from gui.lessons import LessonsDialog
from gui.main_window import MainWindow
from gui.settings import Settings

LEFT = Qt.MouseButton.LeftButton
LESSONS = list_lessons()


@pytest.fixture(autouse=True)
def isolated(gui_isolated):
    return gui_isolated


@pytest.fixture
def window(qtbot):
    w = MainWindow(Settings(), theme="light", interactive=True)
    qtbot.addWidget(w, before_close_func=lambda win: setattr(win, "interactive", False))
    w.set_document(Document.new())
    w.resize(1400, 900)
    w.show()
    qtbot.waitExposed(w)
    return w


def pick_in_gallery(qtbot, window, row: int) -> None:
    """File → Lessons…, select row ``row`` with the keyboard, press Open."""
    def choose():
        dialog = next(d for d in QApplication.topLevelWidgets()
                      if isinstance(d, LessonsDialog) and d.isVisible())
        assert dialog.list.count() == len(LESSONS)
        dialog.list.setFocus()
        for _ in range(row):
            qtbot.keyClick(dialog.list, Qt.Key.Key_Down)
        assert dialog.selected() is LESSONS[row] or dialog.selected().slug == LESSONS[row].slug
        assert LESSONS[row].title in dialog.preview.toPlainText()
        qtbot.mouseClick(dialog.open_button, LEFT)
    QTimer.singleShot(0, choose)
    window.actions_["lessons"].trigger()


@pytest.mark.parametrize("row", range(len(LESSONS)), ids=[l.slug for l in LESSONS])
def test_open_each_lesson_press_train_and_show_its_view(qtbot, window, row):
    lesson = LESSONS[row]
    pick_in_gallery(qtbot, window, row)
    ui = window.lessons_ui
    assert ui.dock.isVisible() and ui.panel.lesson.slug == lesson.slug
    note = ui.panel.note.toPlainText()
    assert lesson.title in note and lesson.steps[0] in note and lesson.figure in note
    assert window.document.project.path is None  # a copy: saving asks where
    first = lesson.projects[0]
    assert window.document.project.name == __import__("json").loads(
        first.read_text("utf-8"))["name"]

    training = window.training
    qtbot.mouseClick(training.panel.train_button, LEFT)  # step 1: press Train
    qtbot.waitUntil(lambda: training.controller.state in ("running", "done", "failed"),
                    timeout=60_000)
    if training.controller.state == "running":
        qtbot.waitUntil(lambda: training.controller.steps > 0, timeout=60_000)
        qtbot.mouseClick(training.panel.stop_button, LEFT)
    qtbot.waitUntil(lambda: training.controller.state in ("done", "failed"), timeout=60_000)

    qtbot.mouseClick(ui.panel.view_button, LEFT)
    if lesson.look_at in ("embedding", "attention"):
        assert window.try_ui.dock.isVisible()
    else:
        assert training.views_dock.isVisible()
        views = training.views
        tab = {"curves": None, "boundary": views.boundary, "samples": views.samples,
               "activations": views.activations, "gradients": views.gradients,
               "histograms": views.histograms, "confusion": views.confusion,
               "network": views.network}[lesson.look_at]
        if tab is not None:
            assert views.tabs.currentWidget() is tab

    if len(lesson.projects) > 1:  # the second project from the note's button; the note stays
        qtbot.mouseClick(ui.panel.project_buttons[1], LEFT)
        assert ui.panel.lesson.slug == lesson.slug and ui.dock.isVisible()
        assert window.document.project.name == __import__("json").loads(
            lesson.projects[1].read_text("utf-8"))["name"]


def test_a_comparing_lesson_overlays_its_two_runs(qtbot, window):
    """Lesson 8: train the GRU, open the RNN from the note, train it, press Compare the last
    two runs: both runs' curves are on the plot, in two colours."""
    row = next(i for i, l in enumerate(LESSONS) if l.slug.endswith("memory"))
    pick_in_gallery(qtbot, window, row)
    ui, training = window.lessons_ui, window.training
    assert ui.panel.compare_button.isVisible()

    def train() -> None:
        qtbot.mouseClick(training.panel.train_button, LEFT)
        qtbot.waitUntil(lambda: training.controller.state in ("done", "failed"),
                        timeout=120_000)
        assert training.controller.state == "done"

    train()
    qtbot.mouseClick(ui.panel.project_buttons[1], LEFT)  # the plain RNN
    assert window.document.project.runs_stem == f"lesson-{LESSONS[row].slug}"
    train()
    qtbot.mouseClick(ui.panel.compare_button, LEFT)
    curves = training.views.curves
    qtbot.waitUntil(lambda: len(curves.overlays) == 2, timeout=10_000)
    assert len(set(curves.overlay_colors.values())) == 2
    assert len(window.runs.panel.selected_runs()) == 2
    assert training.views_dock.isVisible()
