"""Fonts, pens, brushes and node geometry of the canvas, built once per theme.

Items read everything they paint from a :class:`Paints`, so painting allocates no fonts or pens.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPen
from PySide6.QtWidgets import QApplication

from ..theme import CATEGORY_COLORS, CanvasTheme, category_color, text_on

# Node geometry in scene units. Example files space nodes 170 apart, so a node stays narrower
# than that and leaves room for the wire and its shape label.
NODE_WIDTH = 120.0
HEADER = 22.0
LINE = 15.0
PAD = 7.0
RADIUS = 7.0
PORT_RADIUS = 4.5
PORT_Y0 = 48.0  # a single port sits here, so wires between nodes of one row run straight
PORT_STEP = 18.0
GLOW = 6.0  # room around a node for the selection glow and the error badge
GRID = 20.0  # arrow keys move by this; the background draws it

# At a zoom below this the nodes draw a simplified, larger-lettered face.
OVERVIEW_ZOOM = 0.8
# Below this even those letters are a few pixels tall: wires leave out their labels and ports
# their circles, which keeps a view of hundreds of layers quick to paint.
FAR_ZOOM = 0.4
# Far, a node's face is drawn once into a pixmap of this scale, and that pixmap is scaled at
# every zoom step below FAR_ZOOM instead of the face being drawn again.
FAR_CACHE_SCALE = 0.38
# A far node's title whose letters would be fewer pixels tall than this is drawn as a bar.
GREEK_PX = 4.5


def _font(family: str, pixels: int, weight=QFont.Weight.Normal, stretch: int = 100) -> QFont:
    font = QFont(family)
    font.setPixelSize(pixels)
    font.setWeight(weight)
    font.setStretch(stretch)
    font.setHintingPreference(QFont.HintingPreference.PreferNoHinting)
    return font


def _pen(color, width: float = 1.0, style=Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(QColor(color), width, style)
    pen.setCosmetic(False)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    return pen


def _alpha(color, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


class Paints:
    """Everything the canvas items paint with, for one theme."""

    def __init__(self, theme: CanvasTheme):
        self.theme = theme
        family = QApplication.font().family()
        bold, medium = QFont.Weight.Bold, QFont.Weight.DemiBold
        # long type names ("TransformerEncoderLayer") get narrower letters before smaller ones
        self.title_fonts = [_font(family, px, bold, st) for px, st in (
            (13, 100), (12, 100), (12, 87), (12, 75), (11, 75), (10, 75), (9, 75))]
        self.id_font = _font(family, 12, medium)
        self.detail_font = _font(family, 11)
        self.port_font = _font(family, 10)
        self.label_fonts = [_font(family, px, medium) for px in (11, 10, 9)]
        self.big_label_fonts = [_font(family, px, medium, st) for px, st in (
            (15, 100), (14, 100), (13, 87), (12, 75), (11, 75), (10, 75))]
        self.badge_font = _font(family, 11, bold)
        self.big_title_fonts = [_font(family, px, bold, st) for px, st in (
            (17, 100), (16, 100), (16, 87), (16, 75), (15, 75), (14, 75), (13, 75), (12, 75),
            (11, 75), (10, 75))]
        self.big_id_font = _font(family, 17, medium)
        self.big_detail_font = _font(family, 15)
        self._metrics: dict[int, QFontMetricsF] = {}
        self._widths: dict[tuple[int, str], float] = {}
        self._colors(theme)

    def _colors(self, t: CanvasTheme) -> None:
        self.background = QColor(t.background)
        self.node_brush = QBrush(QColor(t.node_fill))
        self.node_pen = _pen(t.node_border, 1.0)
        self.shadow_brush = QBrush(_alpha(t.node_shadow, 70 if t.dark else 26))
        self.text = QColor(t.node_text)
        self.subtext = QColor(t.node_subtext)
        self.accent = QColor(t.accent)
        self.error = QColor(t.error)
        self.warning = QColor(t.warning)
        self.selection = QColor(t.selection)
        self.glow_pens = [_pen(_alpha(t.selection, a), w) for a, w in ((50, 9.0), (90, 5.0))]
        self.selected_pen = _pen(t.selection, 2.0)
        self.error_pen = _pen(t.error, 2.0)
        self.warning_pen = _pen(t.warning, 2.0)
        self.port_brush = QBrush(QColor(t.port_fill))
        self.port_pen = _pen(t.port_border, 1.5)
        self.port_connected_brush = QBrush(QColor(t.port_border))
        self.port_ok_pen = _pen(t.accent, 2.0)
        self.port_ok_brush = QBrush(_alpha(t.accent, 90))
        self.port_target_brush = QBrush(QColor(t.accent))
        self.port_halo_brush = QBrush(_alpha(t.accent, 60))
        self.port_hover_brush = QBrush(_alpha(t.selection, 70))
        self.wire = QColor(t.wire)
        self.wire_pen = _pen(t.wire, 2.0)
        self.wire_hover_pen = _pen(t.wire_hover, 2.6)
        self.wire_selected_pen = _pen(t.selection, 3.0)
        self.wire_unknown_pen = _pen(t.wire, 2.0, Qt.PenStyle.DashLine)
        self.wire_draft_pen = _pen(t.selection, 2.2, Qt.PenStyle.DashLine)
        self.wire_refused_pen = _pen(t.error, 2.2, Qt.PenStyle.DashLine)
        self.label_brush = QBrush(QColor(t.wire_label_fill))
        self.label_pen = _pen(t.wire_label_border, 1.0)
        self.label_selected_pen = _pen(t.selection, 1.5)
        self.label_text = QColor(t.wire_label)
        self.rubber_pen = _pen(t.rubber_band, 1.0, Qt.PenStyle.DashLine)
        self.rubber_brush = QBrush(_alpha(t.rubber_band, 30))
        self.grid_minor = QColor(t.grid_minor)
        self.grid_major = QColor(t.grid_major)
        self.headers = {c: QBrush(category_color(c, t.dark)) for c in CATEGORY_COLORS}
        self.header_text = {c: text_on(category_color(c, t.dark)) for c in CATEGORY_COLORS}
        self.header_subtext = {c: _alpha(text_on(category_color(c, t.dark)), 190)
                               for c in CATEGORY_COLORS}
        self.white = QColor("#ffffff")
        self.badge_ring_pen = _pen(t.node_fill, 1.5)

    def header_brush(self, category: str) -> QBrush:
        return self.headers.get(category) or QBrush(QColor("#7a8290"))

    def severity_color(self, severity: str) -> QColor:
        return {"error": self.error, "warning": self.warning}.get(severity, self.selection)

    def metrics(self, font: QFont) -> QFontMetricsF:
        # keyed by identity: the fonts are this object's own and live as long as it does
        metrics = self._metrics.get(id(font))
        if metrics is None:
            metrics = self._metrics[id(font)] = QFontMetricsF(font)
        return metrics

    def width(self, font: QFont, text: str) -> float:
        """Advance width of ``text``; memoised, as nodes repeat the same few words."""
        key = (id(font), text)
        width = self._widths.get(key)
        if width is None:
            if len(self._widths) > 20000:
                self._widths.clear()
            width = self._widths[key] = self.metrics(font).horizontalAdvance(text)
        return width

    def elide(self, font: QFont, text: str, width: float) -> str:
        if self.width(font, text) <= width:
            return text
        return self.metrics(font).elidedText(text, Qt.TextElideMode.ElideRight, width)

    def fit_font(self, fonts: list[QFont], text: str, width: float) -> QFont:
        """The first (largest) of ``fonts`` in which ``text`` fits ``width``."""
        for font in fonts:
            if self.width(font, text) <= width:
                return font
        return fonts[-1]


_CACHE: dict[str, Paints] = {}


def paints_for(theme: CanvasTheme) -> Paints:
    """The shared :class:`Paints` of ``theme`` (built on first use, after the QApplication)."""
    paints = _CACHE.get(theme.name)
    if paints is None or paints.theme != theme:
        paints = _CACHE[theme.name] = Paints(theme)
    return paints
