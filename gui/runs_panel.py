"""The Runs dock: every recorded training run of the open project (see :mod:`engine.runs`), the
window's and the command line's alike.

A sortable table: name, status, one column per setting that differs between the runs, the best
and the final value of the monitored metric, the run's time, source and date, and its tags.
Selecting runs overlays their epoch curves on the loss and metric plots of the Live views (a
colour per run, shown beside its name; the live run stays on top). The dock sits beside Training,
behind the Inspector (View > Panels > Runs). Open puts a run's graph and settings
back into the document as one undoable change; Rename, Tag and Delete are undoable too (a
deleted run's folder waits in ``RUNS/<stem>/.trash`` until its undo step is gone); Compare says
how two runs differ, in words.

The table follows the disk: it is read again when a run ends in the window, when a project is
opened or saved, on Refresh, and when the runs folder changes (a ``QFileSystemWatcher``: runs
made by ``main.py train`` or a sweep appear by themselves).
"""
from __future__ import annotations

import copy
import shutil
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import (QAbstractTableModel, QEvent, QFileSystemWatcher, QItemSelection,
                            QItemSelectionModel, QModelIndex, QObject, QSize,
                            QSortFilterProxyModel, Qt, QTimer, Signal)
from PySide6.QtGui import (QAction, QColor, QFont, QFontDatabase, QFontMetrics, QKeySequence,
                           QUndoCommand)
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHBoxLayout,
                               QHeaderView, QInputDialog, QLabel, QLineEdit, QMenu, QMessageBox,
                               QPlainTextEdit, QStackedLayout, QTableView, QToolBar, QToolButton,
                               QVBoxLayout, QWidget)

from engine import runs as runs_api
from engine.project import ProjectError, parse_project, project_to_dict
from gui.blocks import blocks_changed, restore_library
from gui.commands import replace_graph
from gui.training.commands import refresh_input_shapes
from gui.training.install import FIT_DELAY_MS, VIEWS_HEIGHT

TRASH = ".trash"
RUNS_WIDTH = 540  # the dock widens to this (as far as the window allows) when first shown
REFRESH_DELAY_MS = 300  # a burst of file changes (a run writing its files) makes one refresh
BUSY_REFRESH_DELAY_MS = 5000
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
RUN_ROLE = Qt.ItemDataRole.UserRole + 2
STATUS_COLORS = {"finished": "#2f9e5b", "failed": "#e5484d", "stopped": "#d08a1f",
                 "interrupted": "#d08a1f", "running": "#3b82f6"}
# the palette of widgets.plots.style (not imported: pyqtgraph loads with the plots, not here),
# after the live run's train, validation and accuracy colours
RUN_COLORS = ("#ef4444", "#8b5cf6", "#14b8a6", "#ec4899", "#f97316", "#06b6d4", "#a855f7",
              "#eab308", "#84cc16")
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
EMPTY_TEXT = ("No runs recorded for this project yet.\n\nPress Train, or run "
              "“python main.py train PROJECT”: every run is recorded and listed here.")


# -- words and numbers ----------------------------------------------------------------------------
def setting_header(key: str) -> str:
    """A column title for a settings key: ``optimizer.lr``, ``data.noise``, ``fc1.out_features``."""
    if key.startswith("training."):
        return key[len("training."):]
    if key.startswith("dataset.params."):
        return "data." + key[len("dataset.params."):]
    if key.startswith("dataset."):
        return "data." + key[len("dataset."):]
    return key


def header_lines(kind: str, title: str) -> str:
    """A column title on two lines where it is long and its values short (a setting, a
    metric): ``fc1`` over ``out_features``, so that the column need not be wider than them."""
    if kind == "setting" and "." in title:
        head, _, tail = title.rpartition(".")
        return f"{head}\n{tail}"
    if kind in ("best", "final"):
        head, _, tail = title.partition(" ")
        return f"{head}\n{tail}"
    return title


def metric_words(metric: str) -> str:
    return metric.replace("_", " ")


