"""Menus, the toolbar and keyboard shortcuts: every command of the window as one QAction.

Standard keys (``QKeySequence.StandardKey``) are used wherever Qt has one, so New, Open, Save,
Undo, Copy... follow the platform's conventions.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence, QPainter, QPixmap
from PySide6.QtWidgets import QMainWindow, QMenu, QToolBar

from engine.examples import RESOURCES

ICON_DIR = RESOURCES / "icons"
SK = QKeySequence.StandardKey


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    slot: str  # method of the window
    keys: tuple = ()
    icon: str | None = None
    tip: str = ""
    checkable: bool = False


SPECS = [
    ActionSpec("new", "&New", "new_document", (SK.New,), "new", "Start a new project"),
    ActionSpec("open", "&Open…", "open_document", (SK.Open,), "open", "Open a project file"),
    ActionSpec("examples", "&Examples…", "open_examples", ("Ctrl+Shift+E",), "examples",
               "Open one of the example networks"),
    ActionSpec("save", "&Save", "save_document", (SK.Save,), "save", "Save the project"),
    ActionSpec("save_as", "Save &As…", "save_document_as", (SK.SaveAs, "Ctrl+Shift+S"), None,
               "Save the project under a new name"),
    ActionSpec("import_model", "&Import Model…", "import_model", ("Ctrl+Shift+I",), None,
               "Import a PyTorch nn.Module as a new project (torch.fx)"),
    ActionSpec("export", "E&xport…", "export_model", ("Ctrl+E",), None,
               "Export the trained model: ONNX, TorchScript, safetensors, state_dict, Python"),
    ActionSpec("lessons", "&Lessons…", "open_lessons", ("Ctrl+Shift+L",), None,
               "Lessons: a project to train and a note on what to watch, one per concept"),
    ActionSpec("quit", "&Quit", "close", (SK.Quit, "Ctrl+Q")),
    ActionSpec("undo", "&Undo", "undo", (SK.Undo,), "undo", "Undo the last change"),
    ActionSpec("redo", "&Redo", "redo", (SK.Redo, "Ctrl+Shift+Z"), "redo",
               "Redo the change just undone"),
    ActionSpec("cut", "Cu&t", "cut", (SK.Cut,), "cut", "Cut the selected layers"),
    ActionSpec("copy", "&Copy", "copy", (SK.Copy,), "copy", "Copy the selected layers"),
    ActionSpec("paste", "&Paste", "paste", (SK.Paste,), "paste",
               "Paste layers (also from another model, window or file)"),
    ActionSpec("duplicate", "D&uplicate", "duplicate", ("Ctrl+D",), "duplicate",
               "Duplicate the selected layers"),
    ActionSpec("delete", "&Delete", "delete_selection", (SK.Delete, "Backspace"), "delete",
               "Delete the selected layers and wires"),
    ActionSpec("select_all", "Select &All", "select_all", (SK.SelectAll,), None,
               "Select every layer of this model"),
    ActionSpec("zoom_in", "Zoom &In", "zoom_in", (SK.ZoomIn, "Ctrl+="), "zoom-in"),
    ActionSpec("zoom_out", "Zoom &Out", "zoom_out", (SK.ZoomOut,), "zoom-out"),
    ActionSpec("zoom_fit", "Zoom to &Fit", "zoom_to_fit", ("Ctrl+0", "F"), "zoom-fit",
               "Show the whole network"),
    ActionSpec("dark", "&Dark Theme", "toggle_dark", ("Ctrl+Shift+T",), "theme",
               "Switch between the light and the dark theme", checkable=True),
    ActionSpec("find_node", "&Find Node…", "find_node", (SK.Find, "Ctrl+F"), None,
               "Find a layer by id, type, block or output shape and go to it"),
    ActionSpec("make_block", "Make &Block…", "make_block", ("Ctrl+B",), None,
               "Turn the selected layers into a named block, used by a Block node in their "
               "place (undoable)"),
    ActionSpec("expand_block", "E&xpand Block", "expand_block", ("Ctrl+Shift+B",), None,
               "Put the selected Block node's layers back in its place (undoable)"),
    ActionSpec("edit_block", "Edit Block &Definition", "edit_block", (), None,
               "Open the selected Block node's definition in its own tab: edits there change "
               "every Block node that uses it (also: double-click the node)"),
    ActionSpec("repeat_block", "&Repeat Block…", "repeat_block", (), None,
               "Stack the selected Block node N times in a chain (undoable)"),
    ActionSpec("auto_layout", "&Auto-layout", "auto_layout", ("Ctrl+L",), "layout",
               "Arrange the layers left to right (undoable)"),
    ActionSpec("sweep", "S&weep…", "open_sweep", (), None,
               "Search the training settings: trials trained one after another"),
    ActionSpec("shortcuts", "&Keyboard Shortcuts", "show_shortcuts", (SK.HelpContents, "F1")),
    ActionSpec("layer_reference", "&Layer Reference", "show_layer_reference", ("Shift+F1",),
               None, "Every layer type: parameters, ports, shape rule and the torch module"),
    ActionSpec("about", "&About Layerlab", "show_about"),
]

MENUS = {
    "&File": ["new", "open", "@recent", "examples", "lessons", "-", "save", "save_as", "-",
              "import_model",
              "export", "-", "quit"],
    "&Edit": ["undo", "redo", "-", "cut", "copy", "paste", "duplicate", "delete", "-",
              "select_all", "find_node", "-", "make_block", "expand_block", "edit_block",
              "repeat_block"],
    "&View": ["zoom_in", "zoom_out", "zoom_fit", "-", "dark", "-", "@panels"],
    "&Arrange": ["auto_layout"],
    "&Training": ["sweep"],
    "&Help": ["layer_reference", "shortcuts", "-", "about"],
}
TOOLBAR = ["new", "open", "save", "-", "undo", "redo", "-", "copy", "paste", "duplicate",
           "delete", "-", "zoom_fit", "auto_layout", "-", "examples"]
TEXT_BESIDE = ("auto_layout", "examples")


def _sequences(keys) -> list[QKeySequence]:
    seqs: list[QKeySequence] = []
    for key in keys:
        found = QKeySequence.keyBindings(key) if isinstance(key, SK) else [QKeySequence(key)]
        seqs += [s for s in found if s not in seqs]
    return seqs


def icon(name: str, color: str, disabled: str) -> QIcon:
    """One of our SVG icons (line drawings in one colour) drawn in ``color``, and in
    ``disabled`` for its disabled state (Qt's own greying is too bright on a dark theme)."""
    from PySide6.QtSvg import QSvgRenderer

    text = (ICON_DIR / f"{name}.svg").read_text(encoding="utf-8")
    result = QIcon()
    for mode, tint in ((QIcon.Mode.Normal, color), (QIcon.Mode.Disabled, disabled)):
        renderer = QSvgRenderer(QByteArray(text.replace("#4a5263", tint).encode("utf-8")))
        for size in (20, 40):  # the toolbar's size, and twice that for high-DPI screens
            pixmap = QPixmap(size, size)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            renderer.render(painter)
            painter.end()
            result.addPixmap(pixmap, mode)
    return result


class Actions:
    """The window's QActions by name, and the menus and toolbar built from them."""

    def __init__(self, window: QMainWindow):
        self.window = window
        self.by_name: dict[str, QAction] = {}
        for spec in SPECS:
            action = QAction(spec.text, window)
            action.setObjectName(f"action_{spec.name}")
            action.setShortcuts(_sequences(spec.keys))
            action.setCheckable(spec.checkable)
            tip = spec.tip or spec.text.replace("&", "").rstrip("…")
            shortcut = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            action.setToolTip(f"{tip} ({shortcut})" if shortcut else tip)
            action.setStatusTip(tip)
            action.triggered.connect(self._slot(spec))
            window.addAction(action)  # shortcuts work even when the menu bar is hidden
            self.by_name[spec.name] = action
        self.recent_menu: QMenu | None = None
        self.panels_menu: QMenu | None = None

    def _slot(self, spec: ActionSpec):
        method = getattr(self.window, spec.slot)
        if spec.checkable:
            return lambda checked: method(checked)
        return lambda checked=False: method()

    def __getitem__(self, name: str) -> QAction:
        return self.by_name[name]

    def all(self) -> list[QAction]:
        return list(self.by_name.values())

    def build_menus(self) -> None:
        bar = self.window.menuBar()
        for title, names in MENUS.items():
            menu = bar.addMenu(title)
            for name in names:
                if name == "-":
                    menu.addSeparator()
                elif name == "@recent":
                    self.recent_menu = menu.addMenu("Open &Recent")
                    self.recent_menu.setObjectName("recentMenu")
                elif name == "@panels":
                    self.panels_menu = menu.addMenu("&Panels")
                else:
                    menu.addAction(self.by_name[name])

    def build_toolbar(self) -> QToolBar:
        bar = QToolBar("Main toolbar", self.window)
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.setIconSize(QSize(20, 20))
        for name in TOOLBAR:
            if name == "-":
                bar.addSeparator()
                continue
            bar.addAction(self.by_name[name])
            if name in TEXT_BESIDE:
                button = bar.widgetForAction(self.by_name[name])
                button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        return bar

    def set_icon_color(self, color: str, disabled: str) -> None:
        for spec in SPECS:
            if spec.icon:
                self.by_name[spec.name].setIcon(icon(spec.icon, color, disabled))
