"""The layer catalog against torch: parameter counts, output shapes, docs, the custom modules."""
from __future__ import annotations

import inspect
import math

import pytest
import torch

from engine.compiler import compile_model
from engine.graph import Graph
from engine.layers import CATALOG, CATEGORIES, REQUIRED, by_category, get_spec
from engine.layers.modules import PositionalEncoding, Reparameterize, Reservoir, Step
from engine.layers.spec import resolve_class
from engine.shapes import infer_shapes

# torch warns that an even kernel with padding 'same' pads one side more; that case is wanted
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")

# The design's table: every one of these must be in the catalog.
DESIGN_TYPES = """Input Output Linear Flatten Reshape Dropout ReLU LeakyReLU ELU GELU SiLU Sigmoid
Tanh Softmax Step Conv1d Conv2d ConvTranspose2d MaxPool2d AvgPool2d AdaptiveAvgPool2d Upsample
BatchNorm1d BatchNorm2d LayerNorm RNN LSTM GRU Reservoir Embedding PositionalEncoding
MultiheadAttention TransformerEncoderLayer SequencePool Add Multiply Concat Reparameterize""".split()

SEQ, IMG, SIG = (5, 6), (4, 9, 9), (4, 11)
# Types that only work in a pair, tested as one in test_frames.py (and Opaque, the importer's).
PAIRED = {"PerFrame", "MergeFrames"}
# Graph layers need a graph's fields (node features, edge_index): tested in test_gnn.py.
GRAPH = {t for t, s in CATALOG.items() if "graph" in s.extra}
# A Block runs one of a project's block definitions: tested in test_blocks.py.
BLOCK = {"Block"}

