"""Training in the real window with the real engine Trainer: start, pause, resume, stop; a run
that blows up; the live views of a classifier, a GAN and a VAE; the settings panel's undo; save
and try; the event loop answering throughout; ``--train --quit-after`` from the command line.

Datasets are tiny and runs are one or two epochs (or stopped early) to keep this file quick.
"""
from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QThread, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog

from engine.examples import EXAMPLES_DIR
from engine.project import load_project, parse_project, project_to_dict, save_project
from gui.document import Document
from gui.main_window import MainWindow
from gui.settings import Settings
from gui.training.pacing import CpuBudget

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_MS = 90_000
LEFT = Qt.MouseButton.LeftButton


@pytest.fixture(autouse=True)
def isolated(gui_isolated):
    """Settings, data and runs in a temporary folder; message boxes recorded, never shown."""
    return gui_isolated


def example(name: str, **changes) -> dict:
    """An example project as a dict, with smaller data and fewer epochs."""
    data = project_to_dict(load_project(EXAMPLES_DIR / f"{name}.layerlab.json"))
    for block, values in changes.items():
        for key, value in values.items():
            data[block][key] = value
    return data


def open_window(qtbot, data: dict, tmp_path: Path | None = None) -> MainWindow:
    project = parse_project(copy.deepcopy(data), "test project")
    if tmp_path is not None:
        project.path = tmp_path / "net.layerlab.json"
        save_project(project, project.path)
    window = MainWindow(Settings(), theme="light", interactive=True)
    qtbot.addWidget(window, before_close_func=lambda w: setattr(w, "interactive", False))
    window.set_document(Document(project))
    window.show()
    qtbot.waitExposed(window)
    return window


def wait_state(qtbot, ui, *states, timeout=RUN_TIMEOUT_MS) -> None:
    qtbot.waitUntil(lambda: ui.controller.state in states, timeout=timeout)


def spirals(epochs=2, n=256, batch=32) -> dict:
    return example("mlp_spirals", dataset={"params": {"n_samples": n, "noise": 0.1}},
                   training={"epochs": epochs, "batch_size": batch})


def finite_weights(trainer) -> bool:
    return all(bool(p.isfinite().all()) for m in trainer.models.values()
               for p in m.parameters())


# -- control ---------------------------------------------------------------------------------
def test_start_pause_resume_stop(qtbot):
    window = open_window(qtbot, spirals(epochs=500, n=2000))
    ui, panel = window.training, window.training.panel
    assert panel.train_button.isEnabled() and not panel.stop_button.isEnabled()
    qtbot.mouseClick(panel.train_button, LEFT)
    wait_state(qtbot, ui, "running")
    qtbot.waitUntil(lambda: ui.controller.steps > 20, timeout=RUN_TIMEOUT_MS)
    assert not panel.train_button.isEnabled() and panel.stop_button.isEnabled()
    assert not window.actions_["delete"].isEnabled() and not window.inspector.isEnabled()
    assert "Training on the CPU" in ui.device_label.text()
    assert not ui.controller.latency.active  # the 5 ms instrument is for --train runs only

    qtbot.mouseClick(panel.pause_button, LEFT)
    assert ui.controller.state == "paused" and "Resume" in panel.pause_button.text()
    qtbot.wait(300)  # the step in flight ends, then the loop waits
    paused_at = ui.controller.steps
    qtbot.wait(400)
    assert ui.controller.steps == paused_at
    trainer = ui.controller.thread.worker.trainer
    assert trainer.is_paused and finite_weights(trainer)

    qtbot.mouseClick(panel.pause_button, LEFT)
    assert ui.controller.state == "running"
    qtbot.waitUntil(lambda: ui.controller.steps > paused_at + 20, timeout=RUN_TIMEOUT_MS)

    qtbot.mouseClick(panel.stop_button, LEFT)
    wait_state(qtbot, ui, "done")
    assert ui.controller.result.stopped == "stopped"
    assert ui.controller.trainer is trainer and finite_weights(trainer)
    assert not ui.controller.thread.is_running()
    assert panel.train_button.isEnabled() and panel.save_button.isEnabled()
    assert window.actions_["delete"].isEnabled() and window.inspector.isEnabled()
    assert ui.views.curves.received > 0 and "Stopped" in panel.progress.details.text()
    assert "Trained on the CPU" in ui.device_label.text()


