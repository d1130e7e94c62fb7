"""Import through torch.fx: a hand-written ResNet-style module comes back with the same outputs,
unknown modules become Opaque nodes that compile and train, untraceable models say why."""
from __future__ import annotations

import textwrap

import pytest
import torch
import torch.nn as nn

from engine.compiler import compile_model
from engine.errors import ExportError
from engine.examples import example_paths
from engine.export import export_model
from engine.importer import import_module
from engine.layers import opaque as opaque_layer
from engine.layers.opaque import load_file
from engine.project import load_project, loads_project, dumps_project
from engine.shapes import infer_shapes


class BasicBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    """conv-bn-relu stem, two residual blocks, global pooling, a linear head."""

    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = nn.Sequential(BasicBlock(8), BasicBlock(8))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        x = self.pool(x)
        x = x.view(x.size(0), -1)
        return self.fc(x)


class Mixed(nn.Module):
    """Catalog layers, a module the catalog lacks (PReLU), an operation it lacks (transpose),
    an LSTM read through h_n[-1], and a parameter used directly."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 8)
        self.act = nn.PReLU()
        self.lstm = nn.LSTM(8, 16, batch_first=True)
        self.head = nn.Linear(16, 2)
        self.scale = nn.Parameter(torch.full((2,), 1.5))

    def forward(self, x):
        seq = self.act(self.proj(x.transpose(1, 2)))
        _, (h, _) = self.lstm(seq)
        return torch.tanh(self.head(h[-1])) * self.scale


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.a(x)
        return self.b(x)


def randomized(module: nn.Module, seed: int = 0) -> nn.Module:
    """Weights and BatchNorm statistics away from their defaults, so that a mapping slip shows."""
    torch.manual_seed(seed)
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point():
            tensor.copy_(torch.rand_like(tensor) + 0.5 if "running_var" in name
                         else torch.randn_like(tensor) * 0.5)
    return module.eval()


def compiled(project, state):
    graph = project.models["model"]
    model = compile_model(graph, infer_shapes(graph))
    model.load_state_dict(state)
    return model.eval()


def assert_same_outputs(a, b, shape, atol=1e-5):
    with torch.no_grad():
        for batch in (1, 5):
            x = torch.randn(batch, *shape)
            assert torch.allclose(a(x), b(x), atol=atol), batch


def test_resnet_style_module_imports_to_catalog_layers_with_its_weights():
    original = randomized(TinyResNet())
    project, state = import_module(original, (1, 8, 8), blocks=False)
    graph = project.models["model"]
    types = [n.type for n in graph.nodes()]
    assert "Opaque" not in types
    assert types.count("Add") == 2 and types.count("Conv2d") == 5
    assert {"stem_0", "layer1_0_conv1", "layer1_1_bn2", "fc"} <= set(graph.node_ids())
    assert graph.node("layer1_0_conv1").params == {"out_channels": 8, "kernel_size": 3,
                                                   "padding": 1, "bias": False}
    assert [e.src for e in graph.in_edges("add")] == ["layer1_0_bn2", "stem_2"]  # the skip
    assert graph.node("view").type == "Flatten"
    assert all(n.pos is not None for n in graph.nodes())  # laid out
    assert_same_outputs(compiled(project, state), original, (1, 8, 8))


def test_the_module_hierarchy_becomes_nested_blocks_sharing_definitions(tmp_path):
    original = randomized(TinyResNet())
    project, state = import_module(original, (1, 8, 8))
    graph = project.models["model"]
    assert sorted((n.id, n.type) for n in graph.nodes()) == sorted([
        ("x", "Input"), ("stem", "Block"), ("layer1", "Block"), ("pool", "AdaptiveAvgPool2d"),
        ("view", "Flatten"), ("fc", "Linear"), ("output", "Output")])
    blocks = project.blocks
    assert set(blocks) == {"stem", "layer1", "BasicBlock"}
    stage = blocks["layer1"].graph
    assert [(n.id, n.params.get("block")) for n in stage.nodes_of_type("Block")] == \
        [("b0", "BasicBlock"), ("b1", "BasicBlock")]  # the two blocks share one definition
    assert [n.id for n in blocks["BasicBlock"].graph.nodes()] == [
        "x", "conv1", "bn1", "relu", "conv2", "bn2", "add", "relu_1", "y"]
    assert "layer1.b1.conv2.weight" in state and "stem.b0.weight" in state
    model = compiled(project, state)
    assert_same_outputs(model, original, (1, 8, 8))
    assert sum(p.numel() for p in model.parameters()) == \
        sum(p.numel() for p in original.parameters())
    text = dumps_project(project)
    forget_session(project)
    reopened = loads_project(text)
    assert_same_outputs(compiled(reopened, state), original, (1, 8, 8))
    assert dumps_project(reopened) == text
    torch.save({"model": state}, tmp_path / "w.pt")
    assert export_model(reopened, "python", tmp_path / "py", weights=tmp_path / "w.pt").checks
    source = (tmp_path / "py" / "model.py").read_text()
    assert source.count("class BasicBlock(nn.Module):") == 1
    assert "self.layer1 = Layer1()" in source


class Stages(nn.Module):
    """A block inside the first stage, then later stages at the same depth as that inner one's
    parent (as in torchvision's MobileNet and EfficientNet)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Linear(6, 6), nn.ReLU(), nn.Sequential(nn.Linear(6, 6), nn.Tanh())),
            nn.Sequential(nn.Linear(6, 6), nn.ReLU()),
            nn.Sequential(nn.Linear(6, 5), nn.ReLU()))

    def forward(self, x):
        return self.features(x)


