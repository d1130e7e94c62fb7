"""The graph of one model: layers as nodes, tensors as edges, networkx underneath.

The graph is the single source of truth. Every change goes through a method here, which checks it
(unknown node, unknown port, duplicate link, cycle) and then emits a plain-Python event that views
(the canvas, shape inference) mirror.
"""
from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import networkx as nx

from .errors import (CycleError, DuplicateEdgeError, DuplicateNodeError, GraphError, PortError,
                     UnknownNodeError)
from .events import Events
from .layers import get_spec

UNSET: Any = object()  # set_param(..., UNSET) removes a parameter (back to its default)

_PREFIX = {"Linear": "fc", "Conv1d": "conv", "Conv2d": "conv", "ConvTranspose2d": "deconv",
           "Input": "x", "Output": "y", "MaxPool2d": "pool", "AvgPool2d": "pool",
           "AdaptiveAvgPool2d": "gap", "BatchNorm1d": "bn", "BatchNorm2d": "bn",
           "LayerNorm": "ln", "MultiheadAttention": "attn", "TransformerEncoderLayer": "encoder",
           "PositionalEncoding": "pos", "Reparameterize": "z", "SequencePool": "seqpool",
           "Dropout": "drop", "Embedding": "embed", "Block": "block"}


@dataclass
class Node:
    """One layer: its id, type, the parameters set in the file, canvas position, unknown keys."""

    id: str
    type: str
    params: dict = field(default_factory=dict)
    pos: tuple[float, float] | None = None
    extra: dict = field(default_factory=dict)
    # the node's place in the graph's node order (set by the graph): an undone delete puts the
    # node back where it was, so the saved file does not change
    order: int | None = field(default=None, compare=False, repr=False)

    @property
    def spec(self):
        return get_spec(self.type)


@dataclass(frozen=True)
class Edge:
    """A wire from an output port of ``src`` to an input port of ``dst``."""

    src: str
    dst: str
    src_port: str = "out"
    dst_port: str = "in"

    def __str__(self) -> str:
        s = self.src if self.src_port == "out" else f"{self.src}.{self.src_port}"
        d = self.dst if self.dst_port == "in" else f"{self.dst}.{self.dst_port}"
        return f"{s} -> {d}"


