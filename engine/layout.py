"""Automatic placement of a graph's nodes: layered, left to right, branches spread vertically.

Layers are networkx's topological generations (a node sits one column right of its deepest
input), so every wire points to the right. Inside a column nodes are ordered by the mean height of
their inputs and pulled towards it, which keeps a main chain straight while side branches fan out.
Weakly connected parts of the graph are stacked one under the other.
"""
from __future__ import annotations

from statistics import fmean

import networkx as nx


def layered_layout(graph, dx: float = 200, dy: float = 110) -> dict[str, tuple[float, float]]:
    """A position ``(x, y)`` for every node of ``graph`` (an ``engine.graph.Graph``)."""
    g = graph.nx_graph
    order = {n: i for i, n in enumerate(g.nodes)}
    positions: dict[str, tuple[float, float]] = {}
    top = 0.0
    for part in sorted(nx.weakly_connected_components(g), key=lambda c: min(order[n] for n in c)):
        ys = _place_part(g.subgraph(part), order, dy)
        shift = top - min(y for _, y in ys.values())
        for node, layer_y in ys.items():
            layer, y = layer_y
            positions[node] = (float(layer * dx), float(round(y + shift)))
        top = max(y for _, y in positions.values()) + dy
    if positions:
        _center_first_part(positions, g, order)
    return positions


def _place_part(g, order: dict, dy: float) -> dict[str, tuple[int, float]]:
    """(column, y) of each node of one connected part."""
    layers = [sorted(gen, key=order.__getitem__) for gen in nx.topological_generations(g)]
    ys: dict[str, float] = {}
    columns: dict[str, int] = {}
    for col, layer in enumerate(layers):
        wanted = {n: _wanted_y(g, n, ys) for n in layer}
        layer.sort(key=lambda n: (wanted[n] if wanted[n] is not None else 0.0, order[n]))
        ys.update(_spread(layer, wanted, dy))
        columns.update((n, col) for n in layer)
    return {n: (columns[n], ys[n]) for n in ys}


def _wanted_y(g, node, ys: dict) -> float | None:
    preds = [ys[p] for p in g.predecessors(node) if p in ys]
    return fmean(preds) if preds else None


def _spread(layer: list, wanted: dict, dy: float) -> dict[str, float]:
    """Place a column's nodes at least ``dy`` apart, as close as possible to where they want."""
    n = len(layer)
    targets = [wanted[node] if wanted[node] is not None else (i - (n - 1) / 2) * dy
               for i, node in enumerate(layer)]
    placed = []
    for t in targets:
        placed.append(t if not placed else max(t, placed[-1] + dy))
    shift = fmean(t - p for t, p in zip(targets, placed))
    return {node: p + shift for node, p in zip(layer, placed)}


def _center_first_part(positions: dict, g, order: dict) -> None:
    """Put the first node (usually the Input) at y = 0 so the layout starts where files do."""
    first = min(positions, key=order.__getitem__)
    y0 = positions[first][1]
    for node, (x, y) in positions.items():
        positions[node] = (x, y - y0)