# (type, params, {input port: [per-sample shapes]})
CASES = [
    ("Linear", {"out_features": 5}, {"in": [(7,)]}),
    ("Linear", {"out_features": 5, "bias": False}, {"in": [(3, 7)]}),
    ("Flatten", {}, {"in": [(2, 3, 4)]}),
    ("Flatten", {"start_dim": 2}, {"in": [(2, 3, 4)]}),
    ("Flatten", {"start_dim": 1, "end_dim": 2}, {"in": [(2, 3, 4)]}),
    ("Reshape", {"shape": [-1, 2]}, {"in": [(4, 3)]}),
    ("Reshape", {"shape": [1, 8, 8]}, {"in": [(64,)]}),
    ("Dropout", {"p": 0.3}, {"in": [(7,)]}),
    ("Embedding", {"num_embeddings": 10, "embedding_dim": 4}, {"in": [(6,)]}),
    ("ReLU", {}, {"in": [(7,)]}),
    ("LeakyReLU", {"negative_slope": 0.2}, {"in": [(7,)]}),
    ("ELU", {"alpha": 0.5}, {"in": [(7,)]}),
    ("GELU", {"approximate": "tanh"}, {"in": [(7,)]}),
    ("SiLU", {}, {"in": [(7,)]}),
    ("Sigmoid", {}, {"in": [(7,)]}),
    ("Tanh", {}, {"in": [(7,)]}),
    ("Softmax", {}, {"in": [SEQ]}),
    ("Softmax", {"dim": 1}, {"in": [SEQ]}),
    ("Step", {}, {"in": [(7,)]}),
    ("Conv1d", {"out_channels": 6, "kernel_size": 3}, {"in": [SIG]}),
    ("Conv1d", {"out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 2, "dilation": 2,
                "groups": 2, "bias": False}, {"in": [SIG]}),
    ("Conv1d", {"out_channels": 6, "kernel_size": 4, "padding": "same"}, {"in": [SIG]}),
    ("Conv2d", {"out_channels": 8, "kernel_size": 3}, {"in": [IMG]}),
    ("Conv2d", {"out_channels": 8, "kernel_size": 3, "bias": False}, {"in": [IMG]}),
    ("Conv2d", {"out_channels": 8, "kernel_size": 3, "groups": 4}, {"in": [IMG]}),
    ("Conv2d", {"out_channels": 6, "kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 0],
                "dilation": [2, 1]}, {"in": [IMG]}),
    ("Conv2d", {"out_channels": 6, "kernel_size": 3, "padding": "same", "dilation": 2},
     {"in": [IMG]}),
    ("Conv2d", {"out_channels": 6, "kernel_size": 5, "padding": "valid"}, {"in": [IMG]}),
    ("ConvTranspose2d", {"out_channels": 6, "kernel_size": 3}, {"in": [IMG]}),
    ("ConvTranspose2d", {"out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1,
                         "output_padding": 1, "groups": 2, "bias": False}, {"in": [IMG]}),
    ("ConvTranspose2d", {"out_channels": 3, "kernel_size": [2, 3], "stride": [2, 3],
                         "dilation": 2}, {"in": [IMG]}),
    ("MaxPool2d", {"kernel_size": 2}, {"in": [IMG]}),
    ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}, {"in": [IMG]}),
    ("AvgPool2d", {"kernel_size": 2}, {"in": [IMG]}),
    ("AvgPool2d", {"kernel_size": [3, 2], "stride": 1}, {"in": [IMG]}),
    ("AdaptiveAvgPool2d", {"output_size": 1}, {"in": [IMG]}),
    ("AdaptiveAvgPool2d", {"output_size": [2, 3]}, {"in": [IMG]}),
    ("Upsample", {}, {"in": [IMG]}),
    ("Upsample", {"scale_factor": 1.5, "mode": "bilinear"}, {"in": [IMG]}),
    ("Upsample", {"scale_factor": 3, "mode": "linear"}, {"in": [SIG]}),
    ("Upsample", {"scale_factor": 2}, {"in": [SIG]}),
    ("BatchNorm1d", {}, {"in": [(7,)]}),
    ("BatchNorm1d", {"eps": 1e-3, "momentum": None}, {"in": [SIG]}),
    ("BatchNorm2d", {"momentum": 0.2}, {"in": [IMG]}),
    ("LayerNorm", {}, {"in": [SEQ]}),
    ("LayerNorm", {"elementwise_affine": False}, {"in": [(7,)]}),
    ("RNN", {"hidden_size": 8}, {"in": [SEQ]}),
    ("RNN", {"hidden_size": 8, "nonlinearity": "relu", "bias": False}, {"in": [SEQ]}),
    ("RNN", {"hidden_size": 8, "num_layers": 2, "bidirectional": True, "dropout": 0.1},
     {"in": [SEQ]}),
    ("LSTM", {"hidden_size": 8}, {"in": [SEQ]}),
    ("LSTM", {"hidden_size": 8, "num_layers": 2, "bidirectional": True}, {"in": [SEQ]}),
    ("LSTM", {"hidden_size": 3, "bias": False, "num_layers": 3}, {"in": [SEQ]}),
    ("GRU", {"hidden_size": 8}, {"in": [SEQ]}),
    ("GRU", {"hidden_size": 8, "num_layers": 2, "bidirectional": True}, {"in": [SEQ]}),
    ("Reservoir", {"hidden_size": 20}, {"in": [SEQ]}),
    ("Reservoir", {"hidden_size": 12, "density": 0.5, "leak_rate": 1.0, "seed": 3},
     {"in": [SEQ]}),
    ("SequencePool", {}, {"in": [SEQ]}),
    ("SequencePool", {"mode": "max"}, {"in": [SEQ]}),
    ("SequencePool", {"mode": "first"}, {"in": [SEQ]}),
    ("SequencePool", {"mode": "last"}, {"in": [SEQ]}),
    ("MultiheadAttention", {"num_heads": 2}, {"query": [(5, 8)]}),
    ("MultiheadAttention", {"num_heads": 4, "bias": False}, {"query": [(5, 8)]}),
    ("MultiheadAttention", {"num_heads": 2}, {"query": [(5, 8)], "key": [(7, 6)],
                                              "value": [(7, 3)]}),
    ("MultiheadAttention", {"num_heads": 2, "bias": False},
     {"query": [(5, 8)], "key": [(7, 6)]}),
    ("TransformerEncoderLayer", {"nhead": 2, "dim_feedforward": 16}, {"in": [(5, 8)]}),
    ("TransformerEncoderLayer", {"nhead": 4, "dim_feedforward": 12, "activation": "gelu",
                                 "norm_first": True, "dropout": 0.0}, {"in": [(5, 8)]}),
    ("PositionalEncoding", {}, {"in": [(5, 8)]}),
    ("PositionalEncoding", {"max_len": 6}, {"in": [(5, 7)]}),
    ("Add", {}, {"in": [(7,), (7,), (7,)]}),
    ("Multiply", {}, {"in": [IMG, IMG]}),
    ("Concat", {}, {"in": [(3,), (4,)]}),
    ("Concat", {"dim": -1}, {"in": [(2, 3), (2, 4), (2, 1)]}),
    ("Concat", {"dim": 1}, {"in": [(2, 3), (5, 3)]}),
    ("Reparameterize", {}, {"mu": [(6,)], "logvar": [(6,)]}),
    ("Opaque", {"module": "torch.nn.PReLU", "init": '{"num_parameters": 7}'}, {"in": [(7,)]}),
    ("Opaque", {}, {"in": [IMG]}),
]


