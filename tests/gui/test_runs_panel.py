"""The Runs dock driven like a person would: runs recorded by the engine (as ``main.py train``
records them) listed with their status and differing settings, sorted, selected to overlay their
curves on the live plots, compared in words, opened into the project and undone with Ctrl+Z,
renamed, tagged, deleted and brought back; a run trained in the window joins the table.

Runs are two epochs of a small spirals MLP (a second or two each).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit

from engine.examples import EXAMPLES_DIR
from engine.project import load_project, parse_project, project_to_dict, save_project
from engine.runs import RunRecorder, list_runs
from gui.document import Document
from gui.main_window import MainWindow
from gui.runs_panel import RUN_ROLE
from gui.settings import Settings

LEFT = Qt.MouseButton.LeftButton
CTRL = Qt.KeyboardModifier.ControlModifier
RUN_TIMEOUT_MS = 90_000


@pytest.fixture(autouse=True)
def isolated(gui_isolated):
    """Settings, data and runs in a temporary folder; message boxes recorded, never shown."""
    return gui_isolated


def spirals(width: int, lr: float, epochs: int = 2) -> dict:
    data = project_to_dict(load_project(EXAMPLES_DIR / "mlp_spirals.layerlab.json"))
    data["dataset"]["params"] = {"n_samples": 200, "noise": 0.1}
    data["training"].update(epochs=epochs, batch_size=50)
    data["training"]["optimizer"]["lr"] = lr
    node = next(n for n in data["models"]["model"]["nodes"] if n["id"] == "fc1")
    node["params"]["out_features"] = width
    return data


def record_run(path: Path, width: int, lr: float, name: str | None = None) -> None:
    """Train the project at ``path`` with these settings headlessly, recording the run as the
    command line does (the file itself is not changed)."""
    from engine.training import Trainer

    project = parse_project(spirals(width, lr), str(path))
    project.path = path
    recorder = RunRecorder(project, source="cli", name=name)
    Trainer(project, device="cpu", callbacks=[recorder]).fit()


@pytest.fixture
def project_file(tmp_path) -> Path:
    """A saved project (fc1 32 wide, lr 0.005) with two recorded runs: narrow and wide."""
    path = tmp_path / "net.layerlab.json"
    save_project(parse_project(spirals(32, 0.005), str(path)), path)
    record_run(path, 8, 0.01, name="narrow")
    record_run(path, 16, 0.02, name="wide")
    return path


def open_window(qtbot, path: Path) -> MainWindow:
    window = MainWindow(Settings(), theme="light", interactive=True)
    qtbot.addWidget(window, before_close_func=lambda w: setattr(w, "interactive", False))
    window.set_document(Document.open(path))
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()  # window shortcuts (Ctrl+Z) only reach the active window
    qtbot.waitUntil(window.isActiveWindow)
    window.runs.dock.raise_()  # its tab, beside Inspector and Training
    qtbot.waitUntil(window.runs.panel.table.isVisible)
    return window


def row_point(panel, row: int) -> QPoint:
    return panel.table.visualRect(panel.proxy.index(row, 0)).center()


def click_rows(qtbot, panel, rows: list[int]) -> None:
    """Click the first row, Ctrl+click the others (as a person selects several)."""
    viewport = panel.table.viewport()
    for i, row in enumerate(rows):
        qtbot.mouseClick(viewport, LEFT, CTRL if i else Qt.KeyboardModifier.NoModifier,
                         row_point(panel, row))


def names_in_table(panel) -> list[str]:
    return [panel.cell_text(row, "Name") for row in range(panel.proxy.rowCount())]


def fc1_width(window) -> int:
    return window.document.graph("model").node("fc1").params["out_features"]


def lr(window) -> float:
    return window.document.project.training["optimizer"]["lr"]


# -- listing -------------------------------------------------------------------------------------
def test_table_lists_runs_with_status_differing_settings_and_metrics(qtbot, project_file):
    window = open_window(qtbot, project_file)
    ui, panel = window.runs, window.runs.panel
    assert ui.dock.isVisible() and ui.dock.toggleViewAction() in \
        window.actions_.panels_menu.actions()  # View -> Panels -> Runs
    assert panel.proxy.rowCount() == 2
    assert names_in_table(panel) == ["wide", "narrow"]  # newest first
    titles = [c[2] for c in panel.model.columns]
    assert titles[:2] == ["Name", "Status"]
    assert sorted(titles[2:4]) == ["fc1.out_features", "optimizer.lr"]  # what differs
    assert titles[4:] == ["Best val loss", "Final val loss", "Time", "Source", "Date"]
    assert "Tags" not in titles  # until a run has tags
    for row in range(2):
        assert panel.cell_text(row, "Status") == "finished"
        assert panel.cell_text(row, "Source") == "cli"
        assert panel.cell_text(row, "Best val loss") not in ("", "–")
        assert panel.cell_text(row, "Time").endswith(" s")
    wide = panel.row_of(next(r["id"] for r in ui.runs if r["name"] == "wide"))
    assert panel.cell_text(wide, "fc1.out_features") == "16"
    assert panel.cell_text(wide, "optimizer.lr") == "0.02"

    # sorting: a click on a header sorts by it (numbers as numbers), again reverses it
    header = panel.table.horizontalHeader()
    column = titles.index("fc1.out_features")
    qtbot.mouseClick(header.viewport(), LEFT,
                     pos=QPoint(header.sectionViewportPosition(column) + 10, header.height() // 2))
    first = [panel.cell_text(r, "fc1.out_features") for r in range(2)]
    qtbot.mouseClick(header.viewport(), LEFT,
                     pos=QPoint(header.sectionViewportPosition(column) + 10, header.height() // 2))
    second = [panel.cell_text(r, "fc1.out_features") for r in range(2)]
    assert sorted([first, second]) == [["16", "8"], ["8", "16"]]

    # the filter
    panel.filter.setText("narr")
    assert names_in_table(panel) == ["narrow"]
    panel.filter.clear()
    assert panel.proxy.rowCount() == 2


def test_selected_runs_overlay_their_curves_under_the_live_run(qtbot, project_file):
    window = open_window(qtbot, project_file)
    panel = window.runs.panel
    click_rows(qtbot, panel, [0, 1])
    assert [r["name"] for r in panel.selected_runs()] == ["wide", "narrow"]
    curves = window.training.views.curves
    assert set(curves.overlays) == {"wide", "narrow"}
    for label, items in curves.overlays.items():
        metrics = {item.overlay_metric for item in items}
        assert {"train_loss", "val_loss", "val_accuracy"} <= metrics
        for item in items:
            plot = curves.loss_plot if "loss" in item.overlay_metric else curves.metrics_plot
            assert item in plot.items and item.zValue() < 0  # under the live run
            x, y = item.getData()
            assert list(x) == [1.0, 2.0] and len(y) == 2
    colors = curves.overlay_colors
    assert colors["wide"] != colors["narrow"]
    legend = curves.metrics_plot.titleLabel.text  # names each run once, in its colour
    assert "wide" in legend and "narrow" in legend and colors["wide"] in legend
    assert "training" in curves.loss_plot.titleLabel.text  # dotted: the training loss
    assert curves.metrics_plot.isVisible() and curves.has_data
    # the table shows each selected run's colour beside its name
    assert panel.proxy.index(0, 0).data(Qt.ItemDataRole.DecorationRole).name() == colors["wide"]
    assert window.training.views_dock.isVisible()

    click_rows(qtbot, panel, [1])  # one run only: the other's curves go
    assert set(curves.overlays) == {"narrow"}
    assert colors["narrow"] == curves.overlay_colors["narrow"]  # its colour stays
    assert not any(item in curves.loss_plot.items for item in
                   [i for i in curves.loss_plot.items if getattr(i, "overlay_metric", None)
                    and i not in curves.overlays["narrow"]])
    panel.table.clearSelection()
    assert curves.overlays == {}
    assert not [i for i in curves.loss_plot.items if hasattr(i, "overlay_metric")]


def test_compare_two_runs_in_words(qtbot, project_file):
    window = open_window(qtbot, project_file)
    panel = window.runs.panel
    click_rows(qtbot, panel, [0])
    assert not panel.buttons["compare"].isEnabled()
    click_rows(qtbot, panel, [0, 1])
    assert panel.buttons["compare"].isEnabled()
    qtbot.mouseClick(panel.buttons["compare"], LEFT)
    dialog = window.runs.compare_dialog
    assert dialog is not None and dialog.isVisible()
    text = dialog.text.toPlainText()
    assert "fc1.out_features 8 → 16" in text  # A is the older run
    assert "training.optimizer.lr 0.01 → 0.02" in text
    assert "best val_loss" in text and "status finished → finished" in text
    dialog.close()


def test_open_a_run_then_ctrl_z_restores_the_project(qtbot, project_file):
    window = open_window(qtbot, project_file)
    panel, doc = window.runs.panel, window.document
    assert (fc1_width(window), lr(window)) == (32, 0.005)
    before = json.dumps(project_to_dict(doc.project), sort_keys=True)
    row = panel.row_of(next(r["id"] for r in window.runs.runs if r["name"] == "narrow"))
    click_rows(qtbot, panel, [row])
    qtbot.mouseClick(panel.buttons["open"], LEFT)
    assert (fc1_width(window), lr(window)) == (8, 0.01)
    assert doc.project.training["epochs"] == 2
    assert window.document is doc and doc.is_dirty()
    assert doc.undo_stack.count() == 1  # one step
    assert window.actions_["undo"].text() == "&Undo Open run narrow"
    scene = window.current_canvas().scene  # the canvas and shapes follow the graph
    assert scene.node_item("fc1") is not None
    assert doc.shapes["model"].info["fc1"].out_shape == (8,)
    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)
    assert (fc1_width(window), lr(window)) == (32, 0.005)
    assert json.dumps(project_to_dict(doc.project), sort_keys=True) == before
    assert doc.shapes["model"].info["fc1"].out_shape == (32,)
    assert not doc.is_dirty()
    window.redo()
    assert (fc1_width(window), lr(window)) == (8, 0.01)
    # a double-click opens too
    window.undo()
    other = panel.row_of(next(r["id"] for r in window.runs.runs if r["name"] == "wide"))
    qtbot.mouseClick(panel.table.viewport(), LEFT, pos=row_point(panel, other))
    qtbot.mouseDClick(panel.table.viewport(), LEFT, pos=row_point(panel, other))
    assert (fc1_width(window), lr(window)) == (16, 0.02)


def test_delete_then_undo_brings_the_run_back(qtbot, project_file, tmp_path):
    window = open_window(qtbot, project_file)
    panel, doc = window.runs.panel, window.document
    row = panel.row_of(next(r["id"] for r in window.runs.runs if r["name"] == "wide"))
    folder = Path(window.runs.runs[[r["name"] for r in window.runs.runs].index("wide")]["dir"])
    click_rows(qtbot, panel, [row])
    qtbot.mouseClick(panel.buttons["delete"], LEFT)
    assert names_in_table(panel) == ["narrow"]
    assert not folder.exists() and (folder.parent / ".trash" / folder.name).is_dir()
    project = load_project(project_file)
    assert [r["name"] for r in list_runs(project)] == ["narrow"]  # what main.py runs sees
    assert not doc.is_dirty()  # the project itself did not change
    assert window.actions_["undo"].text() == "&Undo Delete run wide"
    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)
    assert folder.is_dir() and sorted(names_in_table(panel)) == ["narrow", "wide"]
    window.redo()
    assert names_in_table(panel) == ["narrow"]
    # the trash is emptied once its undo step is gone (another project opened)
    window.set_document(Document.open(project_file))
    assert not (folder.parent / ".trash").exists() and not folder.exists()


def test_rename_and_tag_are_undoable(qtbot, project_file, monkeypatch):
    window = open_window(qtbot, project_file)
    panel = window.runs.panel
    answers = iter([("baseline", True), ("small, adam", True)])
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: next(answers)))
    row = panel.row_of(next(r["id"] for r in window.runs.runs if r["name"] == "narrow"))
    click_rows(qtbot, panel, [row])
    qtbot.mouseClick(panel.buttons["rename"], LEFT)
    assert sorted(names_in_table(panel)) == ["baseline", "wide"]
    row = panel.row_of(next(r["id"] for r in window.runs.runs if r["name"] == "baseline"))
    assert panel.selected_runs()[0]["name"] == "baseline"  # the selection survives a refresh
    qtbot.mouseClick(panel.buttons["tag"], LEFT)
    assert [c[2] for c in panel.model.columns][-1] == "Tags"
    assert panel.cell_text(row, "Tags") == "small, adam"
    run = next(r for r in list_runs(load_project(project_file)) if r["name"] == "baseline")
    assert run["tags"] == ["small", "adam"]
    window.undo()
    window.undo()
    assert sorted(names_in_table(panel)) == ["narrow", "wide"]
    assert "Tags" not in [c[2] for c in panel.model.columns]

    # F2 edits the name in the table; Enter takes it (one undo step as well)
    row = panel.row_of(next(r["id"] for r in window.runs.runs if r["name"] == "wide"))
    click_rows(qtbot, panel, [row])
    panel.table.setCurrentIndex(panel.proxy.index(row, 0))
    qtbot.keyClick(panel.table, Qt.Key.Key_F2)
    editor = QApplication.focusWidget()
    assert isinstance(editor, QLineEdit) and editor.text() == "wide"
    editor.selectAll()
    qtbot.keyClicks(editor, "wide, fast")
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "wide, fast" in names_in_table(panel))
    assert window.actions_["undo"].text() == "&Undo Rename run wide to wide, fast"
    window.undo()
    assert sorted(names_in_table(panel)) == ["narrow", "wide"]


def test_delete_key_in_the_table_deletes_runs_not_layers(qtbot, project_file):
    window = open_window(qtbot, project_file)
    panel = window.runs.panel
    layers = len(window.document.graph("model"))
    window.current_canvas().scene.select_nodes(["fc2"])  # a selected layer the key must spare
    click_rows(qtbot, panel, [0, 1])
    panel.table.setFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_Delete)
    assert panel.proxy.rowCount() == 0 and panel.hint.isVisible()  # "No runs recorded..."
    assert len(window.document.graph("model")) == layers
    assert window.actions_["undo"].text() == "&Undo Delete 2 runs"
    qtbot.keyClick(window, Qt.Key.Key_Z, CTRL)
    assert panel.proxy.rowCount() == 2


def test_a_run_made_outside_the_window_appears_by_itself(qtbot, project_file):
    window = open_window(qtbot, project_file)
    panel = window.runs.panel
    record_run(project_file, 4, 0.03, name="from the command line")
    qtbot.waitUntil(lambda: panel.proxy.rowCount() == 3, timeout=10_000)
    assert "from the command line" in names_in_table(panel)
    assert "optimizer.lr" in [c[2] for c in panel.model.columns]


def test_a_run_trained_in_the_window_joins_the_table(qtbot, project_file):
    window = open_window(qtbot, project_file)
    ui, panel = window.training, window.runs.panel
    click_rows(qtbot, panel, [0])  # an overlay while the live run trains
    qtbot.mouseClick(ui.panel.train_button, LEFT)
    qtbot.waitUntil(lambda: ui.controller.state == "done", timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: panel.proxy.rowCount() == 3, timeout=10_000)
    sources = {panel.cell_text(r, "Source"): panel.cell_text(r, "Status") for r in range(3)}
    assert sources == {"cli": "finished", "window": "finished"}
    newest = panel.proxy.index(0, 0).data(RUN_ROLE)
    assert newest["source"] == "window" and newest["epochs_done"] == 2
    curves = ui.views.curves
    assert "wide" in curves.overlays  # the selected run's curves stayed under the live run's
    live = curves.series["epoch:val_loss"].item
    assert all(item.zValue() < live.zValue() for item in curves.overlays["wide"])


# -- the curves' API -----------------------------------------------------------------------------
def test_curves_overlays_survive_a_new_live_run(qtbot):
    from widgets.plots.curves import CurvesView

    view = CurvesView()
    qtbot.addWidget(view)
    view.show()
    rows = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "val_accuracy": 0.5 + e / 10,
             "lr": 0.01, "seconds": 0.1} for e in (1, 2, 3)]
    view.set_overlays({"a": rows, "b": rows[:2]}, {"a": "#ef4444"})
    assert view.has_data and view.metrics_plot.isVisible()  # before any live run
    assert view.overlay_colors["a"] == "#ef4444" and view.overlay_colors["b"] != "#ef4444"
    assert {i.overlay_metric for i in view.overlays["a"]} == {"train_loss", "val_loss",
                                                              "val_accuracy"}  # not lr
    assert view.loss_plot.getViewBox().viewRange()[0][1] >= 3  # the x axis spans them
    assert view.metrics_plot.getAxis("left").labelText == "accuracy"
    view.begin_run(steps_per_epoch=4, epochs=2)
    assert view.metrics_plot.isVisible()  # the overlays' metrics keep their plot
    view.add_steps([1, 2, 3, 4], {"loss": [1.0, 0.9, 0.8, 0.7]})
    view.add_epoch({"epoch": 1, "train_loss": 0.8, "val_loss": 0.9, "val_accuracy": 0.6})
    assert all(i in view.loss_plot.items or i in view.metrics_plot.items
               for items in view.overlays.values() for i in items)
    live = view.series["loss"].item
    assert all(i.zValue() < live.zValue() for items in view.overlays.values() for i in items)
    view.begin_run(steps_per_epoch=4)  # the live curves become ghosts; overlays stay as they are
    assert len(view.ghosts) == 1 and not any(i in view.ghosts[0] for i in view.overlays["a"])
    view.log_y.setChecked(True)
    view.set_overlays({})
    assert not [i for i in view.loss_plot.items + view.metrics_plot.items
                if hasattr(i, "overlay_metric")]
    assert not view.metrics_plot.isVisible()  # nothing left to show there
    assert not view.has_data  # the hint again: no live curves, no overlays