def format_value(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_metric(metric: str, value) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "–"
    if "accuracy" in metric:
        return f"{value:.1%}"
    return f"{value:.4g}"


def format_seconds(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    if seconds < 59.5:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_date(created) -> str:
    text = str(created or "")
    return text.replace("T", " ")[:16] if text else "–"


def run_label(run: dict) -> str:
    return str(run.get("name") or run.get("id") or "run")


def started_at(run: dict) -> float:
    """When the run started, as a timestamp: ``created`` (whole seconds), refined within its
    second by the run's clock (``heartbeat - seconds``) so that runs of one second keep their
    order."""
    try:
        created = datetime.fromisoformat(str(run.get("created"))).timestamp()
    except ValueError:
        return 0.0
    beat, seconds = run.get("heartbeat"), run.get("seconds")
    if isinstance(beat, (int, float)) and isinstance(seconds, (int, float)):
        within = beat - seconds - created
        if 0.0 <= within < 1.0:
            return created + within
    return created


def _sort_key(value):
    """Numbers before texts, missing values last, whatever the order asked."""
    if value is None:
        return (1, 0, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, 0, float(value))
    return (0, 1, str(value).lower())


def existing_root(project) -> Path | None:
    """The project's runs folder if it exists (looking at a project creates nothing)."""
    return runs_api.existing_root(project)


def watch_folder(project) -> Path | None:
    """What to watch for new runs: the runs folder, or the folder it will be made in."""
    root = existing_root(project)
    if root is not None:
        return root
    base = runs_api.runs_base(project)
    return base if base.is_dir() else None


# -- the table ------------------------------------------------------------------------------------
class RunsModel(QAbstractTableModel):
    """One row per run; the columns depend on the runs (their differing settings)."""

    edit_requested = Signal(object, str, object)  # run, "name" or "tags", the new value

    def __init__(self, parent=None):
        super().__init__(parent)
        self.runs: list[dict] = []
        self.columns: list[tuple[str, str | None, str]] = []  # kind, settings key, title
        self.flats: list[dict] = []
        self.monitor = "val_loss"
        self.colors: dict[str, str] = {}  # run id -> its overlay colour (selected runs)
        self._set_columns([])

    def set_runs(self, runs: list[dict]) -> None:
        self.beginResetModel()
        self.runs = list(runs)
        self.flats = [runs_api.flat_settings(r.get("project") or {}) for r in self.runs]
        monitors = [r.get("monitor") for r in self.runs if r.get("monitor")]
        self.monitor = monitors[-1] if monitors else "val_loss"
        differ = runs_api.differing_settings(self.runs) if len(self.runs) > 1 else []
        self._set_columns(differ, tags=any(r.get("tags") for r in self.runs))
        self.endResetModel()

    def _set_columns(self, differ: list[str], tags: bool = False) -> None:
        """What tells runs apart comes first (the dock is often narrow): name, status, the
        differing settings, the results; then time, source, date, and tags when some run has
        them."""
        words = metric_words(self.monitor)
        self.columns = ([("name", None, "Name"), ("status", None, "Status")]
                        + [("setting", key, setting_header(key)) for key in differ]
                        + [("best", None, f"Best {words}"), ("final", None, f"Final {words}"),
                           ("seconds", None, "Time"), ("source", None, "Source"),
                           ("date", None, "Date")]
                        + ([("tags", None, "Tags")] if tags else []))

    def column_of(self, kind: str, key: str | None = None) -> int:
        return next(i for i, (k, s, _) in enumerate(self.columns) if k == kind and s == key)

    def set_colors(self, colors: dict[str, str]) -> None:
        if colors != self.colors:
            self.colors = dict(colors)
            if self.runs:
                self.dataChanged.emit(self.index(0, 0), self.index(len(self.runs) - 1, 0),
                                      [Qt.ItemDataRole.DecorationRole])

    # -- the Qt model ------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(self.runs)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        kind, key, title = self.columns[section]
        if role == Qt.ItemDataRole.DisplayRole:
            return header_lines(kind, title)
        if role == Qt.ItemDataRole.ToolTipRole:
            if kind == "setting":
                return f"{key}: a setting that is not the same in every run"
            if kind in ("best", "final"):
                which = "the best epoch's" if kind == "best" else "the last epoch's"
                return f"{which} {metric_words(self.monitor)} (the metric the run monitors)"
            if kind == "seconds":
                return "how long the run trained"
        if role == Qt.ItemDataRole.TextAlignmentRole and kind in ("best", "final", "seconds"):
            return _RIGHT
        return None

    def flags(self, index):
        base = super().flags(index)
        if index.isValid() and self.columns[index.column()][0] in ("name", "tags"):
            return base | Qt.ItemFlag.ItemIsEditable
        return base

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.runs):
            return None
        run = self.runs[index.row()]
        kind, key, _ = self.columns[index.column()]
        if role == RUN_ROLE:
            return run
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(index.row(), kind, key)
        if role == Qt.ItemDataRole.EditRole:
            return run_label(run) if kind == "name" else ", ".join(run.get("tags") or [])
        if role == SORT_ROLE:
            return self._sort_value(index.row(), kind, key)
        if role == Qt.ItemDataRole.TextAlignmentRole and kind in ("best", "final", "seconds"):
            return _RIGHT
        if role == Qt.ItemDataRole.ForegroundRole and kind == "status":
            color = STATUS_COLORS.get(run.get("status"))
            return QColor(color) if color else None
        if role == Qt.ItemDataRole.DecorationRole and kind == "name":
            color = self.colors.get(run.get("id"))
            return QColor(color) if color else None
        if role == Qt.ItemDataRole.FontRole and kind == "name" and run.get("id") in self.colors:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(run, kind, key)
        return None

    def _metric(self, run: dict, kind: str):
        monitor = run.get("monitor") or self.monitor
        return monitor, (run.get(kind) or {}).get(monitor)

    def _text(self, row: int, kind: str, key: str | None) -> str:
        run = self.runs[row]
        if kind == "name":
            return run_label(run)
        if kind == "tags":
            return ", ".join(run.get("tags") or [])
        if kind == "date":
            return format_date(run.get("created"))
        if kind == "status":
            return str(run.get("status") or "–")
        if kind == "source":
            return str(run.get("source") or "–")
        if kind == "setting":
            return format_value(self.flats[row].get(key))
        if kind in ("best", "final"):
            return format_metric(*self._metric(run, kind))
        if kind == "seconds":
            return format_seconds(run.get("seconds"))
        return ""

    def _sort_value(self, row: int, kind: str, key: str | None):
        run = self.runs[row]
        if kind == "date":
            return started_at(run)
        if kind == "setting":
            return self.flats[row].get(key)
        if kind in ("best", "final"):
            value = self._metric(run, kind)[1]
            return value if isinstance(value, (int, float)) else None
        if kind == "seconds":
            return run.get("seconds")
        return self._text(row, kind, key)

    def _tooltip(self, run: dict, kind: str, key: str | None) -> str | None:
        if kind == "status" and run.get("message"):
            return f"{run.get('status')}: {run['message']}"
        if kind == "status" and run.get("status") == "interrupted":
            return "the process that recorded it ended without saying how the run ended"
        if kind == "best":
            monitor, value = self._metric(run, kind)
            epoch = (run.get("best") or {}).get("epoch")
            if value is not None:
                return f"{monitor} {format_metric(monitor, value)} at epoch {epoch}"
        if kind == "name":
            lines = [f"{run.get('id')}  ·  {run.get('epochs_done', 0)} of "
                     f"{run.get('epochs', '?')} epochs on {run.get('device', '?')}",
                     str(run.get("dir", ""))]
            return "\n".join(lines)
        if kind == "setting":
            return f"{key} = {format_value(self.flats[self.runs.index(run)].get(key))}"
        return None

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole) -> bool:  # noqa: N802
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        kind = self.columns[index.column()][0]
        run = self.runs[index.row()]
        if kind == "name":
            text = str(value).strip()
            if not text or text == run_label(run):
                return False
            self.edit_requested.emit(run, "name", text)
            return True
        if kind == "tags":
            tags = parse_tags(value)
            if tags == list(run.get("tags") or []):
                return False
            self.edit_requested.emit(run, "tags", tags)
            return True
        return False


def parse_tags(text) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in str(text or "").split(",") if t.strip()))


class RunsProxy(QSortFilterProxyModel):
    """Sorts by the model's :data:`SORT_ROLE` values (numbers as numbers, missing ones last)."""

    def lessThan(self, left, right) -> bool:  # noqa: N802 - Qt override
        a, b = _sort_key(left.data(SORT_ROLE)), _sort_key(right.data(SORT_ROLE))
        if a[0] != b[0]:  # missing values last in both orders
            return (a[0] < b[0]) == (self.sortOrder() == Qt.SortOrder.AscendingOrder)
        return a < b


class RunsPanel(QWidget):
    """The dock's content: buttons, a filter, the table (or a hint while there are no runs)."""

    selection_changed = Signal(list)  # the selected runs, in the table's order
    open_requested = Signal(object)
    rename_requested = Signal(object)
    tag_requested = Signal(list)
    delete_requested = Signal(list)
    compare_requested = Signal(object, object)
    refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = RunsModel(self)
        self.proxy = RunsProxy(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView(self)
        self.table.setObjectName("runsTable")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(self.model.column_of("date"), Qt.SortOrder.DescendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.EditKeyPressed)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setSectionsMovable(True)
        header.setMinimumSectionSize(48)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(self._double_clicked)
        self.table.installEventFilter(self)
        self.hint = QLabel(EMPTY_TEXT)
        self.hint.setObjectName("mutedText")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        # a tool bar: when the dock is narrow, what does not fit goes behind its » button
        self.toolbar = QToolBar(self)
        self.toolbar.setObjectName("runsToolbar")
        self.toolbar.setIconSize(QSize(16, 16))
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.actions_: dict[str, QAction] = {}
        self.buttons: dict[str, QToolButton] = {}
        for name, text, tip in (
                ("open", "Open", "Put this run's graph and settings into the project "
                                 "(undoable; a double-click on the row does it too)"),
                ("compare", "Compare", "How the two selected runs differ, in words"),
                (None, None, None),
                ("rename", "Rename…", "Give the run a name (F2 edits it in the table)"),
                ("tag", "Tag…", "Tag the selected runs (comma-separated)"),
                ("delete", "Delete", "Delete the selected runs (undoable)"),
                (None, None, None),
                ("refresh", "Refresh", "Read the runs folder again")):
            if name is None:
                self.toolbar.addSeparator()
                continue
            action = QAction(text, self)
            action.setObjectName(f"runs_{name}")
            action.setToolTip(tip)
            self.toolbar.addAction(action)
            self.actions_[name] = action
            self.buttons[name] = self.toolbar.widgetForAction(action)
        self.filter = QLineEdit(self)
        self.filter.setObjectName("runsFilter")
        self.filter.setPlaceholderText("Filter runs")
        self.filter.setClearButtonEnabled(True)
        self.filter.setMinimumWidth(90)
        self.filter.setMaximumWidth(160)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        bar = QWidget(self)
        bar.setObjectName("runsBar")
        bar.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        bar.setStyleSheet("QWidget#runsBar { border-bottom: 1px solid palette(mid); }"
                          "QToolBar { border: none; padding: 2px 4px; spacing: 0px; }"
                          "QToolBar QToolButton { padding: 3px 5px; }")
        row = QHBoxLayout(bar)
        row.setContentsMargins(0, 0, 8, 0)
        row.setSpacing(6)
        row.addWidget(self.toolbar, 1)
        row.addWidget(self.filter)
        a = self.actions_
        a["open"].triggered.connect(lambda: self._one(self.open_requested))
        a["rename"].triggered.connect(lambda: self._one(self.rename_requested))
        a["tag"].triggered.connect(
            lambda: self.selected_runs() and self.tag_requested.emit(self.selected_runs()))
        a["delete"].triggered.connect(
            lambda: self.selected_runs() and self.delete_requested.emit(self.selected_runs()))
        a["compare"].triggered.connect(self._compare)
        a["refresh"].triggered.connect(self.refresh_requested)

        self._stack = QStackedLayout()
        self._stack.addWidget(self.hint)
        self._stack.addWidget(self.table)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(bar)
        box.addLayout(self._stack, 1)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self._restoring = False
        self._update_buttons()

    # -- contents ----------------------------------------------------------------------------
    def set_runs(self, runs: list[dict]) -> None:
        """Show these runs, keeping the selection (by run id), the sort and the scroll."""
        keep = [r.get("id") for r in self.selected_runs()]
        widths = self._widths()
        header = self.table.horizontalHeader()
        sort = self.model.columns[header.sortIndicatorSection()][:2] \
            if 0 <= header.sortIndicatorSection() < len(self.model.columns) else ("date", None)
        order = header.sortIndicatorOrder()
        self._restoring = True
        try:
            self.model.set_runs(runs)
            columns = [c[:2] for c in self.model.columns]  # the sort follows its column
            self.table.sortByColumn(columns.index(sort) if sort in columns else
                                    columns.index(("date", None)), order)
            self._size_columns(widths)
            self.select_ids(keep, emit=False)
        finally:
            self._restoring = False
        self._stack.setCurrentIndex(1 if runs else 0)
        self.filter.setPlaceholderText(f"Filter {len(runs)} run{'s' if len(runs) != 1 else ''}"
                                       if runs else "Filter runs")
        self._update_buttons()
        after = [r.get("id") for r in self.selected_runs()]
        if after != keep or keep:
            self.selection_changed.emit(self.selected_runs())

    def _widths(self) -> dict:
        header = self.table.horizontalHeader()
        return {self.model.columns[i][:2]: header.sectionSize(i)
                for i in range(len(self.model.columns)) if header.sectionSize(i) > 0}

    def _size_columns(self, widths: dict) -> None:
        """Fit the columns to their contents once; a width the user chose is kept."""
        header = self.table.horizontalHeader()
        font = QFont(header.font())
        font.setBold(True)  # the theme's header sections are bold
        metrics = QFontMetrics(font)
        for i, column in enumerate(self.model.columns):
            title = header_lines(column[0], column[2])
            words = max(metrics.horizontalAdvance(line) for line in title.split("\n"))
            # the cells, or the title with its padding and the sort arrow's room
            fitted = min(max(self.table.sizeHintForColumn(i) + 8, words + 30, 56), 260)
            header.resizeSection(i, max(fitted, widths.get(column[:2], 0)))

    def selected_runs(self) -> list[dict]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.proxy.index(r, 0).data(RUN_ROLE) for r in rows]

    def select_ids(self, ids, emit: bool = True) -> None:
        ids = set(i for i in ids if i)
        selection = QItemSelection()
        last = self.proxy.columnCount() - 1
        for row in range(self.proxy.rowCount()):
            run = self.proxy.index(row, 0).data(RUN_ROLE)
            if run.get("id") in ids:
                selection.select(self.proxy.index(row, 0), self.proxy.index(row, last))
        model = self.table.selectionModel()
        flags = (QItemSelectionModel.SelectionFlag.ClearAndSelect
                 | QItemSelectionModel.SelectionFlag.Rows)
        if not emit:
            model.blockSignals(True)
        try:
            model.select(selection, flags)
        finally:
            model.blockSignals(False)
        self.table.viewport().update()
        if not emit:
            self._update_buttons()

    def row_of(self, run_id: str) -> int | None:
        """The table row (as shown: sorted and filtered) of a run."""
        for row in range(self.proxy.rowCount()):
            if self.proxy.index(row, 0).data(RUN_ROLE).get("id") == run_id:
                return row
        return None

    def cell_text(self, row: int, title: str) -> str:
        column = next(i for i, c in enumerate(self.model.columns) if c[2] == title)
        return self.proxy.index(row, column).data()

    # -- user actions ------------------------------------------------------------------------
    def _selection_changed(self, *_args) -> None:
        self._update_buttons()
        if not self._restoring:
            self.selection_changed.emit(self.selected_runs())

    def _update_buttons(self) -> None:
        n = len(self.selected_runs())
        for name, on in (("open", n == 1), ("rename", n == 1), ("tag", n >= 1),
                         ("delete", n >= 1), ("compare", n == 2)):
            self.actions_[name].setEnabled(on)

    def _one(self, signal) -> None:
        runs = self.selected_runs()
        if len(runs) == 1:
            signal.emit(runs[0])

    def _compare(self) -> None:
        runs = self.selected_runs()
        if len(runs) == 2:
            a, b = sorted(runs, key=started_at)
            self.compare_requested.emit(a, b)

    def _double_clicked(self, index) -> None:
        run = index.data(RUN_ROLE)
        if run is not None:
            self.open_requested.emit(run)

    def _context_menu(self, pos) -> None:
        index = self.table.indexAt(pos)
        if index.isValid() and not self.table.selectionModel().isRowSelected(index.row()):
            self.table.selectRow(index.row())
        menu = QMenu(self)
        for name in ("open", "compare", None, "rename", "tag", None, "delete", None, "refresh"):
            if name is None:
                menu.addSeparator()
                continue
            menu.addAction(self.actions_[name])
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if obj is not self.table or self.table.state() == QAbstractItemView.State.EditingState:
            return super().eventFilter(obj, event)
        if event.type() == QEvent.Type.ShortcutOverride and (
                event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                or event.matches(QKeySequence.StandardKey.Delete)
                or event.key() == Qt.Key.Key_Backspace):
            event.accept()  # the table's key, not the window's Delete (the canvas's layers)
            return True
        if event.type() == QEvent.Type.KeyPress:
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self._one(self.open_requested)
                return True
            if event.matches(QKeySequence.StandardKey.Delete) or \
                    event.key() == Qt.Key.Key_Backspace:
                if self.selected_runs():
                    self.delete_requested.emit(self.selected_runs())
                return True
        return super().eventFilter(obj, event)


