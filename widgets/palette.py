"""The layer palette: every catalog layer by category, searchable, draggable onto the canvas."""
from __future__ import annotations

from PySide6.QtCore import QMimeData, QRect, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QLineEdit, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

from engine.layers import by_category

from .theme import category_color

LAYER_MIME = "application/x-layerlab-layer"
_TYPE_ROLE = Qt.ItemDataRole.UserRole


def category_icon(category: str, size: int = 14) -> QIcon:
    """A rounded swatch in the category's colour (the same colour as the node header)."""
    pixmap = QPixmap(size * 2, size * 2)  # drawn at 2x so it stays crisp on high-dpi screens
    pixmap.setDevicePixelRatio(2.0)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(category_color(category))
    painter.drawRoundedRect(2, 2, size - 4, size - 4, 3, 3)
    painter.end()
    return QIcon(pixmap)


def palette_layers() -> dict[str, list]:
    """The layers a person can add, by category (the importer-only ones left out); categories
    with none are left out too."""
    groups = {c: [s for s in specs if s.in_palette] for c, specs in by_category().items()}
    return {c: specs for c, specs in groups.items() if specs}


class _LayerTree(QTreeWidget):
    """The tree of layers; drags carry the layer type under :data:`LAYER_MIME`."""

    def mimeTypes(self) -> list[str]:
        return [LAYER_MIME]

    def mimeData(self, items) -> QMimeData:
        mime = QMimeData()
        names = [i.data(0, _TYPE_ROLE) for i in items if i.data(0, _TYPE_ROLE)]
        if names:
            mime.setData(LAYER_MIME, names[0].encode("utf-8"))
            mime.setText(names[0])
        return mime


class PaletteWidget(QWidget):
    """Search box and categorised list of layers. Drag a layer out, or activate it."""

    layer_activated = Signal(str, bool)  # type name, True when chosen with Enter in the search

    def __init__(self, parent=None):
        super().__init__(parent)
        self._search = QLineEdit(placeholderText="Search layers…  (Enter adds the first)")
        self._search.setClearButtonEnabled(True)
        self._tree = _LayerTree()
        self._items: dict[str, QTreeWidgetItem] = {}
        self._blocks: QTreeWidgetItem | None = None
        self._setup_tree()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(6)
        layout.addWidget(self._search)
        layout.addWidget(self._tree)
        self._search.textChanged.connect(self._filter)
        self._search.returnPressed.connect(self._activate_first)
        self._tree.itemDoubleClicked.connect(self._double_clicked)

    def _setup_tree(self) -> None:
        tree = self._tree
        tree.setHeaderHidden(True)
        tree.setIndentation(12)
        tree.setIconSize(QSize(14, 14))
        tree.setUniformRowHeights(True)
        tree.setDragEnabled(True)
        tree.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        for category, specs in palette_layers().items():
            group = QTreeWidgetItem(tree, [category])
            group.setIcon(0, category_icon(category))
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            for spec in specs:
                self._items[spec.type] = self._layer_item(group, spec, category)
        tree.expandAll()

    @staticmethod
    def _layer_item(group: QTreeWidgetItem, spec, category: str) -> QTreeWidgetItem:
        item = QTreeWidgetItem(group, [spec.type])
        item.setData(0, _TYPE_ROLE, spec.type)
        item.setIcon(0, category_icon(category, 12))
        item.setToolTip(0, f"<b>{spec.type}</b> <span style='color:gray'>({category})</span>"
                           f"<br>{spec.doc}")
        item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                      | Qt.ItemFlag.ItemIsDragEnabled)
        return item

    # -- public ----------------------------------------------------------------------------
    def set_blocks(self, entries: list[tuple[str, str, str]]) -> None:
        """The Blocks section: (payload, label, tooltip) per block; payloads travel like
        layer types (``Block:NAME``)."""
        if self._blocks is None:  # second, after I/O: a block is a whole stage of a network
            self._blocks = QTreeWidgetItem(["Blocks"])
            self._tree.insertTopLevelItem(min(1, self._tree.topLevelItemCount()), self._blocks)
            self._blocks.setIcon(0, category_icon("Core"))
            self._blocks.setFlags(Qt.ItemFlag.ItemIsEnabled)
            font = self._blocks.font(0)
            font.setBold(True)
            self._blocks.setFont(0, font)
        for i in reversed(range(self._blocks.childCount())):
            child = self._blocks.takeChild(i)
            self._items.pop(child.data(0, _TYPE_ROLE), None)
        for payload, label, tip in entries:
            item = QTreeWidgetItem(self._blocks, [label])
            item.setData(0, _TYPE_ROLE, payload)
            item.setIcon(0, category_icon("Core", 12))
            item.setToolTip(0, f"<b>{label}</b> <span style='color:gray'>(block)</span><br>{tip}")
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                          | Qt.ItemFlag.ItemIsDragEnabled)
            self._items[payload] = item
        self._blocks.setExpanded(True)
        self._filter(self._search.text())

    def search_box(self) -> QLineEdit:
        return self._search

    def tree(self) -> QTreeWidget:
        return self._tree

    def item_rect(self, type_name: str) -> QRect:
        """Where ``type_name`` is drawn, in the tree viewport's coordinates."""
        return self._tree.visualItemRect(self._items[type_name])

    def mime_data(self, type_name: str) -> QMimeData:
        """The drag data the palette produces for ``type_name``."""
        return self._tree.mimeData([self._items[type_name]])

    def visible_layers(self) -> list[str]:
        """Layer types that the current search leaves visible, in display order."""
        shown = []
        root = self._tree.invisibleRootItem()
        for i in range(root.childCount()):
            group = root.child(i)
            if group.isHidden():
                continue
            shown.extend(group.child(j).data(0, _TYPE_ROLE) for j in range(group.childCount())
                         if not group.child(j).isHidden())
        return shown

    # -- behaviour -------------------------------------------------------------------------
    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        root = self._tree.invisibleRootItem()
        for i in range(root.childCount()):
            group = root.child(i)
            category_hit = bool(needle) and needle in group.text(0).lower()
            any_shown = False
            for j in range(group.childCount()):
                item = group.child(j)
                shown = not needle or category_hit or needle in item.text(0).lower()
                item.setHidden(not shown)
                any_shown |= shown
            group.setHidden(not any_shown)
        self._select_first()

    def best_match(self) -> str | None:
        """The layer Enter adds: an exact name first, then a prefix, then the first shown."""
        needle = self._search.text().strip().lower()
        shown = self.visible_layers()
        if not needle or not shown:
            return None

        def rank(indexed):
            i, name = indexed
            low = name.lower()
            return (low != needle, not low.startswith(needle), i)

        return min(enumerate(shown), key=rank)[1]

    def _select_first(self) -> None:
        self._tree.clearSelection()
        best = self.best_match()
        if best:
            item = self._items[best]
            item.setSelected(True)
            self._tree.scrollToItem(item)

    def _activate_first(self) -> None:
        best = self.best_match()
        if best:
            self.layer_activated.emit(best, True)

    def _double_clicked(self, item: QTreeWidgetItem, column: int) -> None:
        type_name = item.data(0, _TYPE_ROLE)
        if type_name:
            self.layer_activated.emit(type_name, False)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Down and self._search.hasFocus():
            self._tree.setFocus()
            return
        super().keyPressEvent(event)

