"""Undo commands: act, undo, assert the model; redo, assert again."""
from __future__ import annotations

import copy

import pytest
from PySide6.QtGui import QUndoStack

from engine.graph import UNSET, Edge, Graph
from engine.layout import layered_layout
from engine.project import graph_to_dict
from gui import commands as C


@pytest.fixture
def stack(qapp):
    return QUndoStack()


def chain() -> Graph:
    g = Graph()
    g.add_node("Input", "x", {"shape": [4]}, (0, 0))
    g.add_node("Linear", "fc", {"out_features": 8}, (170, 0))
    g.add_node("ReLU", "a", None, (340, 0))
    g.add_node("Output", "y", None, (510, 0))
    for s, d in (("x", "fc"), ("fc", "a"), ("a", "y")):
        g.connect(s, d)
    return g


def state(graph) -> dict:
    """The graph as the file holds it; node order aside (a restored node is listed last)."""
    d = copy.deepcopy(graph_to_dict(graph))
    d["nodes"] = sorted(d["nodes"], key=lambda n: n["id"])
    return d


def roundtrip(stack, graph, command):
    """Push, undo, redo; check undo restores the model and redo repeats the change."""
    before = state(graph)
    stack.push(command)
    after = state(graph)
    assert after != before
    stack.undo()
    assert state(graph) == before
    stack.redo()
    assert state(graph) == after


def test_add_node_keeps_its_id_across_redo(stack):
    g = chain()
    cmd = C.AddNode(g, "Dropout", (100, 200))
    roundtrip(stack, g, cmd)
    assert g.node(cmd.node_id).pos == (100, 200) and cmd.node_id == "drop1"


def test_remove_items_restores_nodes_wires_and_concat_order(stack):
    g = Graph()
    g.add_node("Input", "x", {"shape": [4]})
    for n in ("a", "b", "c"):
        g.add_node("Linear", n, {"out_features": 2})
        g.connect("x", n)
    g.add_node("Concat", "cat")
    for n in ("a", "b", "c"):
        g.connect(n, "cat")
    roundtrip(stack, g, C.RemoveItems(g, ["b"], [Edge("a", "cat")]))
    assert [e.src for e in g.in_edges("cat")] == ["c"]
    stack.undo()
    assert [e.src for e in g.in_edges("cat")] == ["a", "b", "c"]


def test_connect_disconnect_rename_setparam(stack):
    g = chain()
    roundtrip(stack, g, C.Disconnect(g, Edge("fc", "a")))
    roundtrip(stack, g, C.Connect(g, Edge("x", "a")))
    roundtrip(stack, g, C.Rename(g, "fc", "hidden"))
    assert "hidden" in g and "fc" not in g
    roundtrip(stack, g, C.SetParam(g, "hidden", "out_features", 16))
    assert g.node("hidden").params["out_features"] == 16
    roundtrip(stack, g, C.SetParam(g, "hidden", "out_features", UNSET))
    assert "out_features" not in g.node("hidden").params


def test_moves_merge_only_when_mergeable(stack):
    g = chain()
    stack.push(C.MoveNodes(g, {"fc": ((170, 0), (180, 0))}, mergeable=True))
    stack.push(C.MoveNodes(g, {"fc": ((180, 0), (190, 0))}, mergeable=True))
    assert stack.count() == 1 and g.node("fc").pos == (190, 0)
    stack.push(C.MoveNodes(g, {"fc": ((190, 0), (300, 50))}))
    assert stack.count() == 2
    stack.undo()
    stack.undo()
    assert g.node("fc").pos == (170, 0)


def test_paste_redo_recreates_the_same_ids(stack):
    g = chain()
    frag = g.fragment(["fc", "a"])
    cmd = C.Paste(g, frag, (0, 100))
    roundtrip(stack, g, cmd)
    assert cmd.new_ids == ["fc1", "relu1"] and Edge("fc1", "relu1") in g.edges()
    assert g.node("fc1").pos == (170, 100)


def test_autolayout_is_one_step(stack):
    g = chain()
    for n in g.node_ids():
        g.set_pos(n, (0, 0))
    roundtrip(stack, g, C.AutoLayout(g, layered_layout(g)))
    assert len({g.node(n).pos for n in g.node_ids()}) == 4
    assert stack.count() == 1


def test_insert_after_routes_wires_through_the_new_layer(stack):
    g = chain()
    cmd = C.insert_after(g, "Dropout", "fc", {"p": 0.2})
    roundtrip(stack, g, cmd)
    assert [e.dst for e in g.out_edges("fc")] == ["drop1"]
    assert [e.dst for e in g.out_edges("drop1")] == ["a"]
    assert g.node("a").pos == (510, 0)  # made room
    assert stack.count() == 1


def test_insert_after_a_node_with_no_outputs_only_adds(stack):
    g = chain()
    stack.push(C.insert_after(g, "ReLU", "y"))
    assert "relu1" in g and not g.in_edges("relu1")