def test_editing_is_refused_while_training(qtbot):
    window = open_window(qtbot, spirals(epochs=500, n=2000))
    ui = window.training
    canvas = window.current_canvas()
    before = sorted(canvas.graph.node_ids())
    ui.start()
    wait_state(qtbot, ui, "running")
    window.editing.layer_activated("Linear", True)  # what Enter in the palette search does
    assert sorted(canvas.graph.node_ids()) == before
    assert "stop it to edit" in window.statusBar().currentMessage()
    ui.controller.stop()
    wait_state(qtbot, ui, "done")
    window.editing.layer_activated("Linear", True)
    assert len(canvas.graph.node_ids()) == len(before) + 1


def test_a_run_that_blows_up_ends_with_a_message_and_the_node(qtbot, isolated):
    data = example("mlp_spirals", dataset={"params": {"n_samples": 256}},
                   training={"optimizer": {"type": "SGD", "lr": 1e12}, "batch_size": 32,
                             "epochs": 3})
    window = open_window(qtbot, data)
    ui = window.training
    ui.start()
    wait_state(qtbot, ui, "failed")
    kind, title, message = isolated[-1]
    assert kind == "critical" and title == "Training stopped"
    assert "NaN" in message or "infinite" in message
    node = message.split(":")[0]
    canvas = window.current_canvas()
    assert node in canvas.graph
    assert canvas.scene.selected_node_ids() == [node]
    assert canvas.scene.node_item(node).badge[1] == "error"
    assert "Failed" in ui.panel.progress.details.text()
    assert ui.panel.train_button.isEnabled()  # the window lives on: train again
    assert finite_weights(ui.controller.trainer)


def test_a_project_that_cannot_train_says_why(qtbot, isolated):
    data = spirals()
    last = next(n for n in data["models"]["model"]["nodes"] if n["id"] == "fc3")
    last["params"]["out_features"] = 3  # three scores for two classes
    window = open_window(qtbot, data)
    window.training.start()
    wait_state(qtbot, window.training, "failed")
    assert "2 classes" in isolated[-1][2]
    assert window.current_canvas().scene.selected_node_ids()  # the layer at fault


# -- live views ----------------------------------------------------------------------------------
def test_classifier_views_and_canvas(qtbot):
    window = open_window(qtbot, spirals(epochs=2))
    ui = window.training
    ui.start()
    wait_state(qtbot, ui, "done")
    views = ui.views
    assert views.tabs.currentWidget() is views.boundary  # 2-D classification: the boundary
    assert views.boundary.image.image is not None and len(views.boundary.points.data) > 0
    assert len(views.curves.data("val_accuracy", per_step=False)[0]) == 2
    views.tabs.setCurrentWidget(views.confusion)
    assert views.confusion.matrix is not None and views.confusion.matrix.shape == (2, 2)
    views.tabs.setCurrentWidget(views.gradients)
    assert set(views.gradients.curves) == {"fc1", "fc2", "fc3"}
    steps = views.gradients.curves["fc1"].xData  # each recorded step once, in order
    # the first three updates, then of every 4th (Probes.grad_every) at most one per
    # Probes.grad_interval
    listed, n = steps.tolist(), ui.controller.steps
    assert listed[:3] == [1, 2, 3] and len(listed) > 3 and listed == sorted(set(listed))
    assert set(listed[3:]) <= set(range(4, n + 1, 4))
    views.tabs.setCurrentWidget(views.activations)
    assert views.activations.kind == "units"  # fc1, the first layer with weights
    views.tabs.setCurrentWidget(views.histograms)
    assert views.histograms.weights.columns
    assert not views.tabs.isTabVisible(views.tabs.indexOf(views.samples))
    scene = window.current_canvas().scene
    tints = [scene.node_item(n).tint for n in ("fc1", "a1", "fc3")]
    assert all(t is not None and 0 <= t <= 1 for t in tints)
    assert any(e.strength is not None for e in scene.edge_items())


