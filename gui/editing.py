"""Editing: turns the canvas's, palette's and inspector's requests into undo commands, and runs
the Edit menu (clipboard, duplicate, delete, select all) and auto-layout.

The clipboard carries ``graph.fragment(...)`` as JSON under :data:`FRAGMENT_MIME` (and as text),
so layers copy between models, windows and files.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from PySide6.QtCore import QMimeData, QPointF, QTimer
from PySide6.QtWidgets import QApplication

from engine.errors import GraphError, LayerlabError
from engine.graph import Edge, Graph
from engine.layers import get_spec
from engine.layout import FIT, layered_layout
from gui import commands as C
from gui.blocks import block_payload

if TYPE_CHECKING:
    from gui.main_window import Canvas, MainWindow

FRAGMENT_MIME = "application/x-layerlab-fragment"
FRAGMENT_FORMAT = "layerlab-fragment"
PASTE_STEP = 40.0
DROP_GRIP = QPointF(60, 12)  # a dropped layer hangs from the cursor by its header's middle
ARROW_STEPS = (20.0, 100.0)  # the canvas moves a selection by one grid step (x5 with Shift)


# -- the clipboard ---------------------------------------------------------------------------------
def fragment_to_mime(fragment: dict) -> QMimeData:
    text = json.dumps({"format": FRAGMENT_FORMAT, **fragment}, ensure_ascii=False)
    mime = QMimeData()
    mime.setData(FRAGMENT_MIME, text.encode("utf-8"))
    mime.setText(text)
    return mime


def fragment_from_mime(mime: QMimeData | None) -> dict | None:
    """The fragment in ``mime`` if it holds a valid one (checked on a scratch graph)."""
    if mime is None:
        return None
    if mime.hasFormat(FRAGMENT_MIME):
        raw = bytes(mime.data(FRAGMENT_MIME)).decode("utf-8", "replace")
    elif mime.hasText():
        raw = mime.text()
    else:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("format") != FRAGMENT_FORMAT:
        return None
    fragment = {"nodes": data.get("nodes"), "edges": data.get("edges", [])}
    return fragment if is_valid_fragment(fragment) else None


def is_valid_fragment(fragment: dict) -> bool:
    try:
        return bool(Graph("scratch").paste(fragment))
    except (LayerlabError, KeyError, TypeError, ValueError, AttributeError):
        return False


def fragment_bounds(fragment: dict) -> tuple[float, float, float, float] | None:
    """(left, top, right, bottom) of the fragment's node positions, if they have any."""
    pos = [n["pos"] for n in fragment["nodes"] if n.get("pos")]
    if not pos:
        return None
    xs, ys = [p[0] for p in pos], [p[1] for p in pos]
    return min(xs), min(ys), max(xs), max(ys)


def _is_arrow_move(moves: dict) -> bool:
    """A nudge from the arrow keys: every node moved by one grid step (or five) along an axis."""
    deltas = {(round(n[0] - o[0], 3), round(n[1] - o[1], 3)) for o, n in moves.values()}
    if len(deltas) != 1:
        return False
    dx, dy = deltas.pop()
    return (dx == 0) != (dy == 0) and abs(dx or dy) in ARROW_STEPS


