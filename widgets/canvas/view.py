"""The canvas view: zoom under the mouse, pan, grid, drops from the palette, the overview."""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QFrame, QGraphicsView
from pyqtgraph.functions import arrayToQPolygonF

from ..palette import LAYER_MIME
from .minimap import Minimap
from .style import GRID

MIN_ZOOM, MAX_ZOOM = 0.2, 3.0
FIT_MAX_ZOOM = 1.4  # zoom to fit never blows a small graph up beyond this
_FIT_MARGIN = 40.0
_STEP = 1.25


class CanvasView(QGraphicsView):
    """A view of a :class:`CanvasScene` with the navigation a node editor needs."""

    def __init__(self, scene, parent=None):
        super().__init__(scene, parent)
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.TextAntialiasing
                            | QPainter.RenderHint.SmoothPixmapTransform)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        # every item sets the pens, brushes, fonts and hints it draws with: Qt need not save
        # and restore the painter around each of the hundreds drawn in a frame
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontSavePainterState)
        # the dot grid is costly to draw and never changes under items: keep it as a pixmap
        self.setCacheMode(QGraphicsView.CacheModeFlag.CacheBackground)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)
        self.setMouseTracking(True)
        self._pan_from: QPointF | None = None
        self._warmed = False  # the scene's selection made ready (CanvasScene.warm_selection)
        self._space = False
        self.minimap = Minimap(self)
        self.minimap.hide()
        scene.geometry_changed.connect(self._scene_geometry_changed)
        scene.theme_changed.connect(self._theme_changed)
        self._update_scene_rect()

    # -- zoom ------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``factor`` (clamped), keeping the scene point under ``anchor`` in place."""
        factor = max(MIN_ZOOM, min(MAX_ZOOM, factor))
        anchor = QPointF(self.viewport().rect().center()) if anchor is None else anchor
        fixed = self.mapToScene(anchor.toPoint())
        self.resetTransform()
        self.scale(factor, factor)
        moved = self.mapFromScene(fixed) - anchor.toPoint()
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + moved.x())
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + moved.y())
        self._view_changed()

    def zoom_in(self) -> None:
        self.set_zoom(self.zoom() * _STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self.zoom() / _STEP)

    def zoom_to_fit(self) -> None:
        """Frame every node and wire, with a margin."""
        self._update_scene_rect()
        rect = self.scene().items_bounding_rect()
        if rect.isEmpty():
            self.resetTransform()
            self.centerOn(0, 0)
            self._view_changed()
            return
        rect = rect.adjusted(-_FIT_MARGIN, -_FIT_MARGIN, _FIT_MARGIN, _FIT_MARGIN)
        port = self.viewport().rect()
        factor = min(port.width() / rect.width(), port.height() / rect.height())
        self.resetTransform()
        self.scale(*(2 * [max(MIN_ZOOM, min(FIT_MAX_ZOOM, factor))]))
        self.centerOn(rect.center())
        self._view_changed()

    def view_center_scene_pos(self) -> QPointF:
        return self.mapToScene(self.viewport().rect().center())

    def wheelEvent(self, event) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if not delta:
            event.ignore()
            return
        self.set_zoom(self.zoom() * 1.0015 ** delta, event.position())
        event.accept()

    # -- panning ---------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
                button == Qt.MouseButton.LeftButton and self._space):
            self._pan_from = event.position()
            self.scene().end_press()  # the pan takes the left button's release, if it is down
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._pan_from is not None:
            d = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(d.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(d.y()))
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton,
                                                             Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if self._space
                                      else Qt.CursorShape.ArrowCursor)
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space = True
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().setCursor(Qt.CursorShape.ArrowCursor)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.place_minimap()
        self._view_changed()

    # -- drops from the palette ------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if event.mimeData().hasFormat(LAYER_MIME):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        if not mime.hasFormat(LAYER_MIME):
            super().dropEvent(event)
            return
        type_name = bytes(mime.data(LAYER_MIME)).decode("utf-8")
        pos = self.mapToScene(event.position().toPoint())
        event.acceptProposedAction()
        self.scene().node_drop_requested.emit(type_name, QPointF(pos))

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        scene = self.scene()
        if not self._warmed and scene is not None and scene.node_items():
            self._warmed = True
            scene.warm_selection()

    # -- background ------------------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        paints = self.scene().paints
        painter.fillRect(rect, paints.background)
        zoom = self.zoom()
        minor = GRID if GRID * zoom >= 13 else GRID * 5
        if minor * zoom < 13:  # zoomed far out: the dots would be a haze of thousands
            minor = GRID * 10
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, minor == GRID)
        self._dots(painter, rect, minor, paints.grid_minor, 1.6)
        if minor == GRID:
            self._dots(painter, rect, GRID * 5, paints.grid_major, 2.4)

    def _dots(self, painter: QPainter, rect: QRectF, step: float, color, size_px: float) -> None:
        left = math.floor(rect.left() / step) * step
        top = math.floor(rect.top() / step) * step
        xs = np.arange(left, rect.right() + step * 0.5, step)
        ys = np.arange(top, rect.bottom() + step * 0.5, step)
        xs, ys = xs[xs <= rect.right()], ys[ys <= rect.bottom()]
        gx, gy = np.meshgrid(xs, ys)  # filled by numpy: a Python loop took 1-2 ms a frame
        points = arrayToQPolygonF(gx.ravel(), gy.ravel())
        pen = painter.pen()
        pen.setColor(color)
        pen.setWidthF(size_px)
        pen.setCosmetic(True)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.drawPoints(points)

    # -- keeping the scene rect and the overview in step -----------------------------------
    def _scene_geometry_changed(self) -> None:
        self._update_scene_rect()
        self.minimap.invalidate()
        self._view_changed()

    def _update_scene_rect(self) -> None:
        """Leave room around the graph so the view can pan and zoom past its edges."""
        rect = self.scene().items_bounding_rect()
        if rect.isEmpty():
            rect = QRectF(-100, -100, 200, 200)
        size = self.viewport().size()
        margin = max(size.width(), size.height(), 800) / MIN_ZOOM
        self.setSceneRect(rect.adjusted(-margin, -margin, margin, margin))

    def _theme_changed(self) -> None:
        self.resetCachedContent()
        self.viewport().update()
        self.minimap.invalidate()

    def _view_changed(self) -> None:
        self.minimap.view_moved()
        rect = self.scene().items_bounding_rect()
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        self.minimap.setVisible(not rect.isEmpty() and not visible.contains(rect))
        if self.minimap.isVisible():
            self.minimap.update()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_scene_rect()
        self.place_minimap()
        self._view_changed()

    def place_minimap(self) -> None:
        """The overview in the viewport's bottom-right corner (a scroll moves the viewport's
        children with its pixels: scrollContentsBy puts it back)."""
        m, port = self.minimap, self.viewport()
        m.move(port.width() - m.width() - 12, port.height() - m.height() - 12)
