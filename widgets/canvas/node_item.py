"""A layer on the canvas: a rounded card with a category-coloured header and typed ports."""
from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPixmap
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem

from ..theme import format_count, format_shape
from .port_item import PortItem
from .style import (FAR_CACHE_SCALE, FAR_ZOOM, GLOW, GREEK_PX, HEADER, LINE, NODE_WIDTH,
                    OVERVIEW_ZOOM, PAD, PORT_STEP, PORT_Y0, RADIUS, Paints)

_MOVED = QGraphicsItem.GraphicsItemChange.ItemPositionHasChanged
_SELECTED = QGraphicsItem.GraphicsItemChange.ItemSelectedHasChanged
_LEFT = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_CENTER = Qt.AlignmentFlag.AlignCenter

# How a key parameter reads on a node: "16 ch · k3 · s2" rather than "out_channels=16, ...".
_PARAM_FORMATS = {
    "out_features": "{} units", "out_channels": "{} ch", "kernel_size": "k{}", "stride": "s{}",
    "hidden_size": "{} hidden", "num_layers": "{} layers", "num_heads": "{} heads",
    "nhead": "{} heads",
    "dim_feedforward": "ff {}", "p": "p {}", "negative_slope": "slope {}", "alpha": "α {}",
    "output_size": "out {}", "scale_factor": "×{}", "mode": "{}", "dim": "dim {}", "shape": "{}",
    "spectral_radius": "ρ {}", "num_embeddings": "vocab {}", "embedding_dim": "dim {}",
}


