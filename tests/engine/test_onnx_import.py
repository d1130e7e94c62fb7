"""Import of ONNX files: converted to torch (engine.importer.onnx_convert), then the fx path.

Each model is exported in the test (the TorchScript-based exporter, and torch's default dynamo
exporter for the Transformer), imported, and compared with onnxruntime on the file: parameter
counts, outputs, a saved copy reopened in a fresh session, and the exports of the imported
project."""
from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.compiler import compile_model
from engine.errors import ExportError
from engine.export import export_model
from engine.importer import import_module
from engine.layers import opaque as opaque_layer
from engine.project import dumps_project, loads_project
from engine.shapes import infer_shapes

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(6, 16), nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class Slicer(nn.Module):
    """chunk, slicing, cat, a scale, permute and transpose, a mean."""

    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv1d(4, 4, 3, padding=1), nn.Linear(16, 8)

    def forward(self, x):  # (B, 4, 16)
        a, b = x.chunk(2, dim=-1)
        h = torch.cat([b, a[:, :, :8]], dim=-1) * 0.5
        h = self.conv(h).permute(0, 2, 1).transpose(1, 2)
        return F.leaky_relu(self.fc(h), 0.1).mean(dim=1)


class Cnn(nn.Module):
    """Strided, depthwise and 1×1 convolutions, BatchNorm, ReLU6, Hardswish, pools."""

    def __init__(self):
        super().__init__()
        self.c1, self.bn = nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pool, self.c2, self.head = nn.AvgPool2d(2), nn.Conv2d(8, 16, 1), nn.Linear(16, 5)

    def forward(self, x):
        h = self.pool(F.hardswish(self.dw(F.relu6(self.bn(self.c1(x))))))
        return self.head(F.adaptive_avg_pool2d(self.c2(h), 1).flatten(1))


class Encoder(nn.Module):
    """A Transformer encoder layer: attention moves the batch to dim 1 inside."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Linear(6, 16)
        self.enc = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.out = nn.Linear(16, 2)

    def forward(self, x):  # (B, 5, 6)
        return self.out(self.enc(self.emb(x)).mean(1))


def randomized(module: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point():
            tensor.copy_(torch.rand_like(tensor) + 0.5 if "running_var" in name
                         else torch.randn_like(tensor) * 0.5)
    return module.eval()


def export_onnx(module, shape, path, dynamo=False):
    x = torch.randn(2, *shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            torch.onnx.export(module, (x,), str(path), dynamo=True, input_names=["x"],
                              dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
                              verbose=False)
        else:
            torch.onnx.export(module, (x,), str(path), dynamo=False, input_names=["x"],
                              dynamic_axes={"x": {0: "batch"}})
    return path


def save_graph(path, nodes, inputs, outputs, initializer=()):
    """An ONNX file of these nodes (opset 17), written by hand as a user's file may be."""
    import onnx
    from onnx import helper

    graph = helper.make_graph(list(nodes), "g", inputs, outputs, initializer=list(initializer))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def runtime(path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]


def file_parameters(path) -> int:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return sum(numpy_helper.to_array(i).size for i in model.graph.initializer
               if numpy_helper.to_array(i).dtype.kind == "f" and
               numpy_helper.to_array(i).size > 1)


def compiled(project, state):
    graph = project.models["model"]
    model = compile_model(graph, infer_shapes(graph))
    model.load_state_dict(state)
    return model.eval()


def forget_session(project) -> None:
    for graph in [*project.models.values(), *(b.graph for b in project.blocks.values())]:
        for node in graph.nodes_of_type("Opaque"):
            opaque_layer._LIVE.pop(node.params.get("ref"), None)
    for key in [k for k in opaque_layer._LIVE if k.startswith(("captured:", "rebuilt:"))]:
        del opaque_layer._LIVE[key]


CASES = [(Mlp, (6,), False, {"Linear", "Tanh"}), (Slicer, (4, 16), False, {"Conv1d", "Concat"}),
         (Cnn, (3, 16, 16), False, {"Conv2d", "AvgPool2d", "Linear", "Flatten"}),
         (Encoder, (5, 6), True, {"Linear", "LayerNorm", "Add", "ReLU"})]


