"""Mouse gestures on the canvas, one small object each (orange-canvas-core style).

The scene hands every mouse event to the active gesture until the gesture ends. A gesture only
moves items for feedback and, when it completes, emits one of the scene's request signals; it never
changes the graph.
"""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainterPath
from PySide6.QtWidgets import QApplication, QGraphicsRectItem

from engine.errors import GraphError
from engine.graph import Edge

from .edge_item import DraftWireItem
from .node_item import NodeItem
from .port_item import PortItem

SNAP_PIXELS = 26.0  # a wire snaps to a compatible port this close to the cursor (screen pixels)


class Gesture:
    """One gesture in progress; the scene forwards mouse and key events to it."""

    def __init__(self, scene):
        self.scene = scene

    def move(self, event) -> None:
        pass

    def release(self, event) -> None:
        self.end()

    def cancel(self) -> None:
        self.end()

    def end(self) -> None:
        self.scene.end_gesture(self)


class NewWireGesture(Gesture):
    """Draw a wire from a port; or pick up the wire on an input port and move its end."""

    def __init__(self, scene, port: PortItem, picked=None):
        super().__init__(scene)
        self.picked = picked  # EdgeItem lifted off its input port, or None
        self.anchor = picked.src_port if picked else port
        self.from_output = self.anchor.is_output
        self.verdicts: dict[PortItem, str | None] = {}
        self.highlighted: set[PortItem] = set()
        self.target: PortItem | None = None
        self.draft = DraftWireItem(scene.paints)
        scene.addItem(self.draft)
        if picked is not None:
            picked.setVisible(False)
        self._follow(self.anchor.scene_center())

    # -- which ports accept this wire ------------------------------------------------------
    def edge_to(self, port: PortItem) -> Edge:
        a = self.anchor
        if self.from_output:
            return Edge(a.node_id, port.node_id, a.name, port.name)
        return Edge(port.node_id, a.node_id, port.name, a.name)

    def verdict(self, port: PortItem) -> str | None:
        """None if the wire may end on ``port``; otherwise the graph's reason why not."""
        if port not in self.verdicts:
            edge = self.edge_to(port)
            if self.picked is not None and edge == self.picked.edge:
                self.verdicts[port] = None
            else:
                try:
                    self.scene.graph.check_connect(edge)
                    self.verdicts[port] = None
                except GraphError as exc:
                    self.verdicts[port] = str(exc)
        return self.verdicts[port]

    def _candidates(self, pos: QPointF) -> tuple[PortItem | None, str | None]:
        """The port the wire would end on at ``pos`` and, if refused, the reason."""
        radius = SNAP_PIXELS / self.scene.view_scale()
        near = self.scene.ports_near(pos, radius, want_output=not self.from_output)
        near = [p for p in near if p is not self.anchor]
        self._highlight([p for p in near if self.verdict(p) is None])
        for port in near:
            if self.verdict(port) is None:
                return port, None
        if near:
            return None, self.verdict(near[0])
        return self._node_target(pos)

    def _node_target(self, pos: QPointF) -> tuple[PortItem | None, str | None]:
        """Over a node's body the wire goes to its first port that accepts it."""
        node = self.scene.node_item_at(pos)
        if node is None or node is self.anchor.node_item:
            return None, None
        ports = list((node.inputs if self.from_output else node.outputs).values())
        for port in ports:
            if self.verdict(port) is None:
                self._highlight([port])
                return port, None
        return None, (self.verdict(ports[0]) if ports else
                      f"{node.node_id} ({node.type_name}) has no "
                      f"{'inputs' if self.from_output else 'outputs'}")

    def _highlight(self, ports: list[PortItem]) -> None:
        for port in self.highlighted - set(ports):
            port.set_highlight(PortItem.NONE)
        for port in ports:
            port.set_highlight(PortItem.COMPATIBLE)
        self.highlighted = set(ports)

    # -- events ----------------------------------------------------------------------------
    def move(self, event) -> None:
        pos = event.scenePos()
        target, refusal = self._candidates(pos)
        if self.target is not None and self.target is not target:
            self.target.set_highlight(PortItem.COMPATIBLE if self.target in self.highlighted
                                      else PortItem.NONE)
        self.target = target
        if target is not None:
            target.set_highlight(PortItem.TARGET)
        self.draft.set_refused(refusal is not None)
        self._follow(target.scene_center() if target else pos)

    def _follow(self, end: QPointF) -> None:
        start = self.anchor.scene_center()
        if self.from_output:
            self.draft.set_ends(start, end)
        else:
            self.draft.set_ends(end, start)

    def release(self, event) -> None:
        target, refusal = self._candidates(event.scenePos())
        scene, picked = self.scene, self.picked
        self.end()
        if target is not None:
            edge = self.edge_to(target)
            if picked is not None and edge == picked.edge:
                return
            if picked is not None:
                scene.disconnect_requested.emit(picked.edge)
            scene.connect_requested.emit(edge)
        elif refusal:
            scene.show_refusal(refusal, event.screenPos())
        elif picked is not None:
            scene.disconnect_requested.emit(picked.edge)

    def end(self) -> None:
        for port in self.highlighted | ({self.target} if self.target else set()):
            port.set_highlight(PortItem.NONE)
        self.scene.removeItem(self.draft)
        if self.picked is not None and self.picked.scene() is self.scene:
            self.picked.setVisible(True)
        super().end()


