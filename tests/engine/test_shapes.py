"""Shape inference: shapes on wires, error sentences on nodes, incremental updates."""
from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import GraphError
from engine.graph import Edge, Graph
from engine.shapes import ShapeInference, infer_shapes


def build(nodes, edges, name="model") -> Graph:
    """nodes: [(id, type, params)], edges: ["a -> b" or "a.port -> b.port"]."""
    g = Graph(name)
    for node_id, type_, params in nodes:
        g.add_node(type_, node_id, params)
    for text in edges:
        src, dst = (part.strip() for part in text.split("->"))
        src, _, src_port = src.partition(".")
        dst, _, dst_port = dst.partition(".")
        g.connect(src, dst, src_port or "out", dst_port or "in")
    return g


def linear(n):
    return {"out_features": n}


def chain_graph() -> Graph:
    """x -> l1 -> r1 -> l2 -> r2 -> l3 -> y, all Linear(8) with LeakyReLU between."""
    return build([("x", "Input", {"shape": [8]}), ("l1", "Linear", linear(8)),
                  ("r1", "LeakyReLU", {}), ("l2", "Linear", linear(8)),
                  ("r2", "LeakyReLU", {}), ("l3", "Linear", linear(8)), ("y", "Output", {})],
                 ["x -> l1", "l1 -> r1", "r1 -> l2", "l2 -> r2", "r2 -> l3", "l3 -> y"])


def residual_graph() -> Graph:
    """A chain with a residual Add and a side branch into a Concat."""
    return build(
        [("x", "Input", {"shape": [8]}), ("l1", "Linear", linear(8)), ("r1", "ReLU", {}),
         ("l2", "Linear", linear(8)), ("add", "Add", {}), ("side", "Linear", linear(4)),
         ("cat", "Concat", {}), ("l3", "Linear", linear(2)), ("y", "Output", {})],
        ["x -> l1", "l1 -> r1", "r1 -> l2", "l2 -> add", "r1 -> add", "add -> side",
         "add -> cat", "side -> cat", "cat -> l3", "l3 -> y"])


def errors_of(graph: Graph, input_shapes=None) -> dict:
    return infer_shapes(graph, input_shapes).errors()


# -- shapes and stats ----------------------------------------------------------------------
def test_edges_carry_shapes_and_nodes_their_stats():
    g = residual_graph()
    shapes = infer_shapes(g)
    assert shapes.is_valid()
    assert shapes.edge_shape(Edge("add", "cat")) == (8,)
    assert shapes.info["cat"].out_shape == (12,)
    assert shapes.info["y"].out_shape == (2,)
    assert shapes.info["l1"].stats.params == 8 * 8 + 8
    assert shapes.info["l1"].stats.macs == 64
    assert shapes.info["l3"].stats.params == 12 * 2 + 2
    assert shapes.totals() == (72 + 72 + 36 + 26, 72 + 72 + 36 + 26)


def test_input_shape_comes_from_the_dataset_unless_given():
    g = build([("x", "Input", {}), ("img", "Input", {"key": "img"}), ("l", "Linear", linear(3)),
               ("y", "Output", {}), ("y2", "Output", {})],
              ["x -> l", "l -> y", "img -> y2"])
    shapes = infer_shapes(g, {"x": (5,), "y": ()})
    assert shapes.info["l"].out_shape == (3,)
    assert shapes.errors() == {"img": "the dataset has no field 'img' (it has x, y)"}
    assert infer_shapes(g).errors()["x"] == "has no shape: set its shape or choose a dataset"
    g.set_param("x", "shape", [2, -1])
    assert infer_shapes(g, {"x": (5,)}).errors()["x"] == "shape (2, -1) may not contain -1"


# -- error sentences -----------------------------------------------------------------------
def test_shape_mismatch_names_both_sources():
    g = build([("x", "Input", {"shape": [4]}), ("fc1", "Linear", linear(16)),
               ("fc3", "Linear", linear(32)), ("add", "Add", {}), ("y", "Output", {})],
              ["x -> fc1", "x -> fc3", "fc1 -> add", "fc3 -> add", "add -> y"])
    assert errors_of(g) == {"add": "Add needs inputs of one shape; got (16,) from fc1 and "
                                   "(32,) from fc3"}


