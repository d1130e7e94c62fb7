"""Training → Sweep… in the real window: parameters typed into the dialog, trials trained in the
background by the engine's sweep (Optuna, SQLite beside the project), the trial table and the
plots filled, "Apply best" as one undo step; a range that cannot be searched is refused.

The project is the spirals MLP with 300 samples and 3 epochs per trial, so a trial takes about a
second.
"""
from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication

from engine.examples import EXAMPLES_DIR
from gui.document import Document
from gui.main_window import MainWindow
from gui.settings import Settings

SWEEP_TIMEOUT_MS = 120_000


@pytest.fixture(autouse=True)
def isolated(gui_isolated):
    """Settings, data and runs in a temporary folder; message boxes recorded, never shown."""
    return gui_isolated


def small_spirals(tmp_path: Path) -> Path:
    data = json.loads((EXAMPLES_DIR / "mlp_spirals.layerlab.json").read_text("utf-8"))
    data["training"]["epochs"] = 3
    data["dataset"]["params"]["n_samples"] = 300
    path = tmp_path / "spirals.layerlab.json"
    path.write_text(json.dumps(data), "utf-8")
    return path


def open_window(qtbot, path: Path) -> MainWindow:
    window = MainWindow(Settings(), theme="light", interactive=True)
    qtbot.addWidget(window, before_close_func=lambda w: setattr(w, "interactive", False))
    window.set_document(Document.open(path))
    window.show()
    qtbot.waitExposed(window)
    return window


def open_dialog(qtbot, window):
    """Training → Sweep… through the menu bar's action."""
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Training")
    action = next(a for a in menu.actions() if a.text().replace("&", "") == "Sweep…")
    action.trigger()
    dialog = window.sweep_dialog
    qtbot.waitExposed(dialog)
    return dialog


def replace_text(qtbot, edit, text: str) -> None:
    """Select what the field holds and type ``text`` over it, key by key."""
    edit.setFocus()
    qtbot.keyClick(edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(edit, text)


def fill_lr_row(qtbot, dialog, low: str, high: str, trials: int) -> None:
    row = dialog.rows[0]
    replace_text(qtbot, row.key.lineEdit(), "training.optimizer.lr")
    assert row.key.currentText() == "training.optimizer.lr"
    row.kind.setFocus()
    qtbot.keyClicks(row.kind, "f")  # the combo picks the item typed (one key: no search timeout)
    assert row.kind.currentText() == "float"
    replace_text(qtbot, row.low, low)
    replace_text(qtbot, row.high, high)
    if not row.log.isChecked():
        qtbot.mouseClick(row.log, Qt.MouseButton.LeftButton)
    assert row.log.isChecked()
    dialog.trials_spin.setFocus()
    dialog.trials_spin.selectAll()
    qtbot.keyClicks(dialog.trials_spin, str(trials))
    assert dialog.trials_spin.value() == trials


def test_a_sweep_from_the_window_fills_the_views_and_applies_its_best(qtbot, tmp_path):
    window = open_window(qtbot, small_spirals(tmp_path))
    original_lr = window.document.project.training["optimizer"]["lr"]
    dialog = open_dialog(qtbot, window)
    assert dialog.epochs_spin.value() == 3  # the project's epochs by default
    keys = [dialog.rows[0].key.itemText(i) for i in range(dialog.rows[0].key.count())]
    assert {"training.optimizer.lr", "training.batch_size", "fc1.out_features",
            "a1.type", "a1.include"} <= set(keys)
    fill_lr_row(qtbot, dialog, "1e-3", "5e-2", trials=4)

    ticks = []
    timer = QTimer(interval=50)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    ticks.append(time.perf_counter())  # Start imports Optuna on the GUI thread, once
    timer.start()
    assert dialog.running and not dialog.error_label.isVisible()
    assert not dialog.start_button.isEnabled() and dialog.stop_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.trial_table.rowCount() == 4, timeout=SWEEP_TIMEOUT_MS)
    # the thread ends, then its finished signal reaches the dialog and enables Start
    qtbot.waitUntil(lambda: not dialog.running and dialog.start_button.isEnabled(),
                    timeout=SWEEP_TIMEOUT_MS)
    timer.stop()
    ticks.append(time.perf_counter())
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert max(gaps) < 2.0, gaps  # the window kept answering, however fast the trials were

    states = [dialog.trial_table.item(i, 1).text() for i in range(4)]
    assert all(state in ("complete", "pruned") for state in states), states
    complete = dialog.complete_trials()
    assert len(complete) == 4  # the median pruner waits for 4 trials before it prunes
    assert dialog.best_view.point_count() == 4
    assert dialog.parallel_view.line_count() == 4
    assert dialog.importance_view.importances == {"training.optimizer.lr": pytest.approx(1.0)}
    for trial in complete:
        assert 1e-3 <= trial["params"]["training.optimizer.lr"] <= 5e-2
    best = min(complete, key=lambda t: t["value"])
    assert dialog.best_trial() is best
    assert dialog.start_button.isEnabled() and dialog.apply_button.isEnabled()
    runs = list((tmp_path / "runs").rglob("run.json"))
    assert len(runs) >= 4  # every trial is a recorded run
    assert (tmp_path / "runs" / "spirals" / "sweeps.db").exists()

    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    project = window.document.project
    assert project.training["optimizer"]["lr"] == best["params"]["training.optimizer.lr"]
    assert window.document.undo_stack.count() == 1
    assert window.document.is_dirty()

    window.activateWindow()
    window.actions_["undo"].trigger()  # Edit → Undo (Ctrl+Z)
    assert window.document.project.training["optimizer"]["lr"] == original_lr
    assert window.document.undo_stack.canRedo()
    window.actions_["redo"].trigger()
    assert window.document.project.training["optimizer"]["lr"] == \
        best["params"]["training.optimizer.lr"]


