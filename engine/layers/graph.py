"""Graph layers: message passing from torch_geometric (PyG) and a pooling per graph.

A graph dataset gives node features ``x`` (N×F: the N nodes travel in the batch dimension),
an ``edge_index`` (2×E: source and target node of every edge) and, for many small graphs
batched together, ``batch`` (the graph each node belongs to). ``GCNConv``, ``GATConv``,
``SAGEConv`` and ``GINConv`` take ``x`` and ``edge_index`` and give new node features, N×F';
between them any per-node layer (Linear, ReLU, Dropout, ...) runs on every node. ``GraphPool``
reduces the nodes of each graph to one vector (mean, max or sum), so that a graph-level head
(Linear, then Output) classifies whole graphs.

The convolutions are PyG's own modules (``torch_geometric.nn``), built lazily so that the window
starts without importing PyG; ``GINConv`` wraps PyG's ``GINConv`` around its two-layer MLP.
"""
from __future__ import annotations

from .rules import need_rank
from .spec import (BOOL, CHOICE, FLOAT, INT, InPort, LayerSpec, ModuleCall, NodeShape, Param,
                   ShapeError, Stats, fmt_shape, graph_label, graph_level)

CONV_PORTS = (InPort("x"), InPort("edge_index"))


def _node_features(layer: str, ins: dict) -> tuple:
    """The x port's shape, checked to be node features (F,) of a graph, and the edge_index."""
    x = ins["x"][0]
    if graph_level(x) != "nodes":
        raise ShapeError(f"{layer} needs node features (N×F) on x, from a graph dataset's x "
                         f"field or another graph layer; got {fmt_shape(x)} from {x.src}")
    need_rank(layer, x, (1,), "one feature vector per node, N×F")
    edges = ins.get("edge_index", [None])[0]
    if edges is not None and graph_level(edges) != "edges":
        raise ShapeError(f"{layer} needs the graph's edge_index (2×E) on edge_index, from the "
                         f"dataset's edge_index field; got {fmt_shape(edges)} from {edges.src}")
    return x, edges


def _per_node(out_features: int, x) -> dict:
    return {"out": NodeShape.of((out_features,), x.nodes)}


def _nodes(x) -> int:
    return max(getattr(x, "nodes", 0), 1)


def _edges(ins) -> int:
    edges = ins.get("edge_index", [None])[0]
    return max(getattr(edges, "edges", 0), 1)


# -- GCNConv ---------------------------------------------------------------------------------
def _gcn_infer(p, ins):
    x, _ = _node_features("GCNConv", ins)
    if p["add_self_loops"] and not p["normalize"]:
        raise ShapeError("GCNConv adds self loops only while it normalises (PyG's rule); turn "
                         "add_self_loops off too, or normalize back on")
    return _per_node(p["out_channels"], x)


def _gcn_stats(p, ins, outs):
    f_in, f_out = ins["x"][0][0], p["out_channels"]
    n = f_in * f_out + (f_out if p["bias"] else 0)
    return Stats(n, n, _nodes(ins["x"][0]) * f_in * f_out + _edges(ins) * f_out)


def _gcn_module(p, ins):
    return ModuleCall("pyg.GCNConv", {
        "in_channels": ins["x"][0][0], "out_channels": p["out_channels"],
        "improved": p["improved"], "add_self_loops": p["add_self_loops"],
        "normalize": p["normalize"], "bias": p["bias"]})


# -- GATConv ---------------------------------------------------------------------------------
def _gat_width(p) -> int:
    return p["out_channels"] * p["heads"] if p["concat"] else p["out_channels"]


def _gat_infer(p, ins):
    x, _ = _node_features("GATConv", ins)
    return _per_node(_gat_width(p), x)


