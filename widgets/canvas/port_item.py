"""A node's typed port: the small circle a wire starts from or ends on."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainterPath
from PySide6.QtWidgets import QGraphicsItem

from .style import PORT_RADIUS

_HIT = 9.0  # grab radius, larger than the drawn circle so ports are easy to catch
_HALO = 8.0
_REACH = max(_HIT, PORT_RADIUS + _HALO)
_BOUNDS = QRectF(-_REACH, -_REACH, 2 * _REACH, 2 * _REACH)
_NO_CONTENTS = QGraphicsItem.GraphicsItemFlag.ItemHasNoContents


class PortItem(QGraphicsItem):
    """An input (left edge) or output (right edge) port of a :class:`NodeItem`.

    At rest the node draws the port's circle (in its cached image, so hundreds of ports cost
    nothing to repaint); the port item paints only while it is hovered or highlighted."""

    # Highlight states while a wire is being drawn
    NONE, COMPATIBLE, TARGET = 0, 1, 2

    def __init__(self, node_item, name: str, is_output: bool, multi: bool = False):
        super().__init__(node_item)
        self.node_item = node_item
        self.name = name
        self.is_output = is_output
        self.multi = multi
        self.connections = 0
        self.highlight = self.NONE
        self._hovered = False
        self.setAcceptHoverEvents(True)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setZValue(1)
        self.setFlag(_NO_CONTENTS)

    @property
    def node_id(self) -> str:
        return self.node_item.node_id

    def scene_center(self) -> QPointF:
        return self.mapToScene(QPointF(0, 0))

    def set_highlight(self, state: int) -> None:
        if state != self.highlight:
            self.highlight = state
            self._shown_changed()

    def set_connections(self, count: int) -> None:
        if count != self.connections:
            self.connections = count
            self.node_item.update()  # the node draws the port at rest

    def _shown_changed(self) -> None:
        self.setFlag(_NO_CONTENTS, not (self.highlight or self._hovered))
        scene = self.scene()
        if scene is not None:  # by area: Qt skips repainting an item that has no contents
            scene.update(self.sceneBoundingRect())

    def paint_at_rest(self, painter, p) -> None:
        """Draw the plain circle (for the node, in the node's coordinates)."""
        painter.setPen(p.port_pen)
        painter.setBrush(p.port_connected_brush if self.connections else p.port_brush)
        painter.drawEllipse(self.pos(), PORT_RADIUS, PORT_RADIUS)

    # -- QGraphicsItem ---------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return _BOUNDS

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addEllipse(QPointF(0, 0), _HIT, _HIT)
        return path

    def paint(self, painter, option, widget=None) -> None:
        p = self.node_item.paints
        painter.setRenderHint(painter.RenderHint.Antialiasing)
        center = QPointF(0, 0)
        if self.highlight or self._hovered:
            brush = p.port_halo_brush if self.highlight else p.port_hover_brush
            halo = PORT_RADIUS + (_HALO if self.highlight == self.TARGET else _HALO - 3)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(brush)
            painter.drawEllipse(center, halo, halo)
        if self.highlight == self.TARGET:
            painter.setPen(p.port_ok_pen)
            painter.setBrush(p.port_target_brush)
        elif self.highlight == self.COMPATIBLE:
            painter.setPen(p.port_ok_pen)
            painter.setBrush(p.port_ok_brush)
        else:
            painter.setPen(p.port_pen)
            painter.setBrush(p.port_connected_brush if self.connections else p.port_brush)
        painter.drawEllipse(center, PORT_RADIUS, PORT_RADIUS)

    def hoverEnterEvent(self, event) -> None:
        self._hovered = True
        self._shown_changed()

    def hoverLeaveEvent(self, event) -> None:
        self._hovered = False
        self._shown_changed()