def test_wrong_input_count():
    g = build([("x", "Input", {"shape": [4]}), ("add", "Add", {}), ("y", "Output", {})],
              ["x -> add", "add -> y"])
    assert errors_of(g) == {"add": "Add needs two or more inputs; got 1"}


def test_bad_parameters_are_named():
    g = chain_graph()
    g.set_param("l1", "out_features", -3)
    g.set_param("r1", "negative_slop", 0.1)
    g.set_param("l2", "bias", "yes")
    g.set_params("l3", {})
    assert errors_of(g) == {
        "l1": "out_features must be at least 1; got -3",
        "r1": "LeakyReLU has no parameter 'negative_slop'; did you mean 'negative_slope'?",
        "l2": "bias must be true or false; got 'yes'",
        "l3": "Linear needs out_features (number of output units); it is not set",
    }


def test_dangling_input_and_unused_nodes():
    g = build([("x", "Input", {"shape": [4]}), ("fc", "Linear", linear(2)),
               ("lost", "ReLU", {}), ("z", "Reparameterize", {}), ("y", "Output", {}),
               ("y2", "Output", {})],
              ["fc -> y", "x -> lost", "x -> z.mu", "z -> y2"])
    assert errors_of(g) == {
        "fc": "needs an input; nothing is connected to it",
        "z": "needs an input on 'logvar'; nothing is connected to it",
        "lost": "does not lead to an Output; connect it or delete it",
    }


def test_unconnected_input_and_empty_models():
    g = build([("x", "Input", {"shape": [4]}), ("y", "Output", {})], [])
    shapes = infer_shapes(g)
    assert shapes.errors() == {"x": "this Input is not connected to anything",
                               "y": "needs an input; nothing is connected to it"}
    assert infer_shapes(Graph()).model_problems() == ["the model has no Input node",
                                                      "the model has no Output node"]


def test_rank_errors_explain_what_the_layer_needs():
    g = build([("x", "Input", {"shape": [64]}), ("conv", "Conv2d",
                                                 {"out_channels": 4, "kernel_size": 3}),
               ("y", "Output", {})], ["x -> conv", "conv -> y"])
    assert errors_of(g)["conv"] == ("Conv2d needs an image shaped (channels, height, width); "
                                    "got (64,) from x. Add a Reshape before it to give the "
                                    "data channels")
    g.set_param("x", "shape", [1, 2, 2])
    assert "kernel (3, 3) does not fit input size (2, 2)" in errors_of(g)["conv"]


def test_an_upstream_error_does_not_cascade():
    g = chain_graph()
    g.set_param("l1", "out_features", 0)
    shapes = infer_shapes(g)
    assert list(shapes.errors()) == ["l1"]
    assert shapes.info["l2"].out_shapes == {} and shapes.info["l2"].error is None
    assert not shapes.is_valid()


def test_a_broken_rule_is_an_error_not_a_crash(monkeypatch):
    from engine.layers import CATALOG

    def boom(p, ins):
        raise ZeroDivisionError("oops")

    monkeypatch.setitem(CATALOG, "LeakyReLU", dataclasses.replace(CATALOG["LeakyReLU"],
                                                                  infer=boom))
    errs = errors_of(chain_graph())
    assert errs["r1"] == "internal error in the LeakyReLU shape rule: ZeroDivisionError('oops')"


# -- incremental ---------------------------------------------------------------------------
def recorded(shapes: ShapeInference) -> list:
    seen = []
    shapes.updated.connect(seen.append)
    return seen


def test_a_parameter_edit_recomputes_only_downstream_and_stops_early():
    g = chain_graph()
    shapes = ShapeInference(g)
    seen = recorded(shapes)
    g.set_param("r2", "negative_slope", 0.2)
    assert seen == [{"r2"}]
    g.set_param("l2", "out_features", 4)
    assert seen[-1] == {"l2", "r2", "l3"}
    assert shapes.info["l3"].stats.params == 4 * 8 + 8
    g.set_param("l3", "out_features", 3)
    assert seen[-1] == {"l3", "y"} and shapes.info["y"].out_shape == (3,)