def case_id(case) -> str:
    type_, params, _ = case
    return type_ + ("-" + "-".join(f"{k}={v}" for k, v in params.items()) if params else "")


def one_layer_graph(type_: str, params: dict, ins: dict) -> Graph:
    """Inputs -> the layer -> one Output per output port."""
    g = Graph("probe")
    for port, shapes in ins.items():
        for i, shape in enumerate(shapes):
            g.add_node("Input", f"in_{port}{i}", {"shape": list(shape)})
    g.add_node(type_, "layer", params)
    for port, shapes in ins.items():
        for i in range(len(shapes)):
            g.connect(f"in_{port}{i}", "layer", dst_port=port)
    for port in get_spec(type_).outputs:
        g.add_node("Output", f"y_{port}")
        g.connect("layer", f"y_{port}", src_port=port)
    return g


def random_input(type_: str, shape: tuple, batch: int = 3) -> torch.Tensor:
    if type_ == "Embedding":
        return torch.randint(0, 10, (batch, *shape)).float()
    return torch.randn(batch, *shape)


def test_design_table_is_in_the_catalog():
    missing = [t for t in DESIGN_TYPES if t not in CATALOG]
    assert not missing


def test_categories_cover_every_spec():
    assert {s.category for s in CATALOG.values()} <= set(CATEGORIES)
    groups = by_category()
    assert sum(len(v) for v in groups.values()) == len(CATALOG)
    assert [s.type for s in groups["Merge"]] == ["Add", "Multiply", "Concat"]


def test_every_type_with_a_module_or_emit_has_a_case():
    covered = {c[0] for c in CASES} | PAIRED | GRAPH | BLOCK
    missing = [t for t, s in CATALOG.items()
               if (s.module is not None or s.emit is not None) and t not in covered]
    assert not missing


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_stats_and_shapes_match_torch(case):
    type_, params, ins = case
    torch.manual_seed(0)
    g = one_layer_graph(type_, params, ins)
    shapes = infer_shapes(g)
    assert shapes.errors() == {}
    info = shapes.info["layer"]
    spec = get_spec(type_)
    model = compile_model(g, shapes)
    if spec.module is not None:
        built = spec.module(info.params, info.in_shapes).build()
        assert info.stats.params == sum(p.numel() for p in built.parameters())
        assert info.stats.trainable == sum(p.numel() for p in built.parameters()
                                           if p.requires_grad)
        compiled = model.get_submodule(model.node_attrs["layer"])
        assert sum(p.numel() for p in compiled.parameters()) == info.stats.params
    else:
        assert info.stats.params == 0 and len(list(model.parameters())) == 0
    model.eval()
    feeds = {f"in_{port}{i}": random_input(type_, s)
             for port, shapes_ in ins.items() for i, s in enumerate(shapes_)}
    with torch.no_grad():
        result = model(*[feeds[n] for n in model.input_names])
    results = result if isinstance(result, tuple) else (result,)
    assert len(results) == len(spec.outputs) == len(model.output_names)
    for name, tensor in zip(model.output_names, results):
        port = name[2:]
        assert tuple(tensor.shape) == (3, *info.out_shapes[port]), port
        assert shapes.info[name].out_shape == info.out_shapes[port]


@pytest.mark.parametrize("type_", sorted(CATALOG))
def test_spec_docs_and_starters(type_):
    spec = CATALOG[type_]
    assert len(spec.doc.strip()) > 10, type_
    assert set(spec.key_params) <= set(spec.param_names)
    for p in spec.params:
        assert p.doc.strip(), f"{type_}.{p.name} has no doc"
        if p.required:
            assert p.starter is not None, f"{type_}.{p.name} has no starter value"
        elif p.default is not None or not p.optional:
            assert p.check(p.default) == p.default
    resolved = spec.resolve(spec.initial_params())
    assert set(resolved) == set(spec.param_names)


