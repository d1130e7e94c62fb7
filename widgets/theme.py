"""Colours and display formats shared by the canvas, the palette and the panels."""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor

from engine.layers.spec import graph_label

# One hue per catalog category, far enough apart to tell at a glance.
CATEGORY_COLORS: dict[str, str] = {
    "I/O": "#5b6b7f",
    "Core": "#3a7bd5",
    "Activations": "#e0902b",
    "Convolution": "#2f9e5b",
    "Pooling": "#17a2b8",
    "Normalization": "#7e57c2",
    "Recurrent": "#d6455d",
    "Attention": "#c2409f",
    "Merge": "#8a9a1e",
    "Generative": "#e0672b",
    "Graph": "#9a6b3f",
}
_FALLBACK = "#7a8290"


def category_color(category: str, dark: bool = False) -> QColor:
    """The colour of a category's header band; a little deeper on the dark theme."""
    color = QColor(CATEGORY_COLORS.get(category, _FALLBACK))
    return color.darker(118) if dark else color


def text_on(color: QColor) -> QColor:
    """Black or white, whichever reads better on ``color``."""
    r, g, b = color.redF(), color.greenF(), color.blueF()
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return QColor("#1b1f27") if luminance > 0.62 else QColor("#ffffff")


@dataclass(frozen=True)
class CanvasTheme:
    """The colours of the canvas (hex strings, so a theme is plain data)."""

    name: str
    dark: bool
    background: str
    grid_minor: str
    grid_major: str
    node_fill: str
    node_border: str
    node_text: str
    node_subtext: str
    node_shadow: str
    port_fill: str
    port_border: str
    wire: str
    wire_hover: str
    wire_label: str
    wire_label_fill: str
    wire_label_border: str
    accent: str
    error: str
    warning: str
    selection: str
    rubber_band: str
    minimap_fill: str


LIGHT = CanvasTheme(
    name="light", dark=False,
    background="#f3f4f7", grid_minor="#d5d9e0", grid_major="#b9bfca",
    node_fill="#ffffff", node_border="#cfd4dc", node_text="#1c2230", node_subtext="#687183",
    node_shadow="#1a1f2b",
    port_fill="#ffffff", port_border="#7d8797",
    wire="#8c95a5", wire_hover="#4a5568", wire_label="#2e3646", wire_label_fill="#ffffff",
    wire_label_border="#d3d8e0",
    accent="#2f9e5b", error="#e5484d", warning="#d98a12", selection="#3b82f6",
    rubber_band="#3b82f6", minimap_fill="#ffffff",
)

DARK = CanvasTheme(
    name="dark", dark=True,
    background="#1c1e23", grid_minor="#2c3038", grid_major="#3b404a",
    node_fill="#2a2d34", node_border="#3d424c", node_text="#e8eaee", node_subtext="#9ba3b0",
    node_shadow="#000000",
    port_fill="#2a2d34", port_border="#8a93a3",
    wire="#6f7888", wire_hover="#c3c9d4", wire_label="#d9dde4", wire_label_fill="#25282e",
    wire_label_border="#434955",
    accent="#3fbf74", error="#ff5f66", warning="#f0a43a", selection="#5b9bff",
    rubber_band="#5b9bff", minimap_fill="#24272d",
)

THEMES = {"light": LIGHT, "dark": DARK}


def format_shape(shape) -> str:
    """A per-sample shape as a short label: ``1×28×28``, ``32``; ``?`` when unknown."""
    if shape is None:
        return "?"
    label = graph_label(shape)  # a graph's node features N×F, its edge_index 2×E
    if label is not None:
        return label
    frames = getattr(shape, "frames", None)
    if frames:  # one frame of a per-frame chain: the wire carries all T frames
        shape = (frames, *shape)
    if len(shape) == 0:
        return "scalar"
    return "×".join(str(s) for s in shape)


def format_count(n: int | float | None) -> str:
    """A count in a few characters: ``812``, ``1.2k``, ``34k``, ``3.4M``, ``1.1G``."""
    if n is None:
        return "?"
    n = int(n)
    for div, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if abs(n) >= div:
            value = n / div
            text = f"{value:.1f}" if abs(value) < 10 else f"{value:.0f}"
            return text.removesuffix(".0") + suffix
    return str(n)
