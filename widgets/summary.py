"""The model summary: one row per layer (id, type, output shape, parameters, multiply-adds)."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QItemSelection, QItemSelectionModel, QModelIndex, \
    Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QLabel, QTableView, QVBoxLayout, \
    QWidget

from engine.graph import Graph
from engine.shapes import ShapeInference
from widgets.theme import category_color, format_count, format_shape

COLUMNS = ("Layer", "Type", "Output", "Parameters", "Mult-adds")
_RIGHT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)


class SummaryModel(QAbstractTableModel):
    """Rows in topological order; refreshed row by row as shape inference reports changes."""

    structure_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.graph: Graph | None = None
        self.shapes: ShapeInference | None = None
        self.ids: list[str] = []
        self._row: dict[str, int] = {}
        self._dark = False
        self._reset_pending = False

    # -- following the graph -----------------------------------------------------------------------
    def set_source(self, graph: Graph | None, shapes: ShapeInference | None) -> None:
        self._disconnect()
        self.graph, self.shapes = graph, shapes
        if graph is not None:
            graph.events.edge_added.connect(self._on_structure)
            graph.events.edge_removed.connect(self._on_structure)
            shapes.updated.connect(self._on_updated)
        self._reset()

    def _disconnect(self) -> None:
        if self.graph is not None:
            self.graph.events.edge_added.disconnect(self._on_structure)
            self.graph.events.edge_removed.disconnect(self._on_structure)
            self.shapes.updated.disconnect(self._on_updated)

    def _on_structure(self, *_args) -> None:
        if not self._reset_pending:  # several edits in one command make one reset
            self._reset_pending = True
            QTimer.singleShot(0, self._reset)

    def _on_updated(self, node_ids: set) -> None:
        if self._reset_pending:
            return
        if len(self.ids) != len(self.graph) or any(n not in self._row for n in node_ids):
            self._on_structure()
            return
        rows = [self._row[n] for n in node_ids]
        if rows:
            self.dataChanged.emit(self.index(min(rows), 0),
                                  self.index(max(rows), len(COLUMNS) - 1))

    def _reset(self) -> None:
        self._reset_pending = False
        self.beginResetModel()
        self.ids = self.graph.topological_order() if self.graph is not None else []
        self._row = {n: i for i, n in enumerate(self.ids)}
        self.endResetModel()
        self.structure_changed.emit()

    def set_dark(self, dark: bool) -> None:
        self._dark = dark
        if self.ids:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.ids) - 1, 1))

    def row_of(self, node_id: str) -> int | None:
        return self._row.get(node_id)

    # -- the Qt model ------------------------------------------------------------------------------
    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.ids)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.TextAlignmentRole and section >= 3:
                return _RIGHT
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self.graph is None:
            return None
        node_id = self.ids[index.row()]
        if node_id not in self.graph:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(node_id, index.column())
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() >= 3:
            return _RIGHT
        if role == Qt.ItemDataRole.DecorationRole and index.column() == 1:
            return category_color(self.graph.node(node_id).spec.category, self._dark)
        error = self._error(node_id)
        if role == Qt.ItemDataRole.ForegroundRole and error:
            return QColor("#e5484d")
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{node_id}: {error}" if error else self.graph.node(node_id).spec.doc
        return None

    def _error(self, node_id: str) -> str | None:
        info = self.shapes.info.get(node_id)
        return info.error if info is not None else None

    def _text(self, node_id: str, column: int) -> str:
        if column == 0:
            return node_id
        if column == 1:
            return self.graph.node(node_id).type
        info = self.shapes.info.get(node_id)
        if info is None:
            return ""
        if column == 2:
            return "error" if info.error else \
                ("—" if not info.out_shapes and info.out_shape is None
                 else format_shape(info.out_shape))
        if column == 3:
            return f"{info.stats.params:,}" if info.stats.params else "–"
        return format_count(info.stats.macs) if info.stats.macs else "–"


class SummaryWidget(QWidget):
    """The summary dock's content: the table and a totals line; rows and nodes select together."""

    nodes_selected = Signal(list)  # the user selected these rows

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.model = SummaryModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("summaryTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        header = self.table.horizontalHeader()
        header.setHighlightSections(False)
        header.setResizeContentsPrecision(0)  # size columns by the visible rows: O(1) per edit
        header.setMinimumSectionSize(70)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        for col in range(len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)  # the shape column
        self.totals = QLabel(self)
        self.totals.setObjectName("summaryTotals")
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(self.table, 1)
        box.addWidget(self.totals)
        self._syncing = False
        self._wanted: list[str] = []
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.model.structure_changed.connect(self._restore_selection)
        self._totals_timer = QTimer(self, singleShot=True, interval=0)  # one refresh per edit
        self._totals_timer.timeout.connect(self._update_totals)
        self.model.dataChanged.connect(self._schedule_totals)
        self.model.modelReset.connect(self._schedule_totals)

    def set_source(self, graph: Graph | None, shapes: ShapeInference | None) -> None:
        """Show ``graph`` (``None`` empties the table)."""
        self._wanted = []
        self.model.set_source(graph, shapes)

    def detach(self) -> None:
        self.model.set_source(None, None)

    def set_dark(self, dark: bool) -> None:
        self.model.set_dark(dark)

    def selected_ids(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.model.ids[r] for r in rows]

    def select_nodes(self, node_ids: list[str]) -> None:
        """Mirror the canvas selection (emits nothing)."""
        self._wanted = list(node_ids)
        self._syncing = True
        try:
            selection = QItemSelection()
            for node_id in node_ids:
                row = self.model.row_of(node_id)
                if row is not None:
                    selection.select(self.model.index(row, 0),
                                     self.model.index(row, len(COLUMNS) - 1))
            flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
            self.table.selectionModel().select(selection, flags)
            if len(node_ids) == 1 and self.model.row_of(node_ids[0]) is not None:
                self.table.scrollTo(self.model.index(self.model.row_of(node_ids[0]), 0))
        finally:
            self._syncing = False

    def _restore_selection(self) -> None:
        self.select_nodes([n for n in self._wanted if self.model.row_of(n) is not None])

    def _selection_changed(self, *_args) -> None:
        if not self._syncing:
            self._wanted = self.selected_ids()
            self.nodes_selected.emit(self._wanted)

    def _schedule_totals(self, *_args) -> None:
        if not self._totals_timer.isActive():
            self._totals_timer.start()

    def _update_totals(self) -> None:
        shapes = self.model.shapes
        if shapes is None:
            self.totals.setText("")
            return
        params, trainable = shapes.totals()
        macs = sum(i.stats.macs for i in shapes.info.values())
        frozen = "" if trainable == params else f" ({trainable:,} trainable)"
        errors = sum(1 for i in shapes.info.values() if i.error)
        tail = f"  ·  <span style='color:#e5484d'>{errors} in error</span>" if errors else ""
        self.totals.setText(f"<b>Total</b>  {len(self.model.ids)} layers  ·  {params:,} "
                            f"parameters{frozen}  ·  {format_count(macs)} mult-adds{tail}")
