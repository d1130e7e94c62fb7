"""The Try dock and Help → Layer Reference driven like a person would: train the CNN digits
example in the window, bring the Try tab up, walk the ones it gets wrong, switch the method to
Grad-CAM, draw a digit on the pad; open a layer's reference from the inspector and from Help.

Every number the panel shows is compared with the engine's own answer for the same input
(:class:`engine.tryout.Tryout`, :func:`engine.explain.attribute`)."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication, QTabBar

from engine.examples import EXAMPLES_DIR
from engine.project import parse_project
from gui.document import Document
from gui.main_window import MainWindow
from gui.settings import Settings

LEFT = Qt.MouseButton.LeftButton
RUN_TIMEOUT_MS = 120_000


@pytest.fixture(autouse=True)
def isolated(gui_isolated):
    return gui_isolated


def open_example(qtbot, name: str, epochs: int) -> MainWindow:
    data = json.loads((EXAMPLES_DIR / f"{name}.layerlab.json").read_text("utf-8"))
    data["training"]["epochs"] = epochs
    window = MainWindow(Settings(), theme="light", interactive=True)
    qtbot.addWidget(window, before_close_func=lambda w: setattr(w, "interactive", False))
    window.set_document(Document(parse_project(copy.deepcopy(data), "test project")))
    window.resize(1400, 900)
    window.show()
    qtbot.waitExposed(window)
    return window


def train(qtbot, window) -> None:
    ui = window.training
    qtbot.mouseClick(ui.panel.train_button, LEFT)
    qtbot.waitUntil(lambda: ui.controller.state == "done", timeout=RUN_TIMEOUT_MS)


def click_dock_tab(qtbot, window, title: str) -> None:
    """Click the tab of a tabbed dock, as a person does."""
    for bar in window.findChildren(QTabBar):
        if bar.parent() is not window or not bar.isVisible():
            continue
        for i in range(bar.count()):
            if bar.tabText(i) == title:
                qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(i).center())
                return
    raise AssertionError(f"no visible dock tab {title!r}")


def choose(qtbot, combo, text: str) -> None:
    """Pick a combo box item by typing its first letters, then Enter-free: the combo selects
    the item typed and emits activated."""
    combo.setFocus()
    index = next(i for i in range(combo.count()) if combo.itemText(i).startswith(text))
    while combo.currentIndex() != index:
        qtbot.keyClick(combo, Qt.Key.Key_Down if combo.currentIndex() < index else Qt.Key.Key_Up)
    assert combo.currentText().startswith(text)


def send_mouse(widget, kind, pos: QPointF, button, buttons) -> None:
    event = QMouseEvent(kind, pos, QPointF(widget.mapToGlobal(pos.toPoint())), button, buttons,
                        Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def stroke(pad, cells) -> None:
    """One drag over the pad through the centres of ``cells`` ((row, col), ...)."""
    points = [pad.cell_center(r, c) for r, c in cells]
    send_mouse(pad, QEvent.Type.MouseButtonPress, points[0], LEFT, LEFT)
    for p in points[1:]:
        send_mouse(pad, QEvent.Type.MouseMove, p, Qt.MouseButton.NoButton, LEFT)
    send_mouse(pad, QEvent.Type.MouseButtonRelease, points[-1], LEFT, Qt.MouseButton.NoButton)


def test_try_walks_the_wrong_ones_explains_and_takes_a_drawing(qtbot):
    from engine.explain import attribute

    window = open_example(qtbot, "cnn_digits", epochs=2)
    panel = window.try_ui.panel
    click_dock_tab(qtbot, window, "Try")
    assert "Train the network" in panel.message.text()  # nothing trained yet: says what to do
    train(qtbot, window)  # the Live views come up while it trains
    click_dock_tab(qtbot, window, "Try")
    qtbot.waitUntil(lambda: panel.tryout is not None, timeout=10_000)
    tryout = panel.tryout
    assert panel.stack.currentWidget() is panel.tabs and panel.tabs.currentWidget() is panel.body
    assert panel.order == list(range(tryout.size))

    # the ones it gets wrong, most confident first
    choose(qtbot, panel.source_combo, "Wrong ones")
    review = tryout.review()
    wrong = review.wrong()
    assert wrong and panel.order == wrong
    assert panel.answer_label.text().startswith("✗")
    assert panel.prediction.predicted != panel.truth == review.labels[wrong[0]]
    first_confidence = panel.prediction.confidence
    qtbot.mouseClick(panel.next_button, LEFT)
    assert panel.position == 1 and panel.index_spin.value() == 2
    assert panel.prediction.confidence <= first_confidence + 1e-6
    x, label = tryout.sample(wrong[1])
    assert torch.equal(panel.current_x, x) and panel.truth == label
    np.testing.assert_allclose(panel.bars.values, tryout.predict(x).probabilities, rtol=1e-6)

    # the attribution is Captum's, for the method and the layer picked
    choose(qtbot, panel.method_combo, "Grad-CAM")
    assert panel.node_combo.isVisible() and not panel.baseline_combo.isVisible()
    assert panel.attribution["method"] == "gradcam" and panel.attribution["node"] == "conv2"
    direct = attribute(tryout.model, tryout.graph, x, "gradcam", node="conv2")
    np.testing.assert_allclose(panel.attribution["attribution"], direct["attribution"],
                               rtol=1e-5, atol=1e-7)
    assert panel.attribution_picture.array is not None
    assert "Grad-CAM on conv2" in panel.attribution_note.text()
    choose(qtbot, panel.target_combo, "3")
    assert panel.attribution["target"] == 3
    # Grad-CAM's layer follows a convolutional node clicked on the canvas
    canvas = window.current_canvas()
    item = canvas.scene.node_item("conv1")
    qtbot.mouseClick(canvas.view.viewport(), LEFT,
                     pos=canvas.view.mapFromScene(item.sceneBoundingRect().center()))
    assert panel.node_combo.currentData() == "conv1"
    assert panel.attribution["node"] == "conv1" and "on conv1" in panel.attribution_note.text()

    # draw a "1": a vertical stroke down the middle of an empty pad
    choose(qtbot, panel.source_combo, "Draw your own")
    pad = panel.pad
    assert pad is not None and float(pad.image().max()) == pad.low  # an empty pad
    stroke(pad, [(r, 4) for r in range(1, 7)])
    qtbot.waitUntil(lambda: panel.sample_label.text() == "Your drawing"
                    and panel.current_x is not None
                    and float(panel.current_x.max()) == pad.high, timeout=5_000)
    drawn = torch.from_numpy(pad.image()).reshape(1, *tryout.sample_shape)
    qtbot.waitUntil(lambda: torch.equal(panel.current_x, drawn), timeout=5_000)
    np.testing.assert_allclose(panel.bars.values, tryout.predict(drawn).probabilities,
                               rtol=1e-6)
    assert float(drawn[0, 0, 3, 4]) == pad.high and float(drawn[0, 0, 0, 0]) == pad.low
    qtbot.mouseClick(panel.clear_button, LEFT)
    assert float(pad.image().max()) == pad.low


def test_the_whole_set_opens_a_confusion_cell_and_an_embedded_sample(qtbot):
    window = open_example(qtbot, "cnn_digits", epochs=2)
    train(qtbot, window)
    window.try_ui.show()
    panel = window.try_ui.panel
    qtbot.waitUntil(lambda: panel.tryout is not None, timeout=10_000)
    review = panel.tryout.review()
    bar = panel.tabs.tabBar()
    qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(1).center())  # Whole set
    assert panel.tabs.currentWidget() is panel.whole
    np.testing.assert_array_equal(panel.confusion.matrix, review.matrix())
    assert int(panel.confusion.matrix.sum()) == panel.tryout.size
    qtbot.waitUntil(lambda: panel.embedding.received > 0, timeout=30_000)  # PCA, at once
    assert len(panel.embedding.index) == panel.tryout.size
    assert panel.embed_node.currentData() == "relu3"  # the layer the classifier reads

    # a cell of the matrix: its samples in the One sample tab
    true, predicted, n = review.confused_pairs(1)[0]
    qtbot.mouseClick(panel.confusion.graphics.viewport(), LEFT,
                     pos=panel.confusion.cell_center(true, predicted))
    assert panel.tabs.currentWidget() is panel.body
    assert panel.order == review.of_pair(true, predicted) and len(panel.order) == n
    assert panel.truth == true and panel.prediction.predicted == predicted
    # a cell of the diagonal: the right ones of a class
    qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(1).center())
    qtbot.mouseClick(panel.confusion.graphics.viewport(), LEFT,
                     pos=panel.confusion.cell_center(0, 0))
    assert panel.order == review.of_pair(0, 0) and panel.truth == 0
    assert "(" in panel.source_combo.currentText() and "right" in panel.source_combo.currentText()

    # a dot of the embedding: that sample
    qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(1).center())
    k = 7
    qtbot.mouseClick(panel.embedding.graphics.viewport(), LEFT,
                     pos=panel.embedding.point_position(k))
    assert panel.tabs.currentWidget() is panel.body
    # the dot under the cursor (another may lie on top of it at this size: the same place)
    shown = panel.order[panel.position]
    here = panel.embedding.point_position(panel.embedding.index.index(shown))
    there = panel.embedding.point_position(k)
    assert (here - there).manhattanLength() <= 8  # within a dot's width
    assert torch.equal(panel.current_x, panel.tryout.sample(shown)[0])

    # t-SNE on another layer
    choose(qtbot, panel.embed_method, "t-SNE")
    choose(qtbot, panel.embed_node, "fc1")
    qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(1).center())
    received = panel.embedding.received
    qtbot.mouseClick(panel.map_button, LEFT)
    assert panel.embedding.received == received + 1
    assert "t-SNE of fc1" in panel.embedding.plot.titleLabel.text


def test_an_attention_model_shows_each_heads_weights(qtbot):
    window = open_example(qtbot, "transformer_sine", epochs=1)
    train(qtbot, window)
    window.try_ui.show()
    panel = window.try_ui.panel
    qtbot.waitUntil(lambda: panel.tryout is not None, timeout=10_000)
    assert panel.attention_picture.isVisible() and panel.attention_picture.array is not None
    want = panel.tryout.attention(panel.current_x)["encoder"]
    np.testing.assert_allclose(panel.attention_maps["encoder"], want, rtol=1e-6)
    assert "4 heads side by side" in panel.attention_note.text()
    qtbot.mouseClick(panel.next_button, LEFT)  # another sample: other weights
    assert torch.equal(panel.current_x, panel.tryout.sample(1)[0])
    np.testing.assert_allclose(panel.attention_maps["encoder"],
                               panel.tryout.attention(panel.current_x)["encoder"], rtol=1e-6)

    # redraw the sequence: drag step 5 up to 0.9
    lines = panel.input_lines
    assert panel.input_stack.currentWidget() is lines
    before = panel.current_x.clone()
    target = lines.point_at(5, 0.9)
    send_mouse(lines, QEvent.Type.MouseButtonPress, target, LEFT, LEFT)
    send_mouse(lines, QEvent.Type.MouseButtonRelease, target, LEFT, Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: "(edited)" in panel.sample_label.text(), timeout=5_000)
    x = panel.current_x
    assert abs(float(x[0, 5, 0]) - 0.9) < 0.05  # within a pixel of where it was dropped
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[0, 5, 0] = False
    assert torch.equal(x[mask], before[mask])  # every other step as it was
    np.testing.assert_allclose(panel.prediction.output, panel.tryout.predict(x).output,
                               rtol=1e-6)


def test_try_types_values_for_a_tabular_model(qtbot):
    window = open_example(qtbot, "mlp_spirals", epochs=3)
    train(qtbot, window)
    window.try_ui.show()
    panel = window.try_ui.panel
    qtbot.waitUntil(lambda: panel.tryout is not None, timeout=10_000)
    assert len(panel.fields) == 2 and panel.pad is None
    choose(qtbot, panel.source_combo, "Type the values")
    field = panel.fields[0]
    field.setFocus()
    field.selectAll()
    qtbot.keyClicks(field, "1.5")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: panel.current_x is not None
                    and abs(float(panel.current_x[0, 0]) - 1.5) < 1e-6, timeout=5_000)
    x = panel.current_x
    np.testing.assert_allclose(panel.bars.values, panel.tryout.predict(x).probabilities,
                               rtol=1e-6)
    assert panel.attribution["attribution"].shape == (2,)
    assert not panel.attention_picture.isVisible()  # no attention layer, no attention map


def test_the_layer_reference_from_the_inspector_and_from_help(qtbot):
    from engine.layers import CATALOG
    from engine.reference import layer_entry

    window = open_example(qtbot, "cnn_digits", epochs=1)
    canvas = window.current_canvas()
    item = canvas.scene.node_item("conv1")
    qtbot.mouseClick(canvas.view.viewport(), LEFT,
                     pos=canvas.view.mapFromScene(item.sceneBoundingRect().center()))
    assert window.inspector.reference_button.isVisible()
    qtbot.mouseClick(window.inspector.reference_button, LEFT)
    dialog = window.reference_dialog
    qtbot.waitExposed(dialog)
    assert dialog.shown_type() == "Conv2d"
    assert "out_channels" in dialog.text.toPlainText()
    expected = QTextFromMarkdown(layer_entry(CATALOG["Conv2d"]))
    assert dialog.text.toPlainText() == expected

    dialog.search.setFocus()
    qtbot.keyClicks(dialog.search, "lstm")
    assert dialog.shown_type() == "LSTM"
    dialog.close()

    window.activateWindow()
    window.setFocus()
    window.actions_["layer_reference"].trigger()  # Help → Layer Reference (Shift+F1)
    assert dialog.isVisible()
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    assert "Layer Reference" in [a.text().replace("&", "") for a in help_menu.actions()]


def QTextFromMarkdown(text: str) -> str:  # noqa: N802 - mirrors Qt's own conversion
    from PySide6.QtGui import QTextDocument

    doc = QTextDocument()
    doc.setMarkdown(text)
    return doc.toPlainText()