class DenseStage(nn.Module):
    """Each layer reads the concatenation of the stage's input and every earlier layer's
    output, and so does the stage's result (DenseNet's dense block)."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Sequential(nn.Linear(4 + 3 * i, 3), nn.ReLU())
                                    for i in range(3))

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, 1)))
        return torch.cat(features, 1)


class DenseNetLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stage = DenseStage()
        self.head = nn.Linear(13, 2)

    def forward(self, x):
        return self.head(self.stage(x))


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 3), nn.Linear(4, 3)

    def forward(self, x):
        return self.fc1(x).relu(), self.fc2(x).tanh()


class TwoResults(nn.Module):
    """A submodule that returns two values, both read by the rest of the model."""

    def __init__(self):
        super().__init__()
        self.pair = Pair()
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        a, b = self.pair(x)
        return self.head(torch.cat([b, a], 1))


@pytest.mark.parametrize("cls, shape", [(Stages, (6,)), (DenseNetLike, (4,)), (TwoResults, (4,))])
def test_nested_stages_and_dense_concatenations_import_as_blocks(cls, shape):
    original = randomized(cls())
    project, state = import_module(original, shape)
    notes = project.extra["imported_from"]["notes"]
    assert project.blocks and not any("kept flat" in n for n in notes), notes
    assert_same_outputs(compiled(project, state), original, shape)
    forget_session(project)
    assert_same_outputs(compiled(loads_project(dumps_project(project)), state), original, shape)


class Excite(nn.Module):
    """Squeeze-excitation: the input scaled by a gate of its own mean (a broadcasting ``*``)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):  # (B, 4, 5)
        return x * torch.sigmoid(self.fc(x.mean(-1))).unsqueeze(-1)


class Excited(nn.Module):
    def __init__(self, depth=24):  # more than the importer's rebuilds, one per misfit found
        super().__init__()
        self.stages = nn.Sequential(*(Excite() for _ in range(depth)))

    def forward(self, x):
        return self.stages(x)