def _gat_stats(p, ins, outs):
    f_in, f_out, heads = ins["x"][0][0], p["out_channels"], p["heads"]
    n = f_in * heads * f_out + 2 * heads * f_out + (_gat_width(p) if p["bias"] else 0)
    return Stats(n, n, _nodes(ins["x"][0]) * f_in * heads * f_out
                 + _edges(ins) * heads * f_out * 3)


def _gat_module(p, ins):
    return ModuleCall("pyg.GATConv", {
        "in_channels": ins["x"][0][0], "out_channels": p["out_channels"], "heads": p["heads"],
        "concat": p["concat"], "negative_slope": p["negative_slope"], "dropout": p["dropout"],
        "add_self_loops": p["add_self_loops"], "bias": p["bias"]})


# -- SAGEConv --------------------------------------------------------------------------------
def _sage_infer(p, ins):
    x, _ = _node_features("SAGEConv", ins)
    return _per_node(p["out_channels"], x)


def _sage_stats(p, ins, outs):
    f_in, f_out = ins["x"][0][0], p["out_channels"]
    n = f_in * f_out + (f_out if p["bias"] else 0) + (f_in * f_out if p["root_weight"] else 0)
    lins = 2 if p["root_weight"] else 1
    return Stats(n, n, _nodes(ins["x"][0]) * f_in * f_out * lins + _edges(ins) * f_in)


def _sage_module(p, ins):
    return ModuleCall("pyg.SAGEConv", {
        "in_channels": ins["x"][0][0], "out_channels": p["out_channels"], "aggr": p["aggr"],
        "normalize": p["normalize"], "root_weight": p["root_weight"], "bias": p["bias"]})


# -- GINConv ---------------------------------------------------------------------------------
def _gin_hidden(p) -> int:
    return p["hidden"] or p["out_channels"]


def _gin_infer(p, ins):
    x, _ = _node_features("GINConv", ins)
    return _per_node(p["out_channels"], x)


def _gin_stats(p, ins, outs):
    f_in, hidden, f_out = ins["x"][0][0], _gin_hidden(p), p["out_channels"]
    n = f_in * hidden + hidden + hidden * f_out + f_out
    trainable = n + (1 if p["train_eps"] else 0)
    return Stats(trainable, trainable,
                 _nodes(ins["x"][0]) * (f_in * hidden + hidden * f_out) + _edges(ins) * f_in)


def _gin_module(p, ins):
    return ModuleCall("GIN", {
        "in_channels": ins["x"][0][0], "out_channels": p["out_channels"],
        "hidden": _gin_hidden(p), "train_eps": p["train_eps"], "eps": p["eps"]})


# -- GraphPool -------------------------------------------------------------------------------
def _pool_infer(p, ins):
    x, _ = _node_features("GraphPool", {"x": ins["x"]})
    batch = ins.get("batch", [None])[0]
    if batch is not None and (graph_level(batch) != "nodes" or len(batch) != 0):
        raise ShapeError("GraphPool's batch port takes the graph id of every node (the "
                         "dataset's batch field, N); got "
                         f"{graph_label(batch) or fmt_shape(batch)} from {batch.src}")
    return {"out": (x[0],)}


def _pool_stats(p, ins, outs):
    return Stats(0, 0, _nodes(ins["x"][0]) * ins["x"][0][0])


def _conv_param(doc: str = "Features of every node after this layer.") -> Param:
    return Param("out_channels", INT, doc=doc, min=1, starter=16)


