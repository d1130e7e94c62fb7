"""The layer palette: every catalog layer by category, search as you type, drag data."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from engine.layers import CATALOG, by_category
from widgets.palette import LAYER_MIME, PaletteWidget

ADDABLE = sorted(t for t, spec in CATALOG.items() if spec.in_palette)


@pytest.fixture
def palette(qtbot):
    widget = PaletteWidget()
    qtbot.addWidget(widget)
    widget.resize(260, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def test_lists_every_catalog_layer_grouped_by_category(palette):
    assert sorted(palette.visible_layers()) == ADDABLE
    tree = palette.tree()
    groups = [tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount())]
    assert groups == [c for c, specs in by_category().items() if specs]
    assert "Core" in groups
    conv = next(tree.topLevelItem(i) for i in range(tree.topLevelItemCount())
                if tree.topLevelItem(i).text(0) == "Convolution")
    assert {conv.child(j).text(0) for j in range(conv.childCount())} == {
        s.type for s in by_category()["Convolution"]}


def test_the_importers_opaque_layer_is_not_offered(palette, qtbot):
    # Block nodes come from the palette's Blocks section (one entry per block), not as a type
    assert not CATALOG["Opaque"].in_palette and not CATALOG["Block"].in_palette
    assert len(ADDABLE) == len(CATALOG) - 2
    assert "Opaque" not in palette.visible_layers() and "Block" not in palette.visible_layers()
    QTest.keyClicks(palette.search_box(), "opaque")
    assert palette.visible_layers() == []
    with qtbot.assertNotEmitted(palette.layer_activated):
        QTest.keyClick(palette.search_box(), Qt.Key.Key_Return)


def test_each_layer_shows_its_doc_as_tooltip(palette):
    item = palette.tree().itemAt(palette.item_rect("Linear").center())
    assert item.text(0) == "Linear"
    assert CATALOG["Linear"].doc in item.toolTip(0)
    assert not item.icon(0).isNull()


def test_typing_filters_the_list_as_you_type(palette):
    QTest.keyClicks(palette.search_box(), "conv")
    shown = palette.visible_layers()
    assert shown and all("conv" in name.lower() for name in shown)
    assert "Conv2d" in shown and "Linear" not in shown
    palette.search_box().clear()
    assert sorted(palette.visible_layers()) == ADDABLE


def test_a_category_name_matches_all_its_layers(palette):
    QTest.keyClicks(palette.search_box(), "pooling")
    assert set(palette.visible_layers()) == {s.type for s in by_category()["Pooling"]}


def test_enter_in_the_search_activates_the_best_hit(palette, qtbot):
    QTest.keyClicks(palette.search_box(), "relu")
    with qtbot.waitSignal(palette.layer_activated, timeout=1000) as blocker:
        QTest.keyClick(palette.search_box(), Qt.Key.Key_Return)
    assert blocker.args == ["ReLU", True]


def test_enter_with_no_hit_does_nothing(palette, qtbot):
    QTest.keyClicks(palette.search_box(), "zzzz")
    assert palette.visible_layers() == []
    with qtbot.assertNotEmitted(palette.layer_activated):
        QTest.keyClick(palette.search_box(), Qt.Key.Key_Return)


def test_double_click_activates_a_layer(palette, qtbot):
    viewport = palette.tree().viewport()
    where = palette.item_rect("Dropout").center()
    with qtbot.waitSignal(palette.layer_activated, timeout=1000) as blocker:
        # a real double click: a click, then the second press that Qt reports as a double click
        QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=where)
        QTest.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=where)
    assert blocker.args == ["Dropout", False]


def test_drag_data_carries_the_layer_type(palette):
    mime = palette.mime_data("LSTM")
    assert mime.hasFormat(LAYER_MIME)
    assert bytes(mime.data(LAYER_MIME)).decode("utf-8") == "LSTM"
    assert LAYER_MIME in palette.tree().mimeTypes()