class CompareDialog(QDialog):
    """Two runs' settings and graphs in words (``engine.runs.diff_runs``), then their results."""

    def __init__(self, a: dict, b: dict, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("compareRunsDialog")
        self.setWindowTitle("Compare runs")
        self.lines = runs_api.diff_runs(a, b)
        head = QLabel(f"<b>A</b>&nbsp; {_html(run_label(a))} <span style='color:gray'>"
                      f"({_html(format_date(a.get('created')))})</span><br><b>B</b>&nbsp; "
                      f"{_html(run_label(b))} <span style='color:gray'>"
                      f"({_html(format_date(b.get('created')))})</span>")
        head.setTextFormat(Qt.TextFormat.RichText)
        self.text = QPlainTextEdit(self)
        self.text.setObjectName("compareText")
        self.text.setReadOnly(True)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        body = ["What changed from A to B:"]
        body += [f"  {line}" for line in self.lines] or ["  nothing: the same settings and graph"]
        body += ["", "Results (A → B):"] + [f"  {line}" for line in _result_lines(a, b)]
        self.text.setPlainText("\n".join(body))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addWidget(head)
        box.addWidget(self.text, 1)
        box.addWidget(buttons)
        self.resize(560, 380)


def _html(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _result_lines(a: dict, b: dict) -> list[str]:
    lines = []
    for kind in ("best", "final"):
        keys = [k for k in dict.fromkeys([*(a.get(kind) or {}), *(b.get(kind) or {})])
                if k not in ("epoch", "lr", "seconds")]
        for key in keys:
            va, vb = (a.get(kind) or {}).get(key), (b.get(kind) or {}).get(key)
            if isinstance(va, (int, float)) or isinstance(vb, (int, float)):
                lines.append(f"{kind} {key} {format_metric(key, va)} → {format_metric(key, vb)}")
    lines.append(f"status {a.get('status')} → {b.get('status')}")
    lines.append(f"time {format_seconds(a.get('seconds'))} → {format_seconds(b.get('seconds'))}")
    return lines


# -- undo commands --------------------------------------------------------------------------------
class RestoreProject(QUndoCommand):
    """Replace the document's graphs, dataset, training block and other settings with those of
    a project snapshot (a run's), in one undo step. The models must be the same by name."""

    def __init__(self, document, snapshot: dict, text: str):
        super().__init__(text)
        self.document = document
        self.old = copy.deepcopy(project_to_dict(document.project))
        self.new = copy.deepcopy(snapshot)
        parse_project(copy.deepcopy(self.new), "the run's project")  # ProjectError now, not later
        self.kept: dict = {}  # block definitions put back in place (gui.blocks.restore_library)

    def redo(self) -> None:
        self._apply(self.new)

    def undo(self) -> None:
        self._apply(self.old)

    def _apply(self, data: dict) -> None:
        parsed = parse_project(copy.deepcopy(data), "the run's project")
        project = self.document.project
        # the run's block definitions (engine.blocks) come back too, in place
        restore_library(project.blocks, parsed.blocks, self.kept)
        for name, graph in project.models.items():
            replace_graph(graph, parsed.models[name])
        project.dataset = copy.deepcopy(parsed.dataset)
        project.training = copy.deepcopy(parsed.training)
        project.extra = copy.deepcopy(parsed.extra)
        refresh_input_shapes(self.document)
        blocks_changed(self.document)


class RunCommand(QUndoCommand):
    """A change to the run history (no change to the project). ``changed`` is called after
    each redo and undo (the panel reads the disk again)."""

    def __init__(self, text: str, changed):
        super().__init__(text)
        self.changed = changed
        self.failed: str | None = None

    def _done(self) -> None:
        if self.changed is not None:
            self.changed(self)


class UpdateRun(RunCommand):
    """Rename or tag runs: ``field`` is "name" or "tags"."""

    def __init__(self, runs: list[dict], field: str, value, changed=None):
        what = run_label(runs[0]) if len(runs) == 1 else f"{len(runs)} runs"
        text = f"Rename run {what} to {value}" if field == "name" else f"Tag run {what}"
        super().__init__(text, changed)
        self.field = field
        self.dirs = [r["dir"] for r in runs]
        self.old = [copy.deepcopy(r.get(field)) for r in runs]
        self.new = copy.deepcopy(value)

    def redo(self) -> None:
        self._set([self.new] * len(self.dirs))

    def undo(self) -> None:
        self._set(self.old)

    def _set(self, values) -> None:
        self.failed = None
        for folder, value in zip(self.dirs, values):
            try:
                runs_api.update_run({"dir": folder}, **{self.field: value})
            except (OSError, ValueError) as exc:
                self.failed = f"Cannot change the run in {folder}: {exc}"
        self._done()


class DeleteRuns(RunCommand):
    """Move run folders to the trash folder; undo moves them back."""

    def __init__(self, runs: list[dict], trash: Path, changed=None, trashed: list | None = None):
        what = f"run {run_label(runs[0])}" if len(runs) == 1 else f"{len(runs)} runs"
        super().__init__(f"Delete {what}", changed)
        self.runs = [{"dir": r["dir"], "id": r.get("id")} for r in runs]
        self.trash = Path(trash)
        self.moved: list[tuple[Path, Path]] = []
        self.trashed = trashed if trashed is not None else []  # every folder put in the trash

    def redo(self) -> None:
        self.failed, self.moved = None, []
        for run in self.runs:
            target = self.trash / Path(run["dir"]).name
            try:
                if target.exists():
                    shutil.rmtree(target)
                moved = runs_api.delete_run(run, trash=self.trash)
            except OSError as exc:
                self.failed = f"Cannot delete {run['dir']}: {exc}"
                continue
            self.moved.append((Path(run["dir"]), moved))
            self.trashed.append(moved)
        self._done()

    def undo(self) -> None:
        self.failed = None
        for original, moved in reversed(self.moved):
            try:
                shutil.move(str(moved), str(original))
            except OSError as exc:
                self.failed = f"Cannot bring back {original.name}: {exc}"
        self.moved = []
        self._done()


def push_keeping_clean(document, command: QUndoCommand) -> None:
    """Push a command that does not change the project: a saved document stays saved."""
    stack = document.undo_stack
    clean = stack.isClean() and not document.is_dirty()
    document.push(command)
    if clean:
        stack.setClean()


# -- the window's side ----------------------------------------------------------------------------
class RunsUi(QObject):
    """The Runs dock of a :class:`~gui.main_window.MainWindow` and its hook-up."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.panel = RunsPanel()
        # beside Training, behind the Inspector: the Live views below stay in sight, so the
        # curves of the runs selected here can be watched while choosing
        self.dock = window.add_panel("Runs", self.panel, Qt.DockWidgetArea.RightDockWidgetArea,
                                     "runsDock")
        training = getattr(window, "training", None)
        window.tabifyDockWidget(training.training_dock if training else window.inspector_dock,
                                self.dock)
        window.inspector_dock.raise_()
        self._widened = False
        self.runs: list[dict] = []
        self.root: Path | None = None
        self.trashed: list[Path] = []  # folders this window put in a trash (emptied later)
        self.compare_dialog: CompareDialog | None = None
        self._colors: dict[str, str] = {}  # run id -> colour, stable while it stays selected
        self._shown: tuple = ()  # what the overlays show now: ((id, epochs_done), ...)
        self._signature = None
        self._stale = False
        self.watcher = QFileSystemWatcher(self)
        self.watcher.directoryChanged.connect(self.schedule_refresh)
        self._timer = QTimer(self, singleShot=True, interval=REFRESH_DELAY_MS)
        self._timer.timeout.connect(self.refresh)
        p = self.panel
        p.refresh_requested.connect(self.refresh)
        p.selection_changed.connect(self._selection_changed)
        p.open_requested.connect(self.open_run)
        p.rename_requested.connect(self.rename_run)
        p.tag_requested.connect(self.tag_runs)
        p.delete_requested.connect(self.delete_runs)
        p.compare_requested.connect(self.compare)
        p.model.edit_requested.connect(self._edit_requested)
        self.dock.visibilityChanged.connect(self._visibility_changed)
        window.document_changed.connect(self._document_changed)
        training = getattr(window, "training", None)
        if training is not None:
            training.controller.run_finished.connect(self._run_ended)
            training.controller.run_failed.connect(self._run_ended)
        window.installEventFilter(self)
        if window.document is not None:
            self._document_changed(window.document)

    # -- reading the disk --------------------------------------------------------------------
    def _document_changed(self, document) -> None:
        self._empty_trash()  # the old document's undo steps are gone: so are their runs
        self._colors, self._shown = {}, ()
        document.saved.connect(lambda _path: self.refresh())
        self._clear_overlays()
        self.refresh(force=True)

    def _visibility_changed(self, visible: bool) -> None:
        if not visible:
            return
        if self._stale:
            self.refresh()
        if not self._widened and not self.dock.isFloating():
            self._widened = True  # once: a width the user gives it afterwards stays
            QTimer.singleShot(0, self._widen)

    def _widen(self) -> None:
        """A table wants room: take it from the canvas (the docks keep their minimum)."""
        if self.dock.isVisible() and not self.dock.isFloating() and \
                self.dock.width() < RUNS_WIDTH:
            self.window.resizeDocks([self.dock], [RUNS_WIDTH], Qt.Orientation.Horizontal)
            QTimer.singleShot(FIT_DELAY_MS, self.window.zoom_to_fit)  # the canvas got narrower

    def _run_ended(self, *_args) -> None:
        self.refresh()

    def schedule_refresh(self, *_args) -> None:
        if not self._timer.isActive():
            # while the window trains, its own run's files change every few seconds: read
            # them seldom (its end refreshes the table anyway) and leave the window's time to
            # the live views
            self._timer.start(BUSY_REFRESH_DELAY_MS if self._busy() else REFRESH_DELAY_MS)

    def refresh(self, force: bool = False) -> None:
        """Read the project's runs again (when the dock is seen: a hidden one does it when
        shown)."""
        doc = self.window.document
        if doc is None:
            return
        if not force and not self.dock.isVisible():
            self._stale = True
            return
        if self.panel.table.state() == QAbstractItemView.State.EditingState:
            self.schedule_refresh()  # never pull the table from under a name being typed
            return
        self._stale = False
        self.root = existing_root(doc.project)
        try:
            runs = runs_api.list_runs(doc.project) if self.root is not None else []
        except OSError as exc:
            self.window.show_status(f"Cannot read the runs: {exc}")
            runs = []
        self._watch(doc.project, runs)
        signature = tuple((r.get("id"), r.get("name"), tuple(r.get("tags") or ()),
                           r.get("status"), r.get("epochs_done"), r.get("seconds"),
                           r.get("heartbeat")) for r in runs)
        if signature == self._signature and not force:
            return
        self._signature = signature
        self.runs = runs
        self.panel.set_runs(runs)

    def _watch(self, project, runs: list[dict]) -> None:
        wanted = set()
        folder = watch_folder(project)
        if folder is not None:
            wanted.add(str(folder))
        wanted |= {r["dir"] for r in runs if r.get("status") == "running"}
        have = set(self.watcher.directories())
        if have - wanted:
            self.watcher.removePaths(sorted(have - wanted))
        if wanted - have:
            self.watcher.addPaths(sorted(wanted - have))

    # -- overlays ----------------------------------------------------------------------------
    def _selection_changed(self, runs: list[dict]) -> None:
        ids = [r.get("id") for r in runs]
        self._colors = {i: c for i, c in self._colors.items() if i in ids}
        for run_id in ids:
            if run_id not in self._colors:
                used = set(self._colors.values())
                free = [c for c in RUN_COLORS if c not in used] or list(RUN_COLORS)
                self._colors[run_id] = free[0]
        self.panel.model.set_colors(self._colors)
        shown = tuple((r.get("id"), r.get("epochs_done"), r.get("name")) for r in runs)
        if shown == self._shown:
            return
        self._shown = shown
        training = getattr(self.window, "training", None)
        if training is None:
            return
        if not runs and not training.views_holder.built:
            return
        labels = _labels(runs)
        overlays = {labels[r["id"]]: runs_api.run_metrics(r) for r in runs}
        colors = {labels[r["id"]]: self._colors[r["id"]] for r in runs}
        training.views.curves.set_overlays(overlays, colors)
        if runs:
            self._show_views()

    def _clear_overlays(self) -> None:
        training = getattr(self.window, "training", None)
        if training is not None and training.views_holder.built:
            training.views.curves.set_overlays({})

    def _show_views(self) -> None:
        """Bring the Live views forward, unless that would hide this dock."""
        w = self.window
        views = w.training.views_dock
        if self.dock in w.tabifiedDockWidgets(views):
            return
        views.show()
        views.raise_()
        tall = int(w.height() * VIEWS_HEIGHT)
        if views.height() < tall and not views.isFloating():  # room for two plots
            w.resizeDocks([views], [tall], Qt.Orientation.Vertical)

    # -- actions -----------------------------------------------------------------------------
    def _busy(self) -> bool:
        training = getattr(self.window, "training", None)
        return training is not None and training.controller.busy

    def open_run(self, run: dict) -> None:
        """Put the run's graph and settings into the document (one undo step)."""
        doc = self.window.document
        if doc is None:
            return
        if self._busy():
            self.window.show_status("Training is running: stop it to open a run")
            return
        snapshot = run.get("project")
        if not isinstance(snapshot, dict) or not snapshot.get("models"):
            self.window.show_status(f"Run {run_label(run)} holds no project to open")
            return
        if set(snapshot["models"]) != set(doc.model_names):
            self._open_as_document(run, snapshot)
            return
        try:
            command = RestoreProject(doc, snapshot, f"Open run {run_label(run)}")
        except ProjectError as exc:
            self._error("Cannot open the run", str(exc))
            return
        doc.push(command)
        self.window.show_status(f"Opened run {run_label(run)}: its graph and settings are the "
                                f"project's now (Undo puts the previous ones back)")

    def _open_as_document(self, run: dict, snapshot: dict) -> None:
        """A run whose models are not the open project's: it replaces the document (not
        undoable, so asked first); the project file changes only when saved."""
        from gui.document import Document

        doc = self.window.document
        if self.window.interactive:
            answer = QMessageBox.question(
                self.window, "Open run",
                f"Run “{run_label(run)}” has other models ({', '.join(snapshot['models'])}) "
                f"than the open project ({', '.join(doc.model_names)}), so opening it cannot "
                f"be undone.\n\nOpen it in place of the project? The file changes only when "
                f"you save.",
                QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Open:
                return
        try:
            project = parse_project(copy.deepcopy(snapshot), "the run's project")
        except ProjectError as exc:
            self._error("Cannot open the run", str(exc))
            return
        project.path = doc.path
        project.name = doc.project.name
        document = Document(project)
        self.window.set_document(document)
        document.mark_dirty()
        self.window.show_status(f"Opened run {run_label(run)}")

    def rename_run(self, run: dict) -> None:
        name, ok = QInputDialog.getText(self.window, "Rename run", "Name:",
                                        QLineEdit.EchoMode.Normal, run_label(run))
        name = (name or "").strip()
        if ok and name and name != run_label(run):
            self._update([run], "name", name)

    def tag_runs(self, runs: list[dict]) -> None:
        current = ", ".join(runs[0].get("tags") or []) if len(runs) == 1 else ""
        text, ok = QInputDialog.getText(self.window, "Tag runs", "Tags (comma-separated):",
                                        QLineEdit.EchoMode.Normal, current)
        if ok:
            self._update(runs, "tags", parse_tags(text))

    def _edit_requested(self, run: dict, field: str, value) -> None:
        QTimer.singleShot(0, lambda: self._update([run], field, value))  # after the editor

    def _update(self, runs: list[dict], field: str, value) -> None:
        doc = self.window.document
        if doc is not None:
            push_keeping_clean(doc, UpdateRun(runs, field, value, self._command_done))

    def delete_runs(self, runs: list[dict]) -> None:
        doc = self.window.document
        if doc is None or not runs:
            return
        running = [r for r in runs if r.get("status") == "running"]
        if running:
            self.window.show_status(f"Run {run_label(running[0])} is still training: stop it "
                                    f"before deleting it")
            return
        trash = Path(runs[0]["dir"]).parent / TRASH
        push_keeping_clean(doc, DeleteRuns(runs, trash, self._command_done, self.trashed))
        what = run_label(runs[0]) if len(runs) == 1 else f"{len(runs)} runs"
        self.window.show_status(f"Deleted {what} (Undo brings it back)")

    def _command_done(self, command: RunCommand) -> None:
        if command.failed:
            self.window.show_status(command.failed)
        self.refresh(force=True)

    def compare(self, a: dict, b: dict) -> CompareDialog:
        if self.compare_dialog is not None:
            self.compare_dialog.close()
            self.compare_dialog.deleteLater()
        self.compare_dialog = CompareDialog(a, b, self.window)
        self.compare_dialog.show()
        return self.compare_dialog

    def _error(self, title: str, message: str) -> None:
        from gui import dialogs

        dialogs.show_error(self.window, title, message, self.window.interactive)

    # -- the end -------------------------------------------------------------------------------
    def _empty_trash(self) -> None:
        for folder in self.trashed:
            shutil.rmtree(folder, ignore_errors=True)
            try:
                folder.parent.rmdir()  # the trash folder itself, once empty
            except OSError:
                pass
        self.trashed.clear()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 - Qt override
        if obj is self.window and event.type() == QEvent.Type.Close:
            QTimer.singleShot(0, self._closed)
        return False

    def _closed(self) -> None:
        from shiboken6 import isValid

        # the close was not cancelled (or the window is already gone)
        if not isValid(self.window) or not self.window.isVisible():
            self._empty_trash()


def _labels(runs: list[dict]) -> dict[str, str]:
    """A legend label per run id: its name, with its id's tail where names repeat."""
    names = [run_label(r) for r in runs]
    return {r.get("id"): (name if names.count(name) == 1 else f"{name} ({str(r.get('id'))[-4:]})")
            for r, name in zip(runs, names)}


def install_runs(window) -> RunsUi:
    """Add the Runs dock to the main window (called once, from its constructor)."""
    window.runs = RunsUi(window)
    return window.runs


__all__ = ["RunsUi", "RunsPanel", "RunsModel", "CompareDialog", "RestoreProject", "DeleteRuns",
           "UpdateRun", "install_runs"]
