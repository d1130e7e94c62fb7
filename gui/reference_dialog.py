"""Help → Layer Reference: every layer type of the catalog, grouped by category, with the same
entry that ``docs/layers`` holds (both come from :mod:`engine.reference`, so they cannot
differ). The inspector's "Reference" link opens it at the selected layer's type."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QDialog, QHBoxLayout, QLineEdit, QSplitter, QTextBrowser,
                               QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget)

from engine.layers import CATALOG
from engine.reference import category_pages, layer_entry

TYPE_ROLE = Qt.ItemDataRole.UserRole


class LayerReferenceDialog(QDialog):
    """Not modal: it stays open beside the canvas while a person builds."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("layerReference")
        self.setWindowTitle("Layer reference")
        self.search = QLineEdit()
        self.search.setObjectName("referenceSearch")
        self.search.setPlaceholderText("Find a layer type…")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._filter)
        self.tree = QTreeWidget()
        self.tree.setObjectName("referenceTree")
        self.tree.setHeaderHidden(True)
        self.text = QTextBrowser()
        self.text.setObjectName("referenceText")
        self.text.setOpenExternalLinks(False)
        self.text.setOpenLinks(False)
        self.text.anchorClicked.connect(self._link)
        self._fill()
        self.tree.currentItemChanged.connect(self._show_item)

        left = QWidget()
        col = QVBoxLayout(left)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.search)
        col.addWidget(self.tree, 1)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.text)
        split.setStretchFactor(1, 1)
        split.setSizes([220, 640])
        row = QHBoxLayout(self)
        row.addWidget(split)
        self.resize(900, 640)
        first = self.tree.topLevelItem(0)
        if first is not None:
            self.tree.setCurrentItem(first)

    def _fill(self) -> None:
        self.pages = category_pages()
        by_category: dict[str, list[str]] = {}
        for spec in CATALOG.values():
            if spec.in_palette:
                by_category.setdefault(spec.category, []).append(spec.type)
        self.items: dict[str, QTreeWidgetItem] = {}
        for category, types in by_category.items():
            top = QTreeWidgetItem([category])
            top.setData(0, TYPE_ROLE, None)
            top.setFlags(top.flags() & ~Qt.ItemFlag.ItemIsDragEnabled)
            for name in types:
                child = QTreeWidgetItem([name])
                child.setData(0, TYPE_ROLE, name)
                top.addChild(child)
                self.items[name] = child
            self.tree.addTopLevelItem(top)
            top.setExpanded(True)

    def shown_type(self) -> str | None:
        item = self.tree.currentItem()
        return item.data(0, TYPE_ROLE) if item is not None else None

    def show_layer(self, layer_type: str) -> bool:
        """Select ``layer_type`` and show its entry; False for a type not in the reference."""
        item = self.items.get(layer_type)
        if item is None:
            return False
        self.search.clear()
        self.tree.setCurrentItem(item)
        self.tree.scrollToItem(item)
        return True

    def _show_item(self, item: QTreeWidgetItem | None, _previous=None) -> None:
        if item is None:
            return
        layer_type = item.data(0, TYPE_ROLE)
        if layer_type is None:  # a category: its whole page
            self.text.setMarkdown(self.pages.get(item.text(0), ""))
        else:
            self.text.setMarkdown(layer_entry(CATALOG[layer_type]))
        self.text.verticalScrollBar().setValue(0)

    def _filter(self, text: str) -> None:
        needle = text.strip().lower()
        first = None
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            visible = 0
            for j in range(top.childCount()):
                child = top.child(j)
                spec = CATALOG[child.data(0, TYPE_ROLE)]
                hit = not needle or needle in spec.type.lower() or needle in spec.doc.lower()
                child.setHidden(not hit)
                if hit:
                    visible += 1
                    first = first or child
            top.setHidden(visible == 0)
        if needle and first is not None:
            self.tree.setCurrentItem(first)

    def _link(self, url) -> None:
        """Links between entries name a layer type (``#conv2d`` or ``Conv2d``)."""
        if url.scheme() in ("http", "https"):  # torch's documentation: the browser
            from PySide6.QtGui import QDesktopServices

            QDesktopServices.openUrl(url)
            return
        target = url.fragment() or url.toString()
        for name in self.items:
            if name.lower() == target.lower().replace("-", ""):
                self.show_layer(name)
                return


def show_layer_reference(window, layer_type: str | None = None) -> LayerReferenceDialog:
    dialog = getattr(window, "reference_dialog", None)
    if dialog is None:
        dialog = window.reference_dialog = LayerReferenceDialog(window)
    if layer_type:
        dialog.show_layer(layer_type)
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog
