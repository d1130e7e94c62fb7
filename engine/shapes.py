"""Shape inference: a tensor shape for every wire, an error sentence for every broken node.

Shapes are per sample (no batch dimension). Inference is incremental: an edit recomputes the node
it touches and walks downstream only while outputs actually change.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from .events import Event
from .graph import Edge, Graph
from .layers import ShapeError, Stats, fmt_shape
from .layers.spec import FrameShape, NodeShape, graph_label, graph_level
from .layers.rules import In

_NO_STATS = Stats()


@dataclass
class NodeInfo:
    """What inference found out about one node."""

    params: dict | None = None  # resolved parameters (defaults filled in), None if invalid
    in_shapes: dict = field(default_factory=dict)  # port -> [shape, ...]
    out_shapes: dict = field(default_factory=dict)  # port -> shape
    error: str | None = None
    stats: Stats = _NO_STATS

    @property
    def out_shape(self):
        """The main output's shape (``out``, or the first port's of a Block node with several
        outputs, or the input's shape for an Output node)."""
        if "out" in self.out_shapes:
            return self.out_shapes["out"]
        if self.out_shapes:
            return next(iter(self.out_shapes.values()))
        ins = self.in_shapes.get("in")
        return tuple(ins[0]) if ins else None


class ShapeInference:
    """Keeps the shapes and errors of a graph up to date as it is edited."""

    def __init__(self, graph: Graph, input_shapes: dict | None = None, live: bool = True,
                 params_of=None):
        self.graph = graph
        self.input_shapes = dict(input_shapes or {})
        # node -> the parameters to infer it with (default: its own); a block's definition is
        # inferred with one instance's values and input shapes (engine.blocks.instance_params)
        self.params_of = params_of
        self.info: dict[str, NodeInfo] = {}
        self.updated = Event("updated")  # emits the set of node ids whose info was recomputed
        # node -> position in a topological order; None after an edge that may break it
        self._rank: dict[str, int] | None = None
        self._live = live
        if live:
            for event, callback in self._callbacks():
                event.connect(callback)
        self.run_all()

    def _callbacks(self):
        ev = self.graph.events
        return ((ev.node_added, self._on_added), (ev.params_changed, self._on_node),
                (ev.node_removed, self._on_removed), (ev.node_renamed, self._on_renamed),
                (ev.edge_added, self._on_edge_added), (ev.edge_removed, self._on_edge))

    def detach(self) -> None:
        """Stop following the graph's edits."""
        if self._live:
            for event, callback in self._callbacks():
                event.disconnect(callback)
            self._live = False

    # -- queries ---------------------------------------------------------------------------
    def edge_shape(self, edge: Edge):
        info = self.info.get(edge.src)
        return info.out_shapes.get(edge.src_port) if info else None

    def node_error(self, node_id: str) -> str | None:
        return self.info[node_id].error

    def errors(self) -> dict[str, str]:
        """Every node's problem, shape errors first, then wiring problems (dangling nodes)."""
        errs = {n: i.error for n, i in self.info.items() if i.error}
        for node_id, msg in self.wiring_problems().items():
            errs.setdefault(node_id, msg)
        return errs

    def wiring_problems(self) -> dict[str, str]:
        """Inputs that feed nothing and layers that reach no Output."""
        g = self.graph
        outputs = [n.id for n in g.nodes_of_type("Output")]
        useful = set(outputs).union(*(g.ancestors(o) for o in outputs)) if outputs else set()
        problems = {}
        for node in g.nodes():
            if node.type == "Input" and not g.out_edges(node.id):
                problems[node.id] = "this Input is not connected to anything"
            elif outputs and node.id not in useful and node.type != "Output":
                problems[node.id] = "does not lead to an Output; connect it or delete it"
        return problems

    def model_problems(self) -> list[str]:
        g = self.graph
        problems = []
        if not g.nodes_of_type("Input"):
            problems.append("the model has no Input node")
        if not g.nodes_of_type("Output"):
            problems.append("the model has no Output node")
        return problems

    def is_valid(self) -> bool:
        return not self.errors() and not self.model_problems()

    def totals(self) -> tuple[int, int]:
        """(all parameters, trainable parameters) of the model."""
        return (sum(i.stats.params for i in self.info.values()),
                sum(i.stats.trainable for i in self.info.values()))

    # -- computing -------------------------------------------------------------------------
    def set_input_shapes(self, input_shapes: dict) -> None:
        self.input_shapes = dict(input_shapes)
        self.run_all()

    def run_all(self) -> None:
        order = self.graph.topological_order()
        self._rank = {n: i for i, n in enumerate(order)}
        self.info = {}
        for node_id in order:
            self.info[node_id] = self._compute(node_id)
        self.updated.emit(set(order))

    def update(self, node_id: str, force: bool = False) -> set[str]:
        """Recompute ``node_id`` and whatever downstream of it changes as a result.

        The walk stops where outputs stay the same; ``force`` recomputes the direct successors
        anyway (after a rename their messages name the new id).
        """
        rank = self._ranks()
        succ = self.graph.nx_graph.succ
        # a successor always ranks after its node, so popping by rank computes every node
        # after all of its recomputed inputs, each once
        heap, queued, done = [(rank[node_id], node_id)], {node_id}, set()
        while heap:
            _, n = heapq.heappop(heap)
            new = self._compute(n)
            old = self.info.get(n)
            self.info[n] = new
            done.add(n)
            if old is None or old.out_shapes != new.out_shapes or (force and n == node_id):
                for s in succ[n]:
                    if s not in queued:
                        queued.add(s)
                        heapq.heappush(heap, (rank[s], s))
        self.updated.emit(done)
        return done

    def _ranks(self) -> dict[str, int]:
        if self._rank is None:
            self._rank = {n: i for i, n in enumerate(self.graph.topological_order())}
        return self._rank

    def _compute(self, node_id: str) -> NodeInfo:
        node = self.graph.node(node_id)
        spec = node.spec
        try:
            params = spec.resolve(self.params_of(node) if self.params_of else node.params)
        except ShapeError as exc:
            return NodeInfo(error=str(exc))
        if node.type == "Input":
            return self._input_info(params)
        if node.type == "Block":
            params = {**params, "_library": self.graph.blocks}
        ins, missing = self._gather(node_id, spec)
        if missing is not None:
            return NodeInfo(params=params, in_shapes=ins, error=missing or None)
        frames = {getattr(shape, "frames", None) for shapes in ins.values() for shape in shapes}
        graph_problem, per_nodes = self._graph_levels(node.type, spec, ins)
        if graph_problem:
            return NodeInfo(params=params, in_shapes=ins, error=graph_problem)
        if node.type == "Output":
            if frames - {None}:
                return NodeInfo(params=params, in_shapes=ins,
                                error="gets one frame at a time from a per-frame chain; end the "
                                "chain with MergeFrames before the Output")
            return NodeInfo(params=params, in_shapes=ins)
        per_frame = None  # T when this node runs inside a per-frame chain
        if "frames" not in spec.extra and frames - {None}:
            if len(frames) > 1:
                return NodeInfo(params=params, in_shapes=ins, error=self._mixed_frames(ins))
            per_frame = frames.pop()
        try:
            outs = spec.infer(params, ins)
            stats = spec.stats(params, ins, outs) if spec.stats else _NO_STATS
            if per_frame is not None:
                outs = {port: FrameShape.of(shape, per_frame) for port, shape in outs.items()}
                stats = Stats(stats.params, stats.trainable, stats.macs * per_frame)
            if per_nodes is not None:
                outs = {port: NodeShape.of(shape, per_nodes) for port, shape in outs.items()}
                stats = Stats(stats.params, stats.trainable, stats.macs * max(per_nodes, 1))
        except ShapeError as exc:
            return NodeInfo(params=params, in_shapes=ins, error=str(exc))
        except Exception as exc:  # a bug in a rule must not take the editor down
            return NodeInfo(params=params, in_shapes=ins,
                            error=f"internal error in the {node.type} shape rule: {exc!r}")
        return NodeInfo(params, ins, outs, None, stats)

    @staticmethod
    def _graph_levels(node_type: str, spec, ins: dict) -> tuple[str | None, int | None]:
        """(a problem, or None; N when the node runs on every node of a graph, else None).

        A graph layer (``spec.extra['graph']``) checks its own ports. Any other layer may take
        node features (it runs per node, the nodes in the batch dimension) but not together
        with per-graph tensors, and no edge_index."""
        given = [s for shapes in ins.values() for s in shapes]
        levels = {graph_level(s) for s in given}
        if "graph" in spec.extra or levels <= {None}:
            return None, None
        if "edges" in levels:
            src = next(s for s in given if graph_level(s) == "edges")
            where = "be a model output" if node_type == "Output" else "feed this layer"
            return (f"takes the edge_index ({graph_label(src)}) from {src.src}; an edge_index "
                    f"cannot {where}: wire it to the edge_index port of a graph layer (GCNConv, "
                    "GATConv, SAGEConv, GINConv)"), None
        if None in levels:
            nodes = next(s for s in given if graph_level(s) == "nodes")
            other = next(s for s in given if graph_level(s) is None)
            return (f"mixes node features ({graph_label(nodes)} from {nodes.src}) with a "
                    f"per-sample tensor ({fmt_shape(other)} from {other.src}); pool the nodes "
                    "into one vector per graph with GraphPool first"), None
        counts = {s.nodes for s in given}
        if len(counts) > 1:
            return ("mixes node features of graphs with different node counts (" + ", ".join(
                f"{graph_label(s)} from {s.src}" for s in given) + ")"), None
        if node_type == "Output":
            return None, None
        return None, counts.pop()

    @staticmethod
    def _mixed_frames(ins: dict) -> str:
        parts = []
        for shapes in ins.values():
            for shape in shapes:
                t = getattr(shape, "frames", None)
                what = f"one of {t} frames" if t else f"a whole tensor {fmt_shape(shape)}"
                parts.append(f"{shape.src} gives {what}")
        return ("mixes a per-frame chain with other tensors (" + "; ".join(parts) + "); join "
                "them after MergeFrames, or start each branch with the same PerFrame")

    def _input_info(self, params: dict) -> NodeInfo:
        shape = params["shape"]
        if shape is None:
            key = params["key"]
            if not self.input_shapes:
                return NodeInfo(params, error="has no shape: set its shape or choose a dataset")
            if key not in self.input_shapes:
                fields = ", ".join(self.input_shapes)
                return NodeInfo(params, error=f"the dataset has no field '{key}' (it has "
                                f"{fields})")
            shape = self.input_shapes[key]
        elif -1 in shape:
            return NodeInfo(params, error=f"shape {fmt_shape(shape)} may not contain -1")
        # a graph's fields keep their marks (node features N×F, edge_index 2×E)
        return NodeInfo(params, out_shapes={"out": shape if graph_level(shape) else tuple(shape)})

    def _gather(self, node_id: str, spec) -> tuple[dict, str | None]:
        """Input shapes per port; the second item is None when all are known, '' when an
        upstream node is broken (no error of our own), or a message for a missing wire."""
        ins: dict[str, list] = {}
        blocked = False
        for port in spec.inputs:
            edges = self.graph.in_edges(node_id, port.name)
            if not edges:
                if port.multi:
                    ins[port.name] = []
                    continue
                if port.optional:
                    continue
                where = "" if len(spec.inputs) == 1 else f" on '{port.name}'"
                return ins, f"needs an input{where}; nothing is connected to it"
            shapes = []
            for e in edges:
                src = self.info.get(e.src)
                shape = src.out_shapes.get(e.src_port) if src else None
                if shape is None and src is not None and src.out_shapes:
                    ports = ", ".join(src.out_shapes)
                    return ins, (f"reads {e.src}'s output '{e.src_port}', which it does not "
                                 f"have (its outputs: {ports}); wire one of them")
                if shape is None:
                    blocked = True
                else:
                    shapes.append(In.of(shape, e.src))
            ins[port.name] = shapes
        return ins, ("" if blocked else None)

    # -- graph events ----------------------------------------------------------------------
    def _on_node(self, node_id: str) -> None:
        self.update(node_id)

    def _on_added(self, node_id: str) -> None:
        if self._rank is not None:  # a new node has no wires yet: last is a valid place
            self._rank[node_id] = max(self._rank.values(), default=-1) + 1
        self.update(node_id)

    def _on_edge_added(self, edge: Edge) -> None:
        rank = self._rank
        if rank is not None and rank[edge.src] >= rank[edge.dst]:
            self._rank = None  # the order must change; recomputed when next needed
        self._on_edge(edge)

    def _on_edge(self, edge: Edge) -> None:
        if edge.dst in self.graph:
            self.update(edge.dst)

    def _on_removed(self, node_id: str) -> None:
        self.info.pop(node_id, None)
        if self._rank is not None:
            self._rank.pop(node_id, None)
        self.updated.emit({node_id})

    def _on_renamed(self, old: str, new: str) -> None:
        self.info[new] = self.info.pop(old)
        if self._rank is not None:
            self._rank[new] = self._rank.pop(old)
        self.update(new, force=True)


def infer_shapes(graph: Graph, input_shapes: dict | None = None) -> ShapeInference:
    """One-shot inference that does not follow later edits."""
    return ShapeInference(graph, input_shapes, live=False)
