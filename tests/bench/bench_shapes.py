"""Benchmark: shape inference on a 500-node graph, a full pass and one incremental edit.

The graph is a long chain of residual blocks (Linear -> ReLU -> Linear -> Add with the block's
input -> ReLU), like a deep ResNet-style MLP. Figures are medians over repeats of wall time.
Target: one parameter edit in the middle of the graph <= 20 ms.

    python tests/bench/bench_shapes.py [--nodes 500] [--reps 21]
    python -m pytest tests/bench/bench_shapes.py -s
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.graph import Graph  # noqa: E402
from engine.shapes import ShapeInference, infer_shapes  # noqa: E402

TARGET_MS = 20.0


def residual_chain(n_nodes: int, width: int = 32) -> Graph:
    """Input -> residual blocks of 5 nodes -> Linear -> Output, about ``n_nodes`` nodes."""
    g = Graph("bench")
    g.add_node("Input", "x", {"shape": [width]})
    prev, i = "x", 0
    while len(g) < n_nodes - 2:
        i += 1
        fc_a, act, fc_b, add, out = (f"{k}{i}" for k in ("fc_a", "act", "fc_b", "add", "out"))
        g.add_node("Linear", fc_a, {"out_features": width})
        g.add_node("ReLU", act)
        g.add_node("Linear", fc_b, {"out_features": width})
        g.add_node("Add", add)
        g.add_node("ReLU", out)
        for src, dst in ((prev, fc_a), (fc_a, act), (act, fc_b), (fc_b, add), (prev, add),
                         (add, out)):
            g.connect(src, dst)
        prev = out
    g.add_node("Linear", "head", {"out_features": 10})
    g.add_node("Output", "y")
    g.connect(prev, "head")
    g.connect("head", "y")
    return g


def median_ms(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--reps", type=int, default=21)
    args = parser.parse_args(argv)
    g = residual_chain(args.nodes)
    assert infer_shapes(g).is_valid()
    middle = f"fc_b{len(g.nodes_of_type('Add')) // 2}"
    live = ShapeInference(g)
    recomputed: list[set] = []
    live.updated.connect(recomputed.append)
    full = median_ms(lambda: infer_shapes(g), args.reps)

    bias, width = iter(range(10**9)), iter(range(10**9))

    def edit_same_shape():  # bias on/off: outputs keep their shape, the walk stops at once
        g.set_param(middle, "bias", next(bias) % 2 == 1)

    def edit_new_shape():  # a width change breaks the block's Add: everything below reruns
        g.set_param(middle, "out_features", 16 if next(width) % 2 == 0 else 32)

    same = median_ms(edit_same_shape, args.reps)
    same_nodes = len(recomputed[-1])
    changed = median_ms(edit_new_shape, 2 * (args.reps // 2 + 1))  # even: ends on width 32
    changed_nodes = max(len(r) for r in recomputed[-4:])
    assert live.is_valid()
    print(f"\nshape inference, {len(g)} nodes, {len(g.edges())} edges, median of {args.reps}:")
    print(f"  full pass                                 {full:8.2f} ms")
    print(f"  edit in the middle, shapes unchanged      {same:8.2f} ms "
          f"({same_nodes} node(s) recomputed; target <= {TARGET_MS:.0f} ms)")
    print(f"  edit in the middle, shapes change below   {changed:8.2f} ms "
          f"({changed_nodes} node(s) recomputed)")
    return {"full_ms": full, "edit_ms": same, "edit_new_shape_ms": changed}


def test_bench_shapes():
    result = main([])
    assert result["edit_ms"] <= TARGET_MS


if __name__ == "__main__":
    main()