def test_required_parameters_are_those_torch_has_no_default_for():
    required = {(t, p.name) for t, s in CATALOG.items() for p in s.params if p.default is REQUIRED}
    names = {n for _, n in required}
    assert names <= {"out_features", "out_channels", "kernel_size", "hidden_size",
                     "num_embeddings", "embedding_dim", "num_heads", "nhead", "shape",
                     "output_size", "block"}  # block: which of the project's blocks
    assert ("Linear", "out_features") in required and ("Conv2d", "kernel_size") in required


@pytest.mark.parametrize("type_", sorted(t for t, s in CATALOG.items()
                                         if s.module and t not in PAIRED | GRAPH | BLOCK | {"Opaque"}))
def test_parameter_names_are_torch_names(type_):
    """Every parameter of a spec built from a torch.nn class reaches it under its own name."""
    spec = CATALOG[type_]
    case = next(c for c in CASES if c[0] == type_)
    info = infer_shapes(one_layer_graph(*case)).info["layer"]
    call = spec.module(info.params, info.in_shapes)
    if call.cls.startswith("nn."):
        # keep_bias, when set, builds Layerlab's KeepLSTM/KeepGRU (an nn.LSTM/nn.GRU subclass)
        assert set(spec.param_names) - {"keep_bias"} <= set(call.kwargs)
        if "keep_bias" in spec.param_names:
            kept = spec.module({**info.params, "keep_bias": 2.0}, info.in_shapes)
            assert kept.cls == f"Keep{type_}" and kept.kwargs["keep_bias"] == 2.0
            assert set(spec.param_names) <= set(kept.kwargs)
            kept.build()
    else:
        accepted = set(inspect.signature(resolve_class(call.cls)).parameters)
        assert set(call.kwargs) <= accepted
    call.build()


WEIRD = [10**400, -10**400, 1e308, -1e308, -1, 0, 1.5, 2**63, "x", "", [], [1, 2, 3],
         [10**400] * 2, [0, 0], [-1], {}, None, True, float("nan"), float("inf")]


@pytest.mark.parametrize("type_", sorted(t for t, s in CATALOG.items()
                                         if s.params and t not in GRAPH | BLOCK))
def test_any_json_parameter_value_gets_a_sentence_not_a_crash(type_):
    case = ("Linear", {"out_features": 3}, {"in": [(4,)]}) if type_ == "Input" else \
        next(c for c in CASES if c[0] == type_)
    node = "in_in0" if type_ == "Input" else "layer"
    for p in CATALOG[type_].params:
        for value in WEIRD:
            g = one_layer_graph(*case)
            g.set_param(node, p.name, value)
            error = infer_shapes(g).errors().get(node) or ""
            assert "internal error" not in error, (p.name, value)


def test_module_code_is_a_readable_constructor():
    case = ("Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": "same"}, {"in": [IMG]})
    info = infer_shapes(one_layer_graph(*case)).info["layer"]
    call = CATALOG["Conv2d"].module(info.params, info.in_shapes)
    assert call.code().startswith("nn.Conv2d(in_channels=4, out_channels=8, kernel_size=3")
    assert "padding='same'" in call.code()


# -- the custom modules --------------------------------------------------------------------
def test_step_forward_is_heaviside():
    x = torch.tensor([-1e8, -2.5, -1e-7, 0.0, 1e-7, 0.3, 2.5, 3e7, 1e8])
    assert Step()(x).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert Step()(x.double()).dtype == torch.float64


def test_step_gradient_passes_straight_through():
    x = torch.tensor([-3.0, -0.1, 0.0, 0.2, 5.0], requires_grad=True)
    upstream = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    Step()(x).backward(upstream)
    assert torch.equal(x.grad, upstream)


def spectral_radius(w: torch.Tensor) -> float:
    return torch.linalg.eigvals(w.double()).abs().max().item()


@pytest.mark.parametrize("radius", [0.5, 0.9, 1.3])
def test_reservoir_is_scaled_to_its_spectral_radius(radius):
    res = Reservoir(3, 150, spectral_radius=radius, density=0.2, seed=1)
    assert spectral_radius(res.weight_hh) == pytest.approx(radius, abs=1e-4)


