"""Automatic placement of a graph's nodes: layered, left to right, branches spread vertically.

Layers are networkx's topological generations (a node sits one column right of its deepest
input), so every wire points to the right. Inside a column nodes are ordered by the mean height of
their inputs and pulled towards it, which keeps a main chain straight while side branches fan out.
Weakly connected parts of the graph are stacked one under the other.

A long chain in one row would be tiny once the canvas zooms to fit it, so a part whose columns
are much wider than the canvas wraps into rows, like lines of text: each row runs left to right
and the wire from a row's end goes back to the start of the row below. The rows break where few
wires cross (between blocks rather than through a skip connection or across branches), and there
are as many as show the part largest in the canvas.
"""
from __future__ import annotations

from statistics import fmean

import networkx as nx

# The canvas area a layout should read well in, in pixels: what a 1400×860 window leaves for the
# canvas beside its docks. The canvas frames a fit with MARGIN on each side and never zooms in
# past 1 for the sake of a layout.
FIT = (880.0, 400.0)
MARGIN = 40.0
NODE_SIZE = (120.0, 90.0)  # about the size the canvas draws a node
ROW_GAP = 0.5  # extra space between wrapped rows, in units of dy: where the wire back runs


def layered_layout(graph, dx: float = 200, dy: float = 110,
                   fit: tuple[float, float] | None = FIT) -> dict[str, tuple[float, float]]:
    """A position ``(x, y)`` for every node of ``graph`` (an ``engine.graph.Graph``).

    ``fit``: the canvas size (pixels) to wrap long parts into rows for; None keeps every part
    in one row, so that every wire points right."""
    g = graph.nx_graph
    order = {n: i for i, n in enumerate(g.nodes)}
    positions: dict[str, tuple[float, float]] = {}
    top = 0.0
    for part in sorted(nx.weakly_connected_components(g), key=lambda c: min(order[n] for n in c)):
        sub = g.subgraph(part)
        placed = _place_part(sub, order, dy)
        rows = _best_rows(sub, placed, dx, dy, fit) if fit else [(0, _column_count(placed))]
        xy = _rows_to_positions(placed, rows, dx, dy)
        shift = top - min(y for _, y in xy.values())
        for node, (x, y) in xy.items():
            positions[node] = (float(x), float(round(y + shift)))
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


# -- wrapping a long part into rows ----------------------------------------------------------
def _column_count(placed: dict) -> int:
    return max(col for col, _ in placed.values()) + 1


def _best_rows(g, placed: dict, dx: float, dy: float,
               fit: tuple[float, float]) -> list[tuple[int, int]]:
    """The rows (column ranges) that show the part largest in ``fit``; on a tie the fewest
    rows, then the narrowest. Rows break only where the fewest wires cross."""
    count = _column_count(placed)
    extent = _column_extents(placed, count)
    starts = _narrowest_gaps(_crossings(g, placed, count))

    def score(rows):
        width, height = _size(rows, extent, dx, dy)
        return round(_fit_zoom((width, height), fit), 6), -len(rows), -width

    return max((_pack(count, starts, longest) for longest in range(count, 0, -1)), key=score)


def _column_extents(placed: dict, count: int) -> list[tuple[float, float]]:
    """The lowest and highest y of each column."""
    lows, highs = [float("inf")] * count, [float("-inf")] * count
    for col, y in placed.values():
        lows[col], highs[col] = min(lows[col], y), max(highs[col], y)
    return list(zip(lows, highs))


def _crossings(g, placed: dict, count: int) -> list[int]:
    """``cuts[c]``: how many wires a row break before column ``c`` would cut."""
    diff = [0] * (count + 1)
    for u, v in g.edges():
        diff[placed[u][0] + 1] += 1
        diff[placed[v][0] + 1] -= 1
    cuts, running = [], 0
    for c in range(count):
        running += diff[c]
        cuts.append(running)
    return cuts


def _narrowest_gaps(cuts: list[int]) -> list[int]:
    """The columns a row may start at: after the gaps that the fewest wires cross (between
    two blocks, not through a skip connection or across parallel branches)."""
    fewest = min(cuts[1:], default=0)
    return [c for c in range(1, len(cuts)) if cuts[c] == fewest]


def _pack(count: int, starts: list[int], longest: int) -> list[tuple[int, int]]:
    """Rows of at most ``longest`` columns (longer only where no break allows less), each
    broken as late as it may be."""
    rows, start = [], 0
    while start < count:
        allowed = [c for c in starts if start < c <= start + longest]
        later = [c for c in starts if c > start]
        end = count if start + longest >= count else (
            allowed[-1] if allowed else (later[0] if later else count))
        rows.append((start, end))
        start = end
    return rows


def _size(rows: list, extent: list, dx: float, dy: float) -> tuple[float, float]:
    """Width and height of the part laid out in ``rows`` (node size included)."""
    longest = max(end - start for start, end in rows)
    spans = [_row_span(extent, row) for row in rows]
    height = sum(spans) + (len(rows) - 1) * dy * (1 + ROW_GAP) + NODE_SIZE[1]
    return (longest - 1) * dx + NODE_SIZE[0], height


def _row_span(extent: list, row: tuple[int, int]) -> float:
    part = extent[row[0]:row[1]]
    return max(high for _, high in part) - min(low for low, _ in part)


def _fit_zoom(size: tuple[float, float], fit: tuple[float, float]) -> float:
    """The zoom at which the canvas would frame ``size``, counted up to 1 only: beyond that a
    layout reads no better, so a short chain stays in one row."""
    zoom = min(fit[0] / (size[0] + 2 * MARGIN), fit[1] / (size[1] + 2 * MARGIN))
    return min(zoom, 1.0)


def _rows_to_positions(placed: dict, rows: list, dx: float,
                       dy: float) -> dict[str, tuple[float, float]]:
    """Positions with each row starting at x = 0, below the row before it."""
    row_of = {col: i for i, (start, end) in enumerate(rows) for col in range(start, end)}
    offsets, top = [], 0.0
    for start, end in rows:
        ys = [y for col, y in placed.values() if start <= col < end]
        offsets.append(top - min(ys))
        top += max(ys) - min(ys) + dy * (1 + ROW_GAP)
    return {node: ((col - rows[row_of[col]][0]) * dx, y + offsets[row_of[col]])
            for node, (col, y) in placed.items()}
