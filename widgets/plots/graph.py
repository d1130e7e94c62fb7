"""Live views of a graph network: the graph drawn with its nodes coloured by the class the model
predicts for them (node classification), and beside it the 2-D projection (PCA) of a chosen
layer's node - or graph - embeddings, coloured by the true class.

The layout is computed once per run (networkx's Kamada-Kawai for small graphs, a seeded spring
layout otherwise) and, for graphs of more than :data:`SYNC_NODES` nodes, in a thread of its
own: the window keeps answering while a thousand nodes find their places. The drawing is three
pyqtgraph items made once - every edge in one line item (``connect="pairs"``), the nodes in one
scatter, the misclassified marks in another - and a new prediction only recolours the nodes
(one brush array). Nothing here knows of training.
"""
from __future__ import annotations

import html
import threading

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QSignalBlocker, Qt, Signal, Slot
from PySide6.QtWidgets import (QComboBox, QGraphicsItem, QHBoxLayout, QLabel, QSplitter,
                               QVBoxLayout, QWidget)

from widgets.plots.style import PlotView, faded, follow, new_plot, series_color

KAMADA_KAWAI_NODES = 100  # at most this many nodes: Kamada-Kawai (a few ms); more: spring
SYNC_NODES = 100  # larger graphs are laid out in a thread of their own
MAX_DRAWN_NODES = 3000  # larger graphs are not drawn (the embedding still is)
MAX_DRAWN_EDGES = 50_000  # more edges: a fixed sample of them is drawn
SPRING_ITERATIONS = 50
LAYOUT_SEED = 0
MAX_KEY_CLASSES = 10  # classes named in the key; more are summed up
WRONG_COLOR = "#111318"  # the cross on a misclassified node (light theme)
WRONG_COLOR_DARK = "#f4f6fa"


