"""The inspector on its own: editors chosen by the spec, refusal at the editor, no echo loops."""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QSpinBox

from engine.graph import UNSET, Graph
from engine.layers import get_spec
from engine.project import parse_project
from engine.shapes import ShapeInference
from widgets.inspector import InspectorWidget, parse_text, validate_node_id


def graph_and_shapes():
    g = Graph()
    g.add_node("Input", "x", {"shape": [1, 8, 8]})
    g.add_node("Conv2d", "conv", {"out_channels": 4, "kernel_size": 3})
    g.add_node("BatchNorm2d", "bn")
    g.add_node("GELU", "act")
    g.add_node("MaxPool2d", "pool", {"kernel_size": 2})
    g.add_node("Flatten", "flat")
    g.add_node("Dropout", "drop")
    g.add_node("Linear", "fc", {"out_features": 3})
    g.add_node("Output", "y")
    ids = g.node_ids()
    for a, b in zip(ids, ids[1:]):
        g.connect(a, b)
    g.add_node("Linear", "lonely", {"out_features": 2})
    return g, ShapeInference(g)


@pytest.fixture
def inspector(qtbot):
    widget = InspectorWidget()
    qtbot.addWidget(widget)
    widget.resize(340, 700)
    widget.show()
    return widget


def test_editors_follow_the_param_kind(inspector):
    g, shapes = graph_and_shapes()
    inspector.show_node(g, shapes, "conv")
    e = inspector.editors
    assert isinstance(e["out_channels"].editor, QSpinBox)
    assert e["out_channels"].editor.minimum() == 1 and e["out_channels"].editor.value() == 4
    assert isinstance(e["kernel_size"].editor, QLineEdit)
    assert e["kernel_size"].editor.text() == "3"
    assert isinstance(e["padding"].editor, QLineEdit)
    assert isinstance(e["bias"].editor, QCheckBox) and e["bias"].editor.isChecked()
    assert "output channels" in e["out_channels"].editor.toolTip().lower() or \
        get_spec("Conv2d").param("out_channels").doc in e["out_channels"].editor.toolTip()
    inspector.show_node(g, shapes, "drop")
    p = inspector.editors["p"].editor
    assert isinstance(p, QDoubleSpinBox) and (p.minimum(), p.maximum()) == (0.0, 0.99)
    inspector.show_node(g, shapes, "act")
    combo = inspector.editors["approximate"].editor
    assert isinstance(combo, QComboBox) and combo.currentText() == "none"
    inspector.show_node(g, shapes, "bn")
    eps = inspector.editors["eps"].editor
    assert eps.decimals() >= 6 and eps.value() == pytest.approx(1e-5)


def test_spin_box_commits_once_on_enter(inspector, qtbot):
    g, shapes = graph_and_shapes()
    inspector.show_node(g, shapes, "fc")
    spin = inspector.editors["out_features"].editor
    seen = []
    inspector.param_edit_requested.connect(lambda *a: seen.append(a))
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin, "12")
    assert seen == []  # not per keystroke
    qtbot.keyClick(spin, Qt.Key.Key_Return)
    assert seen == [("fc", "out_features", 12)]
    spin.clearFocus()
    assert len(seen) == 1  # focus out after Enter commits nothing more


def test_tuple_field_accepts_one_or_two_numbers_and_refuses_the_rest(inspector, qtbot):
    g, shapes = graph_and_shapes()
    inspector.show_node(g, shapes, "pool")
    editor = inspector.editors["kernel_size"]
    seen = []
    inspector.param_edit_requested.connect(lambda *a: seen.append(a))
    editor.editor.selectAll()
    qtbot.keyClicks(editor.editor, "2, a")
    assert editor.editor.property("invalid") is True
    assert "whole numbers" in editor.reason.text()
    qtbot.keyClick(editor.editor, Qt.Key.Key_Return)
    assert seen == []
    editor.editor.selectAll()
    qtbot.keyClicks(editor.editor, "0")
    assert "at least 1" in editor.reason.text()
    editor.editor.selectAll()
    qtbot.keyClicks(editor.editor, "2, 1")
    assert editor.editor.property("invalid") is False and not editor.reason.isVisible()
    qtbot.keyClick(editor.editor, Qt.Key.Key_Return)
    assert seen == [("pool", "kernel_size", [2, 1])]


