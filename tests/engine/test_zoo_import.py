"""Real model zoos through the importer: torchvision's and timm's common classifiers import with
their weights, nested as blocks, survive the project file (a later session, nothing live), give
the original's outputs and parameter count, train a step and export to ONNX and plain PyTorch.

torchvision and timm need a torch build that has torchvision's compiled operators; the PyPI
torchvision does not load beside the CPU build this project's CI installs
(``operator torchvision::nms does not exist``), so there these tests skip. To run them:

    python3 -m venv zoo-venv && . zoo-venv/bin/activate
    pip install torch==2.14.1 torchvision==0.29.1 timm && pip install -e ".[test]"
    python -m pytest tests/engine/test_zoo_import.py
"""
from __future__ import annotations

import pytest
import torch

from engine.compiler import compile_model
from engine.export import export_model
from engine.importer import import_module
from engine.project import dumps_project, loads_project
from engine.shapes import infer_shapes

try:  # the PyPI torchvision fails beside a torch without its operators: skip, don't error
    import torchvision.models as tv_models
except Exception as exc:  # noqa: BLE001 - ImportError, or RuntimeError from its operators
    pytest.skip(f"torchvision is not usable here ({type(exc).__name__}: {exc})",
                allow_module_level=True)

from tests.engine.test_import import forget_session  # noqa: E402 - after the skip


def randomized(module):
    """BatchNorm statistics away from their defaults, so that a mapping slip shows."""
    torch.manual_seed(0)
    for name, tensor in module.state_dict().items():
        if "running_var" in name:
            tensor.copy_(torch.rand_like(tensor) + 0.5)
        elif "running_mean" in name:
            tensor.copy_(torch.randn_like(tensor) * 0.1)
    return module.eval()


def torchvision_model(name, **kwargs):
    torch.manual_seed(0)
    return randomized(getattr(tv_models, name)(**kwargs))


def timm_model(name, **kwargs):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    return randomized(timm.create_model(name, pretrained=False, **kwargs))


ZOO = [
    ("resnet18", lambda: torchvision_model("resnet18"), (3, 64, 64)),
    ("mobilenet_v3_small", lambda: torchvision_model("mobilenet_v3_small"), (3, 64, 64)),
    ("squeezenet1_0", lambda: torchvision_model("squeezenet1_0"), (3, 64, 64)),
    ("efficientnet_b0", lambda: torchvision_model("efficientnet_b0"), (3, 64, 64)),
    ("vit_b_16", lambda: torchvision_model("vit_b_16", image_size=32), (3, 32, 32)),
    ("densenet121", lambda: torchvision_model("densenet121"), (3, 64, 64)),
    ("swin_t", lambda: torchvision_model("swin_t"), (3, 64, 64)),
    ("timm convnext_atto", lambda: timm_model("convnext_atto"), (3, 64, 64)),
    ("timm vit_tiny", lambda: timm_model("vit_tiny_patch16_224", img_size=32), (3, 32, 32)),
]


@pytest.mark.parametrize("factory, shape", [z[1:] for z in ZOO], ids=[z[0] for z in ZOO])
def test_a_zoo_model_imports_nested_and_a_saved_copy_trains_and_exports(factory, shape,
                                                                         tmp_path):
    original = factory()
    project, state = import_module(original, shape)
    notes = project.extra["imported_from"]["notes"]
    assert project.blocks and not any("kept flat" in n for n in notes), notes
    assert len(project.models["model"]) <= 40  # a readable top level, expandable
    text = dumps_project(project)
    forget_session(project)  # as in a later session: nothing of the import is live
    saved = loads_project(text)
    graph = saved.models["model"]
    shapes = infer_shapes(graph)
    assert shapes.errors() == {}
    model = compile_model(graph, shapes)
    model.load_state_dict(state)
    model.eval()
    assert sum(p.numel() for p in model.parameters()) == \
        sum(p.numel() for p in original.parameters())
    with torch.no_grad():
        x = torch.randn(2, *shape)
        assert torch.allclose(model(x), original(x), atol=1e-5, rtol=1e-5)
    model.train()
    model(torch.randn(2, *shape)).pow(2).mean().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert dumps_project(loads_project(text)) == text
    torch.save({"model": state}, tmp_path / "w.pt")
    for fmt in ("onnx", "python"):
        assert export_model(saved, fmt, tmp_path / fmt, weights=tmp_path / "w.pt").checks, fmt
