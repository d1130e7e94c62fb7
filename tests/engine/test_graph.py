"""The graph model: edits, their events, and the typed errors that refuse bad wiring."""
from __future__ import annotations

import pytest

from engine.errors import (CycleError, DuplicateEdgeError, DuplicateNodeError, GraphError,
                           LayerlabError, PortError, UnknownLayerError, UnknownNodeError)
from engine.events import Event
from engine.graph import UNSET, Edge, Graph
from engine.project import Project, dumps_project


def chain(*types: str) -> Graph:
    """Input -> types... -> Output, ids x, n1, n2, ..., y."""
    g = Graph()
    g.add_node("Input", "x", {"shape": [4]})
    prev = "x"
    for i, t in enumerate(types, 1):
        g.add_node(t, f"n{i}", g_params(t))
        g.connect(prev, f"n{i}")
        prev = f"n{i}"
    g.add_node("Output", "y")
    g.connect(prev, "y")
    return g


def g_params(type_: str) -> dict:
    return {"Linear": {"out_features": 4}}.get(type_, {})


class Recorder:
    """Connects to every graph event and records (event name, args) in order."""

    def __init__(self, graph: Graph):
        self.calls = []
        for event in graph.events:
            event.connect(lambda *args, name=event.name: self.calls.append((name, args)))

    def take(self):
        calls, self.calls = self.calls, []
        return calls


# -- events --------------------------------------------------------------------------------
def test_events_fire_in_order_with_their_arguments():
    g = Graph()
    rec = Recorder(g)
    g.add_node("Input", "x")
    g.add_node("Linear", "fc", {"out_features": 3})
    assert rec.take() == [("node_added", ("x",)), ("node_added", ("fc",))]
    edge = g.connect("x", "fc")
    assert rec.take() == [("edge_added", (Edge("x", "fc"),))]
    g.set_param("fc", "bias", False)
    g.set_params("fc", {"out_features": 5})
    g.set_pos("fc", (10, 20))
    assert rec.take() == [("params_changed", ("fc",))] * 2 + [("node_moved", ("fc",))]
    assert g.node("fc").params == {"out_features": 5} and g.node("fc").pos == (10, 20)
    g.rename_node("fc", "dense")
    assert rec.take() == [("node_renamed", ("fc", "dense"))]
    g.disconnect(Edge("x", "dense"))
    assert rec.take() == [("edge_removed", (Edge("x", "dense"),))]
    g.connect("x", "dense")
    rec.take()
    g.remove_node("x")
    assert rec.take() == [("edge_removed", (Edge("x", "dense"),)), ("node_removed", ("x",))]
    assert edge == Edge("x", "fc", "out", "in")


def test_set_param_unset_returns_to_the_default():
    g = Graph()
    g.add_node("Linear", "fc", {"out_features": 3, "bias": False})
    g.set_param("fc", "bias", UNSET)
    assert g.node("fc").params == {"out_features": 3}


def test_a_refused_edit_emits_nothing_and_changes_nothing():
    g = chain("Linear", "ReLU")
    rec = Recorder(g)
    before = g.edges()
    for bad in (lambda: g.connect("n2", "n1"), lambda: g.connect("x", "n1"),
                lambda: g.connect("n1", "n2", "last"), lambda: g.add_node("Linear", "n1"),
                lambda: g.add_node("Linaer"), lambda: g.rename_node("n1", "n2")):
        with pytest.raises(GraphError):
            bad()
    assert rec.calls == [] and g.edges() == before


def test_blocked_event_is_silent_inside_the_block_only():
    event, seen = Event("changed"), []
    event.connect(seen.append)
    with event.blocked():
        event.emit(1)
    event.emit(2)
    event.disconnect(seen.append)
    event.emit(3)
    assert seen == [2]


# -- refusals ------------------------------------------------------------------------------
def test_cycle_is_refused_naming_the_nodes():
    g = chain("Linear", "ReLU", "Linear")
    with pytest.raises(CycleError) as exc:
        g.connect("n3", "n1")
    assert "n3 -> n1" in str(exc.value) and "n1 -> n2 -> n3 -> n1" in str(exc.value)
    with pytest.raises(CycleError, match="n2 cannot feed itself"):
        g.connect("n2", "n2")


