"""The overview in the canvas corner: the whole graph in miniature and the visible part of it."""
from __future__ import annotations

import time

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap, QTransform
from PySide6.QtWidgets import QWidget

_MARGIN = 8.0
_REDRAW_MS = 400  # how long edits and view moves pause before a big graph's map is redrawn


class Minimap(QWidget):
    """A small map of the scene; click or drag in it to move the view there."""

    def __init__(self, view):
        # a child of the viewport, not of the view: a widget over the viewport from outside
        # it makes Qt repaint the whole viewport at every scroll step instead of moving its
        # pixels and drawing the strip uncovered (a pan at zoom to fit: 13 ms instead of 2);
        # the view puts the map back in its corner after each scroll (CanvasView.place_minimap)
        super().__init__(view.viewport())
        self.view = view
        self.setFixedSize(200, 120)
        self.setMouseTracking(True)  # moves over the map are its own, not the canvas's
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Overview: click or drag to move around the graph")
        self._frame = QRectF()  # the scene rect the map shows
        self._scale = 1.0
        self._picture: QPixmap | None = None  # the graph drawn once, until it changes
        self._mapped = False
        # a big graph is drawn again once its edits and the view's moves pause (while a node
        # is dragged or the view panned, the map shows the graph as it was, and the view's
        # rectangle where it is now): drawing it takes a frame's time or more
        self._redraw = QTimer(self, singleShot=True)
        self._redraw.timeout.connect(self._redraw_due)
        self._moved_at = 0.0  # when the view last panned or zoomed

    def view_moved(self) -> None:
        """The view panned or zoomed (a pending redraw waits until that pauses too)."""
        self._moved_at = time.monotonic()

    def _redraw_due(self) -> None:
        wait_ms = _REDRAW_MS - (time.monotonic() - self._moved_at) * 1000
        if wait_ms > 0:
            self._redraw.start(int(wait_ms) + 1)
            return
        self._drop_picture()

    def invalidate(self) -> None:
        """The graph changed (or the theme): map and draw it anew when next needed."""
        from .scene import LARGE_GRAPH

        if self._picture is not None and len(self.view.scene().node_items()) >= LARGE_GRAPH:
            self._redraw.start(_REDRAW_MS)
            self.update()
            return
        self._drop_picture()

    def _drop_picture(self) -> None:
        self._picture = None
        self._mapped = False
        self.update()

    # -- mapping ---------------------------------------------------------------------------
    def _update_mapping(self) -> None:
        if self._mapped:
            return
        self._mapped = True
        scene_rect = self.view.scene().items_bounding_rect().adjusted(-40, -40, 40, 40)
        area = QRectF(self.rect()).adjusted(_MARGIN, _MARGIN, -_MARGIN, -_MARGIN)
        if scene_rect.isEmpty():
            self._frame, self._scale = QRectF(), 1.0
            return
        self._scale = min(area.width() / scene_rect.width(), area.height() / scene_rect.height())
        # centre the graph inside the map
        w, h = area.width() / self._scale, area.height() / self._scale
        c = scene_rect.center()
        self._frame = QRectF(c.x() - w / 2, c.y() - h / 2, w, h)

    def to_map(self, p: QPointF) -> QPointF:
        self._update_mapping()
        return QPointF(_MARGIN + (p.x() - self._frame.x()) * self._scale,
                       _MARGIN + (p.y() - self._frame.y()) * self._scale)

    def to_scene(self, p: QPointF) -> QPointF:
        self._update_mapping()
        return QPointF(self._frame.x() + (p.x() - _MARGIN) / self._scale,
                       self._frame.y() + (p.y() - _MARGIN) / self._scale)

    def _map_rect(self, r: QRectF) -> QRectF:
        return QRectF(self.to_map(r.topLeft()), self.to_map(r.bottomRight()))

    # -- painting --------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        if self.view.scene() is None:  # the view outlived its scene (a document closing)
            return
        if self._picture is None:
            self._picture = self._draw_picture()
        painter = QPainter(self)
        painter.drawPixmap(0, 0, self._picture)
        if not self._frame.isEmpty():
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setClipRect(QRectF(self.rect()).adjusted(2, 2, -2, -2))
            self._paint_viewport(painter, self.view.scene().theme)

    def _draw_picture(self) -> QPixmap:
        scene = self.view.scene()
        self._update_mapping()
        theme = scene.theme
        ratio = self.devicePixelRatioF()
        picture = QPixmap(self.size() * ratio)
        picture.setDevicePixelRatio(ratio)
        picture.fill(QColor(0, 0, 0, 0))
        painter = QPainter(picture)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        fill = QColor(theme.minimap_fill)
        fill.setAlpha(235)
        painter.setPen(QPen(QColor(theme.node_border), 1))
        painter.setBrush(fill)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 8, 8)
        if not self._frame.isEmpty():
            painter.setClipRect(QRectF(self.rect()).adjusted(2, 2, -2, -2))
            self._paint_graph(painter, scene, theme)
        painter.end()
        return picture

    def _paint_graph(self, painter: QPainter, scene, theme) -> None:
        """Wires as lines and nodes as blocks of their category's colour, drawn in scene
        coordinates through one transform, in batches (5,000 nodes in a few milliseconds)."""
        s = self._scale
        painter.setTransform(QTransform(s, 0, 0, s, _MARGIN - self._frame.x() * s,
                                        _MARGIN - self._frame.y() * s), True)
        from .scene import LARGE_GRAPH

        nodes = scene.node_items()
        if len(nodes) < LARGE_GRAPH:  # a big graph's wires would be a grey blur at this size
            pen = QPen(QColor(theme.wire), 1)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawLines([QLineF(e.src_port.scene_center(), e.dst_port.scene_center())
                               for e in scene.edge_items()])
        painter.setPen(Qt.PenStyle.NoPen)
        by_category: dict[str, list[QRectF]] = {}
        for node in nodes:
            by_category.setdefault(node.category, []).append(node.sceneBoundingRect())
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        for category, rects in by_category.items():
            painter.setBrush(scene.paints.header_brush(category))
            painter.drawRects(rects)

    def _paint_viewport(self, painter: QPainter, theme) -> None:
        visible = self.view.mapToScene(self.view.viewport().rect()).boundingRect()
        color = QColor(theme.selection)
        painter.setPen(QPen(color, 1.5))
        color.setAlpha(28)
        painter.setBrush(color)
        painter.drawRect(self._map_rect(visible))

    # -- navigation ------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        self._go(event.position())
        event.accept()

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._go(event.position())
        event.accept()

    def mouseReleaseEvent(self, event) -> None:
        event.accept()

    def _go(self, p: QPointF) -> None:
        self._update_mapping()
        if not self._frame.isEmpty():
            self.view.centerOn(self.to_scene(p))