class Defaults(nn.Module):
    """Arguments after the input with plain defaults (timm: ``attn_mask=None, is_causal=False``)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, mask=None, scale=2.0):
        if mask is not None:
            x = x.masked_fill(mask, 0.0)
        return self.fc(x) * scale


class SplitHeads(nn.Module):
    """timm's attention: qkv laid out (3, B, heads, N, d), unbound into q, k and v."""

    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class OptionalBias(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x, bias=None):
        return self.fc(x) if bias is None else self.fc(x) + bias


class KeywordInput(nn.Module):  # Hugging Face's style: forward(input_ids=None, ...)
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x=None, scale=1.0):
        return self.fc(x) * scale


def test_an_input_given_a_shape_is_never_traced_at_its_default():
    project, _ = import_module(randomized(OptionalBias()), [(3,), (3,)])
    graph = project.models["model"]
    assert [n.id for n in graph.nodes_of_type("Input")] == ["x", "bias"]
    assert "Add" in {n.type for n in graph.nodes()}
    project, state = import_module(randomized(KeywordInput()), (3,))
    assert [n.id for n in project.models["model"].nodes_of_type("Input")] == ["x"]
    assert_same_outputs(compiled(project, state), randomized(KeywordInput()), (3,))


class Asserted(nn.Module):
    """A size check inside a stretch where the batch is not first (timm's ``_assert``)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):  # (B, 5, 4)
        t = self.fc(x).transpose(0, 1)
        torch._assert(t.shape[0] == 5, "five steps")
        return (t.softmax(1) * 2).transpose(0, 1)


@pytest.mark.parametrize("cls, shape", [(Excited, (4, 5)), (Defaults, (4,)), (SplitHeads, (5, 8)),
                                        (Asserted, (5, 4))])
def test_broadcasts_plain_defaults_and_unbound_heads_import_checked(cls, shape):
    original = randomized(cls())
    project, state = import_module(original, shape)
    graph = project.models["model"]
    assert [n.id for n in graph.nodes_of_type("Input")] == ["x"]  # defaults are no inputs
    assert any(n.startswith("checked:") for n in project.extra["imported_from"]["notes"])
    forget_session(project)
    assert_same_outputs(compiled(loads_project(dumps_project(project)), state), original, shape)


def test_weights_come_from_a_state_dict_file(tmp_path):
    source = tmp_path / "nets.py"
    source.write_text(textwrap.dedent("""
        import torch.nn as nn

        class Mlp(nn.Module):
            def __init__(self):
                super().__init__()
                self.fc1 = nn.Linear(2, 16)
                self.fc2 = nn.Linear(16, 3)

            def forward(self, x):
                return self.fc2(self.fc1(x).relu())
    """))
    trained = randomized(load_file(str(source)).Mlp(), seed=3)
    torch.save(trained.state_dict(), tmp_path / "mlp.pt")
    project, state = import_module(f"{source}:Mlp", (2,), weights=tmp_path / "mlp.pt")
    assert [n.type for n in project.models["model"].nodes()] == ["Input", "Linear", "ReLU",
                                                                 "Linear", "Output"]
    assert project.extra["imported_from"]["source"] == f"{source}:Mlp"
    assert_same_outputs(compiled(project, state), trained, (2,))
    torch.save({"fc1.weight": torch.zeros(3, 3)}, tmp_path / "bad.pt")
    with pytest.raises(ExportError, match=r"fc1.weight: file has \(3, 3\), model needs "
                                          r"\(16, 2\)"):
        import_module(f"{source}:Mlp", (2,), weights=tmp_path / "bad.pt")
    # an example input that does not fit the module's own weights is named, not a traceback
    with pytest.raises(ExportError, match=r"fc1: the module's fc1.weight has shape \(16, 2\), "
                                          r"but the graph built for this input needs \(16, 5\)"):
        import_module(f"{source}:Mlp", (5,))


def test_unknown_modules_become_opaque_nodes_that_compile_and_train():
    original = randomized(Mixed())
    project, state = import_module(original, (3, 6))
    graph = project.models["model"]
    kinds = {n.id: (n.type, n.params.get("module")) for n in graph.nodes()}
    assert kinds["act"] == ("Opaque", "torch.nn.PReLU")
    assert graph.node("act").params["init"] == '{"num_parameters": 1, "init": 0.25}'
    assert kinds["transpose"] == ("Opaque", "fx: x.transpose(1, 2)")
    assert kinds["lstm"][0] == "LSTM" and kinds["tanh"][0] == "Tanh"
    assert [(e.src, e.src_port) for e in graph.in_edges("head")] == [("lstm", "last")]
    model = compiled(project, state)
    assert_same_outputs(model, original, (3, 6))
    model.train()
    before = model.act.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(4, 3, 6)).pow(2).sum().backward()
    optimizer.step()
    assert not torch.equal(model.act.weight, before)  # the opaque module trains too
    assert original.act.weight.data_ptr() != model.act.weight.data_ptr()


def forget_session(project) -> None:
    """Drop the live modules of the session that imported ``project`` (as after a restart)."""
    for graph in project.models.values():
        for node in graph.nodes_of_type("Opaque"):
            opaque_layer._LIVE.pop(node.params.get("ref"), None)
    for key in [k for k in opaque_layer._LIVE if k.startswith(("captured:", "rebuilt:"))]:
        del opaque_layer._LIVE[key]


def test_saved_opaque_modules_and_captured_operations_are_rebuilt(tmp_path):
    original = randomized(Mixed())
    project, state = import_module(original, (3, 6))
    text = dumps_project(project)
    forget_session(project)
    reopened = loads_project(text)
    shapes = infer_shapes(reopened.models["model"])
    assert shapes.errors() == {}  # PReLU from its init, the transpose from its fx nodes
    assert reopened.models["model"].node("transpose").params["graph"]
    assert_same_outputs(compiled(reopened, state), original, (3, 6))
    assert dumps_project(reopened) == text


def test_a_capture_that_cannot_be_data_is_explained_when_reopened(monkeypatch):
    from engine.layers import fx_data

    monkeypatch.setattr(fx_data, "encode", lambda gm: None)  # e.g. an argument JSON lacks
    project, _ = import_module(randomized(Mixed()), (3, 6))
    assert "graph" not in project.models["model"].node("transpose").params
    text = dumps_project(project)
    forget_session(project)
    shapes = infer_shapes(loads_project(text).models["model"])
    assert "act" not in shapes.errors()
    assert "lives only in the session that imported it" in shapes.errors()["transpose"]


class Slices(nn.Module):
    """Slicing, cat, view/permute, chunk, stack, flatten, split, a shape read, parameters and
    buffers used directly: every one an operation the catalog lacks."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 12)
        self.gate = nn.Parameter(torch.randn(4))
        self.register_buffer("offset", torch.arange(12.0))

    def forward(self, x):
        h = self.fc(x)
        c = torch.cat([h[:, :8], h[:, 8:] * self.gate], dim=1) + self.offset
        q = c.view(c.size(0), 3, -1).permute(0, 2, 1).contiguous()
        u, v = q.chunk(2, dim=1)
        w = torch.stack([u, v], dim=-1).flatten(1)
        s1, s2 = w.split(6, dim=1)
        return s1.transpose(1, 2 - 1) * s2.shape[1] + s2.mean(-1, keepdim=True).expand_as(s1)


