"""The canvas: a scene mirroring the graph, and real mouse/keyboard gestures emitting requests."""
from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import (QDragEnterEvent, QDragMoveEvent, QDropEvent, QMouseEvent,
                           QWheelEvent)
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from engine.graph import Edge, Graph
from engine.shapes import ShapeInference
from widgets.canvas import CanvasScene, CanvasView
from widgets.canvas.obstacles import NodeGrid
from widgets.canvas.view import FIT_MAX_ZOOM
from widgets.palette import PaletteWidget
from widgets.theme import DARK

LEFT = Qt.MouseButton.LeftButton


# -- real mouse events (QTest.mouseMove cannot hold a button; Orange's tests do this too) --------
def send_mouse(view, kind, scene_pos: QPointF, button=LEFT, buttons=LEFT,
               modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    viewport = view.viewport()
    local = QPointF(view.mapFromScene(scene_pos))
    event = QMouseEvent(kind, local, QPointF(viewport.mapToGlobal(local.toPoint())), button,
                        buttons, modifiers)
    QApplication.sendEvent(viewport, event)


def drag(view, start: QPointF, end: QPointF, steps: int = 6,
         modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Press at ``start``, move in steps with the button held, release at ``end``."""
    send_mouse(view, QMouseEvent.Type.MouseButtonPress, start, modifiers=modifiers)
    for i in range(1, steps + 1):
        p = start + (end - start) * (i / steps)
        send_mouse(view, QMouseEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, LEFT, modifiers)
    send_mouse(view, QMouseEvent.Type.MouseButtonRelease, end, buttons=Qt.MouseButton.NoButton,
               modifiers=modifiers)


def click(view, pos: QPointF, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    send_mouse(view, QMouseEvent.Type.MouseButtonPress, pos, modifiers=modifiers)
    send_mouse(view, QMouseEvent.Type.MouseButtonRelease, pos, buttons=Qt.MouseButton.NoButton,
               modifiers=modifiers)


def record(signal) -> list:
    got = []
    signal.connect(lambda *args: got.append(args))
    return got


# -- fixtures ----------------------------------------------------------------------------------
def mlp() -> Graph:
    g = Graph()
    g.add_node("Input", "x", {"shape": [4]}, (0, 0))
    g.add_node("Linear", "fc1", {"out_features": 8}, (200, 0))
    g.add_node("ReLU", "a1", None, (400, 0))
    g.add_node("Linear", "fc2", {"out_features": 3}, (600, 0))
    g.add_node("Output", "y", None, (800, 0))
    for a, b in (("x", "fc1"), ("fc1", "a1"), ("a1", "fc2"), ("fc2", "y")):
        g.connect(a, b)
    g.add_node("Dropout", "drop", None, (400, 200))  # not wired yet
    return g


class Canvas:
    def __init__(self, graph, qtbot, theme=None):
        self.graph = graph
        self.shapes = ShapeInference(graph, {})
        self.scene = CanvasScene(graph, self.shapes, *([theme] if theme else []))
        self.view = CanvasView(self.scene)
        qtbot.addWidget(self.view)
        self.view.resize(1000, 600)
        self.view.show()
        qtbot.waitExposed(self.view)
        self.view.set_zoom(1.0)
        self.view.centerOn(QPointF(450, 100))

    def port(self, node_id, name, is_output) -> QPointF:
        return self.scene.port_scene_pos(node_id, name, is_output)

    def body(self, node_id) -> QPointF:
        """A point on the node's header, away from its ports."""
        return self.scene.node_item(node_id).mapToScene(QPointF(60, 10))


@pytest.fixture
def canvas(qtbot):
    c = Canvas(mlp(), qtbot)
    yield c
    c.scene.detach()
    c.shapes.detach()


# -- the scene mirrors the graph ---------------------------------------------------------------
def test_scene_builds_an_item_for_every_node_and_wire(canvas):
    scene, g = canvas.scene, canvas.graph
    assert {i.node_id for i in scene.node_items()} == set(g.node_ids())
    assert {i.edge for i in scene.edge_items()} == set(g.edges())
    assert scene.node_item("fc1").pos() == QPointF(200, 0)


def test_scene_follows_add_connect_rename_params_and_remove(canvas):
    scene, g = canvas.scene, canvas.graph
    g.add_node("Linear", "fc3", {"out_features": 5}, (600, 200))
    assert scene.node_item("fc3").pos() == QPointF(600, 200)
    g.connect("drop", "fc3")
    assert scene.edge_item(Edge("drop", "fc3")) is not None
    g.connect("a1", "drop")
    assert scene.edge_item(Edge("a1", "drop")).label == "8"
    g.rename_node("fc3", "head")
    assert scene.node_item("fc3") is None
    assert scene.node_item("head").node_id == "head"
    assert scene.edge_item(Edge("drop", "head")) is not None
    g.set_param("head", "out_features", 7)
    assert "7 units" in scene.node_item("head")._texts["params"]
    g.remove_node("drop")
    assert scene.node_item("drop") is None
    assert scene.edge_item(Edge("drop", "head")) is None
    assert scene.edge_item(Edge("a1", "drop")) is None
    assert {i.edge for i in scene.edge_items()} == set(g.edges())


def test_wire_labels_show_inferred_shapes_and_follow_a_parameter_edit(canvas):
    scene, g = canvas.scene, canvas.graph
    assert scene.edge_item(Edge("x", "fc1")).label == "4"
    assert scene.edge_item(Edge("fc1", "a1")).label == "8"
    g.set_param("fc1", "out_features", 16)
    assert scene.edge_item(Edge("fc1", "a1")).label == "16"
    assert scene.edge_item(Edge("a1", "fc2")).label == "16"
    assert scene.node_item("fc1")._texts["shape"] == "→ 16"


def test_a_node_in_error_is_outlined_and_explains_itself_on_hover(canvas):
    scene, g = canvas.scene, canvas.graph
    g.set_param("fc2", "out_features", 0)
    item = scene.node_item("fc2")
    message = canvas.shapes.info["fc2"].error
    assert message and item.error == message and item.severity == "error"
    assert message in item.toolTip()
    g.set_param("fc2", "out_features", 3)
    assert item.error is None and "⚠" not in item.toolTip()


def test_a_dangling_node_gets_a_warning_until_it_is_wired(canvas):
    scene, g = canvas.scene, canvas.graph
    drop = scene.node_item("drop")
    assert drop.severity == "warning" and "needs an input" in drop.error
    g.connect("a1", "drop")
    assert drop.severity == "warning" and "Output" in drop.error
    g.disconnect(Edge("a1", "fc2"))
    g.connect("drop", "fc2")
    assert drop.error is None


def test_nodes_without_positions_are_laid_out_left_to_right(qtbot):
    g = Graph()
    for node_id, type_name in (("x", "Input"), ("fc", "Linear"), ("y", "Output")):
        g.add_node(type_name, node_id, {"out_features": 2} if type_name == "Linear" else None)
    g.connect("x", "fc")
    g.connect("fc", "y")
    c = Canvas(g, qtbot)
    xs = [c.scene.node_item(n).pos().x() for n in ("x", "fc", "y")]
    assert xs == sorted(xs) and len(set(xs)) == 3
    assert all(n.pos is None for n in g.nodes())  # the scene never writes to the graph


def test_a_skip_wire_detours_around_the_nodes_it_passes(qtbot):
    g = Graph()
    g.add_node("Input", "x", {"shape": [4]}, (0, 0))
    for i, node_id in enumerate(("a", "b", "c"), start=1):
        g.add_node("ReLU", node_id, None, (170 * i, 0))
    g.add_node("Add", "skip", None, (680, 0))
    for src, dst in (("x", "a"), ("a", "b"), ("b", "c"), ("c", "skip"), ("x", "skip")):
        g.connect(src, dst)
    c = Canvas(g, qtbot)
    wire = c.scene.edge_item(Edge("x", "skip"))
    for node_id in "abc":
        item = c.scene.node_item(node_id)
        body = item.mapRectToScene(item.rect())
        assert not wire.shape().intersects(body), node_id
        assert not wire.label_rect().intersects(body), node_id
    for i, node_id in enumerate("abc", start=1):
        g.set_pos(node_id, (170 * i, 300))  # nothing in the way any more: a plain curve again
    c.scene.reroute_wires()
    assert wire.path().elementCount() == 4


def wire_and_far_wire(qtbot):
    """x -> y with a ReLU below it, and another wire far away: (graph, canvas, wire, far)."""
    g = Graph()
    g.add_node("Input", "x", {"shape": [4]}, (0, 0))
    g.add_node("Output", "y", None, (600, 0))
    g.add_node("ReLU", "r", None, (240, 300))
    g.add_node("Input", "far_in", {"shape": [4]}, (0, 2000))
    g.add_node("Output", "far_out", None, (600, 2000))
    g.connect("x", "y")
    g.connect("far_in", "far_out")
    c = Canvas(g, qtbot)
    wire, far = c.scene.edge_item(Edge("x", "y")), c.scene.edge_item(Edge("far_in", "far_out"))
    return g, c, wire, far


def test_a_node_moved_into_a_wire_s_way_is_routed_around_and_far_wires_are_left_alone(qtbot):
    g, c, wire, far = wire_and_far_wire(qtbot)
    far_routes = []
    far.adjust = lambda *args: far_routes.append(args)  # count the far wire's reroutes
    relu = c.scene.node_item("r")
    g.set_pos("r", (240, 0))  # right on the wire; the canvas reroutes by itself
    qtbot.waitUntil(lambda: wire.path().elementCount() > 4, timeout=1000)
    assert not wire.shape().intersects(relu.mapRectToScene(relu.rect()))
    g.set_pos("r", (240, 300))  # out of the way again: the detour goes
    qtbot.waitUntil(lambda: wire.path().elementCount() == 4, timeout=1000)
    assert far_routes == []
    c.view.close()  # before the scene goes: the overview is on show and would paint it
    c.scene.detach()


def test_dropping_a_dragged_node_on_a_wire_reroutes_it_and_leaves_far_wires_alone(qtbot):
    g, c, wire, far = wire_and_far_wire(qtbot)
    far_routes = []
    far.adjust = lambda *args: far_routes.append(args)
    relu = c.scene.node_item("r")
    grip = QPointF(240 + 40, 300 + 12)  # on the node's header
    moved = record(c.scene.nodes_moved)  # the editor turns this into an undo command
    drag(c.view, grip, grip + QPointF(0, -300))
    assert moved == [({"r": ((240, 300), (240, 0))},)]
    assert wire.path().elementCount() > 4  # routed around at the release, not later
    assert not wire.shape().intersects(relu.mapRectToScene(relu.rect()))
    assert far_routes == []
    c.view.close()
    c.scene.detach()


def test_a_wire_back_to_the_next_row_runs_in_the_gap_between_the_rows(qtbot):
    g = Graph()
    g.add_node("Input", "x", {"shape": [4]}, (0, 0))
    g.add_node("ReLU", "a", None, (200, 0))
    g.add_node("ReLU", "b", None, (400, 0))
    g.add_node("ReLU", "c", None, (0, 165))
    g.add_node("Output", "y", None, (200, 165))
    for src, dst in (("x", "a"), ("a", "b"), ("b", "c"), ("c", "y")):
        g.connect(src, dst)
    c = Canvas(g, qtbot)
    wire = c.scene.edge_item(Edge("b", "c"))
    bodies = {n: c.scene.node_item(n).mapRectToScene(c.scene.node_item(n).rect())
              for n in g.node_ids()}
    for node_id in ("x", "a", "y"):
        assert not wire.shape().intersects(bodies[node_id]), node_id
    gap = (max(bodies[n].bottom() for n in "xab"), min(bodies[n].top() for n in "cy"))
    middle = [wire.path().pointAtPercent(t / 10) for t in range(2, 9)]
    assert all(gap[0] < p.y() < gap[1] for p in middle)  # level, between the rows
    label = wire.label_rect()
    assert gap[0] < label.top() and label.bottom() < gap[1]
    c.scene.detach()


def test_ports_at_rest_are_drawn_by_their_node(canvas):
    port = canvas.scene.node_item("fc1").port("out", True)
    no_contents = port.GraphicsItemFlag.ItemHasNoContents
    assert port.flags() & no_contents
    port.set_highlight(port.COMPATIBLE)
    assert not port.flags() & no_contents
    port.set_highlight(port.NONE)
    assert port.flags() & no_contents


def test_node_grid_finds_nodes_by_area_and_follows_moves():
    grid = NodeGrid(cell=100)
    grid.place("a", QRectF(0, 0, 120, 60))
    grid.place("b", QRectF(1000, 0, 120, 60))
    assert [item for item, _ in grid.near(QRectF(50, 50, 10, 10))] == ["a"]
    assert sorted(item for item, _ in grid.near(QRectF(-5000, -5000, 9000, 9000))) == ["a", "b"]
    grid.place("a", QRectF(990, 40, 120, 60))  # moved next to b
    assert grid.near(QRectF(50, 50, 10, 10)) == []
    assert sorted(item for item, _ in grid.near(QRectF(1050, 50, 5, 5))) == ["a", "b"]
    assert grid.rect("a") == QRectF(990, 40, 120, 60)
    grid.remove("b")
    assert [item for item, _ in grid.near(QRectF(1050, 50, 5, 5))] == ["a"] and len(grid) == 1


# -- wiring by mouse ---------------------------------------------------------------------------
def test_dragging_from_an_output_to_an_input_requests_that_wire(canvas, qtbot):
    scene = canvas.scene
    before = canvas.graph.edges()
    with qtbot.waitSignal(scene.connect_requested, timeout=1000) as blocker:
        drag(canvas.view, canvas.port("fc1", "out", True), canvas.port("drop", "in", False))
    assert blocker.args == [Edge("fc1", "drop")]
    assert canvas.graph.edges() == before  # a request, not an edit


def test_a_wire_snaps_to_a_nearby_compatible_port(canvas, qtbot):
    near = canvas.port("drop", "in", False) + QPointF(-12, 9)
    with qtbot.waitSignal(canvas.scene.connect_requested, timeout=1000) as blocker:
        drag(canvas.view, canvas.port("a1", "out", True), near)
    assert blocker.args == [Edge("a1", "drop")]


def test_a_wire_dropped_on_a_node_body_goes_to_its_input(canvas, qtbot):
    with qtbot.waitSignal(canvas.scene.connect_requested, timeout=1000) as blocker:
        drag(canvas.view, canvas.port("fc1", "out", True), canvas.body("drop"))
    assert blocker.args == [Edge("fc1", "drop")]


def test_a_wire_can_be_drawn_backwards_from_a_free_input(canvas, qtbot):
    with qtbot.waitSignal(canvas.scene.connect_requested, timeout=1000) as blocker:
        drag(canvas.view, canvas.port("drop", "in", False), canvas.port("a1", "out", True))
    assert blocker.args == [Edge("a1", "drop")]


def test_escape_cancels_a_wire_being_drawn(canvas):
    scene, view = canvas.scene, canvas.view
    connects = record(scene.connect_requested)
    start = canvas.port("fc1", "out", True)
    send_mouse(view, QMouseEvent.Type.MouseButtonPress, start)
    send_mouse(view, QMouseEvent.Type.MouseMove, start + QPointF(80, 120), Qt.MouseButton.NoButton)
    assert scene.gesture() is not None
    QTest.keyClick(view, Qt.Key.Key_Escape)
    assert scene.gesture() is None
    send_mouse(view, QMouseEvent.Type.MouseButtonRelease, canvas.port("drop", "in", False),
               buttons=Qt.MouseButton.NoButton)
    assert connects == []


def test_a_wire_that_would_make_a_cycle_is_refused_with_the_reason(canvas):
    scene = canvas.scene
    connects, messages = record(scene.connect_requested), record(scene.status_message)
    drag(canvas.view, canvas.port("fc2", "out", True), canvas.port("fc1", "in", False))
    assert connects == []
    assert len(messages) == 1
    text = messages[0][0]
    assert "cycle" in text and "fc2" in text and "fc1" in text
    assert scene.gesture() is None and not any(
        item.__class__.__name__ == "DraftWireItem" for item in scene.items())


def test_dragging_a_wire_off_its_input_into_empty_space_requests_a_disconnect(canvas, qtbot):
    scene = canvas.scene
    connects = record(scene.connect_requested)
    with qtbot.waitSignal(scene.disconnect_requested, timeout=1000) as blocker:
        drag(canvas.view, canvas.port("a1", "in", False), QPointF(300, 300))
    assert blocker.args == [Edge("fc1", "a1")]
    assert connects == []
    assert scene.edge_item(Edge("fc1", "a1")).isVisible()  # still shown until the graph says


def test_moving_a_picked_up_wire_to_another_input_reconnects_it(canvas):
    scene = canvas.scene
    events = []
    scene.disconnect_requested.connect(lambda e: events.append(("disconnect", e)))
    scene.connect_requested.connect(lambda e: events.append(("connect", e)))
    drag(canvas.view, canvas.port("a1", "in", False), canvas.port("drop", "in", False))
    assert events == [("disconnect", Edge("fc1", "a1")), ("connect", Edge("fc1", "drop"))]


# -- moving, selecting, keys -------------------------------------------------------------------
def test_moving_a_node_by_mouse_requests_one_move_with_old_and_new_positions(canvas):
    scene, g = canvas.scene, canvas.graph
    moves = record(scene.nodes_moved)
    start = canvas.body("fc1")
    drag(canvas.view, start, start + QPointF(100, 40), steps=8)
    assert len(moves) == 1
    (old, new), = moves[0][0].values()
    assert list(moves[0][0]) == ["fc1"] and old == (200, 0)
    assert new[0] == pytest.approx(300, abs=1) and new[1] == pytest.approx(40, abs=1)
    assert g.node("fc1").pos == (200, 0)  # the graph is untouched...
    g.set_pos("fc1", (250, 20))  # ...until the application applies it (or undo moves it)
    assert scene.node_item("fc1").pos() == QPointF(250, 20)


def test_rubber_band_and_ctrl_click_select_nodes(canvas):
    scene = canvas.scene
    drag(canvas.view, QPointF(150, -60), QPointF(540, 120))
    assert sorted(scene.selected_node_ids()) == ["a1", "fc1"]
    click(canvas.view, canvas.body("fc2"), Qt.KeyboardModifier.ControlModifier)
    assert sorted(scene.selected_node_ids()) == ["a1", "fc1", "fc2"]
    click(canvas.view, canvas.body("fc1"), Qt.KeyboardModifier.ControlModifier)
    assert sorted(scene.selected_node_ids()) == ["a1", "fc2"]
    click(canvas.view, canvas.body("y"))
    assert scene.selected_node_ids() == ["y"]


def test_delete_key_requests_deleting_the_selection(canvas, qtbot):
    scene = canvas.scene
    scene.select_nodes(["a1"])
    scene.edge_item(Edge("fc2", "y")).setSelected(True)
    scene.edge_item(Edge("fc1", "a1")).setSelected(True)  # goes with a1 anyway
    canvas.view.setFocus()
    with qtbot.waitSignal(scene.delete_requested, timeout=1000) as blocker:
        QTest.keyClick(canvas.view, Qt.Key.Key_Delete)
    assert blocker.args == [["a1"], [Edge("fc2", "y")]]


def test_arrow_keys_move_the_selection_by_the_grid_step(canvas, qtbot):
    scene = canvas.scene
    scene.select_nodes(["fc1", "a1"])
    with qtbot.waitSignal(scene.nodes_moved, timeout=1000) as blocker:
        QTest.keyClick(canvas.view, Qt.Key.Key_Right)
    assert blocker.args[0] == {"fc1": ((200, 0), (220, 0)), "a1": ((400, 0), (420, 0))}


def test_double_click_on_a_node_is_reported(canvas, qtbot):
    local = canvas.view.mapFromScene(canvas.body("fc2"))
    with qtbot.waitSignal(canvas.scene.node_double_clicked, timeout=1000) as blocker:
        QTest.mouseDClick(canvas.view.viewport(), LEFT, pos=local)
    assert blocker.args == ["fc2"]


# -- navigation --------------------------------------------------------------------------------
def test_wheel_zoom_keeps_the_point_under_the_cursor(canvas):
    view = canvas.view
    cursor = QPoint(260, 170)
    before = view.mapToScene(cursor)
    event = QWheelEvent(QPointF(cursor), QPointF(view.viewport().mapToGlobal(cursor)), QPoint(),
                        QPoint(0, 240), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view.viewport(), event)
    assert view.zoom() > 1.3
    after = view.mapToScene(cursor)
    assert abs(after.x() - before.x()) <= 1.5 and abs(after.y() - before.y()) <= 1.5


def test_zoom_is_clamped(canvas):
    canvas.view.set_zoom(50)
    assert canvas.view.zoom() == pytest.approx(3.0)
    canvas.view.set_zoom(0.001)
    assert canvas.view.zoom() == pytest.approx(0.2)


def test_zoom_to_fit_frames_everything_and_hides_the_overview(canvas):
    view = canvas.view
    view.set_zoom(2.5)
    assert view.minimap.isVisible()
    view.zoom_to_fit()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert visible.contains(canvas.scene.items_bounding_rect())
    assert not view.minimap.isVisible()


def test_zoom_to_fit_does_not_blow_a_small_graph_up(qtbot):
    g = Graph()
    g.add_node("Input", "x", {"shape": [2]}, (0, 0))
    c = Canvas(g, qtbot)
    c.view.zoom_to_fit()
    assert c.view.zoom() == pytest.approx(FIT_MAX_ZOOM) and FIT_MAX_ZOOM <= 1.5
    c.scene.detach()


def test_clicking_the_overview_moves_the_view_there(canvas, qtbot):
    view = canvas.view
    view.set_zoom(2.5)
    view.centerOn(QPointF(0, 0))
    minimap = view.minimap
    target = minimap.to_map(QPointF(800, 30))
    QTest.mouseClick(minimap, LEFT, pos=target.toPoint())
    center = view.view_center_scene_pos()
    assert abs(center.x() - 800) < 30 and abs(center.y() - 30) < 30


def test_middle_button_drag_pans(canvas):
    view = canvas.view
    before = view.view_center_scene_pos()
    mid = Qt.MouseButton.MiddleButton
    p0 = QPointF(400, 300)
    for kind, p, button, buttons in ((QMouseEvent.Type.MouseButtonPress, p0, mid, mid),
                                     (QMouseEvent.Type.MouseMove, p0 + QPointF(-100, -50),
                                      Qt.MouseButton.NoButton, mid),
                                     (QMouseEvent.Type.MouseButtonRelease, p0 + QPointF(-100, -50),
                                      mid, Qt.MouseButton.NoButton)):
        QApplication.sendEvent(view.viewport(), QMouseEvent(kind, p, p, button, buttons,
                                                            Qt.KeyboardModifier.NoModifier))
    after = view.view_center_scene_pos()
    assert after.x() - before.x() == pytest.approx(100, abs=2)
    assert after.y() - before.y() == pytest.approx(50, abs=2)


# -- drops from the palette --------------------------------------------------------------------
def test_dropping_a_palette_layer_requests_a_node_at_the_drop_point(canvas, qtbot):
    palette = PaletteWidget()
    qtbot.addWidget(palette)
    mime = palette.mime_data("Conv2d")
    view, viewport = canvas.view, canvas.view.viewport()
    pos = QPointF(320, 240)
    copy = Qt.DropAction.CopyAction
    no_mods = Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(pos.toPoint(), copy, mime, LEFT, no_mods)
    QApplication.sendEvent(viewport, enter)
    assert enter.isAccepted()
    QApplication.sendEvent(viewport, QDragMoveEvent(pos.toPoint(), copy, mime, LEFT, no_mods))
    with qtbot.waitSignal(canvas.scene.node_drop_requested, timeout=1000) as blocker:
        QApplication.sendEvent(viewport, QDropEvent(pos, copy, mime, LEFT, no_mods))
    type_name, where = blocker.args
    assert type_name == "Conv2d"
    expected = view.mapToScene(pos.toPoint())
    assert abs(where.x() - expected.x()) < 1 and abs(where.y() - expected.y()) < 1


# -- overlays and themes -----------------------------------------------------------------------
def test_overlays_and_theme_switch(canvas):
    scene = canvas.scene
    scene.set_node_tint("fc1", 0.7)
    scene.set_edge_strength(Edge("fc1", "a1"), 0.5)
    scene.set_node_badge("fc2", "vanishing gradient", "warning")
    assert scene.node_item("fc1").tint == 0.7
    assert scene.node_item("fc2").badge == ("vanishing gradient", "warning")
    scene.set_theme(DARK)
    assert scene.node_item("fc1").paints.theme is DARK
    image = canvas.view.grab()
    assert not image.isNull()
    corner = image.toImage().pixelColor(3, 3)
    assert corner.lightness() < 80  # the dark background is really drawn


def test_detach_stops_following_the_graph(canvas):
    canvas.scene.detach()
    canvas.graph.add_node("ReLU", "late", None, (0, 300))
    assert canvas.scene.node_item("late") is None


def test_a_big_graph_s_overview_is_redrawn_once_edits_and_pans_pause(qtbot):
    """Drawing the overview of a big graph takes a frame or more: after an edit it shows the
    graph as it was while the view keeps panning, and the graph as it is once panning stops;
    the map stays in its corner through the scrolling."""
    from widgets.canvas.scene import LARGE_GRAPH

    g = Graph()
    for i in range(LARGE_GRAPH):
        g.add_node("ReLU", f"r{i}", None, (220.0 * (i % 25), 160.0 * (i // 25)))
    c = Canvas(g, qtbot)
    view, minimap = c.view, c.view.minimap
    view.set_zoom(1.0)
    qtbot.wait(50)
    assert minimap.isVisible()
    corner = minimap.geometry()
    before = minimap.grab().toImage()
    c.scene.node_item("r0").setPos(QPointF(-3000.0, -3000.0))  # far out: the map changes
    bar = view.horizontalScrollBar()
    for k in range(24):  # 1.2 s of panning, three times the 0.4 s pause the map waits for
        bar.setValue(bar.value() + (30 if k % 2 else -30))
        qtbot.wait(50)
        assert minimap.geometry() == corner
    assert minimap.grab().toImage() == before
    qtbot.waitUntil(lambda: minimap.grab().toImage() != before, timeout=3000)
    c.scene.detach()
    c.shapes.detach()
