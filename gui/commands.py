"""Undo commands: one ``QUndoCommand`` per user action, each calling only the Graph's methods.

The canvas, the inspector and shape inference follow the graph through its events, so a command
never touches a widget. Compound actions (cut, insert-after, add-and-wire) are a parent command
with child commands, run forward on redo and backward on undo.
"""
from __future__ import annotations

import copy
import time
from typing import Any

from PySide6.QtGui import QUndoCommand

from engine.graph import UNSET, Edge, Graph, Node

Pos = tuple[float, float]
MOVE_ID = 1001  # QUndoCommand.id() of MoveNodes, for merging bursts of arrow-key moves
MERGE_SECONDS = 1.5


def _wire_order(graph: Graph, edge: Edge) -> tuple[int, dict]:
    """The wire's creation order and unknown keys, so that undo restores a Concat's input order."""
    data = graph.nx_graph.edges[edge.src, edge.dst, (edge.src_port, edge.dst_port)]
    return data["order"], dict(data["extra"])


class Command(QUndoCommand):
    """Base of our commands; a command with children redoes them in order, undoes them backward.

    Children are kept on the Python side: a QUndoCommand parent given to the C++ constructor
    deletes its children itself, behind the back of their Python wrappers (a crash at exit).
    """

    def __init__(self, text: str, parent: "Command | None" = None):
        super().__init__(text)
        self.kids: list[Command] = []
        if parent is not None:
            parent.kids.append(self)

    def redo(self):
        for kid in self.kids:
            kid.redo()

    def undo(self):
        for kid in reversed(self.kids):
            kid.undo()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


class AddNode(Command):
    """Add one layer; the id is chosen up front so that redo after undo gives the same node."""

    def __init__(self, graph: Graph, type_name: str, pos: Pos | None = None,
                 params: dict | None = None, node_id: str | None = None, parent=None):
        super().__init__(f"Add {type_name}", parent)
        self.graph = graph
        self.type_name = type_name
        self.node_id = node_id or graph.new_id(type_name)
        self.params = dict(params or {})
        self.pos = tuple(pos) if pos is not None else None

    def redo(self):
        self.graph.add_node(self.type_name, self.node_id, self.params, self.pos)

    def undo(self):
        self.graph.remove_node(self.node_id)


class Connect(Command):
    """Draw one wire."""

    def __init__(self, graph: Graph, edge: Edge, order: int | None = None,
                 extra: dict | None = None, parent=None):
        super().__init__(f"Connect {edge}", parent)
        self.graph, self.edge, self.order, self.extra = graph, edge, order, extra

    def redo(self):
        e = self.edge
        self.graph.connect(e.src, e.dst, e.src_port, e.dst_port, order=self.order,
                           extra=self.extra)

    def undo(self):
        self.graph.disconnect(self.edge)


class Disconnect(Command):
    """Remove one wire; undo puts it back in its old place among a port's inputs."""

    def __init__(self, graph: Graph, edge: Edge, parent=None):
        super().__init__(f"Disconnect {edge}", parent)
        self.graph, self.edge = graph, edge
        self.order, self.extra = _wire_order(graph, edge)

    def redo(self):
        self.graph.disconnect(self.edge)

    def undo(self):
        e = self.edge
        self.graph.connect(e.src, e.dst, e.src_port, e.dst_port, order=self.order,
                           extra=self.extra)


class RemoveItems(Command):
    """Delete nodes (with their wires) and loose wires, in one step."""

    def __init__(self, graph: Graph, node_ids: list[str], edges: list[Edge] = (), parent=None,
                 text: str | None = None):
        node_ids = [n for n in dict.fromkeys(node_ids) if n in graph]
        edges = [e for e in dict.fromkeys(edges) if e.src not in node_ids and e.dst not in node_ids]
        super().__init__(text or self._text(node_ids, edges), parent)
        self.graph = graph
        self.node_ids = node_ids
        for edge in edges:
            Disconnect(graph, edge, parent=self)
        self._removed: list[tuple[Node, list]] = []

    @staticmethod
    def _text(node_ids, edges) -> str:
        if len(node_ids) == 1 and not edges:
            return f"Delete {node_ids[0]}"
        if not node_ids and len(edges) == 1:
            return f"Delete wire {edges[0]}"
        parts = ([_plural(len(node_ids), "layer")] if node_ids else []) + \
            ([_plural(len(edges), "wire")] if edges else [])
        return "Delete " + " and ".join(parts)

    def redo(self):
        super().redo()  # the loose wires first
        self._removed = [self.graph.remove_node(n) for n in self.node_ids]

    def undo(self):
        for node, wires in reversed(self._removed):
            self.graph.restore_node(node, wires)
        self._removed = []
        super().undo()


class MoveNodes(Command):
    """Move nodes; one command per drag. Arrow-key nudges (``mergeable=True``) of the same
    selection less than :data:`MERGE_SECONDS` apart merge into one step."""

    def __init__(self, graph: Graph, moves: dict[str, tuple[Pos, Pos]], mergeable: bool = False,
                 parent=None, text: str | None = None):
        ids = list(moves)
        super().__init__(text or (f"Move {ids[0]}" if len(ids) == 1 else
                                  f"Move {_plural(len(ids), 'layer')}"), parent)
        self.graph = graph
        self.moves = {k: (_pos(old), _pos(new)) for k, (old, new) in moves.items()}
        self.mergeable = mergeable
        self.stamp = time.monotonic()

    def id(self) -> int:
        return MOVE_ID if self.mergeable else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, MoveNodes) or set(other.moves) != set(self.moves) or \
                other.stamp - self.stamp > MERGE_SECONDS:
            return False
        self.moves = {k: (old, other.moves[k][1]) for k, (old, _) in self.moves.items()}
        self.stamp = other.stamp
        return True

    def redo(self):
        for node_id, (_, new) in self.moves.items():
            self.graph.set_pos(node_id, new)

    def undo(self):
        for node_id, (old, _) in self.moves.items():
            self.graph.set_pos(node_id, old)


