"""File → Lessons: a gallery of lessons, each a bundled project (or two) and a note that says
what to do, what to look at and what it means; the note stays open in the Lesson dock beside
the canvas while the learner follows it in the real window.

The lessons themselves (their files, projects and measured figures) are the engine's
(:mod:`engine.lessons`); this module only shows them and opens their projects and views.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QPushButton, QTextBrowser, QVBoxLayout, QWidget)

# the live view each lesson's "look_at" names: its tab title in the Live views dock (None:
# the curves, always on the left of that dock)
VIEW_TABS = {"curves": None, "boundary": "Boundary", "samples": "Samples",
             "activations": "Activations", "gradients": "Gradients",
             "histograms": "Histograms", "confusion": "Confusion",
             "network": "Network"}
VIEW_NAMES = {"curves": "loss curves", "boundary": "decision boundary", "samples": "samples",
              "activations": "activations", "gradients": "gradient flow",
              "histograms": "weight histograms", "confusion": "confusion matrix",
              "embedding": "embedding (Try → Whole set)", "attention": "attention maps (Try)",
              "network": "network view"}


def project_title(path: Path) -> str:
    """The name a project file gives itself (its file stem when it has none)."""
    try:
        name = json.loads(Path(path).read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        name = None
    return str(name) if name else Path(path).name.split(".")[0]


def note_html(lesson) -> str:
    """The lesson's note as the dock shows it: what to do, what to look at, what it means."""
    e = html.escape
    steps = "".join(f"<li>{e(s)}</li>" for s in lesson.steps)
    return (f"<h3 style='margin-bottom:2px'>{e(lesson.title)}</h3>"
            f"<p style='color:gray; margin-top:0'>{e(lesson.concept)}</p>"
            f"<p><b>What to do</b></p><ol>{steps}</ol>"
            f"<p><b>Look at</b>: the {e(VIEW_NAMES.get(lesson.look_at, lesson.look_at))}.</p>"
            f"<p><b>What it means</b>: {e(lesson.meaning)}</p>"
            f"<p><b>The proof</b>: {e(lesson.figure)}</p>")


class LessonPanel(QWidget):
    """The Lesson dock's content: the note, a button per project, and one for the view."""

    open_requested = Signal(object)  # a project Path
    view_requested = Signal(str)  # a look_at name
    compare_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("lessonPanel")
        self.lesson = None
        self.note = QTextBrowser()
        self.note.setObjectName("lessonNote")
        self.note.setOpenExternalLinks(False)
        self.hint = QLabel("File → Lessons… opens a lesson: a project to train and a note on "
                           "what to watch.")
        self.hint.setObjectName("mutedText")
        self.hint.setWordWrap(True)
        self.buttons = QVBoxLayout()
        self.compare_button = QPushButton("Compare the last two runs")
        self.compare_button.setObjectName("lessonCompare")
        self.compare_button.setToolTip("Overlay the curves of this lesson's two most recent "
                                       "runs on the loss and metric plots (Runs dock)")
        self.compare_button.clicked.connect(self.compare_requested)
        self.view_button = QPushButton()
        self.view_button.setObjectName("lessonShowView")
        self.view_button.clicked.connect(
            lambda: self.lesson is not None and self.view_requested.emit(self.lesson.look_at))
        self.project_buttons: list[QPushButton] = []
        box = QVBoxLayout(self)
        box.setContentsMargins(8, 6, 8, 6)
        box.addWidget(self.hint)
        box.addWidget(self.note, 1)
        box.addLayout(self.buttons)
        box.addWidget(self.compare_button)
        box.addWidget(self.view_button)
        self.show_lesson(None)

    def show_lesson(self, lesson) -> None:
        self.lesson = lesson
        for button in self.project_buttons:
            button.hide()
            button.deleteLater()
        self.project_buttons = []
        self.hint.setVisible(lesson is None)
        self.note.setVisible(lesson is not None)
        self.view_button.setVisible(lesson is not None)
        self.compare_button.setVisible(lesson is not None)
        if lesson is None:
            return
        self.note.setHtml(note_html(lesson))
        for i, path in enumerate(lesson.projects):
            button = QPushButton(f"Open “{project_title(path)}”")
            button.setObjectName(f"lessonOpen{i}")
            button.setToolTip(f"{path.name}, opened as a copy (saving asks where)")
            button.clicked.connect(lambda _=False, p=path: self.open_requested.emit(p))
            self.buttons.addWidget(button)
            self.project_buttons.append(button)
        self.view_button.setText(f"Show the {VIEW_NAMES.get(lesson.look_at, lesson.look_at)}")


