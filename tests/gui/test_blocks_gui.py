"""Blocks in the window, driven like a person would: Ctrl+click layers, Ctrl+B and a name, the
Block node in their place with its totals; undo and redo; Expand; a bundled block dragged in
from the palette's Blocks section; the inspector edits the block's exposed parameter."""
from __future__ import annotations

import copy

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit

from engine.project import graph_to_dict, parse_project
from gui.document import Document
from gui.main_window import MainWindow
from gui.settings import Settings

CTRL = Qt.KeyboardModifier.ControlModifier
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture(autouse=True)
def isolated(gui_isolated):
    yield
    assert gui_isolated == []  # no message box


def open_window(qtbot, document: Document) -> MainWindow:
    window = MainWindow(Settings(), theme="light")
    qtbot.addWidget(window, before_close_func=lambda w: setattr(w, "interactive", False))
    window.set_document(document)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()  # window shortcuts (Ctrl+B...) only reach the active window
    qtbot.waitUntil(window.isActiveWindow)
    window.zoom_to_fit()
    return window


def model(window) -> dict:
    d = copy.deepcopy(graph_to_dict(window.current_canvas().graph))
    d["nodes"].sort(key=lambda n: n["id"])
    return d


def drop_layer(window, payload: str, at: QPoint) -> None:
    """A real drop: the palette's own drag data delivered to the canvas viewport."""
    mime = window.palette.mime_data(payload)
    viewport = window.current_canvas().view.viewport()
    action, none = Qt.DropAction.CopyAction, Qt.KeyboardModifier.NoModifier
    for cls in (QDragEnterEvent, QDragMoveEvent):
        event = cls(at, action, mime, LEFT, none)
        QApplication.sendEvent(viewport, event)
        assert event.isAccepted()
    QApplication.sendEvent(viewport, QDropEvent(QPointF(at), action, mime, LEFT, none))


def residual_project() -> Document:
    conv = {"out_channels": 8, "kernel_size": 3, "padding": 1}
    data = {"format": "layerlab-project", "version": 1, "name": "res", "models": {"model": {
        "nodes": [{"id": "x", "type": "Input", "params": {"shape": [8, 6, 6]}, "pos": [0, 0]},
                  {"id": "conv1", "type": "Conv2d", "params": conv, "pos": [200, 0]},
                  {"id": "relu1", "type": "ReLU", "pos": [400, 0]},
                  {"id": "conv2", "type": "Conv2d", "params": conv, "pos": [600, 0]},
                  {"id": "add", "type": "Add", "pos": [800, 0]},
                  {"id": "flat", "type": "Flatten", "pos": [1000, 0]},
                  {"id": "y", "type": "Output", "pos": [1200, 0]}],
        "edges": [{"from": "x", "to": "conv1"}, {"from": "conv1", "to": "relu1"},
                  {"from": "relu1", "to": "conv2"}, {"from": "conv2", "to": "add"},
                  {"from": "x", "to": "add"}, {"from": "add", "to": "flat"},
                  {"from": "flat", "to": "y"}]}}}
    return Document(parse_project(data))