def test_optional_parameter_has_a_default_state(inspector, qtbot):
    g, shapes = graph_and_shapes()
    inspector.show_node(g, shapes, "pool")
    stride = inspector.editors["stride"]
    assert stride.editor.text() == "" and "default" in stride.editor.placeholderText()
    assert not stride.reset.isVisible()
    g.set_param("pool", "stride", 1)
    assert stride.editor.text() == "1" and stride.reset.isVisible()
    seen = []
    inspector.param_edit_requested.connect(lambda *a: seen.append(a))
    qtbot.mouseClick(stride.reset, Qt.MouseButton.LeftButton)
    assert seen == [("pool", "stride", UNSET)]
    inspector.show_node(g, shapes, "bn")
    momentum = inspector.editors["momentum"].editor
    momentum.setValue(momentum.minimum())  # the "None" step below the range
    assert momentum.text() == "None"
    assert seen[-1] == ("bn", "momentum", None)


def test_graph_changes_update_the_editors_without_echo(inspector):
    g, shapes = graph_and_shapes()
    inspector.show_node(g, shapes, "fc")
    seen = []
    inspector.param_edit_requested.connect(lambda *a: seen.append(a))
    g.set_param("fc", "out_features", 7)
    assert inspector.editors["out_features"].editor.value() == 7
    g.set_param("fc", "bias", False)
    assert not inspector.editors["bias"].editor.isChecked()
    assert seen == []
    g.rename_node("fc", "head")
    assert inspector.node_id == "head" and inspector.id_edit.text() == "head"


def test_shapes_counts_and_errors_are_shown(inspector):
    g, shapes = graph_and_shapes()
    inspector.show_node(g, shapes, "conv")
    texts = _texts(inspector)
    assert "1×8×8" in texts and "4×6×6" in texts and "40" in texts  # 4·9 + 4 parameters
    assert not inspector.error_box.isVisible()
    g.set_param("conv", "kernel_size", 9)  # larger than the 8×8 input
    assert inspector.error_box.isVisible() and "kernel" in inspector.error_box.text().lower()
    inspector.show_node(g, shapes, "lonely")
    assert inspector.error_box.isVisible() and "needs an input" in inspector.error_box.text()


def test_rename_is_validated(inspector, qtbot):
    g, shapes = graph_and_shapes()
    assert validate_node_id(g, "fc", "conv") == "there is already a node 'conv'"
    assert validate_node_id(g, "fc", "") is not None
    assert validate_node_id(g, "fc", "2 words") is not None
    assert validate_node_id(g, "fc", "head_1") is None
    inspector.show_node(g, shapes, "fc")
    seen = []
    inspector.rename_requested.connect(lambda *a: seen.append(a))
    inspector.id_edit.selectAll()
    qtbot.keyClicks(inspector.id_edit, "conv")
    qtbot.keyClick(inspector.id_edit, Qt.Key.Key_Return)
    assert seen == [] and inspector.id_reason.isVisible()
    inspector.id_edit.selectAll()
    qtbot.keyClicks(inspector.id_edit, "head")
    qtbot.keyClick(inspector.id_edit, Qt.Key.Key_Return)
    assert seen == [("fc", "head")]


def test_nothing_selected_shows_the_project(inspector):
    project = parse_project({
        "format": "layerlab-project", "name": "Spiral demo",
        "models": {"model": {"nodes": [{"id": "x", "type": "Input"}]}},
        "dataset": {"name": "spirals", "params": {"noise": 0.2}, "val_split": 0.2},
        "training": {"task": "classification", "optimizer": {"type": "Adam", "lr": 0.01},
                     "epochs": 30}})
    inspector.show_project(project, {"x": (2,), "y": ()}, None)
    texts = _texts(inspector)
    for expected in ("Spiral demo", "spirals", "0.2", "20%", "classification", "Adam",
                     "lr=0.01", "30", "2"):
        assert any(expected in t for t in texts), expected
    inspector.show_project(project, {}, "unknown dataset 'nope'")
    assert any("unknown dataset" in t for t in _texts(inspector))


def test_parse_text():
    size = get_spec("Conv2d").param("kernel_size")
    assert parse_text(size, " 3 ") == 3
    assert parse_text(size, "(3, 5)") == [3, 5]
    assert parse_text(size, "3x5") == [3, 5]
    assert parse_text(get_spec("Conv2d").param("padding"), "Same") == "same"
    assert parse_text(size, "") is None
    with pytest.raises(ValueError):
        parse_text(size, "three")


def _texts(inspector) -> list[str]:
    from PySide6.QtWidgets import QLabel

    labels = inspector.findChildren(QLabel)
    return [label.text() for label in labels if label.isVisibleTo(inspector)]


def test_wiring_verdict_follows_new_wires(inspector):
    g, shapes = graph_and_shapes()
    inspector.show_node(g, shapes, "lonely")
    assert "needs an input" in inspector.error_box.text()
    g.connect("flat", "lonely")
    assert "does not lead to an Output" in inspector.error_box.text()
    g.add_node("Output", "y2")
    g.connect("lonely", "y2")
    assert not inspector.error_box.isVisible()