def test_reservoir_weights_are_frozen_sparse_and_seeded():
    res = Reservoir(2, 200, density=0.1, input_scaling=0.5, seed=7)
    assert all(not p.requires_grad for p in res.parameters())
    density = (res.weight_hh != 0).float().mean().item()
    assert 0.08 < density < 0.12
    assert res.weight_ih.abs().max() <= 0.5
    again = Reservoir(2, 200, density=0.1, input_scaling=0.5, seed=7)
    other = Reservoir(2, 200, density=0.1, input_scaling=0.5, seed=8)
    assert torch.equal(res.weight_hh, again.weight_hh)
    assert torch.equal(res.weight_ih, again.weight_ih)
    assert not torch.equal(res.weight_hh, other.weight_hh)


def test_reservoir_is_a_leaky_echo_state_update():
    res = Reservoir(2, 30, leak_rate=0.3, density=0.5, seed=2)
    x = torch.randn(4, 6, 2)
    states, last = res(x)
    h = torch.zeros(4, 30)
    for t in range(6):
        h = 0.7 * h + 0.3 * torch.tanh(x[:, t] @ res.weight_ih.T + h @ res.weight_hh.T)
        assert torch.allclose(states[:, t], h, atol=1e-6)
    assert torch.equal(last, states[:, -1])


def test_reservoir_in_a_model_does_not_learn():
    g = one_layer_graph("Reservoir", {"hidden_size": 10}, {"in": [SEQ]})
    shapes = infer_shapes(g)
    assert shapes.info["layer"].stats.trainable == 0
    assert shapes.info["layer"].stats.params == 10 * 6 + 10 * 10
    model = compile_model(g, shapes)
    out, last = model(torch.randn(2, *SEQ))
    assert not out.requires_grad and not last.requires_grad


@pytest.mark.parametrize("d_model", [8, 7])
def test_positional_encoding_is_sinusoidal(d_model):
    pe = PositionalEncoding(d_model, max_len=50)
    x = torch.randn(2, 40, d_model)
    added = (pe(x) - x)[0]
    expected = torch.zeros(40, d_model, dtype=torch.float64)
    for pos in range(40):
        for i in range(d_model):
            angle = pos / 10000 ** ((i - i % 2) / d_model)
            expected[pos, i] = math.sin(angle) if i % 2 == 0 else math.cos(angle)
    assert torch.allclose(added.double(), expected, atol=1e-5)
    assert torch.allclose(pe(x)[1] - x[1], added, atol=1e-6)


def test_reparameterize_samples_while_training_and_returns_mu_in_eval():
    torch.manual_seed(0)
    mu = torch.tensor([[0.5, -2.0, 3.0]]).expand(20000, 3)
    logvar = torch.tensor([[0.0, math.log(4.0), math.log(0.25)]]).expand(20000, 3)
    layer = Reparameterize().train()
    z1, z2 = layer(mu, logvar), layer(mu, logvar)
    assert not torch.equal(z1, z2)
    assert torch.allclose(z1.mean(0), mu[0], atol=0.05)
    assert torch.allclose(z1.std(0), torch.tensor([1.0, 2.0, 0.5]), rtol=0.05)
    layer.eval()
    assert torch.equal(layer(mu, logvar), mu)


def test_recurrent_last_is_the_final_state_of_each_direction():
    g = one_layer_graph("GRU", {"hidden_size": 4, "bidirectional": True, "num_layers": 2},
                        {"in": [SEQ]})
    model = compile_model(g).eval()
    x = torch.randn(3, *SEQ)
    out, last = model(x)
    _, h_n = model.layer(x)
    assert torch.allclose(last, torch.cat([h_n[-2], h_n[-1]], dim=-1), atol=1e-6)
    assert out.shape == (3, 5, 8)


def test_attention_key_and_value_default_to_the_query():
    g = one_layer_graph("MultiheadAttention", {"num_heads": 2}, {"query": [(5, 8)]})
    model = compile_model(g).eval()
    x = torch.randn(2, 5, 8)
    expected, _ = model.layer(x, x, x)
    assert torch.allclose(model(x), expected, atol=1e-6)