def test_wiring_edits_update_the_nodes_they_touch():
    g = residual_graph()
    shapes = ShapeInference(g)
    seen = recorded(shapes)
    g.disconnect(Edge("side", "cat"))
    assert seen[-1] == {"cat", "l3", "y"}
    assert shapes.errors()["cat"] == "Concat needs two or more inputs; got 1"
    g.connect("side", "cat")
    assert shapes.is_valid()
    g.rename_node("r1", "act")
    assert seen[-1] == {"act", "l2", "add"}
    g.set_param("x", "shape", [5])
    assert seen[-1] == {"x", "l1"} and shapes.is_valid()
    assert shapes.info["l1"].stats.params == 5 * 8 + 8
    node, wires = g.remove_node("l2")
    assert "l2" not in shapes.info and shapes.errors()["add"].startswith("Add needs two")
    g.restore_node(node, wires)
    assert shapes.is_valid()
    shapes.detach()
    g.set_param("l3", "out_features", 7)
    assert shapes.info["l3"].out_shape == (2,)


def test_renamed_source_is_named_in_messages():
    g = build([("x", "Input", {"shape": [4]}), ("fc1", "Linear", linear(16)),
               ("fc3", "Linear", linear(32)), ("add", "Add", {}), ("y", "Output", {})],
              ["x -> fc1", "x -> fc3", "fc1 -> add", "fc3 -> add", "add -> y"])
    shapes = ShapeInference(g)
    g.rename_node("fc1", "first")
    assert shapes.errors()["add"] == ("Add needs inputs of one shape; got (16,) from first "
                                      "and (32,) from fc3")


def snapshot(shapes: ShapeInference) -> dict:
    return {n: (i.params, {p: [(tuple(s), s.src) for s in v] for p, v in i.in_shapes.items()},
                i.out_shapes, i.error, i.stats)
            for n, i in shapes.info.items()}


# One random edit: (kind, index, value); indices pick among the graph's current nodes/edges.
EDIT = st.tuples(st.sampled_from(["width", "slope", "disconnect", "connect", "remove",
                                  "rename", "add", "shape"]),
                 st.integers(0, 50), st.sampled_from([2, 4, 8]))


def apply_edit(g: Graph, edit, undo: list) -> None:
    kind, i, value = edit
    ids = g.node_ids()
    node_id = ids[i % len(ids)] if ids else None
    try:
        if kind == "width":
            linears = [n.id for n in g.nodes_of_type("Linear")]
            if linears:
                g.set_param(linears[i % len(linears)], "out_features", value)
        elif kind == "slope" and node_id:
            g.set_param(node_id, "negative_slope", value / 10)
        elif kind == "disconnect" and g.edges():
            g.disconnect(g.edges()[i % len(g.edges())])
        elif kind == "connect" and node_id:
            g.connect(node_id, ids[(i * 7 + value) % len(ids)])
        elif kind == "remove" and node_id:
            undo.append(g.remove_node(node_id))
        elif kind == "rename" and node_id:
            g.rename_node(node_id, f"{node_id}_{value}")
        elif kind == "add":
            if undo:
                g.restore_node(*undo.pop())
            else:
                g.add_node(["Linear", "ReLU", "Add"][i % 3], None, {"out_features": value})
        elif kind == "shape" and g.nodes_of_type("Input"):
            g.set_param(g.nodes_of_type("Input")[0].id, "shape", [value])
    except GraphError:
        pass  # refused edits (cycles, duplicates) are part of the mix


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(EDIT, min_size=1, max_size=25), start=st.sampled_from(["chain", "res"]))
def test_incremental_results_equal_a_fresh_pass(edits, start):
    g = chain_graph() if start == "chain" else residual_graph()
    live = ShapeInference(g)
    undo: list = []
    for edit in edits:
        apply_edit(g, edit, undo)
        assert snapshot(live) == snapshot(infer_shapes(g))
    assert live.errors() == infer_shapes(g).errors()
