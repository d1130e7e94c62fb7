"""Files around the document: file dialogs, autosave and crash recovery, the examples gallery.

Recovery files live in ``settings.data_dir()/recovery``. Each holds the project and the path it
came from, and the id of the process that wrote it: a file whose process is gone was left by a
crash, and the next start offers to restore it. A clean save or close removes it.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QObject, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QLabel, QListView,
                               QListWidget, QListWidgetItem, QVBoxLayout, QWidget)

from engine.errors import LayerlabError
from engine.examples import list_examples
from engine.project import (SUFFIX, Project, ProjectError, atomic_write, load_project,
                            parse_project, project_to_dict)
from gui.settings import Settings, data_dir

FILE_FILTER = "Layerlab projects (*.layerlab.json);;JSON files (*.json);;All files (*)"
AUTOSAVE_MS = 30_000
RECOVERY_FORMAT = "layerlab-recovery"


# -- file dialogs ----------------------------------------------------------------------------------
def choose_open_path(parent: QWidget, settings: Settings) -> str | None:
    path, _ = QFileDialog.getOpenFileName(parent, "Open project", settings.last_dir(),
                                          FILE_FILTER)
    return path or None


def choose_save_path(parent: QWidget, settings: Settings, suggested: str) -> str | None:
    start = str(Path(settings.last_dir() or Path.home()) / suggested)
    path, _ = QFileDialog.getSaveFileName(parent, "Save project as", start, FILE_FILTER)
    if not path:
        return None
    return path if path.endswith(".json") else path + SUFFIX


def suggested_file_name(project: Project) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in project.name.lower()).strip("_")
    return (stem or "untitled") + SUFFIX


# -- autosave and recovery -------------------------------------------------------------------------
def recovery_dir() -> Path:
    path = data_dir() / "recovery"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


@dataclass
class RecoveryFile:
    """An autosaved copy left behind by a Layerlab that did not close normally."""

    file: Path
    original: Path | None
    name: str
    saved_at: float

    def when(self) -> str:
        return datetime.fromtimestamp(self.saved_at).strftime("%Y-%m-%d %H:%M")

    def load(self) -> Project:
        """The autosaved project, pointing at its original file (``ProjectError`` if broken)."""
        data = _read_recovery(self.file)
        if data is None:
            raise ProjectError(str(self.file), [("", "is not a readable recovery file")], True)
        project = parse_project(data["project"], str(self.file))
        project.path = self.original
        return project

    def discard(self) -> None:
        self.file.unlink(missing_ok=True)


def _read_recovery(file: Path) -> dict | None:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and data.get("format") == RECOVERY_FORMAT and \
        isinstance(data.get("project"), dict)
    return data if ok else None


def find_recovery_files() -> list[RecoveryFile]:
    """Recovery files whose writer is no longer running, newest first."""
    found = []
    for file in recovery_dir().glob("*.json"):
        data = _read_recovery(file)
        if data is None or _pid_alive(int(data.get("pid", 0) or 0)):
            continue
        original = Path(data["path"]) if data.get("path") else None
        name = original.name if original else str(data["project"].get("name", "Untitled"))
        found.append(RecoveryFile(file, original, name, float(data.get("saved_at", 0))))
    return sorted(found, key=lambda r: r.saved_at, reverse=True)


class Autosaver(QObject):
    """Every 30 s, writes the dirty document to this window's recovery file (atomically)."""

    _count = 0

    def __init__(self, parent: QObject | None = None, interval_ms: int = AUTOSAVE_MS):
        super().__init__(parent)
        Autosaver._count += 1
        self.file = recovery_dir() / f"autosave-{os.getpid()}-{Autosaver._count}.json"
        self.document = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()

    def set_document(self, document) -> None:
        """Follow a new document; the previous one's recovery file goes."""
        self.discard()
        self.document = document
        if document is not None:
            document.saved.connect(self._saved)
            document.dirty_changed.connect(self._dirty_changed)

    def _saved(self, _path) -> None:
        self.discard()

    def _dirty_changed(self, dirty: bool) -> None:
        if not dirty:
            self.discard()

    def autosave(self) -> bool:
        """Write the recovery file now if there are unsaved changes; True when written."""
        doc = self.document
        if doc is None or not doc.is_dirty():
            return False
        data = {"format": RECOVERY_FORMAT, "version": 1, "pid": os.getpid(),
                "saved_at": time.time(), "path": str(doc.path) if doc.path else None,
                "project": project_to_dict(doc.project)}
        try:
            atomic_write(self.file, json.dumps(data, ensure_ascii=False).encode("utf-8"))
        except LayerlabError:
            return False  # a full disk must not interrupt editing; the next tick tries again
        return True

    def discard(self) -> None:
        self.file.unlink(missing_ok=True)

    def stop(self) -> None:
        self.timer.stop()
        self.discard()


