"""The main window: one canvas tab per model, docks for the palette, inspector and summary,
menus, toolbar, status bar, files and themes.

Panels added later (training) go through :meth:`MainWindow.add_panel`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEvent, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (QApplication, QDockWidget, QLabel, QMainWindow, QTabBar,
                               QTabWidget, QWidget)

from engine.graph import Graph
from engine.project import ProjectError
from engine.shapes import ShapeInference
from gui import dialogs, files
from gui.actions import Actions
from gui.blocks import BlockActions
from gui.collector import mark_big, settled
from gui.document import BLOCK_TAB, Document
from gui.editing import Editing
from gui.runs_panel import install_runs
from gui.lessons import install_lessons
from gui.try_panel import install_try
from gui.settings import Settings
from gui.theme import apply_theme, canvas_theme
from gui.training import install_training
from widgets.canvas import CanvasScene, CanvasView
from widgets.inspector import InspectorWidget
from widgets.palette import PaletteWidget
from widgets.summary import SummaryWidget
from widgets.theme import format_count

DEFAULT_SIZE = (1400, 860)
ICON_COLORS = {"light": ("#4a5263", "#b9bec7"), "dark": ("#c9ced6", "#585e69")}  # normal, disabled
STATUS_MS = 6000


@dataclass
class Canvas:
    """One model's tab: its graph, shape inference, scene and view."""

    model: str
    graph: Graph
    shapes: ShapeInference
    scene: CanvasScene
    view: CanvasView
    fitted: bool = False


