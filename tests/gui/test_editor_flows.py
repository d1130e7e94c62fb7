"""The editor driven like a person would: real drags, mouse wiring, typing, shortcuts, clipboard.

Each flow checks the model, undoes (model back as it was), and redoes (model changed again).
"""
from __future__ import annotations

import copy

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QMouseEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.examples import EXAMPLES_DIR
from engine.graph import Edge
from engine.project import graph_to_dict, parse_project
from gui.document import Document
from gui.editing import FRAGMENT_MIME
from gui.main_window import MainWindow
from gui.settings import Settings

LEFT = Qt.MouseButton.LeftButton
NO_BUTTON = Qt.MouseButton.NoButton
NO_MODS = Qt.KeyboardModifier.NoModifier


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Settings and recovery files in a temporary folder; message boxes never block."""
    monkeypatch.setenv("LAYERLAB_SETTINGS_DIR", str(tmp_path / "settings"))
    monkeypatch.setenv("LAYERLAB_DATA_DIR", str(tmp_path / "data"))
    for name in ("critical", "warning", "question", "information"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(
            lambda *a, **k: pytest.fail(f"unexpected message box: {a[1:3]}")))


def open_window(qtbot, document: Document) -> MainWindow:
    window = MainWindow(Settings(), theme="light")
    qtbot.addWidget(window, before_close_func=lambda w: setattr(w, "interactive", False))
    window.set_document(document)
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()  # window shortcuts (Ctrl+C...) only reach the active window
    qtbot.waitUntil(window.isActiveWindow)
    window.zoom_to_fit()
    return window


@pytest.fixture
def window(qtbot):
    return open_window(qtbot, Document.open(EXAMPLES_DIR / "cnn_digits.layerlab.json"))


def small_project() -> Document:
    """x -> fc1 -> add -> fc2 -> y, with fc1 also into add: a graph with a multi-input port."""
    data = {"format": "layerlab-project", "version": 1, "name": "small", "models": {"model": {
        "nodes": [{"id": "x", "type": "Input", "params": {"shape": [4]}, "pos": [0, 0]},
                  {"id": "fc1", "type": "Linear", "params": {"out_features": 8}, "pos": [170, 0]},
                  {"id": "add", "type": "Add", "pos": [340, 0]},
                  {"id": "fc2", "type": "Linear", "params": {"out_features": 8}, "pos": [510, 0]},
                  {"id": "fc3", "type": "Linear", "params": {"out_features": 8}, "pos": [340, 160]},
                  {"id": "y", "type": "Output", "pos": [680, 0]}],
        "edges": [{"from": "x", "to": "fc1"}, {"from": "fc1", "to": "add"},
                  {"from": "x", "to": "fc3"}, {"from": "add", "to": "fc2"},
                  {"from": "fc2", "to": "y"}]}}}
    return Document(parse_project(data))


def model(window) -> dict:
    """The current model as the file holds it (node order aside: undoing a delete lists the
    restored node last)."""
    d = copy.deepcopy(graph_to_dict(window.current_canvas().graph))
    d["nodes"].sort(key=lambda n: n["id"])
    return d


def undo_redo(window, before: dict, after: dict) -> None:
    """Undo brings the model back to ``before``; redo to ``after``."""
    window.undo()
    assert model(window) == before
    window.redo()
    assert model(window) == after


# -- mouse helpers (QTest.mouseMove cannot hold a button, so send the events ourselves) --------
def view_point(canvas, scene_pos: QPointF) -> QPoint:
    return canvas.view.mapFromScene(scene_pos)


def send_mouse(widget, kind, pos: QPoint, button, buttons) -> None:
    p = QPointF(pos)
    event = QMouseEvent(kind, p, QPointF(widget.mapToGlobal(pos)), button, buttons, NO_MODS)
    QApplication.sendEvent(widget, event)


def mouse_drag(widget, start: QPoint, end: QPoint, steps: int = 8) -> None:
    send_mouse(widget, QEvent.Type.MouseButtonPress, start, LEFT, LEFT)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        send_mouse(widget, QEvent.Type.MouseMove, p, NO_BUTTON, LEFT)
    send_mouse(widget, QEvent.Type.MouseButtonRelease, end, LEFT, NO_BUTTON)


def drop_layer(window, type_name: str, at: QPoint) -> None:
    """A real drop: the palette's own drag data delivered to the canvas viewport."""
    mime = window.palette.mime_data(type_name)
    viewport = window.current_canvas().view.viewport()
    action = Qt.DropAction.CopyAction
    for cls in (QDragEnterEvent, QDragMoveEvent):
        event = cls(at, action, mime, LEFT, NO_MODS)
        QApplication.sendEvent(viewport, event)
        assert event.isAccepted()
    QApplication.sendEvent(viewport, QDropEvent(QPointF(at), action, mime, LEFT, NO_MODS))