# -- examples gallery ------------------------------------------------------------------------------
THUMB_SIZE = QSize(260, 130)
_thumb_cache: dict[tuple, QPixmap] = {}


def example_thumbnail(path: Path, dark: bool = False, size: QSize = THUMB_SIZE) -> QPixmap:
    """A picture of the example's (first) model, rendered offscreen and cached in memory and on
    disk (keyed by the file's modification time)."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, dark, size.width(), size.height())
    if key in _thumb_cache:
        return _thumb_cache[key]
    disk = data_dir() / "thumbnails" / \
        f"{path.name}-{stat.st_mtime_ns}-{'dark' if dark else 'light'}-{size.width()}.png"
    pixmap = QPixmap(str(disk)) if disk.exists() else QPixmap()
    if pixmap.isNull():
        pixmap = render_thumbnail(load_project(path), dark, size)
        disk.parent.mkdir(parents=True, exist_ok=True)
        pixmap.save(str(disk), "PNG")
    _thumb_cache[key] = pixmap
    return pixmap


def render_thumbnail(project: Project, dark: bool, size: QSize) -> QPixmap:
    """Draw the project's first model with the real canvas items."""
    from engine.shapes import ShapeInference
    from widgets.canvas.scene import CanvasScene
    from widgets.theme import DARK, LIGHT

    theme = DARK if dark else LIGHT
    graph = next(iter(project.models.values()))
    try:
        input_shapes = project.input_shapes()
    except LayerlabError:
        input_shapes = {}
    shapes = ShapeInference(graph, input_shapes, live=False)
    scene = CanvasScene(graph, shapes, theme)
    pixmap = QPixmap(size)
    pixmap.fill(QColor(theme.background))
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    scene.render(painter, QRectF(pixmap.rect()), thumbnail_source(scene, size))
    painter.end()
    scene.detach()
    scene.deleteLater()
    return pixmap


def thumbnail_source(scene, size: QSize, min_scale: float = 0.32) -> QRectF:
    """The scene area a thumbnail shows: the whole graph, centred, unless that would make the
    nodes too small to see; then the graph's start (its inputs) at ``min_scale``."""
    graph = scene.items_bounding_rect().adjusted(-24, -24, 24, 24)
    scale = max(min(size.width() / graph.width(), size.height() / graph.height()), min_scale)
    w, h = size.width() / scale, size.height() / scale
    left = graph.left() if w < graph.width() else graph.center().x() - w / 2
    return QRectF(left, graph.center().y() - h / 2, w, h)


class ExamplesDialog(QDialog):
    """File -> Examples: a thumbnail and a sentence for every example project."""

    def __init__(self, parent: QWidget | None = None, dark: bool = False):
        super().__init__(parent)
        self.setWindowTitle("Examples")
        self.dark = dark
        self.examples = list_examples()
        self.list = QListWidget(self)
        self.list.setObjectName("examplesList")
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setIconSize(THUMB_SIZE)
        self.list.setGridSize(QSize(THUMB_SIZE.width() + 28, THUMB_SIZE.height() + 96))
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(True)
        self.list.setSpacing(6)
        placeholder = QPixmap(THUMB_SIZE)
        placeholder.fill(QColor("#2a2d34" if dark else "#eef0f4"))
        for example in self.examples:
            item = QListWidgetItem(QIcon(placeholder), f"{example.name}\n{example.description}")
            item.setToolTip(example.description)
            item.setData(Qt.ItemDataRole.UserRole, str(example.path))
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            self.list.addItem(item)
        self.list.itemDoubleClicked.connect(lambda _item: self.accept())
        if self.examples:
            self.list.setCurrentRow(0)
        hint = QLabel("Pick an example to open it as a new, unsaved copy.")
        hint.setObjectName("mutedText")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open
                                   | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(hint)
        box.addWidget(self.list, 1)
        box.addWidget(buttons)
        self.resize(4 * (THUMB_SIZE.width() + 28) + 60, 720)
        self._next = 0
        self._timer = QTimer(self, interval=0)  # one thumbnail per tick: the dialog stays live
        self._timer.timeout.connect(self._render_next)
        self._timer.start()

    def _render_next(self) -> None:
        if self._next >= len(self.examples):
            self._timer.stop()
            return
        item = self.list.item(self._next)
        try:
            item.setIcon(QIcon(example_thumbnail(self.examples[self._next].path, self.dark)))
        except (LayerlabError, OSError):
            pass  # a broken example keeps its placeholder
        self._next += 1

    def render_all(self) -> None:
        """Render every thumbnail now (tests, screenshots)."""
        while self._next < len(self.examples):
            self._render_next()

    def selected_path(self) -> Path | None:
        item = self.list.currentItem()
        return Path(item.data(Qt.ItemDataRole.UserRole)) if item else None