def test_unknown_ports_are_refused_naming_node_and_ports():
    g = chain("Linear")
    g.add_node("LSTM", "rnn", {"hidden_size": 4})
    with pytest.raises(PortError) as exc:
        g.connect("n1", "rnn", src_port="last")
    assert "n1 (Linear) has no output port 'last' (its outputs: out)" in str(exc.value)
    with pytest.raises(PortError) as exc:
        g.connect("x", "rnn", dst_port="query")
    assert "rnn (LSTM) has no input port 'query' (its inputs: in)" in str(exc.value)
    with pytest.raises(PortError, match="has no output port 'out' .*outputs: none"):
        g.connect("y", "rnn")


def test_duplicate_link_and_second_input_are_refused():
    g = chain("Linear")
    with pytest.raises(DuplicateEdgeError, match="x is already connected to n1"):
        g.connect("x", "n1")
    g.add_node("Input", "x2", {"shape": [4]})
    with pytest.raises(PortError, match="n1's input 'in' is already connected to x"):
        g.connect("x2", "n1")
    assert all(isinstance(e, LayerlabError) for e in (PortError(), CycleError()))


def test_unknown_nodes_and_types_are_refused():
    g = Graph()
    with pytest.raises(UnknownLayerError, match="unknown layer type 'Conv2D'; did you mean "
                                                 "'Conv2d'"):
        g.add_node("Conv2D")
    with pytest.raises(UnknownNodeError, match="there is no node 'ghost'"):
        g.connect("ghost", "ghost2")
    with pytest.raises(UnknownNodeError):
        g.remove_node("ghost")
    g.add_node("ReLU", "a")
    with pytest.raises(DuplicateNodeError, match="there is already a node 'a'"):
        g.add_node("ReLU", "a")
    with pytest.raises(GraphError, match="non-empty"):
        g.add_node("ReLU", "  ")
    with pytest.raises(GraphError, match="there is no wire a -> b"):
        g.disconnect(Edge("a", "b"))


# -- structure -----------------------------------------------------------------------------
def test_new_ids_are_readable_and_fresh():
    g = Graph()
    assert [g.add_node(t).id for t in ("Linear", "Linear", "Conv2d", "ReLU", "Input")] == \
        ["fc1", "fc2", "conv1", "relu1", "x1"]


def test_multi_input_port_order_is_edge_order():
    g = Graph()
    for n in ("a", "b", "c"):
        g.add_node("Input", n, {"shape": [2]})
    g.add_node("Concat", "cat")
    for n in ("c", "a", "b"):
        g.connect(n, "cat")
    assert [e.src for e in g.in_edges("cat")] == ["c", "a", "b"]
    assert g.predecessors("cat") == ["c", "a", "b"]
    g.disconnect(Edge("a", "cat"))
    g.connect("a", "cat")
    assert [e.src for e in g.in_edges("cat", "in")] == ["c", "b", "a"]


def test_remove_and_restore_give_back_the_same_wires_in_the_same_order():
    g = Graph()
    for n in ("a", "b", "c"):
        g.add_node("Input", n, {"shape": [2]})
    g.add_node("Add", "sum")
    g.add_node("ReLU", "act")
    g.add_node("Output", "y")
    g.connect("a", "sum")
    g.connect("b", "sum", extra={"color": "red"})
    g.connect("sum", "act")
    g.connect("c", "sum")
    g.connect("act", "y")
    edges_before = g.edges()
    node, wires = g.remove_node("sum")
    assert "sum" not in g and len(g.edges()) == 1
    rec = Recorder(g)
    g.restore_node(node, wires)
    assert g.edges() == edges_before
    assert [e.src for e in g.in_edges("sum")] == ["a", "b", "c"]
    assert g.edge_extra(Edge("b", "sum")) == {"color": "red"}
    assert [c[0] for c in rec.calls] == ["node_added"] + ["edge_added"] * 4


