"""Automatic layout: layered left to right, no two nodes on one spot, no Qt."""
from __future__ import annotations

import subprocess
import sys
from itertools import combinations

import pytest

from engine.examples import example_paths
from engine.graph import Graph
from engine.layout import layered_layout
from engine.project import load_project


def no_overlap(pos: dict, dx: float, dy: float) -> bool:
    return all(abs(a[0] - b[0]) >= dx or abs(a[1] - b[1]) >= dy
               for a, b in combinations(pos.values(), 2))


def branching() -> Graph:
    g = Graph()
    g.add_node("Input", "x", {"shape": [2]})
    for branch in ("a", "b", "c"):
        g.add_node("Linear", branch, {"out_features": 4})
        g.connect("x", branch)
    g.add_node("Concat", "join")
    for branch in ("a", "b", "c"):
        g.connect(branch, "join")
    g.add_node("Concat", "skip")
    g.connect("join", "skip")
    g.connect("x", "skip")  # a long skip past the branches
    g.add_node("Output", "y")
    g.connect("skip", "y")
    return g


def test_every_wire_points_right_and_no_nodes_overlap():
    g = branching()
    pos = layered_layout(g)
    assert set(pos) == set(g.node_ids())
    assert all(pos[e.src][0] < pos[e.dst][0] for e in g.edges())
    assert no_overlap(pos, 200, 110)


def test_branches_spread_vertically_around_the_main_line():
    pos = layered_layout(branching(), dx=150, dy=100)
    assert pos["x"] == (0.0, 0.0)
    ys = sorted(pos[b][1] for b in "abc")
    assert ys == [-100.0, 0.0, 100.0]
    assert {pos[b][0] for b in "abc"} == {150.0}
    assert pos["join"][1] == 0.0


def test_disconnected_parts_are_stacked_without_overlap():
    g = branching()
    g.add_node("Input", "x2", {"shape": [3]})
    g.add_node("Output", "y2")
    g.connect("x2", "y2")
    g.add_node("ReLU", "lonely")
    pos = layered_layout(g)
    assert no_overlap(pos, 200, 110)
    assert pos["y2"][0] > pos["x2"][0]


def test_empty_graph_and_determinism():
    assert layered_layout(Graph()) == {}
    assert layered_layout(branching()) == layered_layout(branching())


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.name.split(".")[0])
def test_every_example_lays_out_cleanly(path):
    for graph in load_project(path).models.values():
        pos = layered_layout(graph)
        assert all(pos[e.src][0] < pos[e.dst][0] for e in graph.edges())
        assert no_overlap(pos, 200, 110)


def test_layout_imports_no_qt():
    code = "import sys, engine.layout; print(any(m.startswith('PySide6') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert out.stdout.strip() == "False"
