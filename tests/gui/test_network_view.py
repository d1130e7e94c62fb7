"""The Network view and step mode, driven like a learner would: train the spirals MLP, pause,
open the Network tab, press Step (one batch each), switch from weights to gradients. The lines
drawn are the model's own weights and the gradients of that very step."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from PySide6.QtCore import Qt

from engine.examples import EXAMPLES_DIR
from engine.project import parse_project
from gui.document import Document
from gui.main_window import MainWindow
from gui.settings import Settings

LEFT = Qt.MouseButton.LeftButton
TIMEOUT_MS = 60_000


@pytest.fixture(autouse=True)
def isolated(gui_isolated):
    return gui_isolated


def open_spirals(qtbot, width: int = 8) -> MainWindow:
    data = json.loads((EXAMPLES_DIR / "mlp_spirals.layerlab.json").read_text("utf-8"))
    data["training"]["epochs"] = 200
    for node in data["models"]["model"]["nodes"]:
        if node["id"] in ("fc1", "fc2"):
            node["params"]["out_features"] = width
    window = MainWindow(Settings(), theme="light", interactive=True)
    qtbot.addWidget(window, before_close_func=lambda w: setattr(w, "interactive", False))
    window.set_document(Document(parse_project(copy.deepcopy(data), "test project")))
    window.show()
    qtbot.waitExposed(window)
    return window


def pause_on_the_network_tab(qtbot, window):
    ui, panel = window.training, window.training.panel
    qtbot.mouseClick(panel.train_button, LEFT)
    qtbot.waitUntil(lambda: ui.controller.state == "running" and ui.controller.steps > 5,
                    timeout=TIMEOUT_MS)
    assert not panel.step_button.isEnabled()  # only while paused
    qtbot.mouseClick(panel.pause_button, LEFT)
    qtbot.wait(300)  # the step in flight ends
    views = ui.views
    bar = views.tabs.tabBar()
    index = views.tabs.indexOf(views.network)
    assert views.tabs.isTabVisible(index)
    qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(index).center())
    assert views.tabs.currentWidget() is views.network
    return ui, panel, views.network


def test_step_trains_one_batch_and_the_view_draws_its_weights_and_gradients(qtbot):
    window = open_spirals(qtbot)
    ui, panel, view = pause_on_the_network_tab(qtbot, window)
    assert panel.step_button.isEnabled()
    trainer = ui.controller.thread.worker.trainer
    for _ in range(3):
        before, seen = trainer.step, view.received
        qtbot.mouseClick(panel.step_button, LEFT)
        qtbot.waitUntil(lambda: trainer.step == before + 1 and trainer.is_paused
                        and view.received > seen, timeout=TIMEOUT_MS)
        qtbot.wait(200)
        assert trainer.step == before + 1  # one batch, then paused again
    data = view.canvas.data
    assert not data["summary"] and [layer["node"] for layer in data["layers"]] == \
        ["fc1", "fc2", "fc3"]
    model = trainer.models["model"]
    lines = view.canvas.lines()
    assert len(lines) == 2 * 8 + 8 * 8 + 8 * 2  # every weight a line
    fc1 = model.get_submodule(model.node_attrs["fc1"]).weight.detach().numpy()
    drawn = np.array([[v for i, _j, k, v in lines if i == 0 and k == row] for row in range(8)])
    np.testing.assert_allclose(drawn, fc1, rtol=1e-6)  # weights after the last step
    assert data["layers"][0]["units"].shape == (8,) and data["inputs"].shape == (2,)

    view.what.setFocus()
    qtbot.keyClick(view.what, Qt.Key.Key_Down)  # "Gradients of the last step"
    assert view.canvas.show_gradients and "gradients" in view.note.text()
    grad = model.get_submodule(model.node_attrs["fc1"]).weight.grad.numpy()
    drawn = np.array([[v for i, _j, k, v in view.canvas.lines() if i == 0 and k == row]
                      for row in range(8)])
    np.testing.assert_allclose(drawn, grad, rtol=1e-6)
    qtbot.mouseClick(panel.stop_button, LEFT)
    qtbot.waitUntil(lambda: ui.controller.state == "done", timeout=TIMEOUT_MS)


def test_a_wide_network_is_one_box_per_layer(qtbot):
    window = open_spirals(qtbot, width=64)
    ui, panel, view = pause_on_the_network_tab(qtbot, window)
    seen = view.received
    qtbot.mouseClick(panel.step_button, LEFT)
    qtbot.waitUntil(lambda: view.received > seen, timeout=TIMEOUT_MS)
    data = view.canvas.data
    assert data["summary"] and view.canvas.lines() == []
    assert [layer["shape"] for layer in data["layers"]] == [(64, 2), (64, 64), (2, 64)]
    assert all(layer["mean_abs"] > 0 and layer["grad_norm"] is not None
               for layer in data["layers"])
    assert "one box per layer" in view.note.text()
    qtbot.mouseClick(panel.stop_button, LEFT)
    qtbot.waitUntil(lambda: ui.controller.state == "done", timeout=TIMEOUT_MS)