SPECS = [
    LayerSpec(
        "GCNConv", "Graph", "Graph convolution (Kipf & Welling): each node averages its "
        "neighbours' transformed features, weighted by degree.",
        params=(
            _conv_param(),
            Param("improved", BOOL, False, "Weigh a node's own features twice (Â = A + 2I)."),
            Param("add_self_loops", BOOL, True, "Let every node also see its own features."),
            Param("normalize", BOOL, True, "Normalise by the square roots of the degrees."),
            Param("bias", BOOL, True, "Learn an additive bias."),
        ),
        inputs=CONV_PORTS, infer=_gcn_infer, stats=_gcn_stats, module=_gcn_module,
        shape_doc="x N×F, edge_index 2×E → N×out_channels; add_self_loops needs normalize.",
        key_params=("out_channels",), extra={"graph": "conv"}),
    LayerSpec(
        "GATConv", "Graph", "Graph attention (Veličković et al.): each node weighs its "
        "neighbours by learned attention, with several heads.",
        params=(
            _conv_param("Features per head of every node after this layer."),
            Param("heads", INT, 1, "Number of attention heads.", min=1, max=64),
            Param("concat", BOOL, True, "Concatenate the heads (heads × out_channels "
                  "features); otherwise average them."),
            Param("negative_slope", FLOAT, 0.2, "Slope of the LeakyReLU in the attention "
                  "scores.", min=0.0, max=1.0),
            Param("dropout", FLOAT, 0.0, "Dropout on the attention weights while training.",
                  min=0.0, max=0.99),
            Param("add_self_loops", BOOL, True, "Let every node also attend to itself."),
            Param("bias", BOOL, True, "Learn an additive bias."),
        ),
        inputs=CONV_PORTS, infer=_gat_infer, stats=_gat_stats, module=_gat_module,
        shape_doc="x N×F, edge_index 2×E → N×(heads·out_channels) with concat, "
                  "N×out_channels without.",
        key_params=("out_channels", "heads"), extra={"graph": "conv"}),
    LayerSpec(
        "SAGEConv", "Graph", "GraphSAGE (Hamilton et al.): a node's features plus an "
        "aggregate (mean, max or sum) of its neighbours'.",
        params=(
            _conv_param(),
            Param("aggr", CHOICE, "mean", "How the neighbours' features are combined.",
                  choices=("mean", "max", "sum")),
            Param("normalize", BOOL, False, "Scale every output vector to length 1."),
            Param("root_weight", BOOL, True, "Add the node's own transformed features."),
            Param("bias", BOOL, True, "Learn an additive bias."),
        ),
        inputs=CONV_PORTS, infer=_sage_infer, stats=_sage_stats, module=_sage_module,
        shape_doc="x N×F, edge_index 2×E → N×out_channels.",
        key_params=("out_channels", "aggr"), extra={"graph": "conv"}),
    LayerSpec(
        "GINConv", "Graph", "Graph isomorphism network (Xu et al.): a two-layer MLP on the "
        "node's features plus the sum of its neighbours'.",
        params=(
            _conv_param(),
            Param("hidden", INT, None, "Width of the MLP's hidden layer (out_channels when "
                  "empty).", min=1, optional=True),
            Param("train_eps", BOOL, False, "Learn ε, the weight of the node's own features."),
            Param("eps", FLOAT, 0.0, "Initial ε: the node's own features count (1 + ε).",
                  min=-10.0, max=10.0),
        ),
        inputs=CONV_PORTS, infer=_gin_infer, stats=_gin_stats, module=_gin_module,
        shape_doc="x N×F, edge_index 2×E → N×out_channels (hidden sizes only the MLP "
                  "inside).",
        key_params=("out_channels",), extra={"graph": "conv"}),
    LayerSpec(
        "GraphPool", "Graph", "One vector per graph: the mean, max or sum of its nodes' "
        "features (batch says which graph each node is in; without it, all nodes pool).",
        params=(Param("mode", CHOICE, "mean", "How the nodes of a graph are reduced.",
                      choices=("mean", "max", "sum")),),
        inputs=(InPort("x"), InPort("batch", optional=True)), infer=_pool_infer,
        stats=_pool_stats, key_params=("mode",), extra={"graph": "pool"},
        shape_doc="x N×F (batch: the graph id of each of the N nodes) → F per graph: one row "
                  "per graph, or one row for all nodes without batch.",
        module=lambda p, ins: ModuleCall("GraphPool", {"mode": p["mode"]})),
]
