"""A wire between two ports: a smooth curve labelled with the tensor shape it carries."""
from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPainterPathStroker, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsPathItem, QStyleOptionGraphicsItem

from ..theme import format_shape
from .obstacles import CLEARANCE, REACH
from .style import FAR_ZOOM, OVERVIEW_ZOOM, PORT_RADIUS, Paints

_LANE_GAP = 22.0  # how far above (or below) the nodes it avoids a detouring wire runs
_LABEL_H = 16.0
_BIG_LABEL_H = 20.0
_HIT_WIDTH = 10.0
_ANTIALIASING = QPainter.RenderHint.Antialiasing  # looked up once: painting is hot
_NO_BRUSH = Qt.BrushStyle.NoBrush
_TURN = 36.0  # how far a wire back to another row swings out past its ports


def wire_path(p1: QPointF, p2: QPointF) -> QPainterPath:
    """The plain S-curve from an output at ``p1`` to an input at ``p2``."""
    dx = p2.x() - p1.x()
    reach = max(abs(dx) * 0.5, 40.0) if dx >= 0 else max(60.0, min(-dx * 0.5, 160.0))
    path = QPainterPath(p1)
    path.cubicTo(QPointF(p1.x() + reach, p1.y()), QPointF(p2.x() - reach, p2.y()), p2)
    return path


def lane_path(p1: QPointF, p2: QPointF, lane: float) -> QPainterPath:
    """A curve that rises from ``p1`` to the height ``lane``, runs level, and drops to ``p2``."""
    r = min(22.0, (p2.x() - p1.x()) / 4)
    path = QPainterPath(p1)
    a = QPointF(p1.x() + 2 * r, lane)
    b = QPointF(p2.x() - 2 * r, lane)
    path.cubicTo(QPointF(p1.x() + r, p1.y()), QPointF(p1.x() + r, lane), a)
    path.lineTo(b)
    path.cubicTo(QPointF(p2.x() - r, lane), QPointF(p2.x() - r, p2.y()), p2)
    return path


def return_path(p1: QPointF, p2: QPointF, lane: float) -> QPainterPath:
    """A wire back to an input left of its output, on another row: out to the right and round
    to the height ``lane`` (between the rows), level to the left, and round into the input."""
    r = min(_TURN, abs(lane - p1.y()), abs(p2.y() - lane)) * 4 / 3  # the turns bulge 3/4 r
    path = QPainterPath(p1)
    path.cubicTo(QPointF(p1.x() + r, p1.y()), QPointF(p1.x() + r, lane), QPointF(p1.x(), lane))
    path.lineTo(QPointF(p2.x(), lane))
    path.cubicTo(QPointF(p2.x() - r, lane), QPointF(p2.x() - r, p2.y()), p2)
    return path