def _pos(p) -> Pos | None:
    return (float(p[0]), float(p[1])) if p is not None else None


class SetParam(Command):
    """Set (or, with ``UNSET``, clear back to its default) one parameter of a node."""

    def __init__(self, graph: Graph, node_id: str, name: str, value: Any, parent=None):
        shown = "default" if value is UNSET else repr(value)
        super().__init__(f"Set {node_id}.{name} = {shown}", parent)
        self.graph, self.node_id, self.name, self.value = graph, node_id, name, value
        self.old = graph.node(node_id).params.get(name, UNSET)

    def redo(self):
        self.graph.set_param(self.node_id, self.name, self.value)

    def undo(self):
        self.graph.set_param(self.node_id, self.name, self.old)


class Rename(Command):
    """Give a node a new id."""

    def __init__(self, graph: Graph, old: str, new: str, parent=None):
        super().__init__(f"Rename {old} to {new}", parent)
        self.graph, self.old, self.new = graph, old, new

    def redo(self):
        self.graph.rename_node(self.old, self.new)

    def undo(self):
        self.graph.rename_node(self.new, self.old)


class Paste(Command):
    """Add a clipboard fragment under fresh ids. The first redo records the ids the graph chose,
    so that every later redo recreates exactly the same nodes."""

    def __init__(self, graph: Graph, fragment: dict, offset: Pos = (0.0, 0.0), parent=None,
                 text: str = "Paste"):
        n = len(fragment.get("nodes", []))
        super().__init__(f"{text} {_plural(n, 'layer')}", parent)
        self.graph, self.fragment, self.offset = graph, fragment, offset
        self.new_ids: list[str] = []

    def redo(self):
        self.new_ids = self.graph.paste(self.fragment, self.offset)
        self.fragment, self.offset = self.graph.fragment(self.new_ids), (0.0, 0.0)

    def undo(self):
        for node_id in reversed(self.new_ids):
            self.graph.remove_node(node_id)


class AutoLayout(Command):
    """Move every node to a computed position, in one step."""

    def __init__(self, graph: Graph, positions: dict[str, Pos], parent=None):
        super().__init__("Auto-layout", parent)
        self.graph = graph
        self.new = {k: _pos(v) for k, v in positions.items() if k in graph}
        self.old = {k: _pos(graph.node(k).pos) for k in self.new}

    def redo(self):
        for node_id, pos in self.new.items():
            self.graph.set_pos(node_id, pos)

    def undo(self):
        for node_id, pos in self.old.items():
            self.graph.set_pos(node_id, pos)


def macro(text: str) -> Command:
    """A parent command whose children do the work (Qt redoes them in order)."""
    return Command(text)


def insert_after(graph: Graph, type_name: str, after: str, params: dict | None = None,
                 dx: float = 170.0) -> QUndoCommand:
    """Add a layer after ``after`` and wire it in: ``after -> new``, and when ``after`` already
    fed other layers from its main output, route those wires through the new layer (the nodes
    downstream shift right to make room)."""
    from engine.layers import get_spec

    spec, src = get_spec(type_name), graph.node(after)
    base = src.pos or (0.0, 0.0)
    cmd = macro(f"Add {type_name} after {after}")
    outputs = graph.output_ports(after)
    src_port = "out" if "out" in outputs else (outputs or (None,))[0]
    dst_port = spec.inputs[0].name if spec.inputs else None
    if src_port is None or dst_port is None:
        AddNode(graph, type_name, (base[0] + dx, base[1]), params, parent=cmd)
        return cmd
    through = [e for e in graph.out_edges(after) if e.src_port == src_port] \
        if "out" in spec.outputs and spec.inputs[0].name == "in" and len(spec.inputs) == 1 else []
    if through:
        _shift_downstream(graph, after, dx, cmd)
    add = AddNode(graph, type_name, (base[0] + dx, base[1]), params, parent=cmd)
    for edge in through:
        Disconnect(graph, edge, parent=cmd)
    Connect(graph, Edge(after, add.node_id, src_port, dst_port), parent=cmd)
    for edge in through:
        order, extra = _wire_order(graph, edge)
        Connect(graph, Edge(add.node_id, edge.dst, "out", edge.dst_port), order=order,
                extra=extra, parent=cmd)
    return cmd


def _shift_downstream(graph: Graph, node_id: str, dx: float, parent: QUndoCommand) -> None:
    moves = {n: (graph.node(n).pos, (graph.node(n).pos[0] + dx, graph.node(n).pos[1]))
             for n in graph.descendants(node_id) if graph.node(n).pos is not None}
    if moves:
        MoveNodes(graph, moves, parent=parent, text="Make room")


def replace_graph(graph, source) -> None:
    """Make ``graph`` what ``source`` is (same nodes, wires, order), through the graph's own
    methods: the canvas and shape inference follow its events."""
    for node_id in reversed(graph.node_ids()):
        graph.remove_node(node_id)
    for node in source.nodes():
        graph.add_node(node.type, node.id, copy.deepcopy(node.params), node.pos,
                       copy.deepcopy(node.extra))
    for edge in source.edges():
        graph.connect(edge.src, edge.dst, edge.src_port, edge.dst_port,
                      extra=copy.deepcopy(source.edge_extra(edge)))
    graph.extra = copy.deepcopy(source.extra)