def click_node(qtbot, canvas, node_id: str, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    item = canvas.scene.node_item(node_id)
    at = canvas.view.mapFromScene(item.sceneBoundingRect().center())
    qtbot.mouseClick(canvas.view.viewport(), LEFT, modifier, at)


def answer_dialog(qtbot, text: str) -> None:
    """Type into the open name dialog and press Enter."""
    qtbot.waitUntil(lambda: isinstance(QApplication.activeModalWidget(), QInputDialog))
    dialog = QApplication.activeModalWidget()
    line = dialog.findChild(QLineEdit)
    line.selectAll()
    qtbot.keyClicks(line, text)
    qtbot.keyClick(line, Qt.Key.Key_Return)


def test_make_block_with_ctrl_b_then_undo_redo_and_expand(qtbot):
    window = open_window(qtbot, residual_project())
    canvas = window.current_canvas()
    window.zoom_to_fit()
    before = model(window)
    click_node(qtbot, canvas, "conv1")
    for node_id in ("relu1", "conv2", "add"):
        click_node(qtbot, canvas, node_id, CTRL)
    assert sorted(canvas.scene.selected_node_ids()) == ["add", "conv1", "conv2", "relu1"]
    qtbot.keyClick(canvas.view, Qt.Key.Key_B, CTRL)
    answer_dialog(qtbot, "residual")
    graph = canvas.graph
    assert sorted(n.type for n in graph.nodes()) == ["Block", "Flatten", "Input", "Output"]
    block_id = next(n.id for n in graph.nodes_of_type("Block"))
    assert "residual" in window.document.project.blocks
    info = canvas.shapes.info[block_id]
    assert info.out_shape == (8, 6, 6) and info.stats.params == 2 * (8 * 8 * 9 + 8)
    item = canvas.scene.node_item(block_id)
    assert item.title == "▣ residual" and "1.2k params" in item._texts["count"]
    assert canvas.scene.selected_node_ids() == [block_id]
    after = model(window)
    window.undo()
    assert model(window) == before and not window.document.project.blocks
    window.redo()
    assert model(window) == after and "residual" in window.document.project.blocks
    # the palette lists the new block first among the blocks
    assert window.palette.visible_layers().index("Block:residual") < \
        window.palette.visible_layers().index("Block:residual_basic")
    # expand puts the layers back (ids prefixed with the block node's)
    canvas.scene.select_nodes([block_id])
    qtbot.keyClick(canvas.view, Qt.Key.Key_B, CTRL | Qt.KeyboardModifier.ShiftModifier)
    types = sorted(n.type for n in graph.nodes())
    assert types == sorted(["Input", "Conv2d", "ReLU", "Conv2d", "Add", "Flatten", "Output"])
    assert canvas.shapes.info["flat"].out_shape == (288,)
    window.undo()
    assert model(window) == after


def test_a_refused_selection_says_why_and_changes_nothing(qtbot):
    window = open_window(qtbot, residual_project())
    canvas = window.current_canvas()
    before = model(window)
    click_node(qtbot, canvas, "x")
    click_node(qtbot, canvas, "conv1", CTRL)
    qtbot.keyClick(canvas.view, Qt.Key.Key_B, CTRL)
    answer_dialog(qtbot, "stem")
    assert "x: an Input node cannot go into a block" in window.statusBar().currentMessage()
    assert model(window) == before and window.document.undo_stack.count() == 0


def test_a_bundled_block_dropped_from_the_palette_and_its_parameter_edited(qtbot):
    window = open_window(qtbot, residual_project())
    canvas = window.current_canvas()
    before = model(window)
    assert "Block:residual_basic" in window.palette.visible_layers()
    drop_layer(window, "Block:residual_basic", QPoint(300, 300))
    graph = canvas.graph
    node = next(n for n in graph.nodes_of_type("Block"))
    assert node.params == {"block": "residual_basic"}
    assert "residual_basic" in window.document.project.blocks
    # the inspector shows the block's exposed parameter; 8 channels makes it fit after x
    editor = window.inspector.editors["channels"]
    spin = editor.editor
    assert spin.value() == 16
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "8")
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert graph.node(node.id).params["channels"] == 8
    window.undo()
    window.undo()
    assert model(window) == before and "residual_basic" not in window.document.project.blocks


def test_ctrl_f_finds_a_node_by_type_and_shape_and_goes_to_it(qtbot):
    window = open_window(qtbot, residual_project())
    canvas = window.current_canvas()
    qtbot.keyClick(canvas.view, Qt.Key.Key_F, CTRL)
    find = window._find
    qtbot.waitUntil(find.isVisible)
    assert find.count.text() == "7 of 7 nodes"
    qtbot.keyClicks(find.edit, "conv 8x6")
    assert [find.hits.item(i).text().split()[0] for i in range(find.hits.count())] == \
        ["conv1", "conv2"]
    qtbot.keyClick(find.edit, Qt.Key.Key_Down)
    qtbot.keyClick(find.edit, Qt.Key.Key_Return)
    assert canvas.scene.selected_node_ids() == ["conv2"]
    assert not find.isVisible()
    centre = canvas.view.mapToScene(canvas.view.viewport().rect().center())
    assert canvas.scene.node_item("conv2").sceneBoundingRect().adjusted(-20, -20, 20, 20) \
        .contains(centre)