def test_a_saved_import_of_tensor_operations_trains_and_exports_like_a_fresh_one(tmp_path):
    original = randomized(Slices())
    project, state = import_module(original, (16,))
    graph = project.models["model"]
    assert {"chunk_0", "chunk_1", "split_0", "split_1", "stack"} <= set(graph.node_ids())
    assert all(n.params.get("graph") for n in graph.nodes_of_type("Opaque"))
    path = tmp_path / "slices.layerlab.json"
    path.write_text(dumps_project(project), "utf-8")
    torch.save({"model": state}, tmp_path / "slices.weights.pt")
    forget_session(project)
    saved = load_project(path)
    model = compiled(saved, state)
    assert_same_outputs(model, original, (16,))
    model.train()
    model(torch.randn(4, 16)).pow(2).sum().backward()
    assert model.get_submodule(model.node_attrs["mul"]).p0.grad is not None  # gate trains
    for fmt in ("python", "onnx", "torchscript"):
        result = export_model(saved, fmt, tmp_path / fmt, weights=tmp_path / "slices.weights.pt")
        assert result.checks, fmt  # each export compares its outputs with the model's


def test_untraceable_model_says_why():
    with pytest.raises(ExportError, match="Branchy: torch.fx cannot trace this model .*tensor "
                                          "values.*: symbolically traced variables cannot be "
                                          "used as inputs to control flow"):
        import_module(Branchy(), (4,))


