"""The canvas scene: a mirror of one model's graph, and the source of the user's edit requests.

The engine :class:`~engine.graph.Graph` is the truth. The scene follows its events (and the shape
inference's ``updated`` event) to keep node and wire items in step, and turns gestures into request
signals; the application applies them as undoable commands, whose graph events come back here.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtWidgets import QGraphicsScene, QToolTip

from engine.graph import Edge
from engine.layout import layered_layout

from ..theme import LIGHT, CanvasTheme
from .edge_item import EdgeItem
from .gestures import MoveGesture, NewWireGesture, RubberBandGesture
from .node_item import NodeItem
from .obstacles import REACH, NodeGrid
from .port_item import PortItem
from .style import GRID, paints_for

_CTRL = Qt.KeyboardModifier.ControlModifier
_SHIFT = Qt.KeyboardModifier.ShiftModifier
_ARROWS = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1),
           Qt.Key.Key_Down: (0, 1)}


LARGE_GRAPH = 500  # nodes from which the overview follows edits lazily


class CanvasScene(QGraphicsScene):
    """Node and wire items for one graph, kept in step with it; emits edit requests."""

    node_drop_requested = Signal(str, QPointF)
    connect_requested = Signal(object)
    disconnect_requested = Signal(object)
    nodes_moved = Signal(dict)
    delete_requested = Signal(list, list)
    status_message = Signal(str)
    node_double_clicked = Signal(str)
    geometry_changed = Signal()  # nodes moved, came or went (coalesced; for the overview)
    press_ended = Signal()  # a left press is over (see end_press)
    theme_changed = Signal()

    def __init__(self, graph, shapes, theme: CanvasTheme = LIGHT, parent=None):
        super().__init__(parent)
        self.graph = graph
        self.shapes = shapes
        self.theme = theme
        self.paints = paints_for(theme)
        self.fast_wires = False  # while nodes are dragged, wires skip obstacle routing
        self._nodes: dict[str, NodeItem] = {}
        self.selecting_on_press = False  # a press on a node is changing the selection now
        self.obstacles = NodeGrid()  # node rectangles, for routing wires around them
        self._edges: dict[Edge, EdgeItem] = {}
        self._wiring: dict[str, str] = {}
        self._gesture = None
        self._bounds: QRectF | None = None
        self._geometry_timer = QTimer(self, singleShot=True, interval=30)
        self._geometry_timer.timeout.connect(self.geometry_changed)
        self._reroute_timer = QTimer(self, singleShot=True, interval=0)
        self._reroute_timer.timeout.connect(self.reroute_moved)
        self._dirty = QRectF()  # where nodes were or went since the wires were last routed
        self._build()
        self._hooks = [(getattr(graph.events, name), getattr(self, f"_on_{name}"))
                       for name in ("node_added", "node_removed", "node_renamed", "edge_added",
                                    "edge_removed", "params_changed", "node_moved")]
        self._hooks.append((shapes.updated, self._on_shapes_updated))
        for event, callback in self._hooks:
            event.connect(callback)

    def detach(self) -> None:
        """Stop following the graph and the shape inference (the document is closing)."""
        for event, callback in self._hooks:
            event.disconnect(callback)
        self._hooks = []

    # -- building --------------------------------------------------------------------------
    def _build(self) -> None:
        placed = self._missing_positions(self.graph.nodes())
        for node in self.graph.nodes():
            self._add_node_item(node, placed.get(node.id))
        for edge in self.graph.edges():
            self._add_edge_item(edge, route=False)
        self._wiring = self.shapes.wiring_problems()
        for node in self.graph.nodes():
            self._refresh_node(node.id)
        self.reroute_wires()

    def warm_selection(self) -> None:
        """Qt does a pass over every item the first time one is selected in a shown view (about
        25 ms at 5,000 nodes, in the event loop after the click): the view selects and unselects
        one node, unseen, once it is first drawn, so that the cost falls in opening rather than
        in the first click or drag."""
        item = next((i for i in self._nodes.values() if not i.isSelected()), None)
        if item is None:
            return  # no node yet (or every one selected: the pass has been made)
        blocked = self.blockSignals(True)
        try:
            item.setSelected(True)
            item.setSelected(False)
        finally:
            self.blockSignals(blocked)

    def _missing_positions(self, nodes) -> dict[str, tuple[float, float]]:
        """Layout positions for nodes that have none, below any nodes that do."""
        if all(n.pos is not None for n in nodes):
            return {}
        layout = layered_layout(self.graph)
        missing = {n.id for n in nodes if n.pos is None}
        fixed = [n.pos for n in self.graph.nodes() if n.pos is not None]
        dy = (max(y for _, y in fixed) + 160 - min(layout[m][1] for m in missing)) if fixed else 0
        x0 = min(x for x, _ in fixed) if fixed else 0
        return {m: (layout[m][0] + x0, layout[m][1] + dy) for m in missing}

    def _add_node_item(self, node, fallback=None) -> NodeItem:
        ports = self.graph.output_ports(node.id)  # (a lost one is added with its wire)
        item = NodeItem(node, self.paints, ports if ports != node.spec.outputs else None)
        pos = node.pos if node.pos is not None else fallback
        if pos is None:
            pos = self._missing_positions([node])[node.id]
        item.setPos(QPointF(*pos))
        self._nodes[node.id] = item
        self.addItem(item)
        self.node_item_changed(item)
        return item

    def _add_edge_item(self, edge: Edge, route: bool = True) -> EdgeItem:
        src, dst = self._nodes[edge.src], self._nodes[edge.dst]
        if src.port(edge.src_port, True) is None:  # a Block node's wire from a port it lost
            src.set_output_ports((*src.outputs, edge.src_port))
        item = EdgeItem(edge, src.port(edge.src_port, True), dst.port(edge.dst_port, False),
                        self.paints)
        self._edges[edge] = item
        src.edges.append(item)
        dst.edges.append(item)
        self.addItem(item)
        item.set_shape(self.shapes.edge_shape(edge))
        if route:
            item.adjust()
        self._count_connections(item)
        return item

    def _count_connections(self, item: EdgeItem) -> None:
        for port in (item.src_port, item.dst_port):
            node = port.node_item
            port.set_connections(sum(1 for e in node.edges
                                     if port in (e.src_port, e.dst_port)))

    # -- graph and inference events --------------------------------------------------------
    def _on_node_added(self, node_id: str) -> None:
        self._add_node_item(self.graph.node(node_id))
        self._update_wiring()
        self._refresh_node(node_id)
        self.node_geometry_changed()
        self.schedule_reroute()

    def _on_node_removed(self, node_id: str) -> None:
        item = self._nodes.pop(node_id, None)
        if item is not None:
            if isinstance(self._gesture, MoveGesture):
                self._gesture.cancel()
            self._mark_dirty(self.obstacles.rect(item))
            self.obstacles.remove(item)
            self.removeItem(item)
        self._update_wiring()
        self.node_geometry_changed()
        self.schedule_reroute()

    def _on_node_renamed(self, old: str, new: str) -> None:
        item = self._nodes.pop(old)
        item.rename(new)
        self._nodes[new] = item
        for edge_item in item.edges:
            old_edge = edge_item.edge
            edge = Edge(new if old_edge.src == old else old_edge.src,
                        new if old_edge.dst == old else old_edge.dst,
                        old_edge.src_port, old_edge.dst_port)
            self._edges[edge] = self._edges.pop(old_edge)
            edge_item.edge = edge
        self._wiring = {(new if k == old else k): v for k, v in self._wiring.items()}
        self._refresh_node(new)

    def _on_edge_added(self, edge: Edge) -> None:
        self._add_edge_item(edge)
        self._update_wiring()
        self.node_geometry_changed()

    def _on_edge_removed(self, edge: Edge) -> None:
        item = self._edges.pop(edge, None)
        if item is None:
            return
        if isinstance(self._gesture, NewWireGesture) and self._gesture.picked is item:
            self._gesture.cancel()
        for port in (item.src_port, item.dst_port):
            port.node_item.edges.remove(item)
        self._count_connections(item)
        self.removeItem(item)
        self.node_geometry_changed()
        if edge.src in self._nodes:
            self._update_wiring()

    def _on_params_changed(self, node_id: str) -> None:
        self._refresh_node(node_id)

    def _on_node_moved(self, node_id: str) -> None:
        item = self._nodes.get(node_id)
        node = self.graph.node(node_id)
        if item is not None and node.pos is not None:
            item.setPos(QPointF(*node.pos))
            self.schedule_reroute()

    def _on_shapes_updated(self, node_ids: set) -> None:
        for node_id in node_ids:
            if node_id in self._nodes:
                self._refresh_node(node_id)

    def _update_wiring(self) -> None:
        """Re-check which nodes dangle; refresh those whose verdict changed."""
        old, self._wiring = self._wiring, self.shapes.wiring_problems()
        for node_id in set(old) | set(self._wiring):
            if old.get(node_id) != self._wiring.get(node_id) and node_id in self._nodes:
                self._refresh_node(node_id)

    def _refresh_node(self, node_id: str) -> None:
        item = self._nodes.get(node_id)
        if item is None or node_id not in self.graph:
            return
        node = self.graph.node(node_id)
        info = self.shapes.info.get(node_id)
        if info is not None and info.error:
            problem = info.error
            severity = "warning" if self._unwired(node) else "error"
        else:
            problem, severity = self._wiring.get(node_id), "warning"
        if node.type == "Block":  # its definition may have gained or lost an Output
            item.set_output_ports(self.graph.output_ports(node_id))
        item.refresh(node, info, problem, severity)
        for edge_item in item.edges:
            if edge_item.edge.src == node_id:
                edge_item.set_shape(self.shapes.edge_shape(edge_item.edge))

    def _unwired(self, node) -> bool:
        """True when a required input has no wire yet: unfinished, rather than wrong."""
        return any(not port.multi and not port.optional
                   and not self.graph.in_edges(node.id, port.name) for port in node.spec.inputs)

    # -- queries ---------------------------------------------------------------------------
    def node_item(self, node_id: str) -> NodeItem | None:
        return self._nodes.get(node_id)

    def node_items(self) -> list[NodeItem]:
        return list(self._nodes.values())

    def edge_item(self, edge: Edge) -> EdgeItem | None:
        return self._edges.get(edge)

    def edge_items(self) -> list[EdgeItem]:
        return list(self._edges.values())

    def port_scene_pos(self, node_id: str, port_name: str, is_output: bool) -> QPointF:
        return self._nodes[node_id].port(port_name, is_output).scene_center()

    def items_bounding_rect(self) -> QRectF:
        """The rectangle holding every node and wire (cached until something moves)."""
        if self._bounds is None:
            rect = QRectF()
            for item in [*self._nodes.values(), *self._edges.values()]:
                rect = rect.united(item.sceneBoundingRect())
            self._bounds = rect
        return QRectF(self._bounds)

    def selected_node_items(self) -> list[NodeItem]:
        return [i for i in self.selectedItems() if isinstance(i, NodeItem)]

    def selected_node_ids(self) -> list[str]:
        return [i.node_id for i in self.selected_node_items()]

    def selected_edges(self) -> list[Edge]:
        return [i.edge for i in self.selectedItems() if isinstance(i, EdgeItem)]

    def node_item_at(self, pos: QPointF) -> NodeItem | None:
        for item in self.items(pos):
            if isinstance(item, NodeItem):
                return item
        return None

    def ports_near(self, pos: QPointF, radius: float, want_output: bool) -> list[PortItem]:
        """Ports on the wanted side within ``radius`` of ``pos``, nearest first."""
        area = QRectF(pos.x() - radius, pos.y() - radius, 2 * radius, 2 * radius)
        found = []
        for item in self.items(area):
            if isinstance(item, PortItem) and item.is_output == want_output:
                d = item.scene_center() - pos
                dist = (d.x() ** 2 + d.y() ** 2) ** 0.5
                if dist <= radius:
                    found.append((dist, item))
        return [item for _, item in sorted(found, key=lambda pair: pair[0])]

    def view_scale(self) -> float:
        views = self.views()
        return views[0].transform().m11() if views else 1.0

    # -- selection and overlays ------------------------------------------------------------
    def select_nodes(self, node_ids) -> None:
        self.set_selected_items({self._nodes[n] for n in node_ids if n in self._nodes})

    def set_selected_items(self, items: set) -> None:
        for item in self.selectedItems():
            if item not in items:
                item.setSelected(False)
        for item in items:
            if not item.isSelected():
                item.setSelected(True)

    def set_node_tint(self, node_id: str, value: float | None) -> None:
        item = self._nodes.get(node_id)
        if item is not None:
            item.set_tint(value)

    def set_edge_strength(self, edge: Edge, value: float | None) -> None:
        item = self._edges.get(edge)
        if item is not None:
            item.set_strength(value)

    def set_node_badge(self, node_id: str, text: str | None, severity: str = "warning") -> None:
        item = self._nodes.get(node_id)
        if item is not None:
            item.set_badge(text, severity)

    def set_theme(self, theme: CanvasTheme) -> None:
        self.theme = theme
        self.paints = paints_for(theme)
        for item in [*self._nodes.values(), *self._edges.values()]:
            item.set_paints(self.paints)
        self.update()
        self.theme_changed.emit()

    # -- wires -----------------------------------------------------------------------------
    def reroute_wires(self) -> None:
        """Recompute every wire's route (after nodes moved, some wires may detour or not)."""
        self._dirty = QRectF()
        for item in self._edges.values():
            item.adjust()
        self.node_geometry_changed()

    def schedule_reroute(self) -> None:
        """Reroute the wires near the nodes that moved, once control returns to the event loop
        (coalesces many moves)."""
        if not self._reroute_timer.isActive():
            self._reroute_timer.start()

    def reroute_moved(self) -> None:
        """Reroute only the wires whose route may depend on a node that moved: a wire detours
        inside its own box, so one whose box misses every old and new node place is unchanged."""
        if self.fast_wires:
            return  # a drag is on: the area keeps growing until the release reroutes it
        area, self._dirty = self._dirty, QRectF()
        if area.isNull():
            return
        for item in self._edges.values():
            box = item.path().boundingRect()  # a level wire's box has no height: widen it
            if box.adjusted(-REACH, -REACH, REACH, REACH).intersects(area):
                item.adjust()
        self.node_geometry_changed()

    def node_item_changed(self, item: NodeItem) -> None:
        """A node item moved or changed size: wires route around where it is now."""
        rect = item.mapRectToScene(item.rect())
        self._mark_dirty(self.obstacles.rect(item))
        self._mark_dirty(rect)
        self.obstacles.place(item, rect)
        # the bounds only grow while a node moves (a full pass per mouse move would cost O(n));
        # they are recomputed when nodes come or go
        if self._bounds is not None:
            self._bounds = self._bounds.united(item.sceneBoundingRect())
        self.node_geometry_changed(keep_bounds=True)

    def _mark_dirty(self, rect: QRectF | None) -> None:
        if rect is not None:
            self._dirty = self._dirty.united(rect)

    def node_geometry_changed(self, keep_bounds: bool = False) -> None:
        if not keep_bounds:
            self._bounds = None
        if not self._geometry_timer.isActive():
            # a big graph's overview and scene rect follow a drag a few times a second
            self._geometry_timer.setInterval(30 if len(self._nodes) < LARGE_GRAPH else 250)
            self._geometry_timer.start()

    def show_refusal(self, message: str, screen_pos) -> None:
        """Tell the user why a wire was refused: at the cursor and in the status bar."""
        self.status_message.emit(message)
        views = self.views()
        QToolTip.showText(screen_pos, message, views[0].viewport() if views else None)

    # -- gestures --------------------------------------------------------------------------
    def end_gesture(self, gesture) -> None:
        if self._gesture is gesture:
            self._gesture = None

    def gesture(self):
        return self._gesture

    def end_press(self) -> None:
        """A left press is over (its release, another press, or the view starting a pan): the
        window shows what a press on a node selected, if it has not yet."""
        self.press_ended.emit()

    def mousePressEvent(self, event) -> None:
        self.end_press()  # a release that never came, or another button pressed
        if self._gesture is not None or event.button() != Qt.MouseButton.LeftButton:
            event.accept()
            return
        item = self._top_item(event.scenePos())
        if isinstance(item, PortItem):
            self._gesture = NewWireGesture(self, item, self._picked_wire(item))
        elif isinstance(item, NodeItem):
            self._press_node(item, event)
        elif isinstance(item, EdgeItem):
            self._press_edge(item, event)
        else:
            self._gesture = RubberBandGesture(self, event)
        event.accept()

    def _top_item(self, pos: QPointF):
        for item in self.items(pos):
            if isinstance(item, (PortItem, NodeItem, EdgeItem)) and item.isVisible():
                return item
        return None

    def _picked_wire(self, port: PortItem) -> EdgeItem | None:
        """The wire lifted when dragging from an input port that already has one (the last)."""
        if port.is_output:
            return None
        edges = self.graph.in_edges(port.node_id, port.name)
        return self._edges.get(edges[-1]) if edges else None

    def _press_node(self, item: NodeItem, event) -> None:
        # a drag may follow: the window can leave costly updates on the selection this press
        # makes (building the inspector's form) until the button comes up, so that the first
        # move is quick (selecting_on_press is true while the press selects)
        self.selecting_on_press = True
        try:
            mods = event.modifiers()
            if mods & _CTRL:
                item.setSelected(not item.isSelected())
                if not item.isSelected():
                    return
            elif mods & _SHIFT:
                item.setSelected(True)
            elif not item.isSelected():
                self.set_selected_items({item})
        finally:
            self.selecting_on_press = False
        self._gesture = MoveGesture(self, event, item)

    def _press_edge(self, item: EdgeItem, event) -> None:
        if event.modifiers() & (_CTRL | _SHIFT):
            item.setSelected(not item.isSelected())
        else:
            self.set_selected_items({item})

    def mouseMoveEvent(self, event) -> None:
        if self._gesture is not None:
            self._gesture.move(event)
            event.accept()
        else:
            super().mouseMoveEvent(event)  # hover highlighting

    def mouseReleaseEvent(self, event) -> None:
        if self._gesture is not None and event.button() == Qt.MouseButton.LeftButton:
            self._gesture.release(event)
        if event.button() == Qt.MouseButton.LeftButton:
            self.end_press()
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:
        item = self._top_item(event.scenePos())
        if isinstance(item, NodeItem) and event.button() == Qt.MouseButton.LeftButton:
            self.node_double_clicked.emit(item.node_id)
        event.accept()

    # -- keys ------------------------------------------------------------------------------
    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key == Qt.Key.Key_Escape:
            if self._gesture is not None:
                self._gesture.cancel()
            else:
                self.clearSelection()
        elif key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.request_delete()
        elif key in _ARROWS and self.selected_node_items():
            dx, dy = _ARROWS[key]
            step = GRID * (5 if event.modifiers() & _SHIFT else 1)
            self.move_selection(dx * step, dy * step)
        else:
            event.ignore()
            return
        event.accept()

    def request_delete(self) -> None:
        """Ask to delete the selection (wires of deleted nodes go with them, so not listed)."""
        nodes = self.selected_node_ids()
        gone = set(nodes)
        edges = [e for e in self.selected_edges() if e.src not in gone and e.dst not in gone]
        if nodes or edges:
            self.delete_requested.emit(nodes, edges)

    def move_selection(self, dx: float, dy: float) -> None:
        """Nudge the selected nodes (shown at once) and request the move."""
        moves = {}
        for item in self.selected_node_items():
            old = item.pos()
            new = QPointF(old.x() + dx, old.y() + dy)
            item.setPos(new)
            moves[item.node_id] = ((old.x(), old.y()), (new.x(), new.y()))
        if moves:
            self.schedule_reroute()
            self.nodes_moved.emit(moves)
