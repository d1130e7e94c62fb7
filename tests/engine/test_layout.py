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


def chain(length: int) -> Graph:
    g = Graph()
    ids = [f"n{i}" for i in range(length)]
    g.add_node("Input", ids[0], {"shape": [2]})
    for prev, node_id in zip(ids, ids[1:]):
        g.add_node("ReLU", node_id)
        g.connect(prev, node_id)
    return g


def residual_chain() -> Graph:
    """A chain of 14 with a skip from n3 over n4..n8 into an Add at n9."""
    g = chain(9)
    for i in range(9, 14):
        g.add_node("Add" if i == 9 else "ReLU", f"n{i}")
        g.connect(f"n{i - 1}", f"n{i}")
    g.connect("n3", "n9")
    return g


def rows_of(pos: dict) -> list[list[str]]:
    """Node ids by row (rows stacked top to bottom, each read left to right)."""
    rows: dict[float, list] = {}
    for node, (x, y) in pos.items():
        rows.setdefault(y, []).append((x, node))
    return [[n for _, n in sorted(rows[y])] for y in sorted(rows)]


def size(pos: dict) -> tuple[float, float]:
    xs, ys = [x for x, _ in pos.values()], [y for _, y in pos.values()]
    return max(xs) - min(xs) + 120, max(ys) - min(ys) + 90


@pytest.mark.parametrize("path", example_paths(), ids=lambda p: p.name.split(".")[0])
def test_every_example_lays_out_cleanly(path):
    for graph in load_project(path).models.values():
        pos = layered_layout(graph)
        assert no_overlap(pos, 200, 110)
        width, height = size(pos)
        assert width <= 1320 and height <= 600  # fits a 1400x860 window's canvas readably
        forward = [e for e in graph.edges() if pos[e.src][0] < pos[e.dst][0]]
        back = [e for e in graph.edges() if e not in forward]
        assert all(pos[e.dst][1] > pos[e.src][1] for e in back)  # only to a row below
        assert len(back) < len(forward) / 2
        unwrapped = layered_layout(graph, fit=None)
        assert all(unwrapped[e.src][0] < unwrapped[e.dst][0] for e in graph.edges())


def test_a_long_chain_wraps_into_rows_shaped_like_the_canvas():
    pos = layered_layout(chain(12))
    assert rows_of(pos) == [[f"n{i}" for i in range(r, r + 4)] for r in (0, 4, 8)]
    assert pos["n0"] == (0.0, 0.0) and pos["n4"] == (0.0, 165.0)  # each row starts left
    width, height = size(pos)
    assert 1.2 <= width / height <= 2.5
    wide = layered_layout(chain(12), fit=(2000, 300))
    assert len(rows_of(wide)) == 2


def test_a_short_chain_stays_in_one_row():
    assert len(rows_of(layered_layout(chain(4)))) == 1
    assert len(rows_of(layered_layout(chain(30), fit=None))) == 1


def test_rows_break_between_blocks_not_through_a_skip_connection():
    pos = layered_layout(residual_chain())
    rows = rows_of(pos)
    assert len(rows) > 1
    row_of = {node: i for i, row in enumerate(rows) for node in row}
    assert row_of["n3"] == row_of["n9"]  # the skip's two ends share a row
    assert all(row == sorted(row, key=lambda n: int(n[1:])) for row in rows)


def test_parallel_branches_stay_side_by_side_in_one_row():
    g = Graph()
    g.add_node("Input", "x", {"shape": [2]})
    g.add_node("Concat", "join")
    for branch in ("a", "b", "c"):
        g.add_node("Linear", branch, {"out_features": 4})
        g.connect("x", branch)
        g.connect(branch, "join")
    prev = "join"
    for i in range(10):  # a tail long enough to wrap
        g.add_node("ReLU", f"t{i}")
        g.connect(prev, f"t{i}")
        prev = f"t{i}"
    pos = layered_layout(g)
    assert len({y for _, y in pos.values()}) > 3  # wrapped
    for branch in ("a", "b", "c"):  # every branch wire still runs right, within one row
        assert pos["x"][0] < pos[branch][0] < pos["join"][0]
    assert sorted(pos[b][1] for b in "abc") == [-110.0, 0.0, 110.0]
    assert no_overlap(pos, 200, 110)


def test_layout_imports_no_qt():
    code = "import sys, engine.layout; print(any(m.startswith('PySide6') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=str(__import__("pathlib").Path(__file__).parents[2]))
    assert out.stdout.strip() == "False"