def test_an_empty_range_is_refused_in_plain_words(qtbot, tmp_path):
    window = open_window(qtbot, small_spirals(tmp_path))
    dialog = open_dialog(qtbot, window)
    fill_lr_row(qtbot, dialog, "5e-2", "1e-3", trials=2)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert not dialog.running and dialog.worker is None
    assert dialog.error_label.isVisible()
    text = dialog.error_label.text()
    assert "training.optimizer.lr" in text and "empty" in text
    assert "Traceback" not in text and "--param" not in text
    assert dialog.trial_table.rowCount() == 0
    assert not (tmp_path / "runs" / "spirals" / "sweeps.db").exists()


def test_apply_best_changes_layers_as_one_undo_step(qtbot, tmp_path):
    """Node parameters, a swapped activation and a skipped layer: one step, undone exactly."""
    from engine.project import project_to_dict
    from gui.sweep_dialog import apply_values_command

    window = open_window(qtbot, small_spirals(tmp_path))
    doc = window.document
    before = copy.deepcopy(project_to_dict(doc.project))
    command = apply_values_command(doc, {"fc1.out_features": 16, "a1.type": "Tanh",
                                         "a2.include": False, "training.batch_size": 64},
                                   "Apply sweep trial #0")
    window.editing.push(command)
    graph = doc.project.models["model"]
    assert graph.node("fc1").params["out_features"] == 16
    assert graph.node("a1").type == "Tanh"
    assert "a2" not in graph
    assert doc.project.training["batch_size"] == 64
    assert not doc.problems("model")
    assert doc.undo_stack.count() == 1
    window.actions_["undo"].trigger()
    after = project_to_dict(doc.project)
    assert after["training"] == before["training"]
    nodes = {n["id"]: n for n in after["models"]["model"]["nodes"]}
    assert nodes == {n["id"]: n for n in before["models"]["model"]["nodes"]}
    edges = after["models"]["model"]["edges"]
    assert sorted(map(json.dumps, edges)) == sorted(map(json.dumps,
                                                        before["models"]["model"]["edges"]))
    assert math.isclose(doc.project.training["optimizer"]["lr"], 0.01)


def test_stop_ends_the_sweep_after_the_running_trial(qtbot, tmp_path):
    window = open_window(qtbot, small_spirals(tmp_path))
    dialog = open_dialog(qtbot, window)
    fill_lr_row(qtbot, dialog, "1e-3", "5e-2", trials=20)
    dialog.epochs_spin.setFocus()  # slower trials, so that Stop lands while one runs
    dialog.epochs_spin.selectAll()
    qtbot.keyClicks(dialog.epochs_spin, "30")
    assert dialog.epochs_spin.value() == 30
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.trial_table.rowCount() >= 1, timeout=SWEEP_TIMEOUT_MS)
    qtbot.mouseClick(dialog.stop_button, Qt.MouseButton.LeftButton)
    assert "Stopping" in dialog.status_label.text()
    # the thread ends, then its finished signal reaches the dialog and enables Start
    qtbot.waitUntil(lambda: not dialog.running and dialog.start_button.isEnabled(),
                    timeout=SWEEP_TIMEOUT_MS)
    assert 1 <= dialog.trial_table.rowCount() < 20
    assert dialog.status_label.text().startswith("Stopped")
    assert dialog.start_button.isEnabled() and not dialog.stop_button.isEnabled()


def test_an_int_range_takes_a_step(qtbot, tmp_path):
    """fc1.out_features from 16 to 64 in steps of 16: the dialog's spec carries the step and
    every trial's width is one of 16, 32, 48, 64."""
    window = open_window(qtbot, small_spirals(tmp_path))
    dialog = open_dialog(qtbot, window)
    row = dialog.rows[0]
    replace_text(qtbot, row.key.lineEdit(), "fc1.out_features")
    row.kind.setFocus()
    qtbot.keyClicks(row.kind, "i")  # one key: a slow machine cannot split the search
    assert row.kind.currentText() == "int" and row.step.isEnabled()
    replace_text(qtbot, row.low, "16")
    replace_text(qtbot, row.high, "64")
    replace_text(qtbot, row.step, "16")
    if not row.log.isChecked():
        qtbot.mouseClick(row.log, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)  # a log scale and a step
    assert not dialog.running and "log scale takes no step" in dialog.error_label.text()
    qtbot.mouseClick(row.log, Qt.MouseButton.LeftButton)
    assert not row.log.isChecked()
    assert row.spec_text() == "fc1.out_features=int:16:64:16"
    dialog.trials_spin.setFocus()
    dialog.trials_spin.selectAll()
    qtbot.keyClicks(dialog.trials_spin, "3")
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.running and dialog.start_button.isEnabled()
                    and dialog.trial_table.rowCount() == 3, timeout=SWEEP_TIMEOUT_MS)
    widths = {t["params"]["fc1.out_features"] for t in dialog.trials}
    assert widths <= {16, 32, 48, 64}, widths
    # a combo's type-ahead joins keys typed within the keyboard interval ("i" then "f" would
    # search "if"); a fast sweep can end inside it, so wait it out as a person's pause would
    qtbot.wait(QApplication.keyboardInputInterval() + 100)
    row.kind.setFocus()
    qtbot.keyClicks(row.kind, "f")
    assert row.kind.currentText() == "float" and not row.step.isEnabled()