def test_selecting_a_layer_shows_its_activations(qtbot):
    window = open_window(qtbot, example("cnn_digits", training={"epochs": 2}))
    ui = window.training
    scene = window.current_canvas().scene
    scene.select_nodes(["conv2"])
    ui.start()
    wait_state(qtbot, ui, "done")
    views = ui.views
    views.tabs.setCurrentWidget(views.activations)
    assert views.activations.kind == "maps" and views.activations.layer == "conv2"
    assert views.activations.image.image is not None


def test_gan_views(qtbot):
    data = example("gan_ring", dataset={"params": {"n_samples": 512}},
                   training={"epochs": 2})
    window = open_window(qtbot, data)
    ui = window.training
    stopping = ui.panel.settings.early_stopping  # a GAN's losses do not measure progress
    assert not stopping.isEnabled() and "Not available for a GAN" in stopping.toolTip()
    ui.start()
    wait_state(qtbot, ui, "done")
    views = ui.views
    assert views.tabs.currentWidget() is views.samples
    assert views.samples.plots == [views.samples.points_plot]
    assert len(views.samples.fake.data) > 0 and len(views.samples.real.data) > 0
    assert {"d_loss", "g_loss"} <= set(views.curves.series)
    views.tabs.setCurrentWidget(views.gradients)
    assert any(k.startswith("generator:") for k in views.gradients.curves)
    assert any(k.startswith("discriminator:") for k in views.gradients.curves)


def test_vae_views(qtbot):
    window = open_window(qtbot, example("vae_digits", training={"epochs": 1}))
    ui = window.training
    ui.start()
    wait_state(qtbot, ui, "done")
    samples = ui.views.samples
    assert ui.views.tabs.currentWidget() is samples
    assert samples.plots == [samples.samples_plot, samples.pairs_plot]
    assert samples.samples_image.image is not None and samples.pairs_image.image is not None
    assert "epoch:val_kl" in ui.views.curves.series


def test_event_loop_keeps_answering_while_training(qtbot):
    window = open_window(qtbot, spirals(epochs=500, n=2000))
    ui = window.training
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(ui.controller.steps))
    timer.start(10)
    threads = []
    ui.controller.run_started.connect(
        lambda info: threads.append(QThread.currentThread() is QApplication.instance().thread()))
    ui.controller.measure_latency = True  # what --train --quit-after does
    ui.start()
    wait_state(qtbot, ui, "running")
    assert threads == [True]  # the trainer's news arrive in the window's thread
    start = len(ticks)
    qtbot.waitUntil(lambda: len(ticks) - start >= 50, timeout=10_000)
    timer.stop()
    assert ticks[-1] > ticks[start]  # training went on meanwhile
    assert ui.controller.latency.active and ui.controller.latency.ticks > 0
    ui.controller.stop()
    wait_state(qtbot, ui, "done")
    assert ui.controller.updates > 0


def test_costly_probes_run_only_for_the_views_on_screen():
    from engine.training import Callback, Trainer
    from gui.training.bridge import LiveProbes

    def refreshes(shown) -> tuple[list, dict]:
        probes = LiveProbes(interval=0.0, samples=True, boundary=True, confusion=True)
        probes.show_only(shown)
        seen = []
        watch = Callback()
        watch.on_batch_end = lambda trainer, step, logs: seen.append(set(probes.latest))
        Trainer(parse_project(spirals(epochs=2), "p"), device="cpu",
                callbacks=[probes, watch]).fit()
        return seen, probes.latest

    seen, last = refreshes(set())
    assert seen and not any(keys & {"boundary", "confusion"} for keys in seen)
    assert {"boundary", "confusion"} <= set(last)  # the run's last refresh: every view
    seen, _ = refreshes({"boundary"})
    assert all("boundary" in keys for keys in seen)