def residual() -> Graph:
    """x -> fc -> act -> sum(act, x) -> y, with positions: a skip wire into a multi-input."""
    g = Graph()
    for i, (node_id, type_, params) in enumerate((
            ("x", "Input", {"shape": [4]}), ("fc", "Linear", {"out_features": 4}),
            ("act", "ReLU", None), ("sum", "Add", None), ("y", "Output", None))):
        g.add_node(type_, node_id, params, (200 * i, 0))
    for src, dst in (("x", "fc"), ("fc", "act"), ("act", "sum"), ("x", "sum"), ("sum", "y")):
        g.connect(src, dst)
    return g


def saved(g: Graph) -> bytes:
    return dumps_project(Project("p", {"model": g})).encode("utf-8")


@pytest.mark.parametrize("deleted", [["fc"], ["act"], ["fc", "act"], ["x"]])
def test_undoing_a_delete_gives_back_the_same_file(deleted):
    g = residual()
    before = saved(g)
    removed = [g.remove_node(n) for n in deleted]
    assert saved(g) != before
    for node, wires in reversed(removed):  # as the undo stack does
        g.restore_node(node, wires)
    assert g.node_ids() == ["x", "fc", "act", "sum", "y"]
    assert [e.src for e in g.in_edges("sum")] == ["act", "x"]
    assert saved(g) == before


def test_a_restored_node_keeps_its_place_after_other_edits():
    g = residual()
    node, wires = g.remove_node("act")
    g.add_node("Dropout", "drop")
    g.restore_node(node, wires)
    assert g.node_ids() == ["x", "fc", "act", "sum", "y", "drop"]
    assert g.add_node("Tanh", "t") is g.node("t") and g.node_ids()[-1] == "t"


def test_rename_keeps_wires_order_and_position():
    g = chain("Linear", "ReLU", "Linear")
    g.set_pos("n2", (5, 6))
    g.rename_node("n2", "act")
    assert g.node_ids() == ["x", "n1", "act", "n3", "y"]
    assert [str(e) for e in g.edges()] == ["x -> n1", "n1 -> act", "act -> n3", "n3 -> y"]
    assert g.node("act").id == "act" and g.node("act").pos == (5, 6)
    assert "n2" not in g
    g.rename_node("act", "act")
    with pytest.raises(DuplicateNodeError):
        g.rename_node("act", "n1")


def test_topological_order_breaks_ties_by_insertion():
    g = Graph()
    g.add_node("Output", "y")
    g.add_node("Add", "sum")
    g.add_node("Input", "b", {"shape": [1]})
    g.add_node("Input", "a", {"shape": [1]})
    g.connect("a", "sum")
    g.connect("b", "sum")
    g.connect("sum", "y")
    assert g.topological_order() == ["b", "a", "sum", "y"]
    assert g.ancestors("y") == {"a", "b", "sum"} and g.descendants("a") == {"sum", "y"}
    assert g.successors("a") == ["sum"] and len(g) == 4 and "a" in g


def test_fragment_and_paste_rename_clashing_ids():
    g = chain("Linear", "ReLU")
    g.set_pos("n1", (100, 50))
    frag = g.fragment(["n2", "n1", "x"])
    assert [n["id"] for n in frag["nodes"]] == ["x", "n1", "n2"]
    assert frag["edges"] == [{"from": "x", "from_port": "out", "to": "n1", "to_port": "in"},
                             {"from": "n1", "from_port": "out", "to": "n2", "to_port": "in"}]
    frag["nodes"][1]["params"]["out_features"] = 99  # the fragment is a copy
    assert g.node("n1").params == {"out_features": 4}
    new = g.paste(frag, offset=(10, 10))
    assert new == ["x1", "fc1", "relu1"]
    assert g.node("fc1").pos == (110, 60) and g.node("fc1").params == {"out_features": 99}
    assert [e.src for e in g.in_edges("relu1")] == ["fc1"]
    assert [e.src for e in g.in_edges("fc1")] == ["x1"]
    other = Graph()
    assert other.paste(frag) == ["x", "n1", "n2"]
