"""Hugging Face models built from a config (nothing downloaded) import and compute alike.

torch.fx cannot trace them (transformers 5 dropped ``transformers.utils.fx``, and their forward
branches on sizes), so the importer exports them with torch.export through ONNX and converts
them back (engine.importer.onnx_convert.via_torch_export)."""
from __future__ import annotations

import os

import pytest
import torch
import torch.nn as nn

from engine.compiler import compile_model
from engine.export import export_model
from engine.importer import import_module
from engine.project import dumps_project, loads_project
from engine.shapes import infer_shapes

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")


class LastHidden(nn.Module):
    """A transformers model returning its last hidden state (a tensor, not a ModelOutput)."""

    def __init__(self, model, key: str):
        super().__init__()
        self.model, self.key = model, key

    def forward(self, x):
        return self.model(**{self.key: x}).last_hidden_state


def bert():
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=32,
                                     max_position_embeddings=16)
    return LastHidden(transformers.BertModel(config, add_pooling_layer=False), "input_ids")


def gpt2():
    config = transformers.GPT2Config(vocab_size=50, n_embd=16, n_layer=2, n_head=2,
                                     n_positions=16, bos_token_id=0, eos_token_id=0)
    return LastHidden(transformers.GPT2Model(config), "input_ids")


def vit():
    config = transformers.ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=16,
                                    num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=32)
    return LastHidden(transformers.ViTModel(config, add_pooling_layer=False), "pixel_values")


# (build, one sample's shape, token ids?, parameters left out: 8 of 16 positions × 16)
CASES = [(bert, (8,), True, 128), (gpt2, (8,), True, 128), (vit, (3, 16, 16), False, 0)]


@pytest.mark.parametrize("build, shape, ids, left_out", CASES, ids=["bert", "gpt2", "vit"])
def test_a_transformers_model_from_a_config_imports_and_computes_alike(
        tmp_path, build, shape, ids, left_out):
    original = build().eval()
    torch.manual_seed(0)
    with torch.no_grad():  # away from the initial ones and zeros, so that a slip shows
        for p in original.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    project, state = import_module(original, shape)
    notes = project.extra["imported_from"]["notes"]
    assert notes[0].startswith("torch.fx could not trace the forward"), notes
    graph = project.models["model"]
    model = compile_model(graph, infer_shapes(graph))
    model.load_state_dict(state)
    model.eval()
    expected = sum(p.numel() for p in original.parameters())
    assert sum(p.numel() for p in model.parameters()) == expected - left_out
    if left_out:
        assert any(f"{left_out} of the module's" in n for n in notes), notes
    for batch in (1, 4):
        x = torch.randint(0, 50, (batch, *shape)) if ids else torch.randn(batch, *shape)
        with torch.no_grad():  # the canvas carries token ids as floats, as every value
            assert torch.allclose(model(x.float() if ids else x), original(x), atol=1e-5)
    reopened = loads_project(dumps_project(project))  # the captured operations are data
    for fmt, out in (("onnx", tmp_path / "m.onnx"), ("python", tmp_path / "py")):
        result = export_model(reopened, fmt, out, weights=state)
        assert result.checks.get("max_abs_diff", 0.0) < 1e-5, (fmt, result.checks)