def test_cpu_budget_paces_drawing_by_the_cpu_the_window_used():
    clock, cpu = [0.0], [0.0]
    budget = CpuBudget(share=0.05, burst=0.03, clock=lambda: clock[0], cpu=lambda: cpu[0])
    budget.reset()
    assert budget.allows()
    clock[0], cpu[0] = 0.1, 0.1  # a costly frame: 100 ms of CPU in 100 ms
    assert not budget.allows()
    assert budget.balance == pytest.approx(-0.03)  # the debt kept is one burst at most
    clock[0] += 0.5  # idle: half a second earns 25 ms
    assert not budget.allows()
    clock[0] += 0.2
    assert budget.allows()
    clock[0] += 100.0
    assert budget.allows() and budget.balance == pytest.approx(0.03)  # saved: one burst


# -- settings, results ---------------------------------------------------------------------------
def test_settings_and_data_edits_are_undoable(qtbot):
    window = open_window(qtbot, spirals())
    doc, panel = window.document, window.training.panel
    panel.settings.lr.setValue(0.05)
    assert doc.project.training["optimizer"]["lr"] == 0.05
    panel.settings.epochs.setValue(7)
    assert doc.project.training["epochs"] == 7
    doc.undo_stack.undo()
    assert doc.project.training["epochs"] == 2 and panel.settings.epochs.value() == 2
    doc.undo_stack.undo()
    assert doc.project.training["optimizer"]["lr"] == 0.01
    assert panel.settings.early_stopping.text() == "off"
    panel.settings.early_stopping.setValue(4)
    assert doc.project.training["early_stopping"] == {"patience": 4}
    doc.undo_stack.undo()
    assert "early_stopping" not in doc.project.training
    assert panel.settings.early_stopping.value() == 0
    source = panel.data.source
    source.setCurrentIndex(source.findData("digits"))
    source.activated.emit(source.currentIndex())
    assert doc.project.dataset["name"] == "digits"
    assert doc.input_shapes["x"] == (1, 8, 8)
    shapes = window.current_canvas().shapes
    assert shapes.info["fc1"].out_shape == (1, 8, 64)  # the Input follows the dataset
    doc.undo_stack.undo()
    assert doc.project.dataset["name"] == "spirals" and shapes.info["fc1"].out_shape == (64,)
    assert not panel.data.preview.built  # the plots wait until they are seen
    window.training.training_dock.raise_()
    qtbot.waitUntil(lambda: panel.data.preview.built, timeout=5_000)
    preview = panel.data.preview.content
    qtbot.waitUntil(lambda: preview.has_data, timeout=10_000)
    assert preview.kind == "points"


def test_importing_a_csv_with_the_file_dialog(qtbot, tmp_path, monkeypatch):
    rows = ["x1,x2,label"] + [f"{i % 7 / 7:.3f},{i % 5 / 5:.3f},{'ab'[i % 2]}" for i in range(60)]
    (tmp_path / "points.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    window = open_window(qtbot, spirals(), tmp_path)
    doc, data = window.document, window.training.panel.data
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(tmp_path / "points.csv"), "")))
    data.source.setCurrentIndex(data.source.findData("csv"))
    data.source.activated.emit(data.source.currentIndex())
    assert doc.project.dataset["name"] == "csv"
    assert doc.project.dataset["params"]["path"] == "points.csv"  # beside the project
    assert doc.input_shapes == {"x": (2,), "y": ()} and doc.dataset_error is None
    assert "x: 2" in data.shapes.text()
    assert data.editors["path"].line_edit.text() == "points.csv"
    preview = data.preview.content
    qtbot.waitUntil(lambda: preview.has_data, timeout=10_000)
    assert preview.kind == "points" and len(preview.scatter.data) == 60
    doc.undo_stack.undo()
    assert doc.project.dataset["name"] == "spirals"


def test_a_bad_file_is_named_and_nothing_is_lost(qtbot, tmp_path, monkeypatch):
    (tmp_path / "bad.csv").write_text("a,b,c\n1,2,x\n3,oops,y\n", encoding="utf-8")
    window = open_window(qtbot, spirals(), tmp_path)
    doc, data = window.document, window.training.panel.data
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(tmp_path / "bad.csv"), "")))
    data.source.setCurrentIndex(data.source.findData("csv"))
    data.source.activated.emit(data.source.currentIndex())
    assert doc.project.dataset["name"] == "csv"
    preview = data.preview.content  # the shapes come from the header; the preview reads all
    qtbot.waitUntil(lambda: "bad.csv" in preview.hint.text(), timeout=10_000)
    assert "oops" in preview.hint.text() and not preview.has_data
    doc.undo_stack.undo()
    assert doc.project.dataset["name"] == "spirals" and doc.dataset_error is None