class Editing:
    """The editing side of the main window: one instance per window."""

    def __init__(self, window: "MainWindow"):
        self.window = window
        self._paste_count = 0
        self._last_clip: str | None = None
        self._pending_disconnect: tuple | None = None

    # -- plumbing ----------------------------------------------------------------------------------
    @property
    def document(self):
        return self.window.document

    def canvas(self) -> "Canvas | None":
        return self.window.current_canvas()

    def push(self, command) -> None:
        self.document.push(command)

    def status(self, message: str) -> None:
        self.window.show_status(message)

    def bind(self, canvas: "Canvas") -> None:
        """Route one canvas's requests into commands."""
        scene = canvas.scene
        scene.node_drop_requested.connect(lambda t, p: self.add_node(canvas, t, p - DROP_GRIP))
        scene.connect_requested.connect(lambda e: self.connect_edge(canvas, e))
        scene.disconnect_requested.connect(lambda e: self.disconnect_edge(canvas, e))
        scene.nodes_moved.connect(lambda moves: self.move_nodes(canvas, moves))
        scene.delete_requested.connect(lambda n, e: self.remove(canvas, n, e))

    # -- requests from the canvas ------------------------------------------------------------------
    def add_node(self, canvas: "Canvas", type_name: str, pos: QPointF) -> str:
        type_name, params = block_payload(type_name)  # a block from the palette's Blocks
        spec = get_spec(type_name)
        snapped = (round(pos.x() / 10) * 10, round(pos.y() / 10) * 10)
        if params is None:
            cmd = C.AddNode(canvas.graph, type_name, snapped, spec.initial_params())
            self.push(cmd)
            canvas.scene.select_nodes([cmd.node_id])
            return cmd.node_id
        cmd = C.macro(f"Add block {params['block']}")
        self.window.blocks.ensure_definition(params["block"], cmd)
        add = C.AddNode(canvas.graph, type_name, snapped, params, parent=cmd)
        self.push(cmd)
        canvas.scene.select_nodes([add.node_id])
        return add.node_id

    def connect_edge(self, canvas: "Canvas", edge: Edge) -> None:
        pending, self._pending_disconnect = self._pending_disconnect, None
        stack = self.document.undo_stack
        if pending is not None:  # a wire lifted off one port and dropped on another: one step
            stack.beginMacro(f"Reconnect {edge}")
            self.push(C.Disconnect(pending[0].graph, pending[1]))
        try:
            canvas.graph.check_connect(edge)
        except GraphError as exc:
            self.status(str(exc))
        else:
            self.push(C.Connect(canvas.graph, edge))
        if pending is not None:
            stack.endMacro()

    def disconnect_edge(self, canvas: "Canvas", edge: Edge) -> None:
        # a connect request may follow at once (the wire was moved): wait for it
        self._pending_disconnect = (canvas, edge)
        QTimer.singleShot(0, self._flush_disconnect)

    def _flush_disconnect(self) -> None:
        pending, self._pending_disconnect = self._pending_disconnect, None
        if pending is not None and pending[1] in pending[0].graph.edges():
            self.push(C.Disconnect(pending[0].graph, pending[1]))

    def move_nodes(self, canvas: "Canvas", moves: dict) -> None:
        self.push(C.MoveNodes(canvas.graph, moves, mergeable=_is_arrow_move(moves)))

    def remove(self, canvas: "Canvas", node_ids: list, edges: list, text: str | None = None):
        if node_ids or edges:
            self.push(C.RemoveItems(canvas.graph, node_ids, edges, text=text))

    # -- requests from the palette and the inspector -----------------------------------------------
    def layer_activated(self, type_name: str, from_search: bool) -> None:
        """Palette: Enter in the search box drops at the view centre; a double-click adds the
        layer after the selected one and wires it (or at the centre when none is selected)."""
        canvas = self.canvas()
        if canvas is None:
            return
        selected = canvas.scene.selected_node_ids()
        if not from_search and len(selected) == 1:
            layer, params = block_payload(type_name)
            cmd = C.insert_after(canvas.graph, layer, selected[0],
                                 params or get_spec(layer).initial_params())
            if params is not None:  # the definition first, inside the same undo step
                inner, cmd = cmd, C.macro(cmd.text())
                self.window.blocks.ensure_definition(params["block"], cmd)
                cmd.kids.append(inner)
            self.push(cmd)
            new = [k.node_id for k in _all_kids(cmd) if isinstance(k, C.AddNode)]
            canvas.scene.select_nodes(new)
            return
        center = canvas.view.view_center_scene_pos()
        self.add_node(canvas, type_name, center - QPointF(60, 35))

    def set_param(self, model: str, node_id: str, name: str, value) -> None:
        graph = self.document.graph(model)
        self.push(C.SetParam(graph, node_id, name, value))

    def rename(self, model: str, old: str, new: str) -> None:
        graph = self.document.graph(model)
        if new in graph or old not in graph:
            self.status(f"cannot rename {old} to {new}: there is already a node '{new}'")
            return
        self.push(C.Rename(graph, old, new))
        canvas = self.window.canvases.get(model)
        if canvas is not None:
            canvas.scene.select_nodes([new])

    # -- the Edit menu -----------------------------------------------------------------------------
    def copy(self) -> bool:
        canvas = self.canvas()
        ids = canvas.scene.selected_node_ids() if canvas else []
        if not ids:
            self.status("Select layers to copy")
            return False
        fragment = canvas.graph.fragment(ids)
        QApplication.clipboard().setMimeData(fragment_to_mime(fragment))
        self._paste_count = 0
        self.status(f"Copied {len(ids)} layer{'s' if len(ids) != 1 else ''}")
        return True

    def cut(self) -> None:
        canvas = self.canvas()
        if canvas is not None and self.copy():
            ids = canvas.scene.selected_node_ids()
            self.remove(canvas, ids, [], text=f"Cut {len(ids)} layer{'s' if len(ids) != 1 else ''}")

    def paste(self) -> None:
        canvas = self.canvas()
        mime = QApplication.clipboard().mimeData()
        fragment = fragment_from_mime(mime)
        if canvas is None or fragment is None:
            self.status("The clipboard holds no layers")
            return
        raw = json.dumps(fragment, sort_keys=True)
        self._paste_count = self._paste_count + 1 if raw == self._last_clip else 1
        self._last_clip = raw
        self._paste(canvas, fragment, self._paste_offset(canvas, fragment), "Paste")

    def _paste_offset(self, canvas: "Canvas", fragment: dict) -> tuple[float, float]:
        """Next to the originals when they are in view (stepping on each paste); else centred."""
        bounds = fragment_bounds(fragment)
        if bounds is None:
            return 0.0, 0.0
        left, top, right, bottom = bounds
        step = PASTE_STEP * self._paste_count
        visible = canvas.view.mapToScene(canvas.view.viewport().rect()).boundingRect()
        if visible.contains(QPointF(left + step, top + step)):
            return step, step
        center = canvas.view.view_center_scene_pos()
        return center.x() - (left + right) / 2, center.y() - (top + bottom) / 2

    def _paste(self, canvas: "Canvas", fragment: dict, offset, text: str) -> None:
        cmd = C.Paste(canvas.graph, fragment, offset, text=text)
        self.push(cmd)
        canvas.scene.select_nodes(cmd.new_ids)
        self.status(cmd.text())

    def duplicate(self) -> None:
        canvas = self.canvas()
        ids = canvas.scene.selected_node_ids() if canvas else []
        if not ids:
            self.status("Select layers to duplicate")
            return
        self._paste(canvas, canvas.graph.fragment(ids), (PASTE_STEP, PASTE_STEP), "Duplicate")

    def delete_selection(self) -> None:
        canvas = self.canvas()
        if canvas is not None:
            canvas.scene.request_delete()

    def select_all(self) -> None:
        canvas = self.canvas()
        if canvas is not None:
            canvas.scene.select_nodes(canvas.graph.node_ids())

    def auto_layout(self) -> None:
        canvas = self.canvas()
        if canvas is None or not len(canvas.graph):
            return
        size = canvas.view.viewport().size()  # wrap long chains into rows for this view
        fit = (float(size.width()), float(size.height())) if size.width() > 100 else FIT
        self.push(C.AutoLayout(canvas.graph, layered_layout(canvas.graph, fit=fit)))
        canvas.view.zoom_to_fit()


def _all_kids(command) -> list:
    """A command's children, theirs too, in order."""
    found = []
    for kid in getattr(command, "kids", []):
        found += [kid, *_all_kids(kid)]
    return found