class Graph:
    """A model's layers and wires. Refuses cycles, unknown ports and duplicate links."""

    EVENTS = ("node_added", "node_removed", "node_renamed", "edge_added", "edge_removed",
              "params_changed", "node_moved")

    def __init__(self, name: str = "model"):
        self.name = name
        self.extra: dict = {}
        # the project's block definitions (engine.blocks), shared by all its graphs
        self.blocks: dict = {}
        self.events = Events(*self.EVENTS)
        self._g = nx.MultiDiGraph()
        self._next_order = 0
        self._next_node_order = 0

    # -- reading ---------------------------------------------------------------------------
    def __contains__(self, node_id) -> bool:
        return node_id in self._g

    def __len__(self) -> int:
        return len(self._g)

    def node(self, node_id: str) -> Node:
        try:
            return self._g.nodes[node_id]["node"]
        except (KeyError, TypeError):
            raise UnknownNodeError(f"there is no node '{node_id}'") from None

    def nodes(self) -> list[Node]:
        return [data["node"] for _, data in self._g.nodes(data=True)]

    def node_ids(self) -> list[str]:
        return list(self._g.nodes)

    def edges(self) -> list[Edge]:
        """All edges in the order they were made (the file's order)."""
        return [e for e, _ in sorted(self._edge_items(), key=lambda item: item[1])]

    def _edge_items(self):
        for u, v, (sp, dp), data in self._g.edges(keys=True, data=True):
            yield Edge(u, v, sp, dp), data["order"]

    def edge_extra(self, edge: Edge) -> dict:
        return self._edge_data(edge)["extra"]

    def edge_order(self, edge: Edge) -> int:
        """Where ``edge`` stands among the wires (a multi-input port reads in this order);
        ``connect(..., order=)`` puts a wire back there."""
        return self._edge_data(edge)["order"]

    def _edge_data(self, edge: Edge) -> dict:
        try:
            return self._g.edges[edge.src, edge.dst, (edge.src_port, edge.dst_port)]
        except KeyError:
            raise GraphError(f"there is no wire {edge}") from None

    def in_edges(self, node_id: str, port: str | None = None) -> list[Edge]:
        """Edges into ``node_id`` (optionally one port), in the order they were made."""
        self.node(node_id)
        items = [(Edge(u, v, sp, dp), d["order"])
                 for u, v, (sp, dp), d in self._g.in_edges(node_id, keys=True, data=True)
                 if port is None or dp == port]
        return [e for e, _ in sorted(items, key=lambda item: item[1])]

    def out_edges(self, node_id: str) -> list[Edge]:
        self.node(node_id)
        items = [(Edge(u, v, sp, dp), d["order"])
                 for u, v, (sp, dp), d in self._g.out_edges(node_id, keys=True, data=True)]
        return [e for e, _ in sorted(items, key=lambda item: item[1])]

    def predecessors(self, node_id: str) -> list[str]:
        return list(dict.fromkeys(e.src for e in self.in_edges(node_id)))

    def successors(self, node_id: str) -> list[str]:
        return list(dict.fromkeys(e.dst for e in self.out_edges(node_id)))

    def topological_order(self) -> list[str]:
        """Nodes so that every wire points forward; ties keep the order nodes were added."""
        index = {n: i for i, n in enumerate(self._g.nodes)}
        return list(nx.lexicographical_topological_sort(self._g, key=index.__getitem__))

    def descendants(self, node_id: str) -> set[str]:
        return nx.descendants(self._g, node_id)

    def ancestors(self, node_id: str) -> set[str]:
        return nx.ancestors(self._g, node_id)

    def nodes_of_type(self, type_name: str) -> list[Node]:
        return [n for n in self.nodes() if n.type == type_name]

    @property
    def nx_graph(self) -> nx.MultiDiGraph:
        """The networkx graph underneath (read-only use: layouts, algorithms)."""
        return self._g

    # -- editing ---------------------------------------------------------------------------
    def new_id(self, type_name: str) -> str:
        prefix = _PREFIX.get(type_name, re.sub(r"\d+d$", "", type_name).lower())
        for i in itertools.count(1):
            if f"{prefix}{i}" not in self._g:
                return f"{prefix}{i}"

    def add_node(self, type_name: str, node_id: str | None = None, params: dict | None = None,
                 pos: Iterable[float] | None = None, extra: dict | None = None, *,
                 order: int | None = None) -> Node:
        """Add a node, last in the node order (or at the place ``order`` had, for a restore)."""
        get_spec(type_name)
        node_id = self.new_id(type_name) if node_id is None else node_id
        self._check_new_id(node_id)
        last = order is None or order >= self._next_node_order
        order = self._next_node_order if order is None else order
        self._next_node_order = max(self._next_node_order, order + 1)
        node = Node(node_id, type_name, dict(params or {}),
                    tuple(pos) if pos is not None else None, dict(extra or {}), order)
        if last:
            self._g.add_node(node_id, node=node)
        else:
            self._insert_node(node)
        self.events.node_added.emit(node_id)
        return node

    def _insert_node(self, node: Node) -> None:
        """Add ``node`` before the first node that comes after it in the order (O(n))."""
        nodes = list(self._g.nodes(data=True))
        at = next((i for i, (_, d) in enumerate(nodes) if d["node"].order > node.order),
                  len(nodes))
        nodes.insert(at, (node.id, {"node": node}))
        self._rebuild(nodes, list(self._g.edges(keys=True, data=True)))

    def _rebuild(self, nodes: list, edges: list) -> None:
        """Refill the networkx graph in the given order (it keeps nodes in insertion order)."""
        self._g.clear()
        self._g.add_nodes_from(nodes)
        self._g.add_edges_from(edges)

    def _check_new_id(self, node_id) -> None:
        if not isinstance(node_id, str) or not node_id.strip():
            raise GraphError(f"a node id must be a non-empty text; got {node_id!r}")
        if node_id in self._g:
            raise DuplicateNodeError(f"there is already a node '{node_id}'")

    def remove_node(self, node_id: str) -> tuple[Node, list[tuple[Edge, int, dict]]]:
        """Remove a node and its wires; returns what :meth:`restore_node` needs to undo it."""
        node = self.node(node_id)
        wires = [(e, *self._wire_state(e)) for e in self.in_edges(node_id) + self.out_edges(node_id)]
        for edge, _, _ in wires:
            self.disconnect(edge)
        self._g.remove_node(node_id)
        self.events.node_removed.emit(node_id)
        return node, wires

    def _wire_state(self, edge: Edge) -> tuple[int, dict]:
        data = self._edge_data(edge)
        return data["order"], data["extra"]

    def restore_node(self, node: Node, wires: list[tuple[Edge, int, dict]]) -> None:
        """Put back a node removed by :meth:`remove_node`, with its wires in their old order."""
        self.add_node(node.type, node.id, node.params, node.pos, node.extra, order=node.order)
        for edge, order, extra in sorted(wires, key=lambda w: w[1]):
            self.connect(edge.src, edge.dst, edge.src_port, edge.dst_port, order=order,
                         extra=extra)

    def rename_node(self, old: str, new: str) -> None:
        node = self.node(old)
        if new == old:
            return
        self._check_new_id(new)
        # rebuilt rather than nx.relabel_nodes, which moves the node to the end of the order
        # (and so of the saved file, the summary and topological ties)
        nodes = [(new if n == old else n, d) for n, d in self._g.nodes(data=True)]
        edges = [(new if u == old else u, new if v == old else v, k, d)
                 for u, v, k, d in self._g.edges(keys=True, data=True)]
        self._rebuild(nodes, edges)
        node.id = new
        self.events.node_renamed.emit(old, new)

    def connect(self, src: str, dst: str, src_port: str = "out", dst_port: str = "in", *,
                order: int | None = None, extra: dict | None = None) -> Edge:
        edge = Edge(src, dst, src_port, dst_port)
        self.check_connect(edge)
        order = self._next_order if order is None else order
        self._next_order = max(self._next_order, order + 1)
        self._g.add_edge(src, dst, key=(src_port, dst_port), order=order, extra=dict(extra or {}))
        self.events.edge_added.emit(edge)
        return edge

    def output_ports(self, node_id: str) -> tuple[str, ...]:
        """The node's output ports: its type's, or for a Block node its definition's (``out``
        for its first Output node, the others' ids for the rest)."""
        node = self.node(node_id)
        if node.type == "Block":
            from .blocks import block_ports

            ports = block_ports(self.blocks, node.params)
            if ports is not None:
                return ports
        return node.spec.outputs

    def check_connect(self, edge: Edge) -> None:
        """Raise a :class:`GraphError` subclass if ``edge`` cannot be made; do nothing else."""
        src, dst = self.node(edge.src), self.node(edge.dst)
        outputs = self.output_ports(edge.src)
        if edge.src_port not in outputs and src.type != "Block":
            # (a Block node keeps a wire from a port its definition no longer has, or does not
            # have yet while a file is read: shape inference names it, nothing is lost)
            outs = ", ".join(outputs) or "none"
            raise PortError(f"{edge.src} ({src.type}) has no output port '{edge.src_port}' "
                            f"(its outputs: {outs})")
        port = dst.spec.in_port(edge.dst_port)
        if port is None:
            ins = ", ".join(p.name for p in dst.spec.inputs) or "none"
            raise PortError(f"{edge.dst} ({dst.type}) has no input port '{edge.dst_port}' "
                            f"(its inputs: {ins})")
        if self._g.has_edge(edge.src, edge.dst, (edge.src_port, edge.dst_port)):
            raise DuplicateEdgeError(f"{edge.src} is already connected to {edge.dst}")
        if edge.src == edge.dst:
            raise CycleError(f"{edge.src} cannot feed itself")
        if nx.has_path(self._g, edge.dst, edge.src):
            path = nx.shortest_path(self._g, edge.dst, edge.src)
            raise CycleError(f"connecting {edge.src} -> {edge.dst} would make a cycle "
                             f"({' -> '.join(path + [edge.dst])})")
        taken = self.in_edges(edge.dst, edge.dst_port)
        if taken and not port.multi:
            article = "an" if dst.type[:1] in "AEIOU" else "a"
            raise PortError(f"{edge.dst}'s input '{edge.dst_port}' is already connected to "
                            f"{taken[0].src}; {article} {dst.type} takes one input there")

    def disconnect(self, edge: Edge) -> None:
        self._edge_data(edge)
        self._g.remove_edge(edge.src, edge.dst, (edge.src_port, edge.dst_port))
        self.events.edge_removed.emit(edge)

    def set_param(self, node_id: str, name: str, value: Any) -> None:
        node = self.node(node_id)
        if value is UNSET:
            node.params.pop(name, None)
        else:
            node.params[name] = value
        self.events.params_changed.emit(node_id)

    def set_params(self, node_id: str, params: dict) -> None:
        """Replace all parameters of a node at once."""
        node = self.node(node_id)
        node.params = dict(params)
        self.events.params_changed.emit(node_id)

    def set_pos(self, node_id: str, pos: Iterable[float] | None) -> None:
        node = self.node(node_id)
        node.pos = tuple(pos) if pos is not None else None
        self.events.node_moved.emit(node_id)

    # -- fragments (copy / paste / duplicate) --------------------------------------------------
    def fragment(self, node_ids: Iterable[str]) -> dict:
        """The chosen nodes and the wires among them, as plain data (for the clipboard)."""
        ids = [n for n in self.node_ids() if n in set(node_ids)]
        nodes = [{"id": n.id, "type": n.type, "params": copy.deepcopy(n.params),
                  "pos": list(n.pos) if n.pos else None} for n in map(self.node, ids)]
        edges = [{"from": e.src, "from_port": e.src_port, "to": e.dst, "to_port": e.dst_port}
                 for e in self.edges() if e.src in ids and e.dst in ids]
        return {"nodes": nodes, "edges": edges}

    def paste(self, fragment: dict, offset: tuple[float, float] = (0.0, 0.0)) -> list[str]:
        """Add a fragment's nodes under fresh ids (shifted by ``offset``); returns the new ids."""
        mapping: dict[str, str] = {}
        for spec in fragment["nodes"]:
            new = spec["id"] if spec["id"] not in self._g else self.new_id(spec["type"])
            pos = spec.get("pos")
            pos = (pos[0] + offset[0], pos[1] + offset[1]) if pos else None
            mapping[spec["id"]] = self.add_node(spec["type"], new, spec.get("params"), pos).id
        for e in fragment["edges"]:
            self.connect(mapping[e["from"]], mapping[e["to"]], e.get("from_port", "out"),
                         e.get("to_port", "in"))
        return list(mapping.values())