# -- flows -------------------------------------------------------------------------------------
def test_drop_from_palette_adds_a_node_where_dropped(window, qtbot):
    canvas = window.current_canvas()
    before = model(window)
    at = QPoint(300, 120)
    target = canvas.view.mapToScene(at)
    drop_layer(window, "Dropout", at)
    assert "drop1" in canvas.graph
    x, y = canvas.graph.node("drop1").pos
    item = canvas.scene.node_item("drop1")
    assert item.sceneBoundingRect().contains(target)  # the node sits under the cursor
    assert abs(x - target.x()) < 130 and abs(y - target.y()) < 60
    assert canvas.scene.selected_node_ids() == ["drop1"]
    assert window.inspector.node_id == "drop1"
    undo_redo(window, before, model(window))


def test_wire_drawn_with_the_mouse_joins_two_ports(qtbot):
    window = open_window(qtbot, small_project())
    canvas = window.current_canvas()
    before = model(window)
    start = view_point(canvas, canvas.scene.port_scene_pos("fc3", "out", True))
    end = view_point(canvas, canvas.scene.port_scene_pos("add", "in", False))
    mouse_drag(canvas.view.viewport(), start, end)
    assert Edge("fc3", "add") in canvas.graph.edges()
    assert canvas.scene.edge_item(Edge("fc3", "add")) is not None
    assert [e.src for e in canvas.graph.in_edges("add")] == ["fc1", "fc3"]
    undo_redo(window, before, model(window))


def test_a_wire_that_would_make_a_cycle_is_refused_with_the_reason(qtbot):
    window = open_window(qtbot, small_project())
    canvas = window.current_canvas()
    before = model(window)
    start = view_point(canvas, canvas.scene.port_scene_pos("fc2", "out", True))
    end = view_point(canvas, canvas.scene.port_scene_pos("add", "in", False))
    mouse_drag(canvas.view.viewport(), start, end)
    assert Edge("fc2", "add") not in canvas.graph.edges()
    assert model(window) == before
    assert "cycle" in window.statusBar().currentMessage()
    assert window.document.undo_stack.count() == 0


def test_dragging_a_node_is_one_undo_step(window, qtbot):
    canvas = window.current_canvas()
    before = model(window)
    item = canvas.scene.node_item("fc1")
    start = view_point(canvas, item.sceneBoundingRect().center())
    mouse_drag(canvas.view.viewport(), start, start + QPoint(0, 90), steps=12)
    assert canvas.graph.node("fc1").pos[1] > 50
    assert window.document.undo_stack.count() == 1
    assert window.isWindowModified()
    undo_redo(window, before, model(window))


def test_editing_a_parameter_in_the_inspector_relabels_the_wire(window, qtbot):
    canvas = window.current_canvas()
    canvas.scene.select_nodes(["fc1"])
    editor = window.inspector.editors["out_features"]
    spin = editor.editor
    assert spin.value() == 64 and spin.minimum() == 1
    before = model(window)
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "48")
    assert canvas.graph.node("fc1").params["out_features"] == 64  # nothing until committed
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert canvas.graph.node("fc1").params["out_features"] == 48
    label = canvas.scene.edge_item(Edge("fc1", "relu3")).label
    assert label == "48"
    assert window.document.undo_stack.count() == 1
    assert window.summary.model.data(window.summary.model.index(8, 2)) == "48"
    undo_redo(window, before, model(window))
    window.undo()
    assert canvas.scene.edge_item(Edge("fc1", "relu3")).label == "64"
    assert spin.value() == 64  # the inspector follows the graph back


def test_invalid_size_is_refused_at_the_editor(window, qtbot):
    canvas = window.current_canvas()
    canvas.scene.select_nodes(["conv1"])
    editor = window.inspector.editors["kernel_size"]
    edit = editor.editor
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, "3, 3, 3")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert editor.reason.isVisible() and "kernel_size" in editor.reason.text()
    assert edit.property("invalid") is True
    assert canvas.graph.node("conv1").params["kernel_size"] == 3
    assert window.document.undo_stack.count() == 0
    edit.selectAll()
    qtbot.keyClicks(edit, "5, 5")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert canvas.graph.node("conv1").params["kernel_size"] == [5, 5]
    assert not editor.reason.isVisible()