class LessonsDialog(QDialog):
    """The gallery: every lesson with its concept and the figure that proves it."""

    def __init__(self, lessons, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("lessonsDialog")
        self.setWindowTitle("Lessons")
        self.lessons = list(lessons)
        self.list = QListWidget()
        self.list.setObjectName("lessonsList")
        self.list.setWordWrap(True)
        self.list.setSpacing(2)
        for i, lesson in enumerate(self.lessons, 1):
            item = QListWidgetItem(f"{i}. {lesson.title}\n    {lesson.concept}")
            item.setToolTip(lesson.figure)
            item.setData(Qt.ItemDataRole.UserRole, i - 1)
            self.list.addItem(item)
        self.preview = QTextBrowser()
        self.preview.setObjectName("lessonsPreview")
        self.list.currentRowChanged.connect(self._preview)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.open_button = buttons.button(QDialogButtonBox.StandardButton.Open)
        row = QHBoxLayout()
        row.addWidget(self.list, 2)
        row.addWidget(self.preview, 3)
        box = QVBoxLayout(self)
        box.addLayout(row, 1)
        box.addWidget(buttons)
        self.resize(980, 600)
        if self.lessons:
            self.list.setCurrentRow(0)

    def _preview(self, row: int) -> None:
        if 0 <= row < len(self.lessons):
            self.preview.setHtml(note_html(self.lessons[row]))

    def selected(self):
        row = self.list.currentRow()
        return self.lessons[row] if 0 <= row < len(self.lessons) else None


class LessonsUi(QObject):
    """The Lesson dock of a :class:`~gui.main_window.MainWindow` and File → Lessons…."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.panel = LessonPanel()
        self.dock = window.add_panel("Lesson", self.panel, Qt.DockWidgetArea.RightDockWidgetArea,
                                     "lessonDock")
        window.tabifyDockWidget(window.inspector_dock, self.dock)
        window.inspector_dock.raise_()
        self.dock.hide()  # shown by the first lesson opened
        self.dialog: LessonsDialog | None = None
        self.panel.open_requested.connect(self.open_project)
        self.panel.view_requested.connect(self.show_view)
        self.panel.compare_requested.connect(self.compare_last_runs)

    def open_gallery(self) -> None:
        from engine.errors import LayerlabError
        from engine.lessons import list_lessons
        from gui import dialogs

        try:
            lessons = list_lessons()
        except LayerlabError as exc:
            dialogs.show_error(self.window, "Cannot read the lessons", str(exc),
                               self.window.interactive)
            return
        self.dialog = LessonsDialog(lessons, self.window)
        if self.dialog.exec() and self.dialog.selected() is not None:
            self.open_lesson(self.dialog.selected())

    def open_lesson(self, lesson) -> bool:
        """Open the lesson's first project and show its note."""
        if not self.open_project(lesson.projects[0], lesson):
            return False
        self.panel.show_lesson(lesson)
        self.dock.show()
        self.dock.raise_()
        self.window.show_status(f"Lesson: {lesson.title}")
        return True

    def open_project(self, path, lesson=None) -> bool:
        lesson = lesson or self.panel.lesson
        opened = self.window.open_path(path, as_copy=True)  # the shipped file stays as it is
        if opened and lesson is not None:
            # every project of a lesson records its runs in one history, so that two runs (the
            # perceptron's and the MLP's, or one setting and another) can be overlaid
            self.window.document.project.runs_stem = f"lesson-{lesson.slug}"
            runs = getattr(self.window, "runs", None)
            if runs is not None:
                runs.refresh(force=True)
            self.panel.show_lesson(lesson)  # the note stays while the learner follows it
            self.dock.show()
        return opened

    def compare_last_runs(self) -> bool:
        """Overlay the lesson's two latest finished runs on the Live views' curves."""
        runs_ui = getattr(self.window, "runs", None)
        if runs_ui is None:
            return False
        runs_ui.refresh(force=True)
        done = [r for r in runs_ui.runs if r.get("status") in ("finished", "stopped")]
        latest = sorted(done, key=lambda r: r.get("id") or "")[-2:]
        if len(latest) < 2:
            self.window.show_status("Train twice first (the two projects of the lesson, or one "
                                    "setting and then another): then both runs can be compared")
            return False
        runs_ui.dock.show()
        runs_ui.panel.select_ids([r["id"] for r in latest])
        self.show_view("curves")
        self.window.show_status("The last two runs overlaid on the loss and metric curves")
        return True

    def show_view(self, look_at: str) -> None:
        """Bring up the live view a lesson names."""
        w = self.window
        if look_at in ("embedding", "attention"):  # the Try dock draws these
            w.try_ui.show()
            panel = w.try_ui.panel
            if panel.tryout is not None:
                panel.tabs.setCurrentWidget(panel.whole if look_at == "embedding"
                                            else panel.body)
            return
        training = w.training
        training.views_dock.show()
        training.views_dock.raise_()
        views = training.views
        title = VIEW_TABS.get(look_at)
        if title is None:
            return
        for i in range(views.tabs.count()):
            if views.tabs.tabText(i) == title:
                views.tabs.setCurrentIndex(i)
                return


def install_lessons(window) -> LessonsUi:
    window.lessons_ui = LessonsUi(window)
    return window.lessons_ui