class MainWindow(QMainWindow):
    """The editor window around one open document."""

    document_changed = Signal(object)  # the new Document (the training panel follows it)
    node_selected = Signal(str)  # the one node selected on the canvas (the Try dock follows)

    def __init__(self, settings: Settings | None = None, theme: str | None = None,
                 interactive: bool = True):
        super().__init__()
        self.setObjectName("mainWindow")
        self.settings = settings or Settings()
        self.interactive = interactive
        self.theme_name = theme or self.settings.theme()
        if QApplication.instance() is not None:  # styled before the widgets exist: polished once
            apply_theme(QApplication.instance(), self.theme_name)
        self.document: Document | None = None
        self.canvases: dict[str, Canvas] = {}
        self._syncing = False
        self._selection_deferred = None  # the canvas whose selection waits for press_ended
        self.editing = Editing(self)
        self.blocks = BlockActions(self)
        self._find = None  # Edit → Find Node, made when first used (gui.find_node)
        self._build_central()
        self._build_docks()
        self.actions_ = Actions(self)
        self.actions_.build_menus()
        self.toolbar = self.actions_.build_toolbar()
        self.actions_.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        for dock in (self.palette_dock, self.inspector_dock, self.summary_dock):
            self.actions_.panels_menu.addAction(dock.toggleViewAction())
        self._build_status()
        self.autosaver = files.Autosaver(self)
        self._status_timer = QTimer(self, singleShot=True, interval=0)
        self._status_timer.timeout.connect(self._update_status)
        self.resize(*DEFAULT_SIZE)
        self.set_theme(self.theme_name, save=False)
        install_training(self)  # the Training and Live views docks (gui.training)
        install_runs(self)  # the Runs dock (gui.runs_panel)
        install_try(self)  # the Try dock (gui.try_panel)
        install_lessons(self)  # File → Lessons and the Lesson dock (gui.lessons)

    # -- building ----------------------------------------------------------------------------------
    def _build_central(self) -> None:
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("modelTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.setTabBarAutoHide(True)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.tabs.tabCloseRequested.connect(self._tab_close_requested)
        self.setCentralWidget(self.tabs)

    def _build_docks(self) -> None:
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks
                            | QMainWindow.DockOption.AllowTabbedDocks)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.palette = PaletteWidget()
        self.palette.layer_activated.connect(self.editing.layer_activated)
        self.palette_dock = self.add_panel("Layers", self.palette,
                                           Qt.DockWidgetArea.LeftDockWidgetArea, "paletteDock",
                                           menu=False)
        self.inspector = InspectorWidget()
        self.inspector.param_edit_requested.connect(self._param_edit_requested)
        self.inspector.rename_requested.connect(self._rename_requested)
        self.inspector.reference_requested.connect(self.show_layer_reference)
        self.inspector_dock = self.add_panel("Inspector", self.inspector,
                                             Qt.DockWidgetArea.RightDockWidgetArea,
                                             "inspectorDock", menu=False)
        self.summary = SummaryWidget()
        self.summary.nodes_selected.connect(self._summary_selected)
        self.summary_dock = self.add_panel("Model summary", self.summary,
                                           Qt.DockWidgetArea.BottomDockWidgetArea,
                                           "summaryDock", menu=False)
        self.resizeDocks([self.palette_dock, self.inspector_dock], [200, 310],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.summary_dock], [190], Qt.Orientation.Vertical)

    def add_panel(self, title: str, widget: QWidget, area: Qt.DockWidgetArea,
                  object_name: str, menu: bool = True) -> QDockWidget:
        """Add a dock (e.g. the training panel); it gets a View -> Panels toggle and its place is
        remembered with the window's layout (``object_name`` must be unique and stable)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(object_name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        if menu:
            self.actions_.panels_menu.addAction(dock.toggleViewAction())
        return dock

    def _build_status(self) -> None:
        bar = self.statusBar()
        self.totals_label = QLabel()
        self.totals_label.setObjectName("statusTotals")
        self.problems_label = QLabel()
        self.problems_label.setObjectName("statusProblems")
        bar.addPermanentWidget(self.totals_label)
        bar.addPermanentWidget(self.problems_label)

    # -- the document ------------------------------------------------------------------------------
    def set_document(self, document: Document) -> None:
        """Show ``document`` (the previous one is closed without asking: see maybe_save)."""
        with settled():  # no collector pauses while a big graph builds, nor after (collector)
            self._set_document(document)

    def _set_document(self, document: Document) -> None:
        old = self.document
        self._clear_canvases()
        if old is not None:
            old.close()
            old.deleteLater()
        # the previous canvases go now, not later: their objects must not be frozen
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        self.document = document
        document.setParent(self)
        for name in document.model_names:
            self._add_canvas(name)
        mark_big(sum(len(g) for g in document.project.models.values()))
        document.dirty_changed.connect(self._update_title)
        document.path_changed.connect(self._update_title)
        document.blocks_changed.connect(self.blocks.refresh_palette)
        document.blocks_changed.connect(self._blocks_changed)
        self.blocks.refresh_palette()
        self._bind_undo(document)
        self.autosaver.set_document(document)
        self._tab_changed(self.tabs.currentIndex())
        self._update_title()
        self._update_status()
        self.document_changed.emit(document)
        QTimer.singleShot(0, self._fit_current)

    def _clear_canvases(self) -> None:
        self.inspector.detach()
        self.summary.detach()
        for canvas in self.canvases.values():
            canvas.scene.detach()
            canvas.shapes.updated.disconnect(self._shapes_updated)
        self.tabs.clear()
        self.tabs.setTabsClosable(False)  # until a block definition's tab opens again
        for canvas in self.canvases.values():
            canvas.view.deleteLater()
            canvas.scene.deleteLater()
        self.canvases = {}

    def _add_canvas(self, model: str) -> None:
        doc = self.document
        graph, shapes = doc.graph(model), doc.inference(model)
        scene = CanvasScene(graph, shapes, canvas_theme(self.theme_name))
        view = CanvasView(scene)
        view.setObjectName(f"canvas_{model}")
        canvas = Canvas(model, graph, shapes, scene, view)
        self.canvases[model] = canvas
        self.editing.bind(canvas)
        # bound methods (not lambdas): Qt drops the connection when the window goes, so scenes
        # torn down after it cannot call back into a deleted window
        scene.selectionChanged.connect(self._selection_signal)
        scene.press_ended.connect(self._press_ended)
        scene.status_message.connect(self.show_status)
        scene.node_double_clicked.connect(self._node_double_clicked)
        shapes.updated.connect(self._shapes_updated)
        title = f"▣ {model[len(BLOCK_TAB):]}" if model.startswith(BLOCK_TAB) else model
        index = self.tabs.addTab(view, title)
        if model.startswith(BLOCK_TAB):  # a definition's tab closes; a model's tab does not
            self.tabs.setTabsClosable(True)
            self.tabs.setTabToolTip(index, f"Block {title[2:]}: its definition, shared by every "
                                    "Block node that uses it")
        if self.tabs.tabsClosable():
            bar = self.tabs.tabBar()
            for i in range(self.tabs.count()):
                if not self._tab_model(i).startswith(BLOCK_TAB):
                    for side in (QTabBar.ButtonPosition.LeftSide,
                                 QTabBar.ButtonPosition.RightSide):
                        bar.setTabButton(i, side, None)

    def open_block_tab(self, name: str) -> None:
        """Show block ``name``'s definition in its own tab, to edit every instance at once."""
        model = BLOCK_TAB + name
        canvas = self.canvases.get(model)
        if canvas is not None and canvas.graph is not self.document.graph(model):
            self._close_canvas(model)  # an undo put back another copy of the definition
            canvas = None
        if canvas is None:
            self._add_canvas(model)
            canvas = self.canvases[model]
        self.tabs.setCurrentWidget(canvas.view)
        self.show_status(f"Block {name}: edits here change every Block node that uses it "
                         "(its shapes are those of the first one)")

    def _close_canvas(self, model: str) -> None:
        canvas = self.canvases.pop(model)
        canvas.scene.detach()
        canvas.shapes.updated.disconnect(self._shapes_updated)
        self.tabs.removeTab(self.tabs.indexOf(canvas.view))
        canvas.view.deleteLater()
        canvas.scene.deleteLater()
        if model.startswith(BLOCK_TAB):
            self.document.forget_block(model[len(BLOCK_TAB):])

    def _tab_model(self, index: int) -> str:
        widget = self.tabs.widget(index)
        return next((m for m, c in self.canvases.items() if c.view is widget), "")

    def _tab_close_requested(self, index: int) -> None:
        model = self._tab_model(index)
        if model.startswith(BLOCK_TAB):
            self._close_canvas(model)

    def _blocks_changed(self) -> None:
        """Close a definition's tab once that definition is gone or was put back by an undo."""
        doc = self.document
        for model in [m for m in self.canvases if m.startswith(BLOCK_TAB)]:
            name = model[len(BLOCK_TAB):]
            if name not in doc.project.blocks or \
                    self.canvases[model].graph is not doc.project.blocks[name].graph:
                self._close_canvas(model)

    def _node_double_clicked(self, node_id: str) -> None:
        canvas = self.current_canvas()
        node = canvas.graph.node(node_id) if canvas is not None and node_id in canvas.graph \
            else None
        if node is not None and node.type == "Block" and \
                node.params.get("block") in self.document.project.blocks:
            self.open_block_tab(node.params["block"])
            return
        self._focus_inspector()

    def _bind_undo(self, document: Document) -> None:
        stack = document.undo_stack
        for signal in (stack.canUndoChanged, stack.canRedoChanged, stack.undoTextChanged,
                       stack.redoTextChanged):
            signal.connect(self._undo_state_changed)  # a bound method: dropped with the window
        self._undo_state_changed()

    def _undo_state_changed(self, *_args) -> None:
        stack = self.document.undo_stack
        undo, redo = self.actions_["undo"], self.actions_["redo"]
        undo.setEnabled(stack.canUndo())
        redo.setEnabled(stack.canRedo())
        undo.setText(f"&Undo {stack.undoText()}".rstrip())
        redo.setText(f"&Redo {stack.redoText()}".rstrip())

    def current_canvas(self) -> Canvas | None:
        view = self.tabs.currentWidget()
        return next((c for c in self.canvases.values() if c.view is view), None)

    def _tab_changed(self, _index: int) -> None:
        canvas = self.current_canvas()
        if canvas is None:
            return
        self.summary.set_source(canvas.graph, canvas.shapes)
        self._scene_selection_changed(canvas)
        if not canvas.fitted and self.isVisible():
            QTimer.singleShot(0, self._fit_current)

    def _fit_current(self) -> None:
        canvas = self.current_canvas()
        if canvas is not None:
            canvas.view.zoom_to_fit()
            canvas.fitted = True

    def _update_title(self, *_args) -> None:
        doc = self.document
        name = doc.display_name() if doc else "Layerlab"
        self.setWindowTitle(f"{name}[*] — Layerlab")
        self.setWindowModified(bool(doc and doc.is_dirty()))

    # -- selection: canvas, summary and inspector together -----------------------------------------
    def _selection_signal(self) -> None:
        canvas = next((c for c in self.canvases.values() if c.scene is self.sender()), None)
        if canvas is not None:
            self._scene_selection_changed(canvas)

    def _press_ended(self) -> None:
        """A left press is over: show the selection a press on a node held back, if any."""
        canvas = next((c for c in self.canvases.values() if c.scene is self.sender()), None)
        if canvas is not None and canvas is self._selection_deferred:
            self._scene_selection_changed(canvas)

    def _scene_selection_changed(self, canvas: Canvas) -> None:
        if canvas is not self.current_canvas() or self.document is None:
            return
        if canvas.scene.selecting_on_press:  # shown when the button comes up (press_ended):
            self._selection_deferred = canvas  # the inspector's form takes a frame to build,
            return  # and the press may be the start of a drag
        self._selection_deferred = None
        ids = canvas.scene.selected_node_ids()
        if len(ids) == 1:
            self.inspector.show_node(canvas.graph, canvas.shapes, ids[0])
            self.node_selected.emit(ids[0])
        elif ids:
            self.inspector.show_selection(canvas.graph, canvas.shapes, ids)
        else:
            doc = self.document
            self.inspector.show_project(doc.project, doc.input_shapes, doc.dataset_error)
        if not self._syncing:
            self.summary.select_nodes(ids)

    def _summary_selected(self, node_ids: list) -> None:
        canvas = self.current_canvas()
        if canvas is None:
            return
        self._syncing = True
        try:
            canvas.scene.select_nodes(node_ids)
        finally:
            self._syncing = False
        if len(node_ids) == 1 and canvas.scene.node_item(node_ids[0]) is not None:
            canvas.view.ensureVisible(canvas.scene.node_item(node_ids[0]), 40, 40)

    def _focus_inspector(self, *_args) -> None:
        self.inspector_dock.show()
        self.inspector_dock.raise_()

    def _param_edit_requested(self, node_id: str, name: str, value) -> None:
        canvas = self._canvas_of(self.inspector.graph)
        if canvas is not None:
            self.editing.set_param(canvas.model, node_id, name, value)

    def _rename_requested(self, old: str, new: str) -> None:
        canvas = self._canvas_of(self.inspector.graph)
        if canvas is not None:
            self.editing.rename(canvas.model, old, new)

    def _canvas_of(self, graph) -> Canvas | None:
        return next((c for c in self.canvases.values() if c.graph is graph), None)

    # -- status bar --------------------------------------------------------------------------------
    def show_status(self, message: str) -> None:
        self.statusBar().showMessage(message, STATUS_MS)

    def _shapes_updated(self, _ids) -> None:
        if not self._status_timer.isActive():  # many updates in one command: one refresh
            self._status_timer.start()

    def _update_status(self) -> None:
        doc = self.document
        if doc is None:
            return
        params, trainable, macs = doc.totals()
        layers = sum(len(g) for g in doc.project.models.values())
        self.totals_label.setText(f"{layers} layers  ·  {format_count(params)} parameters  ·  "
                                  f"{format_count(macs)} mult-adds")
        self.totals_label.setToolTip(f"{params:,} parameters ({trainable:,} trainable), "
                                     f"{macs:,} multiply-adds per sample")
        lines = self._problem_lines()
        count = len(lines)
        self.problems_label.setText(f"⚠ {count} problem{'s' if count != 1 else ''}" if count
                                    else "✓ No problems")
        self.problems_label.setToolTip("\n".join(lines[:20]) or "Every shape checks out")
        self.problems_label.setProperty("problems", bool(count))
        self.problems_label.style().unpolish(self.problems_label)
        self.problems_label.style().polish(self.problems_label)

    def _problem_lines(self) -> list[str]:
        """One line per problem over every model (what the problems count counts)."""
        several = len(self.canvases) > 1
        return [f"{where}{f' ({name})' if several and where != name else ''}: {message}"
                for name in self.document.model_names
                for where, message in self.document.problems(name)]

    # -- files -------------------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """Ask about unsaved changes; False when the user cancels."""
        doc = self.document
        if doc is None or not doc.is_dirty():
            return True
        if not self.interactive:
            return True
        answer = dialogs.ask_save_changes(self, doc.display_name())
        if answer == dialogs.SAVE:
            return self.save_document()
        return answer == dialogs.DISCARD

    def new_document(self) -> None:
        if self.maybe_save():
            self.set_document(Document.new())

    def open_document(self) -> None:
        path = files.choose_open_path(self, self.settings)
        if path:
            self.open_path(path)

    def open_path(self, path, as_copy: bool = False) -> bool:
        """Open a project file; on failure show the loader's message and keep the document."""
        if not self.maybe_save():
            return False
        with settled():  # reading, inferring and drawing a big graph: one collection, at the end
            try:
                document = Document.open(path)
            except ProjectError as exc:
                failed = str(exc)
            else:
                failed = None
                if as_copy:
                    document.project.path = None
                else:
                    self.settings.add_recent_file(path)
                    self.settings.set_last_dir(Path(path).resolve().parent)
                self.set_document(document)
        if failed is not None:
            dialogs.show_error(self, "Cannot open project", failed, self.interactive)
            return False
        self.show_status(f"Opened {Path(path).name}")
        return True

    def save_document(self) -> bool:
        doc = self.document
        if doc is None:
            return False
        if doc.path is None:
            return self.save_document_as()
        return self._save_to(doc.path)

    def save_document_as(self) -> bool:
        doc = self.document
        if doc is None:
            return False
        path = files.choose_save_path(self, self.settings, files.suggested_file_name(doc.project))
        return self._save_to(Path(path)) if path else False

    def _save_to(self, path: Path) -> bool:
        try:
            written = self.document.save(path)
        except ProjectError as exc:
            dialogs.show_error(self, "Cannot save project", str(exc), self.interactive)
            return False
        self.settings.add_recent_file(written)
        self.settings.set_last_dir(written.resolve().parent)
        self.show_status(f"Saved {written.name}")
        return True

    def open_examples(self) -> None:
        dialog = files.ExamplesDialog(self, dark=self.theme_name == "dark")
        if dialog.exec() and dialog.selected_path() is not None:
            self.open_path(dialog.selected_path(), as_copy=True)

    def _fill_recent_menu(self) -> None:
        menu = self.actions_.recent_menu
        menu.clear()
        recent = self.settings.recent_files()
        for i, path in enumerate(recent, 1):
            action = menu.addAction(f"&{i % 10}  {Path(path).name}")
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _=False, p=path: self._open_recent(p))
        if not recent:
            menu.addAction("No recent files").setEnabled(False)
        menu.addSeparator()
        menu.addAction("Clear Recent Files", self.settings.clear_recent_files)

    def _open_recent(self, path: str) -> None:
        if not Path(path).exists():
            self.settings.remove_recent_file(path)
        self.open_path(path)

    def offer_recovery(self) -> bool:
        """Offer the autosaved copies left by a crash; True when one was restored."""
        for found in files.find_recovery_files():
            if not dialogs.ask_restore(self, found.name, found.when()):
                found.discard()
                continue
            try:
                document = Document(found.load())
            except ProjectError as exc:
                dialogs.show_error(self, "Cannot restore", str(exc), self.interactive)
                found.discard()
                continue
            self.set_document(document)
            document.mark_dirty()
            found.discard()
            self.autosaver.autosave()
            return True
        return False

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        if self.interactive:
            self.settings.set_window(self.saveGeometry(), self.saveState())
        self.settings.sync()
        self.autosaver.stop()
        event.accept()

    def restore_layout(self) -> None:
        """Put the window and docks back where they were last time."""
        geometry, state = self.settings.geometry(), self.settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        canvas = self.current_canvas()
        if canvas is not None and not canvas.fitted:
            QTimer.singleShot(0, self._fit_current)

    # -- actions (menus, toolbar, shortcuts) -------------------------------------------------------
    def undo(self) -> None:
        if self.document is not None:
            self.document.undo_stack.undo()

    def redo(self) -> None:
        if self.document is not None:
            self.document.undo_stack.redo()

    def cut(self) -> None:
        self.editing.cut()

    def copy(self) -> None:
        self.editing.copy()

    def paste(self) -> None:
        self.editing.paste()

    def duplicate(self) -> None:
        self.editing.duplicate()

    def delete_selection(self) -> None:
        self.editing.delete_selection()

    def select_all(self) -> None:
        self.editing.select_all()

    def auto_layout(self) -> None:
        self.editing.auto_layout()

    def find_node(self) -> None:
        if self._find is None:
            from gui.find_node import FindNode

            self._find = FindNode(self)
        self._find.start()

    def make_block(self) -> None:
        self.blocks.make_block()

    def expand_block(self) -> None:
        self.blocks.expand_block()

    def edit_block(self) -> None:
        self.blocks.edit_block()

    def repeat_block(self) -> None:
        self.blocks.repeat_block()

    def zoom_in(self) -> None:
        if self.current_canvas():
            self.current_canvas().view.zoom_in()

    def zoom_out(self) -> None:
        if self.current_canvas():
            self.current_canvas().view.zoom_out()

    def zoom_to_fit(self) -> None:
        self._fit_current()

    def toggle_dark(self, dark: bool) -> None:
        self.set_theme("dark" if dark else "light")

    def set_theme(self, name: str, save: bool = True) -> None:
        """Switch the whole window (and the canvas) to the light or dark theme."""
        self.theme_name = name
        app = QApplication.instance()
        if app is not None:
            apply_theme(app, name)
        for canvas in self.canvases.values():
            canvas.scene.set_theme(canvas_theme(name))
        dark = name == "dark"
        self.summary.set_dark(dark)
        self.actions_.set_icon_color(*ICON_COLORS[name])
        action = self.actions_["dark"]
        action.blockSignals(True)
        action.setChecked(dark)
        action.blockSignals(False)
        if save:
            self.settings.set_theme(name)

    def export_model(self) -> None:
        from gui.export_dialog import run_export_dialog  # the exporters load when first used

        run_export_dialog(self)

    def import_model(self) -> None:
        from gui.import_dialog import run_import_dialog

        run_import_dialog(self)

    def open_lessons(self) -> None:
        self.lessons_ui.open_gallery()

    def open_sweep(self) -> None:
        from gui.sweep_dialog import show_sweep_dialog  # Optuna loads when a sweep starts

        show_sweep_dialog(self)

    def show_shortcuts(self) -> None:
        dialogs.ShortcutsDialog(self.actions_.all(), self).exec()

    def show_layer_reference(self, layer_type: str | None = None) -> None:
        from gui.reference_dialog import show_layer_reference

        show_layer_reference(self, layer_type if isinstance(layer_type, str) else None)

    def show_about(self) -> None:
        dialogs.show_about(self)

    def view_center(self) -> QPointF | None:
        canvas = self.current_canvas()
        return canvas.view.view_center_scene_pos() if canvas else None