class EdgeItem(QGraphicsItem):
    """One :class:`engine.graph.Edge`; follows its two ports and shows the live shape."""

    def __init__(self, edge, src_port, dst_port, paints: Paints):
        super().__init__()
        self.edge = edge
        self.src_port = src_port
        self.dst_port = dst_port
        self.paints = paints
        self.label = ""
        self.known = True
        self.strength: float | None = None
        self._strength_pen: QPen | None = None
        self._hovered = False
        self._path = QPainterPath()
        self._hit = QPainterPath()
        self._label_rect = QRectF()
        self._labels: tuple = ((QRectF(), None), (QRectF(), None))  # (rect, font): near, far
        self._bounds = QRectF()
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        # no item cache: a wire is one path, and a pixmap of its bounding rectangle (a long
        # wire's is most of the view) was drawn again at every zoom step and every move of
        # either end; painting the path itself halved those frames on a 5,000-node graph
        self.setAcceptHoverEvents(True)
        self.setZValue(0)

    # -- model -> item ---------------------------------------------------------------------
    def set_shape(self, shape) -> None:
        label, known = format_shape(shape), shape is not None
        if label != self.label or known != self.known:
            self.label, self.known = label, known
            self.setToolTip(f"{self.edge}: {label}" if known else
                            f"{self.edge}: shape unknown (an earlier layer has a problem)")
            self._place_label()
            self.update()

    def set_strength(self, value: float | None) -> None:
        self.strength = value
        if value is None:
            self._strength_pen = None
        else:
            v = max(0.0, min(1.0, value))
            color = QColor(self.paints.accent)
            color.setAlphaF(0.35 + 0.65 * v)
            self._strength_pen = QPen(color, 1.5 + 4.5 * v, Qt.PenStyle.SolidLine,
                                      Qt.PenCapStyle.RoundCap)
        self.update()

    def set_paints(self, paints: Paints) -> None:
        self.paints = paints
        self.set_strength(self.strength)
        self._place_label()

    # -- geometry --------------------------------------------------------------------------
    def adjust(self, avoid: bool | None = None) -> None:
        """Recompute the curve from the ports' current positions."""
        scene = self.scene()
        if avoid is None:
            avoid = scene is not None and not getattr(scene, "fast_wires", False)
        p1, p2 = self.src_port.scene_center(), self.dst_port.scene_center()
        path = self._return_route(p1, p2, scene if avoid else None) if p2.x() < p1.x() else None
        if path is None:
            path = wire_path(p1, p2)
        if avoid and scene is not None and p2.x() - p1.x() > 60:
            path = self._detour(scene, p1, p2, path)
        # a detour passes behind the short wires it crosses, so their labels stay readable
        self.setZValue(-1 if path.elementCount() > 4 else 0)
        self.prepareGeometryChange()
        self._path = path
        stroker = QPainterPathStroker()
        stroker.setWidth(_HIT_WIDTH)
        self._hit = stroker.createStroke(path)
        self._place_label()

    def _detour(self, scene, p1: QPointF, p2: QPointF, path: QPainterPath) -> QPainterPath:
        """Route over (or under) the nodes the plain curve would pass beneath."""
        blockers = self._blockers(scene, path, path.boundingRect())
        if not blockers:
            return path
        for _ in range(4):  # a lane may cross other nodes: climb past them too
            top = min(r.top() for r in blockers) - _LANE_GAP
            bottom = max(r.bottom() for r in blockers) + _LANE_GAP
            base = max(p1.y(), p2.y())
            lane = top if abs(base - top) <= abs(bottom - base) + 40 else bottom
            path = lane_path(p1, p2, lane)
            more = self._blockers(scene, path, path.boundingRect())
            if not more or all(r in blockers for r in more):
                return path
            blockers = blockers + [r for r in more if r not in blockers]
        return path

    def _return_route(self, p1: QPointF, p2: QPointF, scene) -> QPainterPath | None:
        """The way back to an input on another row: in the gap between the two nodes' rows,
        moved clear of the nodes in it (when ``scene`` is given). None when the two nodes
        share some height: then no gap runs between them."""
        src, dst = (port.node_item.mapRectToScene(port.node_item.rect())
                    for port in (self.src_port, self.dst_port))
        if dst.top() > src.bottom():
            lane = (src.bottom() + dst.top()) / 2
        elif src.top() > dst.bottom():
            lane = (dst.bottom() + src.top()) / 2
        else:
            return None
        path = return_path(p1, p2, lane)
        for _ in range(4 if scene is not None else 0):  # nodes in the gap: pass between them
            blockers = self._blockers(scene, path, path.boundingRect())
            if not blockers:
                break
            lane = _free_height(blockers, lane)
            path = return_path(p1, p2, lane)
        return path

    def _blockers(self, scene, path: QPainterPath, area: QRectF) -> list[QRectF]:
        """Rects of the nodes (other than its own two) that the curve itself crosses."""
        ends = (self.src_port.node_item, self.dst_port.node_item)
        line = None  # the curve as a thin outline: an open path's intersects() tests its fill
        found = []
        for item, body in scene.obstacles.near(area.adjusted(-REACH, -REACH, REACH, REACH)):
            if item not in ends:
                rect = body.adjusted(-CLEARANCE, -CLEARANCE, CLEARANCE, CLEARANCE)
                if line is None:
                    stroker = QPainterPathStroker()
                    stroker.setWidth(2.0)
                    line = stroker.createStroke(path)
                if line.intersects(rect):
                    found.append(rect)
        return found

    def _place_label(self) -> None:
        """Lay the label out twice: for normal zoom and, larger, for a zoomed-out view."""
        self.prepareGeometryChange()
        p = self.paints
        if self.label and not self._path.isEmpty():
            self._labels = (self._fit_label(p.label_fonts, _LABEL_H),
                            self._fit_label(p.big_label_fonts, _BIG_LABEL_H))
        else:
            self._labels = ((QRectF(), None), (QRectF(), None))
        self._label_rect = self._labels[0][0]
        bounds = self._path.boundingRect().adjusted(-4, -4, 4, 4)
        for rect, _ in self._labels:
            bounds = bounds.united(rect.adjusted(-2, -2, 2, 2))
        self._bounds = bounds

    def _fit_label(self, fonts: list, height: float) -> tuple[QRectF, object]:
        """The label on the wire's middle, in the largest font that fits; in a narrow gap
        between two nodes, just above the wire, where it clears the ports."""
        p = self.paints
        mid = self._path.pointAtPercent(0.5)
        on_wire, above = self._label_room()
        font = p.fit_font(fonts, self.label, on_wire - 10)
        lift = 0.0
        if p.width(font, self.label) + 10 > on_wire:
            font = p.fit_font(fonts, self.label, above - 10)
            lift = height / 2 + PORT_RADIUS + 1
        width = p.width(font, self.label) + 10
        return QRectF(mid.x() - width / 2, mid.y() - lift - height / 2, width, height), font

    def _label_room(self) -> tuple[float, float]:
        """Free width at the wire's middle: on the wire (between the ports) and just above it
        (between the node bodies). Only a short, level wire is boxed in by its nodes."""
        a, b = self._path.pointAtPercent(0.0), self._path.pointAtPercent(1.0)
        if abs(b.y() - a.y()) > 30 or self._path.elementCount() > 4:
            return 200.0, 200.0
        gap = abs(b.x() - a.x())
        return gap - 2 * PORT_RADIUS - 4, gap - 4

    def path(self) -> QPainterPath:
        return self._path

    def label_rect(self) -> QRectF:
        return QRectF(self._label_rect)

    # -- QGraphicsItem ---------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self._bounds

    def shape(self) -> QPainterPath:
        path = QPainterPath(self._hit)
        if not self._label_rect.isEmpty():
            path.addRect(self._label_rect)
        return path

    def paint(self, painter, option, widget=None) -> None:
        p = self.paints
        zoom = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        painter.setRenderHint(_ANTIALIASING, zoom >= FAR_ZOOM)  # far: hundreds, a pixel wide
        painter.setBrush(_NO_BRUSH)
        painter.setPen(self._pen(p))
        painter.drawPath(self._path)
        if zoom >= FAR_ZOOM:
            self._paint_label(painter, p, *self._labels[zoom < OVERVIEW_ZOOM])

    def _paint_label(self, painter, p: Paints, rect: QRectF, font) -> None:
        if rect.isEmpty():
            return
        painter.setPen(p.label_selected_pen if self.isSelected() else p.label_pen)
        painter.setBrush(p.label_brush)
        painter.drawRoundedRect(rect, rect.height() / 2, rect.height() / 2)
        painter.setFont(font)
        painter.setPen(p.label_text if self.known else p.subtext)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.label)

    def _pen(self, p: Paints) -> QPen:
        if self.isSelected():
            return p.wire_selected_pen
        if self._hovered:
            return p.wire_hover_pen
        if self._strength_pen is not None:
            return self._strength_pen
        return p.wire_pen if self.known else p.wire_unknown_pen

    def hoverEnterEvent(self, event) -> None:
        self._hovered = True
        self.update()

    def hoverLeaveEvent(self, event) -> None:
        self._hovered = False
        self.update()


def _free_height(blockers: list[QRectF], lane: float) -> float:
    """A height near ``lane`` below the blockers above it and above those below it (between
    the two when they leave no room)."""
    low = max((r.bottom() + _LANE_GAP for r in blockers if r.center().y() < lane),
              default=float("-inf"))
    high = min((r.top() - _LANE_GAP for r in blockers if r.center().y() >= lane),
               default=float("inf"))
    return min(max(lane, low), high) if low <= high else (low + high) / 2


class DraftWireItem(QGraphicsPathItem):
    """The wire that follows the mouse while the user draws a connection."""

    def __init__(self, paints: Paints):
        super().__init__()
        self.paints = paints
        self.setZValue(20)
        self.set_refused(False)

    def set_refused(self, refused: bool) -> None:
        self.setPen(self.paints.wire_refused_pen if refused else self.paints.wire_draft_pen)

    def paint(self, painter, option, widget=None) -> None:
        # the view does not restore the painter between items (DontSavePainterState)
        painter.setRenderHint(_ANTIALIASING, True)
        super().paint(painter, option, widget)

    def set_ends(self, p1: QPointF, p2: QPointF) -> None:
        self.setPath(wire_path(p1, p2))