def format_value(value) -> str:
    if isinstance(value, (tuple, list)):
        return "×".join(format_value(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def format_param(name: str, value) -> str:
    """One key parameter as a node shows it ("" for a switched-off flag)."""
    if isinstance(value, bool):
        return name if value else ""
    if name == "module":  # an Opaque node's class path: the class name says enough
        return str(value).rsplit(":", 1)[-1].rsplit(".", 1)[-1]
    template = _PARAM_FORMATS.get(name, name + " {}")
    if value == 1 and template.endswith("s"):  # "1 layer", not "1 layers"
        template = template[:-1]
    return template.format(format_value(value))


def format_key_params(spec, params: dict) -> str:
    """The node's one-line parameter summary from ``spec.key_params``."""
    parts = (format_param(n, params[n]) for n in spec.key_params if params.get(n) is not None)
    return " · ".join(p for p in parts if p)


class NodeItem(QGraphicsItem):
    """One node of the graph. Reads the model; never writes it."""

    def __init__(self, node, paints: Paints, outputs: tuple[str, ...] | None = None):
        """``outputs``: the node's output ports where they are not its type's (a Block node
        of a block with several Outputs, :meth:`engine.graph.Graph.output_ports`)."""
        super().__init__()
        self.node_id = node.id
        self.type_name = node.type
        self.title = node.type  # a Block node shows its block's name
        self.spec = node.spec
        self.category = self.spec.category
        self.paints = paints
        self.edges: list = []  # EdgeItems touching this node, moved along with it
        self.error: str | None = None
        self.severity = "error"
        self.tint: float | None = None
        self._tint_color: QColor | None = None
        self.badge: tuple[str, str] | None = None
        self.height = 0.0
        self._bounds = QRectF()
        self._texts: dict[str, str] = {}
        self._ops: list = []
        self._overview_ops: list = []
        self._paths: tuple[QPainterPath, QPainterPath] | None = None
        self._far_pixmap: tuple | None = None  # (QPixmap, its rectangle, pixel ratio)
        self.setFlags(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable
                      | QGraphicsItem.GraphicsItemFlag.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setAcceptHoverEvents(True)
        self.setZValue(10)
        self.inputs = {p.name: PortItem(self, p.name, False, p.multi) for p in self.spec.inputs}
        names = self.spec.outputs if outputs is None else outputs
        self.outputs = {name: PortItem(self, name, True) for name in names}
        self._label_in = self._labelled(self.inputs, "in")
        self._label_out = self._labelled(self.outputs, "out")

    def set_output_ports(self, names: tuple[str, ...]) -> None:
        """Make the card's output ports ``names`` (a block's definition gained or lost an
        Output); a port a wire still starts from stays until the wire goes."""
        if tuple(self.outputs) == tuple(names):
            return
        used = {e.src_port for e in self.edges if e.src_port.node_item is self}
        outputs = {}
        for name in names:
            outputs[name] = self.outputs.get(name) or PortItem(self, name, True)
        for name, port in self.outputs.items():
            if name in outputs:
                continue
            if port in used:
                outputs[name] = port
            elif port.scene() is not None:
                port.setParentItem(None)
                port.scene().removeItem(port)
        self.outputs = outputs
        self._label_out = self._labelled(self.outputs, "out")
        self._far_pixmap = None
        if self._texts:
            self._relayout()
        self.update()

    # -- model -> item ---------------------------------------------------------------------
    def refresh(self, node, info, problem: str | None = None, severity: str = "error") -> None:
        """Re-read texts and state from the node and its inference result, then repaint.

        ``problem`` is the message to show (a shape error or a wiring problem); ``severity``
        is "error" (red) or "warning" (amber, e.g. a node not wired up yet)."""
        shown = (info.params if info and info.params is not None else node.params) or {}
        stats = info.stats if info else None
        if self.type_name == "Block":  # the block's name as title, its settings below
            self.title = f"▣ {node.params.get('block', 'Block')}"
            params_text = " · ".join(format_param(k, v) for k, v in node.params.items()
                                     if k != "block")
        else:
            params_text = format_key_params(self.spec, shown)
        texts = {
            "id": node.id,
            "title": self.title,
            "params": params_text,
            "shape": self._shape_text(info),
            "count": f"{format_count(stats.params)} params" if stats and stats.params else "",
            "port_shapes": {name: format_shape(shape)
                            for name, shape in (info.out_shapes.items() if info else ())},
        }
        error = problem
        if texts != self._texts or error != self.error or severity != self.severity:
            self._texts, self.error, self.severity = texts, error, severity
            self._relayout()
            self._tip_info, self._tip_stale = info, True  # written when first hovered
            self.update()

    def _fresh_tooltip(self) -> None:
        if getattr(self, "_tip_stale", False):
            self._tip_stale = False
            self.setToolTip(self._tooltip(self._tip_info))

    def hoverEnterEvent(self, event) -> None:
        self._fresh_tooltip()  # before Qt asks for it (a 5,000-node graph opens without them)
        super().hoverEnterEvent(event)

    def toolTip(self) -> str:  # noqa: N802 - Qt's name
        self._fresh_tooltip()
        return super().toolTip()

    def _shape_text(self, info) -> str:
        if not info:
            return ""
        if self.outputs:
            shapes = [info.out_shapes.get(name) for name in self.outputs]
            if all(s is None for s in shapes):
                return "→ ?"
            return "→ " + "  ".join(format_shape(s) for s in shapes)
        return "→ " + format_shape(info.out_shape) if info.out_shape is not None else ""

    def _tooltip(self, info) -> str:
        head = f"{self.node_id} — {self.type_name}" + (
            f" {self.title[2:]}" if self.type_name == "Block" else "")
        lines = [f"⚠ {self.error}", "", head] if self.error else [head]
        lines.append(self.spec.doc)
        if info:
            for port, shapes in info.in_shapes.items():
                lines.append(f"in {port}: " + ", ".join(format_shape(s) for s in shapes))
            for port, shape in info.out_shapes.items():
                lines.append(f"out {port}: {format_shape(shape)}")
            if info.stats.params or info.stats.macs:
                lines.append(f"{info.stats.params:,} parameters · "
                             f"{format_count(info.stats.macs)} multiply-adds")
        return "\n".join(lines)

    def set_paints(self, paints: Paints) -> None:
        self.paints = paints
        tint, self.tint = self.tint, None
        self.set_tint(tint)
        self._relayout()
        self.update()
        for port in self.ports():
            port.update()

    def set_tint(self, value: float | None) -> None:
        if value != self.tint:
            self.tint = value
            self._tint_color = None
            if value is not None:
                self._tint_color = QColor(self.paints.accent)
                self._tint_color.setAlphaF(0.10 + 0.45 * max(0.0, min(1.0, value)))
            self._far_pixmap = None
            self.update()

    def set_badge(self, text: str | None, severity: str = "warning") -> None:
        badge = (text, severity) if text else None
        if badge != self.badge:
            self.badge = badge
            self._update_bounds()
            self.update()

    def rename(self, new_id: str) -> None:
        self.node_id = new_id

    # -- geometry --------------------------------------------------------------------------
    def _labelled(self, ports: dict, default: str) -> bool:
        """A side's ports get names on the card when there are several or one is special."""
        return len(ports) > 1 or any(name != default for name in ports)

    def _relayout(self) -> None:
        """Place the ports, size the card and lay out its texts.

        A lone port sits at PORT_Y0, so that wires along a row run straight; named ports get
        rows of their own below the texts."""
        rows = 2 + bool(self._texts["params"]) - (self._label_out and not self._texts["count"])
        below = HEADER + PAD - 2 + rows * LINE + 10
        bottom = below
        for ports, x, labelled in ((self.inputs, 0.0, self._label_in),
                                   (self.outputs, NODE_WIDTH, self._label_out)):
            for i, port in enumerate(ports.values()):
                y = below + i * PORT_STEP if labelled else PORT_Y0 + i * PORT_STEP
                port.setPos(x, y)
                bottom = max(bottom, y + 4)
        height = max(bottom + PAD + 2, PORT_Y0 + 15)
        if height != self.height:
            self.height = height
            self._update_bounds()
            scene = self.scene()
            if scene is not None:  # a taller card may now be in a wire's way
                scene.node_item_changed(self)
                scene.schedule_reroute()
        self._paths = None
        self._layout_texts()

    def rect(self) -> QRectF:
        return QRectF(0, 0, NODE_WIDTH, self.height)

    def boundingRect(self) -> QRectF:
        return self._bounds

    def _update_bounds(self) -> None:
        """Room for the card, its glow and the badge above it (kept: Qt asks very often)."""
        self.prepareGeometryChange()
        top = GLOW + (22.0 if self.badge else 0.0)
        self._bounds = QRectF(-GLOW, -top, NODE_WIDTH + 2 * GLOW, self.height + top + GLOW + 2)
        self._far_pixmap = None

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self.rect(), RADIUS, RADIUS)
        return path

    def ports(self) -> list[PortItem]:
        return [*self.inputs.values(), *self.outputs.values()]

    def port(self, name: str, is_output: bool) -> PortItem | None:
        return (self.outputs if is_output else self.inputs).get(name)

    def _shapes(self) -> tuple[QPainterPath, QPainterPath]:
        if self._paths is None:
            body = QPainterPath()
            body.addRoundedRect(self.rect(), RADIUS, RADIUS)
            band = QPainterPath()
            band.addRect(QRectF(0, 0, NODE_WIDTH, HEADER))
            self._paths = (body, body.intersected(band))
        return self._paths

    def itemChange(self, change, value):
        if change == _SELECTED:
            self._far_pixmap = None  # the far face shows the selection's outline
        elif change == _MOVED:
            scene = self.scene()
            if scene is not None:
                scene.node_item_changed(self)
            for edge in self.edges:
                edge.adjust()
        return super().itemChange(change, value)

    # -- text layout (done on change, so painting only draws) ------------------------------
    def _layout_texts(self) -> None:
        p, t = self.paints, self._texts
        w = NODE_WIDTH - 2 * PAD
        header_color = p.header_text.get(self.category, p.white)
        title = p.fit_font(p.title_fonts, self.title, w)
        ops = [self._op(title, header_color, QRectF(PAD, 0, w, HEADER), self.title, _LEFT)]
        row = QRectF(PAD, HEADER + PAD - 2, w, LINE)
        ops.append(self._op(p.id_font, p.text, row, t["id"], _LEFT))
        if t["params"]:
            row = row.translated(0, LINE)
            ops.append(self._op(p.detail_font, p.subtext, row, t["params"], _LEFT))
        row = row.translated(0, LINE)
        if self._label_out:  # each output's shape is written beside its port instead
            ops.append(self._op(p.detail_font, p.subtext, row, t["count"], _LEFT))
        else:
            ops.extend(self._shape_row_ops(p, row))
        ops.extend(self._port_label_ops(p))
        self._ops = ops
        self._overview_ops = self._layout_overview(p, header_color, w)
        self._far_pixmap = None

    def _shape_row_ops(self, p: Paints, row: QRectF) -> list:
        """The output shape, and the parameter count at the right if there is room."""
        shape, count = self._texts["shape"], self._texts["count"]
        room = row.width() - p.width(p.detail_font, shape) - 8
        if count and p.width(p.detail_font, count) > room:
            count = count.removesuffix(" params")
        if not count or p.width(p.detail_font, count) > room:
            return [self._op(p.detail_font, p.text, row, shape, _LEFT)]
        return [self._op(p.detail_font, p.text, row, shape, _LEFT),
                self._op(p.detail_font, p.subtext, row, count, _RIGHT)]

    def _op(self, font, color, rect: QRectF, text: str, align):
        return font, color, rect, self.paints.elide(font, text, rect.width()), align

    def _port_label_ops(self, p: Paints) -> list:
        """Names of named ports; an output's name comes with the shape it gives."""
        ops = []
        half = (NODE_WIDTH - 2 * PAD) / 2
        if self._label_in:
            for port in self.inputs.values():
                rect = QRectF(PAD, port.pos().y() - 7, half, 14)
                ops.append(self._op(p.port_font, p.subtext, rect, port.name, _LEFT))
        if self._label_out:
            shapes = self._texts["port_shapes"]
            for port in self.outputs.values():
                y = port.pos().y()
                name_w = p.width(p.port_font, port.name)
                ops.append(self._op(p.port_font, p.subtext, QRectF(PAD, y - 7, 2 * half, 14),
                                    port.name, _RIGHT))
                shape_rect = QRectF(PAD, y - 7, 2 * half - name_w - 6, 14)
                ops.append(self._op(p.detail_font, p.text, shape_rect,
                                    "→ " + shapes.get(port.name, "?"), _RIGHT))
        return ops

    def _layout_overview(self, p: Paints, color, w: float) -> list:
        """The same card with fewer, larger letters, for a zoomed-out view: type, id, shape."""
        title = p.fit_font(p.big_title_fonts, self.title, w)
        shape = self._texts["shape"]
        body = self.height - HEADER
        top = HEADER + (body - 38) / 2
        return [self._op(title, color, QRectF(PAD, 0, w, HEADER), self.title, _LEFT),
                self._op(p.big_id_font, p.text, QRectF(PAD, top, w, 20), self._texts["id"],
                         _LEFT),
                self._op(p.big_detail_font, p.text, QRectF(PAD, top + 20, w, 18), shape, _LEFT)]

    # -- painting --------------------------------------------------------------------------
    def paint(self, painter, option, widget=None) -> None:
        p = self.paints
        zoom = QStyleOptionGraphicsItem.levelOfDetailFromTransform(painter.worldTransform())
        if zoom < FAR_ZOOM:
            self._paint_far_pixmap(painter, p)
            return
        body, band = self._shapes()
        painter.setRenderHint(painter.RenderHint.Antialiasing)
        overview = zoom < OVERVIEW_ZOOM
        self._paint_frame(painter, p, body)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(p.header_brush(self.category))
        painter.drawPath(band)
        if self.tint is not None:
            self._paint_tint(painter, body)
        for font, color, rect, text, align in (self._overview_ops if overview else self._ops):
            painter.setFont(font)
            painter.setPen(color)
            painter.drawText(rect, align, text)
        for port in self.ports():
            port.paint_at_rest(painter, p)
        if self.error:
            self._paint_error_badge(painter, p)
        if self.badge:
            self._paint_badge(painter, p)

    def _paint_far(self, painter, p: Paints) -> None:
        """A few pixels a node, hundreds on screen: plain rectangles (no shadow, curves or port
        circles) and the title, so that zooming a view of a big graph stays quick; a title too
        small to read (under GREEK_PX letters) is a bar as long as the title, drawn far faster
        than the letters."""
        painter.setRenderHint(painter.RenderHint.Antialiasing, False)
        rect = self.rect()
        painter.setPen(self._outline_pen(p))
        painter.setBrush(p.node_brush)
        painter.drawRect(rect)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(p.header_brush(self.category))
        painter.drawRect(QRectF(0, 0, NODE_WIDTH, HEADER))
        if self.tint is not None:
            painter.setBrush(self._tint_color)
            painter.drawRect(rect)
        font, color, text_rect, text, align = self._overview_ops[0]
        size = font.pixelSize()
        if size * FAR_CACHE_SCALE < GREEK_PX:  # its pixmap's scale
            grey = QColor(color)
            grey.setAlphaF(0.55)
            painter.setBrush(grey)
            painter.drawRect(QRectF(text_rect.x(), text_rect.center().y() - size * 0.3,
                                    min(p.width(font, text), text_rect.width()), size * 0.6))
        else:
            painter.setFont(font)
            painter.setPen(color)
            painter.drawText(text_rect, align, text)
        if self.error:
            self._paint_error_badge(painter, p)

    def _paint_far_pixmap(self, painter, p: Paints) -> None:
        """The far face from a pixmap made at FAR_CACHE_SCALE: one scaled copy a frame instead
        of drawing shapes and text at every zoom step (Qt's own pixmap of the card at the
        screen's resolution still makes panning quick). What the card shows changing drops
        it; zooming in keeps it, as Qt may later show its pixmap of the card at a far zoom
        again without asking the card to draw, and the next zoom step would then make every
        far pixmap at once."""
        device = painter.device()  # Qt's cache pixmap or the viewport: its pixels per point
        ratio = device.devicePixelRatioF() if device is not None else 1.0
        cached = self._far_pixmap  # dropped by every change of what the face shows
        if cached is None or cached[2] != ratio:
            scale = FAR_CACHE_SCALE * ratio
            r = self._bounds
            pixmap = QPixmap(max(1, math.ceil(r.width() * scale)),
                             max(1, math.ceil(r.height() * scale)))
            pixmap.fill(Qt.GlobalColor.transparent)
            face = QPainter(pixmap)
            face.scale(scale, scale)
            face.translate(-r.x(), -r.y())
            self._paint_far(face, p)
            face.end()
            cached = self._far_pixmap = (pixmap, QRectF(pixmap.rect()), ratio)
        painter.drawPixmap(self._bounds, cached[0], cached[1])

    def _paint_frame(self, painter, p: Paints, body: QPainterPath) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(p.shadow_brush)
        painter.drawPath(body.translated(0, 2.5))
        if self.isSelected():
            painter.setBrush(Qt.BrushStyle.NoBrush)
            for pen in p.glow_pens:
                painter.setPen(pen)
                painter.drawPath(body)
        painter.setPen(self._outline_pen(p))
        painter.setBrush(p.node_brush)
        painter.drawPath(body)

    def _outline_pen(self, p: Paints):
        if self.isSelected():
            return p.selected_pen
        if self.error:
            return p.error_pen if self.severity == "error" else p.warning_pen
        return p.node_pen

    def _paint_tint(self, painter, body: QPainterPath) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._tint_color)
        painter.drawPath(body)

    def _paint_error_badge(self, painter, p: Paints) -> None:
        center = QPointF(NODE_WIDTH - 2, 2)
        painter.setPen(p.badge_ring_pen)
        painter.setBrush(p.severity_color(self.severity))
        painter.drawEllipse(center, 8, 8)
        painter.setFont(p.badge_font)
        painter.setPen(p.white)
        painter.drawText(QRectF(center.x() - 8, center.y() - 8, 16, 16), _CENTER, "!")

    def _paint_badge(self, painter, p: Paints) -> None:
        text, severity = self.badge
        width = min(NODE_WIDTH + 2 * GLOW, p.width(p.port_font, text) + 14)
        rect = QRectF((NODE_WIDTH - width) / 2, -22, width, 16)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(p.severity_color(severity))
        painter.drawRoundedRect(rect, 8, 8)
        painter.setFont(p.port_font)
        painter.setPen(p.white)
        painter.drawText(rect, _CENTER, p.elide(p.port_font, text, width - 10))