def test_canvas_flags_vanishing_and_exploding_gradients(qtbot):
    window = open_window(qtbot, spirals())
    overlay = window.training.overlay
    probes = {"means": {"model": {"fc1": 2.0, "a1": 1.0, "fc2": 0.5, "fc3": 0.1}},
              "grad_norms": {"model": {"nodes": ["fc1", "fc2", "fc3"], "steps": np.array([1]),
                                       "values": np.array([[1e-9, 0.5, 1e4]])}}}
    overlay.apply(probes, force=True)
    scene = window.current_canvas().scene
    assert scene.node_item("fc1").badge == ("vanishing gradient", "warning")
    assert scene.node_item("fc3").badge == ("exploding gradient", "error")
    assert scene.node_item("fc2").badge is None
    assert scene.node_item("fc1").tint == 1.0 and scene.node_item("fc3").tint == 0.05
    strengths = {e.dst: scene.edge_item(e).strength for e in scene.graph.edges()}
    assert strengths["fc3"] == 1.0 and strengths["fc1"] == 0.05  # the wire into each layer
    overlay.clear()
    assert scene.node_item("fc1").badge is None and scene.node_item("fc1").tint is None


def test_save_model_and_try_a_sample(qtbot, tmp_path):
    window = open_window(qtbot, example("cnn_digits", training={"epochs": 1}), tmp_path)
    ui, panel = window.training, window.training.panel
    ui.start()
    wait_state(qtbot, ui, "done")
    qtbot.mouseClick(panel.save_button, LEFT)
    path = tmp_path / "net.weights.pt"
    assert path.exists()
    import torch

    weights = torch.load(path, weights_only=True)
    assert set(weights) == {"model"} and "conv1.weight" in weights["model"]
    qtbot.mouseClick(panel.try_button, LEFT)
    trial = panel.trial.content.trial
    assert "predicted" in trial.text and trial.images.shape == (1, 8, 8)


def test_tensorboard_checkbox_writes_event_files_beside_the_project(qtbot, tmp_path):
    window = open_window(qtbot, spirals(epochs=1), tmp_path)
    ui, panel = window.training, window.training.panel
    box = panel.settings.tensorboard
    window.training.training_dock.raise_()
    bar = panel.tabs.tabBar()
    qtbot.mouseClick(bar, LEFT, pos=bar.tabRect(1).center())  # the Settings tab
    panel.tabs.currentWidget().ensureWidgetVisible(box)
    qtbot.waitUntil(box.isVisible, timeout=5_000)
    qtbot.mouseClick(box, LEFT, pos=QPoint(8, box.height() // 2))  # on the tick box
    assert window.document.project.training["tensorboard"] is True
    ui.start()
    wait_state(qtbot, ui, "done")
    board = tmp_path / "runs" / "net" / "tensorboard"
    assert list(board.glob("events.out.tfevents.*"))
    assert str(board) in panel.result_label.text()
    window.document.undo_stack.undo()
    assert "tensorboard" not in window.document.project.training and not box.isChecked()


# -- the command line ------------------------------------------------------------------------------
def test_train_quit_after_prints_steps_and_latency_last(tmp_path):
    shot = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "LAYERLAB_SETTINGS_DIR": str(tmp_path / "s"), "LAYERLAB_DATA_DIR": str(tmp_path / "d")}
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"),
                           str(EXAMPLES_DIR / "mlp_spirals.layerlab.json"), "--train",
                           "--quit-after", "6", "--screenshot", str(shot)],
                          capture_output=True, text=True, env=env, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert last["steps"] > 0
    assert set(last["ui_latency_ms"]) == {"p50", "p99", "max"}
    assert all(math.isfinite(v) for v in last["ui_latency_ms"].values())
    assert shot.exists() and shot.stat().st_size > 10_000
