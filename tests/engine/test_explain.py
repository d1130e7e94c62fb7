"""Explaining predictions: the numbers are Captum's, the attributions point at what matters."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.compiler import compile_model
from engine.explain import METHODS, ExplainError, attribute, render
from engine.graph import Graph
from engine.project import load_project
from engine.shapes import infer_shapes

ROOT = Path(__file__).resolve().parents[2]
CNN = ROOT / "resources" / "examples" / "cnn_digits.layerlab.json"


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """The digits CNN trained for its 15 epochs (about 2 s), with its data."""
    from engine.training.trainer import Trainer

    out = tmp_path_factory.mktemp("cnn")
    trainer = Trainer(load_project(CNN))
    trainer.fit()
    trainer.save_weights(out / "weights.pt")
    model = trainer.models["model"].eval()
    return model, trainer.graphs["model"], trainer.dataset, out / "weights.pt"


def test_every_method_equals_captum_run_directly(cnn):
    import captum.attr as attr

    model, graph, ds, _ = cnn
    x = ds.x_val[:1].float()

    def forward(t):
        return model(t)

    direct = {
        "saliency": lambda: attr.Saliency(forward).attribute(x, target=3),
        "ig": lambda: attr.IntegratedGradients(forward).attribute(
            x, baselines=torch.zeros_like(x), target=3, n_steps=64),
        "gradcam": lambda: attr.LayerAttribution.interpolate(
            attr.LayerGradCam(forward, model.conv2).attribute(x, target=3,
                                                              relu_attributions=True),
            (8, 8), interpolate_mode="bilinear"),
        "occlusion": lambda: attr.Occlusion(forward).attribute(
            x, sliding_window_shapes=(1, 3, 3), strides=(1, 1, 1), target=3, baselines=0.0),
    }
    for method, run in direct.items():
        ours = attribute(model, graph, x, method, target=3)["attribution"]
        assert np.allclose(ours, run().detach().numpy()[0], atol=1e-6), method


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_an_attribution_per_input_value(cnn, method):
    model, graph, ds, _ = cnn
    result = attribute(model, graph, ds.x_val[:1].float(), method,
                       train_inputs=ds.x_train, baseline="mean" if method == "ig" else "zeros")
    assert result["attribution"].shape == (1, 8, 8)
    assert np.isfinite(result["attribution"]).all()
    assert result["target"] == int(np.argmax(result["output"]))
    picture = render(ds.x_val[0].numpy(), result["attribution"])
    assert picture.dtype == np.uint8 and picture.shape[2] == 3


def test_integrated_gradients_finds_the_features_that_matter():
    """y depends on features 0 and 1 of 8 only: >= 90 % of the attribution mass is there."""
    g = Graph("model")
    for node_id, type_, params in [("x", "Input", {"shape": [8]}),
                                   ("fc1", "Linear", {"out_features": 32}), ("a", "ReLU", {}),
                                   ("fc2", "Linear", {"out_features": 2}), ("y", "Output", {})]:
        g.add_node(type_, node_id, params)
    for a, b in [("x", "fc1"), ("fc1", "a"), ("a", "fc2"), ("fc2", "y")]:
        g.connect(a, b)
    torch.manual_seed(0)
    model = compile_model(g, infer_shapes(g))
    x = torch.randn(2000, 8)
    y = (x[:, 0] + 2 * x[:, 1] > 0).long()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(400):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    shares = []
    for i in range(20):
        a = np.abs(attribute(model, g, x[i:i + 1], "ig")["attribution"])
        shares.append(a[:2].sum() / a.sum())
    assert np.mean(shares) >= 0.9


def test_grad_cam_lights_the_strokes_more_than_the_background(cnn):
    model, graph, ds, _ = cnn
    stroke, background = [], []
    for i in range(40):
        x = ds.x_val[i:i + 1].float()
        cam = attribute(model, graph, x, "gradcam")["attribution"][0]
        img = x[0, 0].numpy()
        stroke.append(cam[img > 0.5].mean())
        background.append(cam[img < 0.05].mean())
    assert np.mean(stroke) > np.mean(background)


def test_bad_requests_get_a_sentence(cnn):
    model, graph, ds, _ = cnn
    x = ds.x_val[:1].float()
    with pytest.raises(ExplainError, match="the model has 10 outputs"):
        attribute(model, graph, x, "ig", target=12)
    with pytest.raises(ExplainError, match="no node 'fc9'"):
        attribute(model, graph, x, "gradcam", node="fc9")
    with pytest.raises(ExplainError, match="is for images"):
        attribute(model, graph, torch.randn(1, 8), "ig", baseline="blurred")


def test_the_command_writes_png_and_json(cnn, tmp_path):
    _, _, _, weights = cnn
    run = [sys.executable, str(ROOT / "main.py"), "explain", str(CNN), "--weights",
           str(weights), "--sample", "4"]
    done = subprocess.run(run + ["--method", "gradcam", "--out", str(tmp_path / "a.png")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert line["node"] == "conv2" and (tmp_path / "a.png").stat().st_size > 100
    done = subprocess.run(run + ["--method", "ig", "--target", "2", "--out",
                                 str(tmp_path / "a.json")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    body = json.loads((tmp_path / "a.json").read_text())
    assert body["target"] == 2 and np.asarray(body["attribution"]).shape == (1, 8, 8)
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.fromarray((np.eye(8) * 255).astype(np.uint8)).save(image)
    done = subprocess.run(run[:-2] + ["--input", str(image), "--method", "saliency", "--out",
                                      str(tmp_path / "b.png")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    bad = subprocess.run(run + ["--method", "ig", "--out", str(tmp_path / "a.txt")],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "must end in .png" in bad.stderr
    assert "Traceback" not in bad.stderr
