"""The Graph live view: the graph drawn with its nodes coloured by the predicted class, and the
2-D projection of a chosen layer's embeddings - alone on synthetic probes, and in the real
window training the karate-club GCN (the Train button pressed, the layer picked in the combo
box with the keyboard)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.examples import EXAMPLES_DIR
from engine.project import load_project, parse_project, project_to_dict
from gui.document import Document
from gui.main_window import MainWindow
from gui.settings import Settings
from widgets.plots.graph import (SYNC_NODES, GraphView, graph_layout, spring_layout,
                                 undirected_pairs)
from widgets.plots.style import series_color

RUN_TIMEOUT_MS = 90_000
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture(autouse=True)
def isolated(gui_isolated):
    """Settings, data and runs in a temporary folder; message boxes recorded, never shown."""
    return gui_isolated


def colours(brushes) -> list[str]:
    return [b.color().name() for b in brushes]


def ring(n: int) -> np.ndarray:
    """A cycle of n nodes as a (2, 2n) edge_index, both directions (as the data sources)."""
    a = np.arange(n)
    b = (a + 1) % n
    return np.concatenate([np.stack([a, b]), np.stack([b, a])], axis=1)


# -- alone -------------------------------------------------------------------------------------
def test_layout_helpers():
    pairs = undirected_pairs(np.array([[0, 1, 1, 2, 2, 5], [1, 0, 2, 2, 0, 1]]), 3)
    assert pairs.tolist() == [[0, 1], [0, 2], [1, 2]]  # each edge once; loop and bad id gone
    pos = graph_layout(3, pairs)
    assert pos.shape == (3, 2) and np.abs(pos).max() == pytest.approx(1.0)
    a = spring_layout(200, undirected_pairs(ring(200), 200), iterations=30)
    b = spring_layout(200, undirected_pairs(ring(200), 200), iterations=30)
    assert np.array_equal(a, b)  # seeded: the same run, the same picture
    near = np.linalg.norm(a[1:] - a[:-1], axis=1).mean()  # neighbours on the ring...
    far = np.linalg.norm(a - a[::-1], axis=1).mean()  # ...closer than nodes across it
    assert near < far / 3


def test_graph_view_alone_on_a_synthetic_probe(qtbot):
    view = GraphView()
    qtbot.addWidget(view)
    view.resize(900, 380)
    view.show()
    qtbot.waitExposed(view)
    n, classes = 12, 3
    labels = np.arange(n) % classes
    train = np.zeros(n, dtype=bool)
    train[:3] = True
    chosen = []
    view.embedding_chosen.connect(chosen.append)
    view.begin({"task": "node_classification", "num_nodes": n, "edge_index": ring(n),
                "labels": labels, "train_mask": train, "val_mask": ~train,
                "class_names": ["a", "b", "c"], "num_classes": classes})
    drawing, embedding = view.drawing, view.embedding
    assert drawing.layouts == 1 and drawing.has_data  # small: laid out at once
    assert len(drawing.nodes.data) == n and len(drawing.pairs) == n  # the ring, each edge once
    assert len(drawing.edges.xData) == 2 * n  # one line item, a pair of points per edge
    pens = [p.widthF() for p in drawing.nodes.data["pen"]]
    assert pens[:3] == [2.2] * 3 and set(pens[3:]) == {1.0}  # training nodes: thick outline

    pred = labels.copy()
    pred[[4, 7]] = (pred[[4, 7]] + 1) % classes  # two validation nodes wrong
    probe = {"pred": pred, "embedding": np.random.default_rng(0).normal(size=(n, 2)),
             "embedding_node": "conv1", "candidates": ["conv1", "relu", "conv2"]}
    view.show_probe(probe, epoch=3)
    assert colours(drawing.nodes.data["brush"]) == [series_color(k) for k in pred]
    assert drawing.brush_colors() == [series_color(k) for k in pred]
    assert len(drawing.wrong.data) == 2  # the misclassified nodes are crossed
    assert drawing.accuracy == pytest.approx(7 / 9)
    assert "validation accuracy 0.778 (7 of 9 nodes)" in drawing.caption.text()
    assert "epoch 3" in drawing.caption.text()
    assert "predicted class" in drawing.key.text() and "training" in drawing.key.text()
    items = drawing.plot.getViewBox().addedItems
    assert sum(1 for i in items if i is drawing.edges) == 1  # not one item per edge
    edges_before = drawing.edges

    # the embedding: coloured by the true class, crossed where wrong
    assert len(embedding.points.data) == n
    assert colours(embedding.points.data["brush"]) == [series_color(k) for k in labels]
    assert list(embedding.points.data["symbol"]).count("x") == 2
    combo = embedding.combo
    assert [combo.itemText(i) for i in range(combo.count())] == ["conv1", "relu", "conv2"]
    assert combo.currentText() == "conv1" and not chosen  # filling it is not a choice

    # a new prediction only recolours: the same items, new brushes
    better = labels.copy()
    view.show_probe({**probe, "pred": better})
    assert drawing.edges is edges_before and len(drawing.wrong.data) == 0
    assert drawing.brush_colors() == [series_color(k) for k in better]

    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)  # the user picks the next layer
    assert chosen == ["relu"] and "switching to relu" in embedding.caption.text()
    view.show_probe(probe)  # a probe of the old layer: the combo stays on the choice
    assert combo.currentText() == "relu"
    view.show_probe({**probe, "embedding_node": "relu"})
    assert embedding.node == "relu" and "switching" not in embedding.caption.text()
    assert chosen == ["relu"]

    view.set_dark(True)  # restyled in place
    assert drawing.brush_colors() == [series_color(k) for k in pred]
    assert drawing.nodes.data["pen"][5].color().name() == drawing.theme.background


def test_graph_view_lays_out_a_large_graph_off_the_window_thread(qtbot):
    view = GraphView()
    qtbot.addWidget(view)
    n = 600
    assert n > SYNC_NODES
    labels = np.arange(n) % 4
    view.begin({"task": "node_classification", "num_nodes": n, "edge_index": ring(n),
                "labels": labels, "train_mask": np.zeros(n, bool),
                "val_mask": np.ones(n, bool), "class_names": list("abcd")})
    assert view.drawing.pos is None and "Laying out" in view.drawing.hint.text()
    view.show_probe({"pred": labels, "embedding": np.zeros((n, 2)), "embedding_node": "g",
                     "candidates": ["g"]})  # before the layout: kept until it arrives
    qtbot.waitUntil(lambda: view.drawing.pos is not None, timeout=20_000)
    assert view.drawing.has_data and len(view.drawing.nodes.data) == n
    assert view.drawing.brush_colors() == [series_color(k) for k in labels]
    assert view.drawing.accuracy == 1.0


def test_graph_classification_shows_only_the_embedding(qtbot):
    view = GraphView()
    qtbot.addWidget(view)
    view.show()
    view.begin({"task": "graph_classification", "class_names": ["cycle", "tree", "clique"],
                "num_classes": 3})
    assert not view.drawing.isVisible() and view.embedding.isVisible()
    labels = np.array([0, 1, 2, 2, 1])
    pred = np.array([0, 1, 2, 0, 1])
    view.show_probe({"pred": pred, "labels": labels, "embedding": np.eye(5)[:, :2],
                     "embedding_node": "pool", "candidates": ["pool", "fc"]})
    points = view.embedding.points.data
    assert len(points) == 5 and list(points["symbol"]).count("x") == 1
    assert colours(points["brush"]) == [series_color(k) for k in labels]
    assert "5 graphs" in view.embedding.caption.text() and "4 of 5 right" in \
        view.embedding.caption.text()


# -- in the window -------------------------------------------------------------------------------
def open_karate(qtbot, epochs: int) -> MainWindow:
    data = project_to_dict(load_project(EXAMPLES_DIR / "gcn_karate.layerlab.json"))
    data["training"]["epochs"] = epochs
    project = parse_project(copy.deepcopy(data), "karate")
    window = MainWindow(Settings(), theme="light", interactive=True)
    qtbot.addWidget(window, before_close_func=lambda w: setattr(w, "interactive", False))
    window.set_document(Document(project))
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_graph_tab_while_the_karate_gcn_trains(qtbot):
    window = open_karate(qtbot, epochs=20_000)  # stopped long before the end
    ui = window.training
    qtbot.mouseClick(ui.panel.train_button, LEFT)
    views = ui.views
    graph = views.graph
    qtbot.waitUntil(lambda: graph.drawing.pred is not None, timeout=RUN_TIMEOUT_MS)
    assert ui.controller.state == "running"
    index = views.tabs.indexOf(graph)
    assert views.tabs.isTabVisible(index) and views.tabs.tabText(index) == "Graph"
    assert views.tabs.currentWidget() is graph and graph.isVisible()  # chosen first
    assert not views.tabs.isTabVisible(views.tabs.indexOf(views.boundary))
    probes = ui.controller.probes
    assert probes.graph and "graph" in probes.shown  # probed: its tab is on screen

    drawing, embedding = graph.drawing, graph.embedding
    assert len(drawing.nodes.data) == 34 and len(embedding.points.data) == 34
    labels = ui.controller.info.graph["labels"]
    assert drawing.brush_colors() == [series_color(k) for k in drawing.pred]
    assert len(drawing.wrong.data) == int((drawing.pred != labels).sum())
    assert "validation accuracy" in drawing.caption.text()
    train = ui.controller.info.graph["train_mask"]
    assert int(train.sum()) == 4 and \
        [p.widthF() > 2 for p in drawing.nodes.data["pen"]] == train.tolist()

    combo = embedding.combo
    names = [combo.itemText(i) for i in range(combo.count())]
    assert names[0] == "gcn1" and "gcn2" in names and combo.currentText() == "gcn1"
    assert embedding.node == "gcn1"
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key.Key_Down)  # the next layer: relu1
    assert combo.currentText() == names[1] == "relu1"
    assert probes.embedding_node == "relu1"  # the choice reaches the probes at once
    qtbot.waitUntil(lambda: embedding.node == "relu1", timeout=RUN_TIMEOUT_MS)
    assert probes.latest["graph"]["embedding_node"] == "relu1"
    assert ui.controller.state == "running"  # learnt while training
    seen = drawing.received
    qtbot.waitUntil(lambda: drawing.received > seen, timeout=RUN_TIMEOUT_MS)  # still coming

    qtbot.mouseClick(ui.panel.stop_button, LEFT)
    qtbot.waitUntil(lambda: ui.controller.state == "done", timeout=RUN_TIMEOUT_MS)
    # after the run, a new choice is probed at once on the trained model
    qtbot.keyClick(combo, Qt.Key.Key_End)  # gcn2, the last
    assert probes.embedding_node == "gcn2"
    qtbot.waitUntil(lambda: embedding.node == "gcn2", timeout=5_000)
    assert probes.latest["graph"]["embedding_node"] == "gcn2"
    assert len(embedding.points.data) == 34
    assert ui.controller.embedding_node == "gcn2"  # kept for the next run


def test_graph_tab_is_hidden_for_other_tasks(qtbot):
    data = project_to_dict(load_project(EXAMPLES_DIR / "mlp_spirals.layerlab.json"))
    data["training"]["epochs"] = 1
    data["dataset"]["params"] = {"n_samples": 256, "noise": 0.1}
    window = MainWindow(Settings(), theme="light", interactive=True)
    qtbot.addWidget(window, before_close_func=lambda w: setattr(w, "interactive", False))
    window.set_document(Document(parse_project(data, "spirals")))
    window.show()
    ui = window.training
    ui.start()
    qtbot.waitUntil(lambda: ui.controller.state == "done", timeout=RUN_TIMEOUT_MS)
    views = ui.views
    assert not views.tabs.isTabVisible(views.tabs.indexOf(views.graph))
    assert ui.controller.info.graph is None and "graph" not in ui.controller.probes.latest