@pytest.mark.parametrize("source, message", [
    ("no_colon_here", "give the model as path/to/file.py:ClassName"),
    ("/nowhere/model.py:Net", "/nowhere/model.py: no such file"),
    ("engine.layers.modules:Nope", "engine.layers.modules: has no Nope"),
    ("engine.layers.modules:Reshape", r"Reshape\(\) cannot be built without arguments"),
    ("no_such_package_xyz.mod:Net", "no_such_package_xyz.mod: cannot be imported"),
])
def test_bad_sources_are_named(source, message):
    with pytest.raises(ExportError, match=message):
        import_module(source)


@pytest.mark.parametrize("example", ["transformer_sine", "esn_sine", "vae_digits"])
def test_python_export_imports_back_to_the_same_layers(example, tmp_path):
    path = next(p for p in example_paths() if p.name.startswith(example))
    project = load_project(path)
    export_model(project, "python", tmp_path / "pytorch", untrained=True)
    shape = infer_shapes(project.models["model"], project.input_shapes()).info["x"].out_shape
    back, state = import_module(f"{tmp_path / 'pytorch' / 'model.py'}:Model", shape,
                                weights=tmp_path / "pytorch" / "weights.pt")
    original = sorted(n.type for n in project.models["model"].nodes())
    assert sorted(n.type for n in back.models["model"].nodes()) == original


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.1, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16))
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.enc(x).mean(1))


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.t = nn.Transformer(16, 4, 1, 2, 32, batch_first=True)

    def forward(self, x):
        return self.t(x, x)


class BiLstmTokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(50, 8)
        self.lstm = nn.LSTM(8, 16, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(32, 2)

    def forward(self, x):
        out, _ = self.lstm(self.emb(x))
        return self.fc(out[:, -1])


class Broadcast(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        h = self.fc(x)
        return h + h.mean(-1, keepdim=True)  # broadcasting: no Add layer


@pytest.mark.parametrize("cls, shape, layers", [
    (Encoder, (10, 16), {"enc_layers_0": "TransformerEncoderLayer",
                         "enc_layers_1": "TransformerEncoderLayer", "enc_norm": "LayerNorm"}),
    (Seq2Seq, (6, 16), {"t_encoder_layers_0": "TransformerEncoderLayer",
                        "t_decoder_layers_1": "Opaque"}),
    (BiLstmTokens, (10,), {"emb": "Embedding", "lstm": "LSTM"}),
    (Broadcast, (8,), {"fc": "Linear", "add": "Opaque"}),
])
def test_common_models_import_and_a_saved_copy_gives_the_same_outputs(cls, shape, layers,
                                                                      tmp_path):
    original = randomized(cls())
    project, state = import_module(original, shape)
    graph = project.models["model"]
    assert {k: graph.node(k).type for k in layers} == layers
    text = dumps_project(project)
    forget_session(project)
    reopened = loads_project(text)
    assert infer_shapes(reopened.models["model"]).errors() == {}
    model = compiled(reopened, state)
    tokens = cls is BiLstmTokens
    with torch.no_grad():
        for batch in (1, 4):
            x = torch.randint(0, 50, (batch, *shape)) if tokens else torch.randn(batch, *shape)
            assert torch.allclose(model(x), original(x), atol=1e-5), batch
    torch.save({"model": state}, tmp_path / "w.pt")
    assert export_model(reopened, "python", tmp_path / "py", weights=tmp_path / "w.pt").checks


def test_an_imported_module_whose_arguments_are_unknown_is_not_rebuilt_with_defaults():
    class Wide(nn.Module):  # a torch.nn class, so a leaf; no attribute gives its arguments
        def __init__(self):
            super().__init__()
            layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
            self.t = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)

        def forward(self, x):  # with a mask: the encoder as it is, not unrolled
            return self.t(x, mask=torch.zeros(3, 3))

    project, _ = import_module(Wide(), (3, 8))
    node = next(iter(project.models["model"].nodes_of_type("Opaque")))
    text = dumps_project(project)
    forget_session(project)
    errors = infer_shapes(loads_project(text).models["model"]).errors()
    assert errors, "rebuilt although its arguments are unknown"
    assert "import the model again" in errors[node.id] or \
        "lives only in the session" in errors[node.id]


def test_a_saved_capture_may_call_only_tensor_operations():
    """A project file is data: a tampered captured operation cannot call os.system."""
    import json

    project, _ = import_module(randomized(Mixed()), (3, 6))
    node = project.models["model"].node("transpose")
    graph = json.loads(node.params["graph"])
    call = next(n for n in graph["nodes"] if n["op"] == "call_method")
    call.update(op="call_function", target="os.system", args=["echo pwned"])
    node.params["graph"] = json.dumps(graph)
    text = dumps_project(project)
    forget_session(project)
    errors = infer_shapes(loads_project(text).models["model"]).errors()
    assert "os.system is not a tensor operation a project file may call" in errors["transpose"]


def test_a_saved_capture_names_library_functions_one_by_one():
    """torchvision's stochastic_depth may be named (its models call it); nothing else of
    torchvision, and without torchvision the file says what to install."""
    from engine.layers.fx_data import NotEncodable, allowed_function, resolve_function

    assert allowed_function("torchvision.ops.stochastic_depth.stochastic_depth")
    assert allowed_function("torch._assert")
    for denied in ("torchvision.io.read_file", "torchvision.ops.roi_align", "torch._C._jit_pass",
                   "torchvision.datasets.utils.download_url", "torch._dynamo.reset"):
        assert not allowed_function(denied), denied
    try:
        import torchvision.ops  # noqa: F401
    except Exception:  # noqa: BLE001 - the PyPI torchvision does not load beside this torch
        with pytest.raises(NotEncodable, match=r"needs torchvision, which cannot be imported "
                                               r"here \(pip install torchvision\)"):
            resolve_function("torchvision.ops.stochastic_depth.stochastic_depth")
    else:
        assert resolve_function("torchvision.ops.stochastic_depth.stochastic_depth") is \
            torchvision.ops.stochastic_depth


@pytest.mark.parametrize("tamper, message", [
    (lambda call: call.update(target="__class__"), "calls '__class__', which is not a tensor"),
    (lambda call: call.update(target="apply_"), "calls 'apply_', which is not a tensor"),
    (lambda call: call.update(op="call_function", target="builtins.getattr",
                              args=[call["args"][0], "__dict__"]), "reads an attribute"),
    (lambda call: call.update(args=[call["args"][0], {"$dtype": "Tensor"}]),
     "names 'Tensor' as a dtype; it is not one"),
    (lambda call: call.update(op="get_attr", target="training", args=[]),
     "reads 'training', which it does not hold"),
])
def test_a_saved_capture_calls_only_tensor_methods_on_its_own_values(tamper, message):
    import json

    project, _ = import_module(randomized(Mixed()), (3, 6))
    node = project.models["model"].node("transpose")
    graph = json.loads(node.params["graph"])
    tamper(next(n for n in graph["nodes"] if n["op"] == "call_method"))
    node.params["graph"] = json.dumps(graph)
    text = dumps_project(project)
    forget_session(project)
    errors = infer_shapes(loads_project(text).models["model"]).errors()
    assert message in errors["transpose"] and "cannot be rebuilt" in errors["transpose"]


def test_a_factory_or_a_class_with_literal_arguments_is_imported(tmp_path):
    source = tmp_path / "zoo.py"
    source.write_text(textwrap.dedent("""
        import torch.nn as nn


        class Net(nn.Module):
            def __init__(self, width, classes=3):
                super().__init__()
                self.fc1 = nn.Linear(4, width)
                self.fc2 = nn.Linear(width, classes)

            def forward(self, x):
                return self.fc2(self.fc1(x).relu())


        def make(name, classes=3):
            return Net({"small": 8, "large": 64}[name], classes)
    """))
    project, _ = import_module(f"{source}:make('large', classes=5)", (4,))
    assert project.models["model"].node("fc1").params["out_features"] == 64
    assert project.models["model"].node("fc2").params["out_features"] == 5
    project, _ = import_module(f"{source}:Net(16)", (4,))
    assert project.models["model"].node("fc1").params["out_features"] == 16
    with pytest.raises(ExportError, match=r"Net\(\) cannot be built without arguments .*give "
                                          r"them, e.g. Net\(10\)"):
        import_module(f"{source}:Net", (4,))
    with pytest.raises(ExportError, match="the arguments must be literal values"):
        import_module(f"{source}:make(__import__('os'))", (4,))
    with pytest.raises(ExportError, match=r"make\(...\) failed: 'medium'"):
        import_module(f"{source}:make('medium')", (4,))


class SequenceFirst(nn.Module):
    """Moves the batch to dim 1 for a while (as sequence-first code does), then back."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x):  # (B, T, 4)
        h = x.transpose(0, 1)  # (T, B, 4)
        h = torch.softmax(self.fc(h) * 2.0, dim=0)  # over time
        return self.head(h.transpose(0, 1).sum(1))


def test_a_stretch_where_the_batch_is_not_first_becomes_one_operation():
    original = randomized(SequenceFirst())
    project, state = import_module(original, (5, 4))
    graph = project.models["model"]
    stretch = next(n for n in graph.nodes_of_type("Opaque") if "batch is not first" in
                   n.params["module"])
    assert stretch.params["module"].startswith("fx: 5 operations")
    assert [n.type for n in graph.nodes()].count("Linear") == 1  # the head, outside it
    assert_same_outputs(compiled(project, state), original, (5, 4))
    text = dumps_project(project)
    forget_session(project)
    assert_same_outputs(compiled(loads_project(text), state), original, (5, 4))


@pytest.mark.parametrize("target, args", [
    ("operator.attrgetter", ["__class__.__reduce_ex__.__globals__"]),
    ("operator.methodcaller", ["__reduce__"]), ("operator.call", [{"$node": "x"}]),
    ("torch.from_file", ["/etc/passwd", True, 10]), ("torch.Tensor.set_", [{"$node": "x"}]),
])
def test_a_saved_capture_cannot_reach_attributes_calls_or_files(target, args):
    import json

    from engine.layers.fx_data import NotEncodable, decode

    graph = {"nodes": [{"op": "placeholder", "name": "x", "target": "x"},
                       {"op": "call_function", "name": "a", "target": target, "args": args},
                       {"op": "output", "name": "output", "args": [{"$node": "a"}]}]}
    with pytest.raises(NotEncodable, match="is not a tensor operation a project file may call"):
        decode(json.dumps(graph))


def test_an_unused_in_place_operation_is_refused_not_dropped():
    class InPlace(nn.Module):
        def forward(self, x):
            h = x * 1.0
            h.mul_(2)  # its result unused: fx would drop it as dead code
            return h

    with pytest.raises(ExportError, match="in place|in-place"):
        import_module(InPlace(), (4,))