# -- layout (no Qt) ---------------------------------------------------------------------------
def undirected_pairs(edge_index, num_nodes: int) -> np.ndarray:
    """(E', 2) int64: each undirected edge once (u < v); self loops and bad ids left out."""
    e = np.asarray(edge_index, dtype=np.int64).reshape(2, -1)
    keep = (e[0] != e[1]) & (e.min(axis=0) >= 0) & (e.max(axis=0) < num_nodes)
    e = np.sort(e[:, keep], axis=0)
    codes = np.unique(e[0] * max(num_nodes, 1) + e[1])  # 1-D: much faster than axis=0
    return np.stack([codes // max(num_nodes, 1), codes % max(num_nodes, 1)], axis=1)


def spring_layout(num_nodes: int, pairs: np.ndarray, iterations: int = SPRING_ITERATIONS,
                  seed: int = LAYOUT_SEED, chunk: int = 256) -> np.ndarray:
    """Fruchterman-Reingold (as networkx's ``spring_layout``), vectorised with numpy in float32
    over row chunks: a thousand nodes take a fifth of a second, and numpy - not the
    interpreter - does the work (a thread running it leaves the window its share)."""
    n = num_nodes
    rng = np.random.default_rng(seed)
    pos = rng.random((n, 2), dtype=np.float32)
    if n < 2:
        return pos
    adjacency = np.zeros((n, n), dtype=np.float32)
    adjacency[pairs[:, 0], pairs[:, 1]] = 1.0
    adjacency[pairs[:, 1], pairs[:, 0]] = 1.0
    k = np.float32(np.sqrt(1.0 / n))  # the ideal edge length
    k2, inv_k = k * k, np.float32(1.0) / k
    t = np.float32(0.1)  # the largest move (the positions start in the unit square)
    dt = t / np.float32(iterations + 1)
    disp = np.empty((n, 2), dtype=np.float32)
    for _ in range(iterations):
        x, y = pos[:, 0], pos[:, 1]
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            dx = x[lo:hi, None] - x[None, :]
            dy = y[lo:hi, None] - y[None, :]
            d2 = dx * dx + dy * dy
            np.maximum(d2, np.float32(1e-4), out=d2)  # distances of at least 0.01
            force = k2 / d2  # repulsion between every pair...
            force -= adjacency[lo:hi] * np.sqrt(d2) * inv_k  # ...attraction along the edges
            disp[lo:hi, 0] = (dx * force).sum(axis=1)
            disp[lo:hi, 1] = (dy * force).sum(axis=1)
        length = np.maximum(np.sqrt((disp * disp).sum(axis=1)), np.float32(0.01))
        pos += disp * (t / length)[:, None]
        t -= dt
    return pos


def graph_layout(num_nodes: int, pairs: np.ndarray, seed: int = LAYOUT_SEED) -> np.ndarray:
    """(N, 2) positions in [-1, 1]: Kamada-Kawai for small graphs, else a spring layout (with
    fewer iterations beyond two thousand nodes)."""
    n = num_nodes
    if n == 0:
        return np.zeros((0, 2), dtype=np.float32)
    pos = None
    if n <= KAMADA_KAWAI_NODES:
        import networkx as nx

        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from(pairs.tolist())
        try:
            start = nx.spring_layout(g, seed=seed)  # KK from a seeded start: deterministic
            layout = nx.kamada_kawai_layout(g, pos=start)
            pos = np.array([layout[i] for i in range(n)], dtype=np.float32)
        except Exception:  # noqa: BLE001 - an odd graph: the spring layout below will do
            pos = None
    if pos is None:
        # about a second at most: the cost grows with nodes² × iterations
        iterations = int(np.clip(5 * SPRING_ITERATIONS * (1000 / n) ** 2, 20, SPRING_ITERATIONS))
        pos = spring_layout(n, pairs, iterations, seed)
    pos = pos - pos.mean(axis=0)
    scale = float(np.abs(pos).max()) or 1.0
    return (pos / scale).astype(np.float32)


class _LayoutDone(QObject):
    """Carries a layout from its thread to the window's (a queued signal)."""

    done = Signal(int, object)


# -- the views --------------------------------------------------------------------------------
def class_brushes(n: int) -> np.ndarray:
    """One brush per class (the shared series palette), as an object array to index with."""
    brushes = np.empty(max(n, 1), dtype=object)
    for k in range(brushes.size):
        brushes[k] = pg.mkBrush(series_color(k))
    return brushes


def class_key(names: list[str], mark: str = "●") -> list:
    shown = names[:MAX_KEY_CLASSES]
    entries = [(series_color(k), mark, name) for k, name in enumerate(shown)]
    if len(names) > len(shown):
        entries.append(("#888888", "…", f"{len(names) - len(shown)} more"))
    return entries


def wrapping_key(title: str, *groups) -> str:
    """A key that wraps between its entries only (never inside "community 2")."""
    entries = [f"<span style='color:{color}'>{mark}</span>&nbsp;"
               f"{html.escape(str(label)).replace(' ', '&nbsp;')}"
               for group in groups for color, mark, label in group]
    return f"{html.escape(title)}&nbsp; " + "&nbsp;&nbsp; ".join(entries)


def key_label(view: PlotView) -> QLabel:
    """A wrapping one- or two-line key under a view's caption (a plot title would be cut off
    in a narrow dock, and relaying out a title costs the plot a repaint)."""
    label = QLabel()
    label.setObjectName("graphKey")
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 0.9)
    label.setFont(font)
    view.body.insertWidget(1, label)
    return label


def node_size(n: int) -> float:
    return 16.0 if n <= 50 else 11.0 if n <= 200 else 7.0 if n <= 1200 else 5.0


def wrong_size(n: int) -> float:
    """The cross on a misclassified node: large enough to see on the smallest nodes."""
    return max(7.0, 0.55 * node_size(n))


def node_pens(theme, n: int, train_mask) -> list:
    """A thick outline for training nodes, a thin one in the background colour for the rest
    (it parts touching nodes); both thinner on small nodes, where half may be training."""
    size = node_size(n)
    thin = pg.mkPen(theme.background, width=1.0 if size > 10 else 0.6)
    thick = pg.mkPen(theme.foreground, width=2.2 if size > 10 else 1.2)
    if train_mask is None or np.size(train_mask) != n:
        return [thin] * n
    return [thick if t else thin for t in train_mask]


class GraphDrawing(PlotView):
    """The graph: nodes coloured by predicted class, training nodes with a thick outline,
    misclassified nodes crossed; the validation accuracy in the caption."""

    HINT = "The graph is drawn here while a network classifies its nodes."

    def __init__(self, parent: QWidget | None = None):
        super().__init__(self.HINT, parent)
        self.set_caption("Graph")
        self.plot = self.add_plot(new_plot())
        self.plot.setAspectLocked(True)
        for axis in ("left", "bottom"):
            self.plot.hideAxis(axis)
        self.edges = pg.PlotCurveItem(connect="pairs", antialias=False, skipFiniteCheck=True)
        # the edges change only with the layout: painted once into a pixmap, then blitted
        # when the nodes above them are recoloured (30k lines would cost a frame each time)
        self.edges.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.nodes = pg.ScatterPlotItem(pxMode=True, symbol="o")
        self.nodes.setZValue(5)
        self.wrong = pg.ScatterPlotItem(pxMode=True, symbol="x", pen=None)
        self.wrong.setZValue(6)
        for item in (self.edges, self.nodes, self.wrong):
            self.plot.addItem(item)
        self.plot.getViewBox().setMouseEnabled(x=True, y=True)
        self.key = key_label(self)
        self.num_nodes = 0
        self.labels: np.ndarray | None = None
        self.train_mask: np.ndarray | None = None
        self.val_mask: np.ndarray | None = None
        self.class_names: list[str] = []
        self.pos: np.ndarray | None = None  # the layout, once computed
        self.pairs = np.zeros((0, 2), dtype=np.int64)
        self.pred: np.ndarray | None = None  # the prediction drawn
        self.accuracy: float | None = None  # on the validation nodes
        self.epoch: int | None = None
        self.layouts = 0  # layouts computed (tests read it)
        self._pending: np.ndarray | None = None  # a prediction waiting for the layout
        self._brushes = class_brushes(1)
        self._token = 0
        self._carrier = _LayoutDone()
        self._carrier.done.connect(self._layout_ready)
        self._edge_note = ""

    # -- a run ---------------------------------------------------------------------------
    def begin(self, num_nodes: int, edge_index, labels, train_mask, val_mask,
              class_names: list[str]) -> None:
        """The static graph of a run; its layout is computed now (in a thread when large)."""
        self.clear()
        n = int(num_nodes)
        self.num_nodes = n
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.train_mask = np.asarray(train_mask, dtype=bool).reshape(-1)
        self.val_mask = np.asarray(val_mask, dtype=bool).reshape(-1)
        self.class_names = list(class_names)
        self._brushes = class_brushes(len(self.class_names))
        if n > MAX_DRAWN_NODES:
            self.show_hint(f"This graph has {n:,} nodes: too many to draw while it trains. "
                           "The embedding beside shows every node.")
            return
        pairs = undirected_pairs(edge_index, n)
        self._edge_note = ""
        if len(pairs) > MAX_DRAWN_EDGES:
            pick = np.random.default_rng(LAYOUT_SEED).choice(len(pairs), MAX_DRAWN_EDGES,
                                                             replace=False)
            self._edge_note = f" (showing {MAX_DRAWN_EDGES:,} of {len(pairs):,} edges)"
            drawn = pairs[np.sort(pick)]
        else:
            drawn = pairs
        self.pairs = drawn
        self._token += 1
        token = self._token
        if n <= SYNC_NODES:
            self._layout_ready(token, graph_layout(n, pairs))
            return
        self.show_hint(f"Laying out the graph ({n:,} nodes, {len(pairs):,} edges)…")
        carrier = self._carrier

        def work() -> None:
            try:
                pos = graph_layout(n, pairs)
            except (MemoryError, ValueError) as exc:  # the window must not lose its view
                pos = exc
            carrier.done.emit(token, pos)

        threading.Thread(target=work, name="graph-layout", daemon=True).start()

    @Slot(int, object)
    def _layout_ready(self, token: int, pos) -> None:
        if token != self._token:
            return  # an earlier run's layout
        if isinstance(pos, Exception):
            self.show_hint(f"The graph could not be laid out ({pos}).")
            return
        self.pos = pos
        self.layouts += 1
        n = self.num_nodes
        ends = pos[self.pairs.reshape(-1)] if len(self.pairs) else np.zeros((0, 2))
        self.edges.setData(x=ends[:, 0], y=ends[:, 1], connect="pairs")
        self.nodes.setData(pos=pos, size=node_size(n), brush=self._neutral(), pen=self._pens())
        self.wrong.setData(pos=np.zeros((0, 2)))
        self.plot.disableAutoRange()
        self.plot.setRange(xRange=(-1, 1), yRange=(-1, 1), padding=0.05)
        self.restyle()
        self._set_title()
        self.set_caption(f"Graph  ·  {n:,} nodes, {len(self.pairs):,} edges{self._edge_note}")
        self.show_plots()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.show_prediction(pending, self.epoch)

    def show_prediction(self, pred, epoch: int | None = None) -> None:
        """The predicted class of every node: recolours the nodes (brushes only)."""
        pred = np.asarray(pred, dtype=np.int64).reshape(-1)
        self.epoch = epoch
        if self.labels is None or pred.size != self.num_nodes:
            return
        val = self.val_mask if self.val_mask is not None and self.val_mask.any() else None
        if val is not None:
            self.accuracy = float((pred[val] == self.labels[val]).mean())
        if self.pos is None:
            self._pending = pred  # drawn when the layout arrives
            return
        self.received += 1
        if self.pred is None or not np.array_equal(pred, self.pred):
            self.pred = pred
            self.nodes.setBrush(self._brushes[np.clip(pred, 0, len(self._brushes) - 1)])
            self.wrong.setData(pos=self.pos[pred != self.labels], size=wrong_size(
                self.num_nodes), brush=self._wrong_brush(),
                pen=pg.mkPen(self.theme.background, width=0.8))  # readable on any fill
        parts = [f"Graph  ·  {self.num_nodes:,} nodes"]
        if self.accuracy is not None:
            right = int((pred[val] == self.labels[val]).sum())
            parts.append(f"validation accuracy {self.accuracy:.3f} ({right} of {int(val.sum())} "
                         "nodes)")
        if epoch is not None:
            parts.append(f"epoch {epoch}")
        self.set_caption("  ·  ".join(parts))

    def brush_colors(self) -> list[str]:
        """The fill of every node, as ``#rrggbb`` (tests read it)."""
        return [b.color().name() for b in self.nodes.data["brush"]]

    # -- styling ---------------------------------------------------------------------------
    def _neutral(self):
        return pg.mkBrush(faded(self.theme.muted, 150))

    def _wrong_brush(self):
        return pg.mkBrush(WRONG_COLOR_DARK if self.theme.dark else WRONG_COLOR)

    def _pens(self) -> list:
        return node_pens(self.theme, self.num_nodes, self.train_mask)

    def _set_title(self) -> None:
        fg = self.theme.foreground
        self.key.setText(wrapping_key("predicted class:", class_key(self.class_names),
                                      [(fg, "◯", "training node"), (fg, "✕", "wrong")]))

    def restyle(self) -> None:
        edge_alpha = 70 if len(self.pairs) > 2000 else 110
        self.edges.setPen(pg.mkPen(faded(self.theme.foreground, edge_alpha), width=1))
        if self.pos is not None:
            self.nodes.setPen(self._pens())
            if self.pred is None:
                self.nodes.setBrush(self._neutral())
            self.wrong.setBrush(self._wrong_brush())
            self._set_title()

    def clear(self) -> None:
        self._token += 1  # a layout still being computed is dropped
        self.pos, self.pred, self._pending, self.accuracy, self.epoch = None, None, None, None, \
            None
        self.labels = self.train_mask = self.val_mask = None
        self.num_nodes = 0
        self.pairs = np.zeros((0, 2), dtype=np.int64)
        self.edges.setData(x=np.zeros(0), y=np.zeros(0))
        self.nodes.setData(pos=np.zeros((0, 2)))
        self.wrong.setData(pos=np.zeros((0, 2)))
        self.set_caption("Graph")
        self.key.setText("")
        self.hint.setText(self.HINT)
        super().clear()


class EmbeddingView(PlotView):
    """The 2-D PCA of a layer's per-node (or per-graph) vectors: colour = the true class, a
    disc when the model is right and a cross when it is wrong; a combo box picks the layer."""

    HINT = "The embedding of a layer (its 2-D principal components) appears here."

    def __init__(self, parent: QWidget | None = None):
        super().__init__(self.HINT, parent)
        self.set_caption("Embedding")
        self.combo = QComboBox()
        self.combo.setObjectName("embeddingLayer")
        self.combo.setToolTip("The layer whose outputs are projected")
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.combo.setEnabled(False)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        self.body.removeWidget(self.caption)
        row.addWidget(self.caption, 1)
        label = QLabel("Layer")
        label.setObjectName("mutedText")
        row.addWidget(label)
        row.addWidget(self.combo)
        self.body.insertLayout(0, row)
        self.key = key_label(self)
        self.plot = self.add_plot(new_plot())
        for axis in ("left", "bottom"):
            self.plot.hideAxis(axis)
        self.points = pg.ScatterPlotItem(pxMode=True)
        self.plot.addItem(self.points)
        self.labels: np.ndarray | None = None
        self.train_mask: np.ndarray | None = None
        self.class_names: list[str] = []
        self.graphs = False  # points are graphs (graph classification), not nodes
        self.node: str | None = None  # the layer shown
        self.candidates: list[str] = []
        self.chosen: str | None = None  # picked in the combo, not in a probe yet
        self._brushes = class_brushes(1)
        self._pen_cache: list | None = None
        self._last = None

    def begin(self, labels, class_names: list[str], train_mask=None, graphs: bool = False
              ) -> None:
        """``labels``: the true class of every point (None: each probe brings its own)."""
        self.clear()
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.train_mask = None if train_mask is None else np.asarray(train_mask, dtype=bool)
        self.class_names = list(class_names)
        self.graphs = graphs
        self._brushes = class_brushes(len(self.class_names))
        self._set_title()

    def show_embedding(self, embedding, pred, node: str | None, candidates,
                       labels=None) -> None:
        self._last = (embedding, pred, node, candidates, labels)
        self.set_candidates(list(candidates or []), node)
        if embedding is None:
            return
        emb = np.asarray(embedding, dtype=np.float64).reshape(-1, 2)
        truth = self.labels if labels is None else np.asarray(labels, dtype=np.int64)
        if truth is None or truth.size != len(emb):
            return
        pred = np.asarray(pred, dtype=np.int64).reshape(-1)
        right = pred == truth if pred.size == truth.size else np.ones(len(emb), dtype=bool)
        self.node = node
        brushes = self._brushes[np.clip(truth, 0, len(self._brushes) - 1)]
        symbols = np.where(right, "o", "x").tolist()
        size = node_size(len(emb)) * (0.8 if self.graphs else 1.0)
        pens = self._pens(len(emb))
        self.points.setData(pos=emb, brush=brushes, symbol=symbols, size=size, pen=pens)
        if len(emb):
            (x0, y0), (x1, y1) = emb.min(axis=0), emb.max(axis=0)
            pad = 0.08 * max(x1 - x0, y1 - y0, 1e-6)  # unless zoomed by hand
            follow(self.plot, x0 - pad, x1 + pad, y0 - pad, y1 + pad)
        what = "graphs" if self.graphs else "nodes"
        text = f"Embedding of {node}  ·  {len(emb):,} {what}"
        if self.graphs:
            text += f" (validation)  ·  {int(right.sum())} of {len(emb)} right"
        waiting = self.chosen is not None and self.chosen != node
        self.set_caption(text + (f"  ·  switching to {self.chosen}…" if waiting else ""))
        if not waiting:
            self.chosen = None
        self.received += 1
        self.show_plots()

    def set_candidates(self, candidates: list[str], node: str | None) -> None:
        """Fill the combo box (without telling anyone: only a user's choice is a choice)."""
        blocker = QSignalBlocker(self.combo)
        if candidates != self.candidates:
            self.candidates = candidates
            self.combo.clear()
            self.combo.addItems(candidates)
        want = self.chosen if self.chosen in candidates else node
        if want is not None and self.combo.currentText() != want:
            self.combo.setCurrentIndex(self.combo.findText(want))
        self.combo.setEnabled(len(candidates) > 1)
        del blocker

    def _pens(self, n: int):
        if self._pen_cache is None or len(self._pen_cache) != n:  # once per run and theme
            self._pen_cache = node_pens(self.theme, n, None if self.graphs else self.train_mask)
        return self._pen_cache

    def _set_title(self) -> None:
        fg = self.theme.foreground
        marks = [(fg, "●", "right"), (fg, "✕", "wrong")]
        if not self.graphs:
            marks.append((fg, "◯", "training node"))
        self.key.setText(wrapping_key("true class:", class_key(self.class_names), marks))

    def restyle(self) -> None:
        self._pen_cache = None
        if self.class_names:
            self._set_title()
        if self._last is not None:
            self.show_embedding(*self._last)

    def clear(self) -> None:
        self.points.setData(pos=np.zeros((0, 2)))
        self.node, self.chosen, self._last, self._pen_cache = None, None, None, None
        blocker = QSignalBlocker(self.combo)
        self.combo.clear()
        self.candidates = []
        self.combo.setEnabled(False)
        del blocker
        self.set_caption("Embedding")
        self.key.setText("")
        super().clear()


class GraphView(QWidget):
    """The Graph tab: the drawing on the left (node classification), the embedding on the
    right. :attr:`embedding_chosen` tells which layer the user picked to project."""

    embedding_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.drawing = GraphDrawing()
        self.embedding = EmbeddingView()
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(self.drawing)
        self.split.addWidget(self.embedding)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.split)
        self.task: str | None = None
        self.embedding.combo.currentIndexChanged.connect(self._combo_changed)

    def begin(self, info: dict) -> None:
        """A run starts. ``info`` (``gui.training.graph_bridge.graph_info``): ``task``,
        ``class_names`` and, for node classification, ``num_nodes``, ``edge_index`` (2, E),
        ``labels``, ``train_mask`` and ``val_mask``."""
        self.task = info["task"]
        names = list(info.get("class_names") or
                     [f"class {k}" for k in range(int(info.get("num_classes") or 0))])
        if self.task == "node_classification":
            self.drawing.setVisible(True)
            self.drawing.begin(info["num_nodes"], info["edge_index"], info["labels"],
                               info["train_mask"], info["val_mask"], names)
            self.embedding.begin(info["labels"], names, info["train_mask"])
        else:  # graph classification: many small graphs, nothing to draw as one
            self.drawing.clear()
            self.drawing.setVisible(False)
            self.embedding.begin(None, names, graphs=True)

    def show_probe(self, probe: dict, epoch: int | None = None) -> None:
        """The ``graph`` entry of a probe: ``pred``, ``embedding``, ``embedding_node``,
        ``candidates`` (and ``labels`` for graph classification)."""
        if self.task == "node_classification" and probe.get("pred") is not None:
            self.drawing.show_prediction(probe["pred"], epoch)
        self.embedding.show_embedding(probe.get("embedding"), probe.get("pred"),
                                      probe.get("embedding_node"), probe.get("candidates"),
                                      probe.get("labels"))

    def _combo_changed(self, index: int) -> None:
        node = self.embedding.combo.itemText(index)
        if index < 0 or not node:
            return
        self.embedding.chosen = node
        self.embedding.set_caption(f"Embedding  ·  switching to {node}…")
        self.embedding_chosen.emit(node)

    def set_dark(self, dark: bool) -> None:
        self.drawing.set_dark(dark)
        self.embedding.set_dark(dark)

    def clear(self) -> None:
        self.drawing.clear()
        self.embedding.clear()
        self.drawing.setVisible(True)
        self.task = None