@pytest.mark.parametrize("cls, shape, dynamo, layers", CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_an_onnx_file_imports_equal_to_onnxruntime_and_survives_the_file(
        tmp_path, cls, shape, dynamo, layers):
    path = export_onnx(randomized(cls()), shape, tmp_path / "model.onnx", dynamo)
    project, state = import_module(path)  # the input shape comes from the file
    graph = project.models["model"]
    assert graph.node("x").params["shape"] == list(shape)
    # catalog layers, on the top level or in the blocks the file's module hierarchy made
    assert layers <= {n.type for g in [graph, *(b.graph for b in project.blocks.values())]
                      for n in g.nodes()}
    notes = project.extra["imported_from"]["notes"]
    assert any(n.startswith("checked against onnxruntime") for n in notes), notes
    assert sum(v.numel() for k, v in state.items() if v.is_floating_point()) >= \
        file_parameters(path)  # every weight of the file came along
    model = compiled(project, state)
    for batch in (1, 5):
        x = torch.randn(batch, *shape)
        with torch.no_grad():
            assert np.abs(model(x).numpy() - runtime(path, x)).max() < 1e-5, batch
    # a saved copy opens in a fresh session (captured operations are data) and computes alike
    text = dumps_project(project)
    forget_session(project)
    reopened = loads_project(text)
    x = torch.randn(3, *shape)
    with torch.no_grad():
        assert np.abs(compiled(reopened, state)(x).numpy() - runtime(path, x)).max() < 1e-5
    for fmt, out in (("onnx", tmp_path / "again.onnx"), ("python", tmp_path / "py")):
        result = export_model(reopened, fmt, out, weights=state)
        assert result.checks.get("max_abs_diff", 0.0) < 1e-5, (fmt, result.checks)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(4, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv2(torch.relu(self.conv1(x))) + x)


class Stacked(nn.Module):
    """A stem, a stage of two residual blocks, a head: a hierarchy the file's names keep."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.stage = nn.Sequential(Residual(), Residual())
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        return self.head(self.stage(self.stem(x)).mean((2, 3)))


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_the_module_hierarchy_an_onnx_file_names_becomes_blocks(tmp_path, dynamo):
    path = export_onnx(randomized(Stacked()), (3, 8, 8), tmp_path / "stacked.onnx", dynamo)
    project, state = import_module(path)
    graph = project.models["model"]
    stage = next(n for n in graph.nodes_of_type("Block") if n.id == "stage")
    inner = project.blocks[stage.params["block"]].graph.nodes_of_type("Block")
    assert len(inner) == 2 and len({n.params["block"] for n in inner}) == 1  # one definition
    if dynamo:  # the dynamo exporter writes the classes too
        assert inner[0].params["block"] == "Residual"
    forget_session(project)
    reopened = loads_project(dumps_project(project))
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():  # outputs in the tens: float rounding against onnxruntime's
        assert np.allclose(compiled(reopened, state)(x).numpy(), runtime(path, x), rtol=1e-5,
                           atol=1e-5)


def test_the_transformer_from_the_older_exporter_imports_too(tmp_path):
    """The TorchScript exporter writes attention as shape arithmetic (Shape, Gather, Div,
    Sqrt...): followed as Python values, the batch left free."""
    path = export_onnx(randomized(Encoder()), (5, 6), tmp_path / "enc.onnx")
    project, state = import_module(path)
    x = torch.randn(4, 5, 6)
    with torch.no_grad():
        assert np.abs(compiled(project, state)(x).numpy() - runtime(path, x)).max() < 1e-5


class Recurrent(nn.Module):
    """An LSTM or GRU over embedded tokens-like features, read by its last step or h_n[-1]."""

    def __init__(self, kind: str, bidirectional: bool, layers: int, read: str):
        super().__init__()
        self.rnn = getattr(nn, kind)(4, 8, batch_first=True, bidirectional=bidirectional,
                                     num_layers=layers)
        self.head = nn.Linear(16 if bidirectional else 8, 3)
        self.read = read

    def forward(self, x):  # (B, 5, 4)
        out, state = self.rnn(x)
        if self.read == "h_n":
            return self.head((state[0] if isinstance(state, tuple) else state)[-1])
        return self.head(out[:, -1])


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("bidirectional, layers, read", [(False, 1, "last"), (True, 1, "last"),
                                                         (False, 2, "h_n"), (True, 2, "last")])
def test_recurrent_layers_become_catalog_layers(tmp_path, kind, bidirectional, layers, read,
                                                dynamo):
    """ONNX's gate order and (seq, directions, batch, hidden) layout are converted to torch's,
    the transposes around the layer cancel, and the layer imports as the catalog's own (one
    per layer of a deep one: the exporter writes one operator each)."""
    path = export_onnx(randomized(Recurrent(kind, bidirectional, layers, read)), (5, 4),
                       tmp_path / "rnn.onnx", dynamo=dynamo)
    project, state = import_module(path)
    graph = project.models["model"]
    types = [n.type for n in graph.nodes()]
    assert types.count(kind) == layers
    if not bidirectional:  # out[:, -1] and h_n[-1] are the layer's `last` port
        assert "Opaque" not in types, types
    model = compiled(project, state)
    for batch in (1, 4):
        x = torch.randn(batch, 5, 4)
        with torch.no_grad():
            assert np.abs(model(x).numpy() - runtime(path, x)).max() < 1e-5
    params = sum(t.numel() for t in state.values() if t.is_floating_point())
    # torch keeps two biases per gate where ONNX's B holds both: the same count
    assert params == file_parameters(path)


def test_a_recurrent_layer_torch_has_no_equal_of_is_named(tmp_path):
    from onnx import TensorProto, helper

    w = helper.make_tensor("W", TensorProto.FLOAT, [1, 32, 4], [0.1] * 128)
    r = helper.make_tensor("R", TensorProto.FLOAT, [1, 32, 8], [0.1] * 256)
    node = helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=8, clip=3.0,
                            name="clipped")
    path = save_graph(tmp_path / "clip.onnx", [node], [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [5, "batch", 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [5, 1, "batch", 8])], [w, r])
    with pytest.raises(ExportError, match=r"clip.onnx: node clipped \(LSTM\): an LSTM with "
                       "`clip` set is not converted"):
        import_module(path)


def test_an_operator_layerlab_cannot_convert_is_named_with_its_node(tmp_path):
    class Sorting(nn.Module):
        def forward(self, x):
            return torch.topk(x, 2, dim=-1).values

    path = export_onnx(Sorting().eval(), (5, 4), tmp_path / "topk.onnx")
    with pytest.raises(ExportError, match=r"topk.onnx: node .*\(TopK\): the operator TopK is "
                       "not one Layerlab converts"):
        import_module(path)


def test_a_damaged_onnx_file_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(ExportError, match="bad.onnx: not a readable ONNX model"):
        import_module(bad)
    with pytest.raises(ExportError, match="there is no such ONNX file"):
        import_module(tmp_path / "missing.onnx")


def test_main_py_import_reads_an_onnx_file(tmp_path):
    path = export_onnx(randomized(Cnn()), (3, 16, 16), tmp_path / "cnn.onnx")
    out = tmp_path / "cnn.layerlab.json"
    result = subprocess.run([sys.executable, "main.py", "import", str(path), "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "checked against onnxruntime" in result.stderr
    assert out.exists() and (tmp_path / "cnn.weights.pt").exists()
    check = subprocess.run([sys.executable, "main.py", "check", str(out)],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr


class Branchy(nn.Module):
    """Loops over time and branches on a size: torch.fx cannot trace it."""

    def __init__(self):
        super().__init__()
        self.cell, self.head = nn.Linear(4 + 8, 8), nn.Linear(8, 3)

    def forward(self, x):  # (B, T, 4)
        h = x.new_zeros(x.shape[0], 8)
        for t in range(x.shape[1]):
            h = torch.tanh(self.cell(torch.cat([x[:, t], h], dim=1)))
        if x.shape[1] > 3:
            h = h * 2.0
        return self.head(h)


def test_a_forward_torch_fx_cannot_trace_is_exported_with_torch_export_instead():
    original = randomized(Branchy())
    project, state = import_module(original, (6, 4))
    notes = project.extra["imported_from"]["notes"]
    assert notes[0].startswith("torch.fx could not trace the forward; it was exported with "
                               "torch.export"), notes
    assert any("module cell is called 6 times" in n for n in notes)  # the unrolled loop
    assert project.name == "Branchy"
    model = compiled(project, state)
    for batch in (1, 7):  # the batch stayed free
        x = torch.randn(batch, 6, 4)
        with torch.no_grad():
            assert torch.allclose(model(x), original(x), atol=1e-5)
    with pytest.raises(ExportError, match=r"torch.fx cannot trace this model.*; give the "
                       "shape of one input"):
        import_module(original)


def test_a_file_with_a_fixed_batch_or_a_keyword_name_imports_with_a_note(tmp_path):
    class Keyword(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleDict({"in": nn.Linear(6, 4), "class": nn.Linear(4, 2)})

        def forward(self, x):
            return self.layers["class"](torch.relu(self.layers["in"](x)))

    path = tmp_path / "fixed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(randomized(Keyword()), (torch.randn(1, 6),), str(path), dynamo=False,
                          input_names=["x"])  # no dynamic axis: the batch is fixed at 1
    project, state = import_module(path)
    notes = project.extra["imported_from"]["notes"]
    assert any(n.startswith("the file fixes the batch at 1") for n in notes), notes
    assert any(n.startswith("checked against onnxruntime") for n in notes), notes
    x = torch.randn(1, 6)
    with torch.no_grad():
        assert np.abs(compiled(project, state)(x).numpy() - runtime(path, x)).max() < 1e-5


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("mode, corners, scale, catalog", [
    ("nearest", None, 2, True), ("bilinear", False, 2, True), ("bilinear", True, 2, False),
    ("bicubic", False, 2, False), ("nearest", None, (2, 3), False)])
def test_resize_becomes_an_upsample(tmp_path, mode, corners, scale, catalog, dynamo):
    """The catalog's Upsample where it can be one; torch's nn.Upsample kept whole otherwise."""
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1),
                           nn.Upsample(scale_factor=scale, mode=mode, align_corners=corners),
                           nn.Conv2d(4, 2, 1))
    path = export_onnx(randomized(module), (3, 6, 6), tmp_path / "up.onnx", dynamo=dynamo)
    project, state = import_module(path)
    types = [n.type for n in project.models["model"].nodes()]
    assert ("Upsample" in types) == catalog and ("Opaque" in types) == (not catalog)
    model = compiled(project, state)
    for batch in (1, 3):
        x = torch.randn(batch, 3, 6, 6)
        with torch.no_grad():
            assert np.abs(model(x).numpy() - runtime(path, x)).max() < 1e-5


def test_a_resize_torch_has_no_equal_of_is_named(tmp_path):
    from onnx import TensorProto, helper

    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    node = helper.make_node("Resize", ["x", "", "scales"], ["y"], mode="nearest",
                            coordinate_transformation_mode="half_pixel",
                            nearest_mode="round_prefer_ceil", name="up")
    path = save_graph(tmp_path / "up.onnx", [node], [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["batch", 2, 4, 4])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["batch", 2, 8, 8])], [scales])
    with pytest.raises(ExportError, match=r"up.onnx: node up \(Resize\): a Resize in mode "
                       "nearest with coordinate_transformation_mode half_pixel"):
        import_module(path)


def test_integer_tensors_divide_to_integers(tmp_path):
    """ONNX's Div of integer tensors truncates (torch's `/` would give a fraction)."""
    from onnx import TensorProto, helper

    three = helper.make_tensor("three", TensorProto.INT64, [], [3])
    nodes = [helper.make_node("ArgMax", ["x"], ["k"], axis=1, keepdims=0),
             helper.make_node("Div", ["k", "three"], ["q"]),
             helper.make_node("Mul", ["q", "three"], ["r"]),
             helper.make_node("Cast", ["r"], ["y"], to=TensorProto.FLOAT)]
    path = save_graph(tmp_path / "div.onnx", nodes, [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["batch", 7])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, ["batch"])], [three])
    from engine.importer.onnx_convert import onnx_module

    module, _ = onnx_module(path)
    x = torch.randn(40, 7)
    with torch.no_grad():
        assert np.array_equal(module(x).numpy(), runtime(path, x))  # 0, 3 or 6: multiples of 3


def test_axes_counted_from_the_end_of_an_input_of_unknown_rank(tmp_path):
    """Unsqueeze(-1, -3), then Squeeze(-3, -1) of a 4-D value, where the file does not say the
    ranks: (4, 5) -> (4, 1, 5, 1) and (2, 1, 3, 1) -> (2, 3), as onnxruntime computes them."""
    from onnx import TensorProto, helper

    from engine.importer.onnx_convert import onnx_module

    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [-1, -3])
    back = helper.make_tensor("back", TensorProto.INT64, [2], [-3, -1])
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Unsqueeze", ["r", "axes"], ["u"]),
             helper.make_node("Relu", ["w"], ["v"]),
             helper.make_node("Squeeze", ["v", "back"], ["s"])]
    unknown = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in "xw"]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in "us"]
    path = save_graph(tmp_path / "axes.onnx", nodes, unknown, outputs, [axes, back])
    module, _ = onnx_module(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x, w = torch.randn(4, 5), torch.randn(2, 1, 3, 1)
    expected = session.run(None, {"x": x.numpy(), "w": w.numpy()})
    with torch.no_grad():
        got = module(x, w)
    assert [tuple(e.shape) for e in expected] == [(4, 1, 5, 1), (2, 3)]
    for a, b in zip(got, expected):
        assert np.array_equal(a.numpy(), b)


def test_gather_of_indices_counted_from_the_end(tmp_path):
    from onnx import TensorProto, helper

    from engine.importer.onnx_convert import onnx_module

    picks = helper.make_tensor("picks", TensorProto.INT64, [3], [-1, 0, -3])
    table = helper.make_tensor("table", TensorProto.FLOAT, [4, 2], [float(i) for i in range(8)])
    ids = helper.make_tensor("ids", TensorProto.INT64, [2, 2], [-1, 1, -4, 2])
    nodes = [helper.make_node("Gather", ["x", "picks"], ["cols"], axis=1),
             helper.make_node("Gather", ["table", "ids"], ["rows"], axis=0)]
    path = save_graph(tmp_path / "gather.onnx", nodes, [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["batch", 5])], [
            helper.make_tensor_value_info("cols", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("rows", TensorProto.FLOAT, [2, 2, 2])],
        [picks, table, ids])
    module, _ = onnx_module(path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 5)
    expected = session.run(None, {"x": x.numpy()})
    with torch.no_grad():
        got = module(x)
    for a, b in zip(got, expected):
        assert np.array_equal(np.asarray(a), b)
