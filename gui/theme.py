"""Light and dark themes for the window: the Fusion style, a QPalette and a small stylesheet.

The canvas has its own colours (``widgets.theme.LIGHT`` / ``DARK``); :func:`canvas_theme` picks
the one that goes with a window theme.
"""
from __future__ import annotations

from functools import lru_cache

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from engine.examples import RESOURCES
from widgets.theme import THEMES, CanvasTheme

THEME_NAMES = ("light", "dark")
STYLE_DIR = RESOURCES / "style"

_COLORS = {
    "light": {
        "Window": "#f3f4f7", "WindowText": "#1c2230", "Base": "#ffffff",
        "AlternateBase": "#f6f7f9", "ToolTipBase": "#ffffff", "ToolTipText": "#1c2230",
        "PlaceholderText": "#7a8394", "Text": "#1c2230", "Button": "#f5f6f8",
        "ButtonText": "#1c2230", "BrightText": "#ffffff", "Light": "#ffffff",
        "Midlight": "#e6e9ee", "Mid": "#d5d9e0", "Dark": "#a9b0bc", "Shadow": "#6b7280",
        "Highlight": "#3b82f6", "HighlightedText": "#ffffff", "Link": "#2563eb",
    },
    "dark": {
        "Window": "#23262b", "WindowText": "#e6e8ec", "Base": "#1c1e22",
        "AlternateBase": "#24272c", "ToolTipBase": "#30343b", "ToolTipText": "#e6e8ec",
        "PlaceholderText": "#8d95a3", "Text": "#e6e8ec", "Button": "#2c3036",
        "ButtonText": "#e6e8ec", "BrightText": "#ffffff", "Light": "#3a3f47",
        "Midlight": "#33373e", "Mid": "#3a3e46", "Dark": "#15171a", "Shadow": "#000000",
        "Highlight": "#4f8ff7", "HighlightedText": "#ffffff", "Link": "#7aa9ff",
    },
}


def palette(name: str) -> QPalette:
    pal = QPalette()
    for role, color in _COLORS[name].items():
        pal.setColor(getattr(QPalette.ColorRole, role), QColor(color))
    disabled = QColor(_COLORS[name]["PlaceholderText"])
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return pal


@lru_cache(maxsize=None)
def stylesheet(name: str) -> str:
    """The common stylesheet followed by the theme's own."""
    parts = [STYLE_DIR / "common.qss", STYLE_DIR / f"{name}.qss"]
    text = "\n".join(p.read_text(encoding="utf-8") for p in parts if p.exists())
    return text.replace("@ICONS@", (RESOURCES / "icons").as_posix())  # url() needs a path


def apply_theme(app: QApplication, name: str) -> None:
    """Style the whole application; ``name`` is ``light`` or ``dark``."""
    name = name if name in THEME_NAMES else "light"
    if app.property("layerlab_theme") == name:
        return  # restyling every widget costs a few hundred ms; do it only for a change
    app.setProperty("layerlab_theme", name)
    app.setStyle("Fusion")
    app.setPalette(palette(name))
    app.setStyleSheet(stylesheet(name))


def canvas_theme(name: str) -> CanvasTheme:
    return THEMES.get(name, THEMES["light"])