def two_instance_project() -> Document:
    data = {"format": "layerlab-project", "version": 1, "name": "two", "blocks": {
        "stage": {"params": {"width": 8}, "nodes": [
            {"id": "x", "type": "Input", "pos": [0, 0]},
            {"id": "fc", "type": "Linear", "params": {"out_features": "$width"}, "pos": [200, 0]},
            {"id": "act", "type": "ReLU", "pos": [400, 0]},
            {"id": "y", "type": "Output", "pos": [600, 0]}],
            "edges": [{"from": "x", "to": "fc"}, {"from": "fc", "to": "act"},
                      {"from": "act", "to": "y"}]}},
        "models": {"model": {"nodes": [
            {"id": "x", "type": "Input", "params": {"shape": [4]}, "pos": [0, 0]},
            {"id": "s1", "type": "Block", "params": {"block": "stage"}, "pos": [200, 0]},
            {"id": "s2", "type": "Block", "params": {"block": "stage"}, "pos": [400, 0]},
            {"id": "y", "type": "Output", "pos": [600, 0]}],
            "edges": [{"from": "x", "to": "s1"}, {"from": "s1", "to": "s2"},
                      {"from": "s2", "to": "y"}]}}}
    return Document(parse_project(data))


def test_double_click_opens_the_definition_and_an_edit_there_changes_every_instance(qtbot):
    window = open_window(qtbot, two_instance_project())
    canvas = window.current_canvas()
    assert [canvas.shapes.info[s].stats.params for s in ("s1", "s2")] == [40, 72]
    item = canvas.scene.node_item("s1")
    qtbot.mouseDClick(canvas.view.viewport(), LEFT, Qt.KeyboardModifier.NoModifier,
                      canvas.view.mapFromScene(item.sceneBoundingRect().center()))
    tab = window.current_canvas()
    assert tab.model == "block:stage" and window.tabs.tabText(window.tabs.currentIndex()) == \
        "▣ stage"
    assert tab.shapes.info["fc"].out_shape == (8,)  # as the first instance sees it: 4 -> 8
    tab.scene.select_nodes(["fc"])
    box = window.inspector.editors["bias"].editor
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_Space)  # the bias tick box, off
    assert window.document.project.blocks["stage"].graph.node("fc").params["bias"] is False
    qtbot.waitUntil(lambda: canvas.shapes.info["s2"].stats.params == 64)
    assert canvas.shapes.info["s1"].stats.params == 32
    window.undo()
    qtbot.waitUntil(lambda: canvas.shapes.info["s2"].stats.params == 72)
    assert "bias" not in window.document.project.blocks["stage"].graph.node("fc").params


def test_undoing_a_block_edit_keeps_the_open_definition_live(qtbot):
    """An undo of Expand puts the definitions back in place: the open block tab, and the undo
    steps of edits made in it, still act on the project's own definition."""
    window = open_window(qtbot, two_instance_project())
    canvas = window.current_canvas()
    window.open_block_tab("stage")
    tab = window.current_canvas()
    definition = window.document.project.blocks["stage"]
    tab.scene.select_nodes(["fc"])
    box = window.inspector.editors["bias"].editor
    box.setFocus()
    qtbot.keyClick(box, Qt.Key.Key_Space)  # bias off, in the definition's tab
    assert definition.graph.node("fc").params["bias"] is False
    window.tabs.setCurrentWidget(canvas.view)
    canvas.scene.select_nodes(["s2"])
    qtbot.keyClick(canvas.view, Qt.Key.Key_B, CTRL | Qt.KeyboardModifier.ShiftModifier)
    assert "s2" not in canvas.graph and canvas.graph.node("s2_fc").params["bias"] is False
    window.undo()  # the expand
    assert window.document.project.blocks["stage"] is definition
    assert "block:stage" in window.canvases and window.canvases["block:stage"].graph is \
        definition.graph
    window.undo()  # the bias edit made in the tab
    assert "bias" not in definition.graph.node("fc").params
    qtbot.waitUntil(lambda: canvas.shapes.info["s2"].stats.params == 72)
    window.redo()
    window.redo()
    assert definition.graph.node("fc").params["bias"] is False
    assert canvas.graph.node("s2_fc").params["bias"] is False


def test_a_definition_tab_closes_with_its_close_button(qtbot):
    window = open_window(qtbot, two_instance_project())
    window.open_block_tab("stage")
    bar = window.tabs.tabBar()
    index = window.tabs.currentIndex()
    assert bar.tabButton(0, bar.ButtonPosition.RightSide) is None  # a model's tab stays
    button = bar.tabButton(index, bar.ButtonPosition.RightSide)
    assert button is not None
    qtbot.mouseClick(button, LEFT)
    assert "block:stage" not in window.canvases and window.tabs.count() == 1
    assert "stage" not in window.document.block_shapes  # no longer inferred
    window.open_block_tab("stage")  # and opens again
    assert window.current_canvas().model == "block:stage"