def test_rename_in_the_inspector(window, qtbot):
    canvas = window.current_canvas()
    canvas.scene.select_nodes(["fc1"])
    before = model(window)
    edit = window.inspector.id_edit
    edit.selectAll()
    qtbot.keyClicks(edit, "hidden")
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    assert "hidden" in canvas.graph and "fc1" not in canvas.graph
    assert canvas.scene.node_item("hidden") is not None
    undo_redo(window, before, model(window))


def test_copy_paste_through_the_clipboard_into_another_model(qtbot):
    window = open_window(qtbot, Document.open(EXAMPLES_DIR / "gan_ring.layerlab.json"))
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == \
        ["generator", "discriminator"]
    gen = window.current_canvas()
    gen.scene.select_nodes(["fc2", "a2"])
    gen.view.setFocus()
    qtbot.keyClick(gen.view, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.clipboard().mimeData().hasFormat(FRAGMENT_MIME)
    window.tabs.setCurrentIndex(1)
    disc = window.current_canvas()
    before = model(window)
    disc.view.setFocus()
    qtbot.keyClick(disc.view, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    new = sorted(set(disc.graph.node_ids()) - {n["id"] for n in before["nodes"]})
    assert len(new) == 2 and {disc.graph.node(n).type for n in new} == {"Linear", "ReLU"}
    assert any(e.src in new and e.dst in new for e in disc.graph.edges())
    assert sorted(disc.scene.selected_node_ids()) == new
    assert gen.graph.node("fc2").params == {"out_features": 64}
    undo_redo(window, before, model(window))


def test_cut_duplicate_delete_and_select_all(window, qtbot):
    canvas = window.current_canvas()
    graph = canvas.graph
    start = model(window)
    canvas.scene.select_nodes(["relu3"])
    window.duplicate()
    assert len(graph) == 13
    undo_redo(window, start, model(window))
    canvas.scene.select_nodes(["relu3"])
    before = model(window)
    window.cut()
    assert "relu3" not in graph and QApplication.clipboard().mimeData().hasFormat(FRAGMENT_MIME)
    undo_redo(window, before, model(window))
    window.select_all()
    assert len(canvas.scene.selected_node_ids()) == len(graph)
    before = model(window)
    window.delete_selection()
    assert len(graph) == 0
    undo_redo(window, before, model(window))


def test_palette_double_click_inserts_after_the_selected_layer(window, qtbot):
    canvas = window.current_canvas()
    canvas.scene.select_nodes(["flat"])
    before = model(window)
    window.palette.layer_activated.emit("Dropout", False)  # what a double-click emits
    graph = canvas.graph
    assert graph.successors("flat") == ["drop1"] and graph.successors("drop1") == ["fc1"]
    assert canvas.scene.selected_node_ids() == ["drop1"]
    assert window.document.undo_stack.count() == 1
    undo_redo(window, before, model(window))


def test_search_enter_adds_the_first_hit_at_the_view_centre(window, qtbot):
    canvas = window.current_canvas()
    box = window.palette.search_box()
    qtbot.keyClicks(box, "batchnorm2")
    qtbot.keyClick(box, Qt.Key.Key_Return)
    assert "bn1" in canvas.graph and canvas.graph.node("bn1").type == "BatchNorm2d"
    centre = canvas.view.view_center_scene_pos()
    assert canvas.scene.node_item("bn1").sceneBoundingRect().contains(centre)


def test_auto_layout_is_one_undo_step(window, qtbot):
    canvas = window.current_canvas()
    before = model(window)
    window.actions_["auto_layout"].trigger()
    assert canvas.graph.node("conv1").pos == (200.0, 0.0)
    assert window.document.undo_stack.count() == 1
    undo_redo(window, before, model(window))


def test_summary_and_canvas_select_together(window, qtbot):
    canvas = window.current_canvas()
    summary = window.summary
    row = summary.model.row_of("pool1")
    summary.table.selectRow(row)
    assert canvas.scene.selected_node_ids() == ["pool1"]
    assert window.inspector.node_id == "pool1"
    canvas.scene.select_nodes(["fc2"])
    assert summary.selected_ids() == ["fc2"]


def test_undo_redo_menu_texts_and_dirty_title(window, qtbot):
    canvas = window.current_canvas()
    assert not window.isWindowModified()
    canvas.scene.select_nodes(["y"])
    window.delete_selection()
    assert window.isWindowModified()
    assert window.actions_["undo"].text() == "&Undo Delete y"
    window.undo()
    assert not window.isWindowModified()
    assert window.actions_["redo"].text() == "&Redo Delete y"


def test_a_pressed_node_shows_in_the_inspector_when_the_button_comes_up(window, qtbot):
    """The inspector's form takes a frame to build: a press that may start a drag leaves it for
    the release, so the first move is quick; a click or a drag then shows the node."""
    canvas = window.current_canvas()
    viewport = canvas.view.viewport()
    for node_id, moves in (("conv1", 0), ("fc1", 4)):
        item = canvas.scene.node_item(node_id)
        at = view_point(canvas, item.sceneBoundingRect().topLeft() + QPointF(60, 12))
        before = window.inspector.node_id
        send_mouse(viewport, QEvent.Type.MouseButtonPress, at, LEFT, LEFT)
        qtbot.wait(10)
        assert canvas.scene.selected_node_ids() == [node_id]  # the card shows it at once
        assert window.inspector.node_id == before
        for i in range(1, moves + 1):
            send_mouse(viewport, QEvent.Type.MouseMove, at + QPoint(8 * i, 0), NO_BUTTON, LEFT)
        assert window.inspector.node_id == before
        send_mouse(viewport, QEvent.Type.MouseButtonRelease, at + QPoint(8 * moves, 0), LEFT,
                   NO_BUTTON)
        assert window.inspector.node_id == node_id
    # selecting by keyboard or from the summary is not held back
    window.current_canvas().scene.select_nodes(["conv2"])
    assert window.inspector.node_id == "conv2"


def test_zoomed_far_out_a_card_shows_its_selection_and_tint(window, qtbot):
    """Below FAR_ZOOM a card is drawn from a small picture of itself; selecting or tinting it
    changes what is drawn."""
    from widgets.canvas.style import FAR_ZOOM

    canvas = window.current_canvas()
    view, item = canvas.view, canvas.scene.node_item("conv1")
    view.set_zoom(FAR_ZOOM * 0.75)
    view.centerOn(item)

    def card():
        qtbot.wait(20)
        rect = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
        return view.viewport().grab(rect).toImage()

    plain = card()
    assert plain.width() > 10
    canvas.scene.select_nodes(["conv1"])
    selected = card()
    assert selected != plain
    canvas.scene.select_nodes([])
    assert card() == plain
    canvas.scene.set_node_tint("conv1", 1.0)
    assert card() != plain


def test_a_press_that_never_sees_its_release_still_shows_the_node(window, qtbot):
    """The release of a press on a node can go elsewhere: the middle button starts a pan that
    takes it (the inspector shows the node then), or a dialog takes the mouse (a selection made
    elsewhere is not held back)."""
    canvas = window.current_canvas()
    viewport = canvas.view.viewport()
    item = canvas.scene.node_item("conv1")
    at = view_point(canvas, item.sceneBoundingRect().topLeft() + QPointF(60, 12))
    send_mouse(viewport, QEvent.Type.MouseButtonPress, at, LEFT, LEFT)
    assert window.inspector.node_id != "conv1"
    middle = Qt.MouseButton.MiddleButton
    send_mouse(viewport, QEvent.Type.MouseButtonPress, at, middle, LEFT | middle)
    assert window.inspector.node_id == "conv1"
    send_mouse(viewport, QEvent.Type.MouseButtonRelease, at, middle, LEFT)
    send_mouse(viewport, QEvent.Type.MouseButtonRelease, at, LEFT, NO_BUTTON)
    item = canvas.scene.node_item("fc1")
    at = view_point(canvas, item.sceneBoundingRect().topLeft() + QPointF(60, 12))
    send_mouse(viewport, QEvent.Type.MouseButtonPress, at, LEFT, LEFT)
    assert window.inspector.node_id == "conv1"
    # the release never comes (a dialog took the mouse): a selection made elsewhere, from the
    # summary or Find Node, is shown at once all the same
    canvas.scene.select_nodes(["conv2"])
    assert window.inspector.node_id == "conv2"
