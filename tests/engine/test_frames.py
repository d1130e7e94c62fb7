"""Per-frame chains (PerFrame ... MergeFrames): a CNN on every frame, then a sequence layer."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.compiler import compile_model
from engine.data import load_dataset
from engine.graph import Edge, Graph
from engine.layers.spec import fmt_shape, full_shape
from engine.shapes import infer_shapes
from widgets.theme import format_shape

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "resources" / "examples" / "cnn_lstm_moving_shapes.layerlab.json"


def video_graph(merge: bool = True) -> Graph:
    g = Graph("model")
    chain = [("x", "Input", {"shape": [5, 1, 12, 12]}), ("frames", "PerFrame", {}),
             ("conv", "Conv2d", {"out_channels": 4, "kernel_size": 3, "padding": 1}),
             ("pool", "MaxPool2d", {"kernel_size": 2}), ("flat", "Flatten", {}),
             ("fc", "Linear", {"out_features": 6})]
    if merge:
        chain += [("merge", "MergeFrames", {}), ("gru", "GRU", {"hidden_size": 7}),
                  ("head", "Linear", {"out_features": 3})]
    chain += [("y", "Output", {})]
    for node_id, type_, params in chain:
        g.add_node(type_, node_id, params)
    for (a, *_), (b, *_) in zip(chain, chain[1:]):
        g.connect(a, b, "last" if a == "gru" else "out")
    return g


def test_wires_read_the_whole_sequence_and_layers_infer_per_frame():
    shapes = infer_shapes(video_graph())
    assert shapes.errors() == {}
    info = shapes.info
    assert format_shape(info["frames"].out_shape) == "5×1×12×12"
    assert format_shape(info["conv"].out_shape) == "5×4×12×12"
    assert format_shape(info["flat"].out_shape) == "5×144"
    assert format_shape(info["fc"].out_shape) == "5×6"
    assert tuple(info["fc"].out_shape) == (6,) and info["fc"].out_shape.frames == 5
    assert full_shape(info["merge"].out_shape) == (5, 6) and info["head"].out_shape == (3,)
    assert fmt_shape(info["fc"].out_shape) == "(6,) per frame"
    # parameters once, multiply-adds for every frame
    assert info["conv"].stats.params == 4 * 9 + 4
    assert info["conv"].stats.macs == 5 * (4 * 9 * 144)


def test_the_model_runs_the_cnn_on_every_frame():
    g = video_graph()
    model = compile_model(g).eval()
    x = torch.randn(3, 5, 1, 12, 12)
    conv = model.get_submodule(model.node_attrs["conv"])
    fc = model.get_submodule(model.node_attrs["fc"])
    gru = model.get_submodule(model.node_attrs["gru"])
    head = model.get_submodule(model.node_attrs["head"])
    with torch.no_grad():
        frames = [fc(torch.nn.functional.max_pool2d(conv(x[:, t]), 2).flatten(1))
                  for t in range(5)]
        _, h = gru(torch.stack(frames, dim=1))
        torch.testing.assert_close(model(x), head(h[-1]))


@pytest.mark.parametrize("change, node, message", [
    ("no_merge", "y", "end the chain with MergeFrames before the Output"),
    ("merge_twice", "merge2", "not inside one; start the chain with PerFrame"),
    ("nested", "frames2", "already inside a per-frame chain"),
    ("mixed", "add", "mixes a per-frame chain with other tensors"),
    ("flat_input", "frames", "PerFrame needs a sequence of frames"),
])
def test_mistakes_are_named_on_the_node(change, node, message):
    if change == "no_merge":
        g = video_graph(merge=False)
    else:
        g = video_graph()
    if change == "merge_twice":
        g.add_node("MergeFrames", "merge2")
        g.disconnect(Edge("merge", "gru"))
        g.connect("merge", "merge2")
        g.connect("merge2", "gru")
    elif change == "nested":
        g.add_node("PerFrame", "frames2")
        g.disconnect(Edge("conv", "pool"))
        g.connect("conv", "frames2")
        g.connect("frames2", "pool")
    elif change == "mixed":
        g.add_node("Input", "side", {"shape": [6]})
        g.add_node("Add", "add")
        g.disconnect(Edge("fc", "merge"))
        g.connect("fc", "add")
        g.connect("side", "add")
        g.connect("add", "merge")
    elif change == "flat_input":
        g.set_params("x", {"shape": [7]})
    errors = infer_shapes(g).errors()
    assert message in errors.get(node, ""), errors


def test_moving_shapes_needs_several_frames_to_tell_the_class():
    ds = load_dataset({"name": "moving_shapes", "params": {"n_samples": 80, "frames": 6,
                                                           "size": 16}, "val_split": 0.0})
    assert ds.shapes == {"x": (6, 1, 16, 16), "y": ()}
    assert ds.class_names == ["right", "left", "down", "up"]
    x, y = ds.x_train, ds.y_train
    # the shape's centre of mass moves one pixel per frame in the class's direction
    grid = torch.arange(16, dtype=torch.float32) + 0.5
    mass = (x[:, :, 0] > 0.5).float()
    cols = (mass.sum(2) * grid).sum(2) / mass.sum((2, 3))
    rows = (mass.sum(3) * grid).sum(2) / mass.sum((2, 3))
    dx, dy = cols[:, -1] - cols[:, 0], rows[:, -1] - rows[:, 0]
    expected = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])[y]
    torch.testing.assert_close(torch.stack([dx, dy], 1), expected, atol=0.6, rtol=0)


def test_example_trains_past_the_target_and_exports(tmp_path):
    out = tmp_path / "run"
    run = subprocess.run([sys.executable, str(ROOT / "main.py"), "train", str(EXAMPLE),
                          "--epochs", "6", "--out", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    epochs = [json.loads(line) for line in run.stdout.splitlines() if '"epoch"' in line]
    assert epochs[-1]["val_accuracy"] >= 0.9
    for fmt, target in (("onnx", tmp_path / "m.onnx"), ("torchscript", tmp_path / "m.pt")):
        done = subprocess.run([sys.executable, str(ROOT / "main.py"), "export", str(EXAMPLE),
                               "--weights", str(out / "weights.pt"), "--format", fmt,
                               "--out", str(target)], capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        assert "at batch sizes 1 and 7" in done.stdout