def test_a_selection_read_in_two_places_becomes_a_block_card_with_two_ports(qtbot):
    # conv1 and relu1 go into the block; both are read outside it (conv2 reads relu1, add
    # reads conv1 through a second wire), so the block has two outputs
    document = residual_project()
    graph = document.project.models["model"]
    graph.disconnect(next(e for e in graph.in_edges("add") if e.src == "x"))
    graph.connect("conv1", "add")
    window = open_window(qtbot, document)
    canvas = window.current_canvas()
    before = model(window)
    click_node(qtbot, canvas, "conv1")
    click_node(qtbot, canvas, "relu1", CTRL)
    qtbot.keyClick(canvas.view, Qt.Key.Key_B, CTRL)
    answer_dialog(qtbot, "pair")
    block_id = next(n.id for n in canvas.graph.nodes_of_type("Block"))
    item = canvas.scene.node_item(block_id)
    assert list(item.outputs) == ["y1", "y2"]  # one port per Output, labelled on the card
    y1, y2 = item.outputs["y1"], item.outputs["y2"]
    assert y1.scenePos().y() < y2.scenePos().y()
    wires = {(e.edge.src_port, e.edge.dst) for e in item.edges if e.edge.src == block_id}
    assert wires == {("y1", "conv2"), ("y2", "add")} or wires == {("y2", "conv2"), ("y1", "add")}
    for wire in item.edges:  # each wire starts at its own port
        if wire.edge.src == block_id:
            assert wire.src_port is item.outputs[wire.edge.src_port]
    assert canvas.shapes.info[block_id].out_shapes == {"y1": (8, 6, 6), "y2": (8, 6, 6)}
    assert not any(i.error for i in map(canvas.scene.node_item, canvas.graph.node_ids()))
    window.undo()
    assert model(window) == before
    window.redo()
    assert list(canvas.scene.node_item(block_id).outputs) == ["y1", "y2"]


def test_a_wire_from_a_port_the_block_lost_survives_delete_and_undo(qtbot):
    pair = {"nodes": [{"id": "x", "type": "Input", "pos": [0, 0]},
                      {"id": "a", "type": "ReLU", "pos": [200, 0]},
                      {"id": "b", "type": "Tanh", "pos": [200, 150]},
                      {"id": "h", "type": "Output", "pos": [400, 0]},
                      {"id": "c", "type": "Output", "pos": [400, 150]}],
            "edges": [{"from": "x", "to": "a"}, {"from": "a", "to": "h"},
                      {"from": "x", "to": "b"}, {"from": "b", "to": "c"}]}
    data = {"format": "layerlab-project", "version": 1, "name": "lost", "blocks": {"pair": pair},
            "models": {"model": {
                "nodes": [{"id": "x", "type": "Input", "params": {"shape": [3]}, "pos": [0, 0]},
                          {"id": "p", "type": "Block", "params": {"block": "pair"},
                           "pos": [200, 0]},
                          {"id": "add", "type": "Add", "pos": [400, 0]},
                          {"id": "y", "type": "Output", "pos": [600, 0]}],
                "edges": [{"from": "x", "to": "p"}, {"from": "p", "from_port": "h", "to": "add"},
                          {"from": "p", "from_port": "gone", "to": "add"},
                          {"from": "add", "to": "y"}]}}}
    window = open_window(qtbot, Document(parse_project(data)))
    canvas = window.current_canvas()
    before = model(window)
    assert list(canvas.scene.node_item("p").outputs) == ["h", "c", "gone"]
    assert "reads p's output 'gone'" in canvas.scene.node_item("add").error
    click_node(qtbot, canvas, "p")
    qtbot.keyClick(canvas.view, Qt.Key.Key_Delete)
    assert "p" not in canvas.graph
    window.undo()  # the node comes back first, then its wires, the lost port's too
    assert model(window) == before
    item = canvas.scene.node_item("p")
    assert list(item.outputs) == ["h", "c", "gone"]
    wire = next(e for e in item.edges if e.edge.src_port == "gone")
    assert wire.src_port is item.outputs["gone"]