class MoveGesture(Gesture):
    """Drag the selected nodes; one ``nodes_moved`` request when the mouse is released."""

    def __init__(self, scene, event, clicked: NodeItem):
        super().__init__(scene)
        self.clicked = clicked
        self.press = event.scenePos()
        self.press_screen = event.screenPos()
        self.start = {item: item.pos() for item in scene.selected_node_items()}
        self.moving = False

    def move(self, event) -> None:
        if not self.moving:
            travel = (event.screenPos() - self.press_screen).manhattanLength()
            if travel < QApplication.startDragDistance():
                return
            self.moving = True
            self.scene.fast_wires = True
        delta = event.scenePos() - self.press
        for item, pos in self.start.items():
            item.setPos(QPointF(round(pos.x() + delta.x()), round(pos.y() + delta.y())))

    def release(self, event) -> None:
        scene = self.scene
        self.end()
        scene.fast_wires = False
        if not self.moving:
            if not event.modifiers() & (Qt.KeyboardModifier.ControlModifier
                                        | Qt.KeyboardModifier.ShiftModifier):
                scene.select_nodes([self.clicked.node_id])
            return
        moves = {item.node_id: ((start.x(), start.y()), (item.pos().x(), item.pos().y()))
                 for item, start in self.start.items() if item.pos() != start}
        scene.reroute_moved()  # only wires near where the nodes were or went
        if moves:
            scene.nodes_moved.emit(moves)

    def cancel(self) -> None:
        for item, pos in self.start.items():
            item.setPos(pos)
        self.scene.fast_wires = False
        self.scene.reroute_moved()
        self.end()


class RubberBandGesture(Gesture):
    """Select the nodes inside a dragged rectangle (added to the selection with Ctrl/Shift)."""

    def __init__(self, scene, event):
        super().__init__(scene)
        self.origin = event.scenePos()
        additive = event.modifiers() & (Qt.KeyboardModifier.ControlModifier
                                        | Qt.KeyboardModifier.ShiftModifier)
        if not additive:
            scene.clearSelection()
        self.keep = set(scene.selected_node_items())
        self.band = QGraphicsRectItem()
        self.band.setPen(scene.paints.rubber_pen)
        self.band.setBrush(scene.paints.rubber_brush)
        self.band.setZValue(30)
        scene.addItem(self.band)

    def move(self, event) -> None:
        rect = QRectF(self.origin, event.scenePos()).normalized()
        self.band.setRect(rect)
        path = QPainterPath()
        path.addRect(rect)
        inside = {item for item in self.scene.items(path, Qt.ItemSelectionMode.IntersectsItemShape)
                  if isinstance(item, NodeItem)}
        self.scene.set_selected_items(inside | self.keep)

    def end(self) -> None:
        self.scene.removeItem(self.band)
        super().end()

