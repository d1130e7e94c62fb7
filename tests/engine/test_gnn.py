"""Graph neural networks: node/edge shape marks, the PyG layers, graph datasets, the two graph
tasks, export. (The user's own graph files: test_graph_files.py.)"""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.compiler import compile_model
from engine.data.dataset import dataset_shapes, load_source
from engine.data.graphs import GRAPH_CLASSES, class_graph, sbm_graph, undirected
from engine.errors import TrainingError
from engine.export.formats import graph_example_inputs
from engine.graph import Graph
from engine.layers import CATALOG
from engine.layers.spec import EdgeShape, NodeShape, fmt_shape, graph_full_shape, resolve_class
from engine.project import load_project, parse_project
from engine.shapes import infer_shapes
from engine.training.trainer import Trainer
from widgets.theme import format_shape

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"
GRAPH_TYPES = sorted(t for t, s in CATALOG.items() if "graph" in s.extra)
KARATE = {"x": NodeShape.of((34,), 34), "edge_index": EdgeShape.of(156), "y": NodeShape.of((), 34)}
MANY = {"x": NodeShape.of((5,), 0), "edge_index": EdgeShape.of(0), "batch": NodeShape.of((), 0),
        "y": ()}


def graph_model(layers, shapes=KARATE, pool=False) -> Graph:
    """Inputs x and edge_index (and batch) -> the layers in a chain (graph layers also get the
    edge_index) -> optionally GraphPool -> Output."""
    g = Graph("model")
    g.add_node("Input", "x", {"key": "x"})
    g.add_node("Input", "edges", {"key": "edge_index"})
    prev = "x"
    for i, (type_, params) in enumerate(layers):
        node = f"n{i}"
        g.add_node(type_, node, params)
        if "graph" in CATALOG[type_].extra:
            g.connect(prev, node, dst_port="x")
            g.connect("edges", node, dst_port="edge_index")
        else:
            g.connect(prev, node)
        prev = node
    if pool:
        g.add_node("Input", "batch", {"key": "batch"})
        g.add_node("GraphPool", "pool", {"mode": pool})
        g.connect(prev, "pool", dst_port="x")
        g.connect("batch", "pool", dst_port="batch")
        prev = "pool"
    g.add_node("Output", "y")
    g.connect(prev, "y")
    return g


# -- shapes -------------------------------------------------------------------------------
def test_wires_read_nodes_by_features_and_two_by_edges():
    g = graph_model([("GCNConv", {"out_channels": 16}), ("ReLU", {}),
                     ("Linear", {"out_features": 4})])
    shapes = infer_shapes(g, KARATE)
    assert shapes.errors() == {}
    info = shapes.info
    assert format_shape(info["x"].out_shape) == "34×34"
    assert format_shape(info["edges"].out_shape) == "2×156"
    assert format_shape(info["n0"].out_shape) == "34×16"
    assert format_shape(info["n1"].out_shape) == "34×16"  # per-node layers keep the mark
    assert format_shape(info["n2"].out_shape) == "34×4" and tuple(info["n2"].out_shape) == (4,)
    assert fmt_shape(info["n0"].out_shape) == "34×16"
    assert graph_full_shape(info["n0"].out_shape) == [34, 16]
    many = infer_shapes(graph_model([("GINConv", {"out_channels": 8})], MANY, pool="sum"), MANY)
    assert format_shape(many.info["n0"].out_shape) == "N×8"
    assert format_shape(many.info["edges"].out_shape) == "2×E"
    assert format_shape(many.info["pool"].out_shape) == "8"  # one vector per graph


def test_dataset_shapes_carry_the_marks():
    shapes = dataset_shapes({"name": "karate_club"})
    assert format_shape(shapes["x"]) == "34×34" and format_shape(shapes["edge_index"]) == "2×156"
    sbm = dataset_shapes({"name": "sbm", "params": {"n_nodes": 200, "features": 8}})
    assert format_shape(sbm["x"]) == "200×8"
    classes = dataset_shapes({"name": "graph_classes", "params": {"features": "degree"}})
    assert format_shape(classes["x"]) == "N×17" and classes["y"] == ()


@pytest.mark.parametrize("wiring, message", [
    ("edge_into_linear", "an edge_index cannot feed this layer"),
    ("plain_into_gcn", "needs node features (N×F) on x"),
    ("node_into_edge_port", "needs the graph's edge_index (2×E) on edge_index"),
    ("mix_levels", "mixes node features"),
    ("pool_batch_from_x", "GraphPool's batch port takes the graph id of every node"),
])
def test_wrong_wiring_gets_a_sentence(wiring, message):
    g = Graph("model")
    g.add_node("Input", "x", {"key": "x"})
    g.add_node("Input", "edges", {"key": "edge_index"})
    g.add_node("Input", "plain", {"shape": [34]})
    g.add_node("Output", "y")
    if wiring == "edge_into_linear":
        g.add_node("Linear", "bad", {"out_features": 3})
        g.connect("edges", "bad")
    elif wiring == "plain_into_gcn":
        g.add_node("GCNConv", "bad", {"out_channels": 3})
        g.connect("plain", "bad", dst_port="x")
        g.connect("edges", "bad", dst_port="edge_index")
    elif wiring == "node_into_edge_port":
        g.add_node("GCNConv", "bad", {"out_channels": 3})
        g.connect("x", "bad", dst_port="x")
        g.connect("x", "bad", dst_port="edge_index")
    elif wiring == "mix_levels":
        g.add_node("Add", "bad", {})
        g.connect("x", "bad", dst_port="in")
        g.connect("plain", "bad", dst_port="in")
    else:
        g.add_node("GraphPool", "bad", {})
        g.connect("x", "bad", dst_port="x")
        g.connect("x", "bad", dst_port="batch")
    g.connect("bad", "y")
    error = infer_shapes(g, KARATE).errors()["bad"]
    assert message in error and "internal error" not in error


def test_an_edge_index_cannot_be_an_output():
    g = Graph("model")
    g.add_node("Input", "edges", {"key": "edge_index"})
    g.add_node("Output", "y")
    g.connect("edges", "y")
    assert "cannot be a model output" in infer_shapes(g, KARATE).errors()["y"]


def test_gcn_self_loops_need_normalisation():
    g = graph_model([("GCNConv", {"out_channels": 4, "normalize": False})])
    assert "adds self loops only while it normalises" in infer_shapes(g, KARATE).errors()["n0"]
    g = graph_model([("GCNConv", {"out_channels": 4, "normalize": False,
                                  "add_self_loops": False})])
    assert infer_shapes(g, KARATE).errors() == {}


# -- the layers against PyG ----------------------------------------------------------------
LAYER_CASES = [
    ("GCNConv", {"out_channels": 6}),
    ("GCNConv", {"out_channels": 6, "improved": True, "bias": False}),
    ("GATConv", {"out_channels": 4, "heads": 3}),
    ("GATConv", {"out_channels": 4, "heads": 2, "concat": False, "bias": False}),
    ("SAGEConv", {"out_channels": 6, "aggr": "max"}),
    ("SAGEConv", {"out_channels": 6, "root_weight": False}),
    ("GINConv", {"out_channels": 6}),
    ("GINConv", {"out_channels": 6, "hidden": 11, "train_eps": True}),
]


@pytest.mark.parametrize("type_, params", LAYER_CASES, ids=lambda v: str(v))
def test_counts_and_shapes_match_pyg(type_, params):
    shapes_in = {"x": NodeShape.of((5,), 0), "edge_index": EdgeShape.of(0),
                 "batch": NodeShape.of((), 0)}
    g = graph_model([(type_, params)], shapes_in)
    shapes = infer_shapes(g, shapes_in)
    assert shapes.errors() == {}
    info = shapes.info["n0"]
    torch.manual_seed(0)
    model = compile_model(g, shapes).eval()
    built = model.get_submodule(model.node_attrs["n0"])
    assert info.stats.params == sum(p.numel() for p in built.parameters())
    assert info.stats.trainable == sum(p.numel() for p in built.parameters() if p.requires_grad)
    xs = graph_example_inputs(model, shapes, 4, torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(*xs)
    assert tuple(out.shape) == (xs[0].shape[0], *info.out_shape)


@pytest.mark.parametrize("type_", [t for t in GRAPH_TYPES if t != "GraphPool"])
def test_parameters_reach_the_pyg_class_under_their_names(type_):
    case = next(c for c in LAYER_CASES if c[0] == type_)
    info = infer_shapes(graph_model([case]), KARATE).info["n0"]
    call = CATALOG[type_].module(info.params, info.in_shapes)
    accepted = set(inspect.signature(resolve_class(call.cls)).parameters)
    assert set(call.kwargs) <= accepted
    if call.cls.startswith("pyg."):
        assert set(CATALOG[type_].param_names) <= set(call.kwargs)


@pytest.mark.parametrize("type_", GRAPH_TYPES)
def test_any_json_parameter_value_gets_a_sentence(type_):
    weird = [10**400, -1, 0, 1.5, "x", "", [], [1, 2], {}, None, True, float("nan")]
    for p in CATALOG[type_].params:
        for value in weird:
            params = {"out_channels": 3} if type_ != "GraphPool" else {}
            params[p.name] = value
            g = graph_model([(type_, params)] if type_ != "GraphPool" else [], MANY,
                            pool=False) if type_ != "GraphPool" else None
            if g is None:
                g = graph_model([], MANY, pool="mean")
                g.set_param("pool", p.name, value)
            error = infer_shapes(g, MANY).errors()
            assert all("internal error" not in e for e in error.values()), (p.name, value)


@pytest.mark.parametrize("mode", ["mean", "max", "sum"])
def test_graph_pool_equals_pyg_global_pools(mode):
    from torch_geometric.nn import global_add_pool, global_max_pool, global_mean_pool

    from engine.layers.modules import GraphPool

    x = torch.randn(9, 4)
    batch = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    reference = {"mean": global_mean_pool, "max": global_max_pool, "sum": global_add_pool}[mode]
    assert torch.allclose(GraphPool(mode)(x, batch), reference(x, batch), atol=1e-6)
    whole = GraphPool(mode)(x)
    assert whole.shape == (1, 4)
    assert torch.allclose(whole, reference(x, torch.zeros(9, dtype=torch.long)), atol=1e-6)


# -- datasets ------------------------------------------------------------------------------
def test_sbm_is_seeded_undirected_and_blocky():
    params = {"n_nodes": 400, "blocks": 4, "p_in": 0.1, "p_out": 0.01, "features": 8,
              "noise": 0.5}
    x, edges, block = sbm_graph(params, seed=3)
    x2, edges2, _ = sbm_graph(params, seed=3)
    assert np.array_equal(edges, edges2) and np.array_equal(x, x2)
    assert not np.array_equal(edges, sbm_graph(params, seed=4)[1])
    pairs = set(map(tuple, edges.T))
    assert all((b, a) in pairs for a, b in pairs)  # both directions of every edge
    inside = (block[edges[0]] == block[edges[1]]).mean()
    assert inside > 0.7  # p_in 0.1 vs p_out 0.01 over 3 other blocks: about 77% inside
    assert x.shape == (400, 8) and np.bincount(block).tolist() == [100] * 4
    assert abs(x[np.arange(400), block].mean() - 1.0) < 0.15  # the block's code plus noise


def test_sbm_split_follows_val_split():
    ds = load_source({"name": "sbm", "params": {"n_nodes": 300}, "val_split": 0.5}, seed=0)
    assert ds.train_size == 150 and ds.val_size == 150
    assert not bool((ds.train_mask & ds.val_mask).any())
    assert "300 nodes" in ds.describe()


def test_karate_keeps_pyg_labelled_members():
    ds = load_source({"name": "karate_club"})
    assert ds.num_nodes == 34 and ds.num_classes == 4
    assert ds.train_mask.nonzero().flatten().tolist() == [0, 4, 8, 24]
    assert ds.val_size == 30


@pytest.mark.parametrize("kind", GRAPH_CLASSES)
def test_class_graphs_have_their_structure(kind):
    rng = np.random.default_rng(0)
    edges = class_graph(kind, 10, 0, rng)
    degree = np.bincount(edges[0], minlength=10)
    expect = {"cycle": 2 * 10, "tree": 2 * 9, "clique": 10 * 9}[kind]
    assert edges.shape[1] == expect
    if kind == "cycle":
        assert set(degree) == {2}
    if kind == "clique":
        assert set(degree) == {9}


def test_graph_classes_batch_like_pyg():
    ds = load_source({"name": "graph_classes", "params": {"n_graphs": 30}}, seed=0)
    assert ds.train_size == 24 and ds.val_size == 6
    batches = ds.train_batches(8, torch.Generator().manual_seed(0), "cpu", None)
    assert [len(b) for b in batches] == [8, 8, 8]
    fields = ds.take(batches[0])
    assert fields["y"].shape == (8,) and int(fields["batch"].max()) == 7
    assert fields["x"].shape[0] == fields["batch"].shape[0]
    assert int(fields["edge_index"].max()) < fields["x"].shape[0]


def test_undirected_drops_self_loops_and_duplicates():
    edges = undirected(np.array([[0, 1, 1, 2], [1, 0, 1, 0]]))
    assert edges.tolist() == [[0, 0, 1, 2], [1, 2, 0, 0]]


# -- tasks ---------------------------------------------------------------------------------
def project(model: Graph, dataset: dict, task: str, epochs: int = 2, **training) -> object:
    from engine.project import Project

    return Project(name="t", models={"model": model}, dataset=dataset,
                   training={"task": task, "epochs": epochs, "seed": 0,
                             "optimizer": {"type": "Adam", "lr": 0.01}, **training})


def test_node_classification_learns_sbm():
    g = graph_model([("GCNConv", {"out_channels": 16}), ("ReLU", {}),
                     ("GCNConv", {"out_channels": 4})])
    trainer = Trainer(project(g, {"name": "sbm", "params": {"n_nodes": 400, "p_in": 0.1},
                                    "val_split": 0.5},
                              "node_classification", epochs=60))
    assert trainer.steps_per_epoch == 1
    trainer.fit()
    assert trainer.history[-1]["val_accuracy"] >= 0.9
    assert trainer.history[-1]["train_loss"] < trainer.history[0]["train_loss"]


def test_node_classification_task_is_chosen_from_the_dataset():
    g = graph_model([("GCNConv", {"out_channels": 4})])
    p = project(g, {"name": "karate_club"}, None)
    p.training.pop("task")
    assert Trainer(p).task.name == "node_classification"


def test_node_classification_names_a_wrong_output():
    g = graph_model([("GCNConv", {"out_channels": 3})])
    with pytest.raises(TrainingError, match="set out_features to 4"):
        Trainer(project(g, {"name": "karate_club"}, "node_classification"))


def test_graph_classification_needs_a_pool():
    shapes = {"name": "graph_classes", "params": {"n_graphs": 30}}
    g = graph_model([("GINConv", {"out_channels": 3})], MANY)
    with pytest.raises(TrainingError, match="pool the nodes with GraphPool"):
        Trainer(project(g, shapes, "graph_classification"))


def test_tasks_refuse_the_other_kind_of_graph_data():
    g = graph_model([("GCNConv", {"out_channels": 3})], MANY, pool="mean")
    with pytest.raises(TrainingError, match="needs one graph"):
        Trainer(project(g, {"name": "graph_classes", "params": {"n_graphs": 30}},
                        "node_classification"))


def test_graph_classification_learns_and_probes():
    from engine.training.probes import Probes

    g = graph_model([("GINConv", {"out_channels": 16}), ("ReLU", {})], MANY, pool="sum")
    g.add_node("Linear", "head", {"out_features": 3})
    g.disconnect(next(e for e in g.in_edges("y")))
    g.connect("pool", "head")
    g.connect("head", "y")
    probes = Probes(graph=True, confusion=True)
    p = project(g, {"name": "graph_classes", "params": {"n_graphs": 240, "features": "degree"}},
                "graph_classification", epochs=15, batch_size=32)
    trainer = Trainer(p, callbacks=[probes])
    trainer.fit()
    assert trainer.history[-1]["val_accuracy"] >= 0.9
    graph = probes.latest["graph"]
    assert graph["embedding_node"] == "pool" and graph["embedding"].shape == (48, 2)
    assert graph["labels"].shape == (48,) and probes.latest["confusion"].sum() == 48


def test_node_probe_projects_the_last_graph_layer():
    from engine.training.probes import Probes

    probes = Probes(graph=True)
    trainer = Trainer(load_project(EXAMPLES / "gcn_karate.layerlab.json"), callbacks=[probes],
                      epochs=2)
    trainer.fit()
    graph = probes.latest["graph"]
    assert graph["embedding_node"] == "gcn1" and graph["embedding"].shape == (34, 2)
    assert graph["pred"].shape == (34,) and graph["candidates"][0] == "gcn1"
    probes.configure(embedding_node="relu1")
    assert probes.refresh(trainer)["graph"]["embedding_node"] == "relu1"


# -- the command line and export -------------------------------------------------------------
def run(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_summary_lists_whole_graph_shapes(capsys):
    from engine.cli import main

    assert main(["summary", str(EXAMPLES / "gcn_karate.layerlab.json"), "--json"]) == 0
    layers = json.loads(capsys.readouterr().out)["models"]["model"]["layers"]
    by_id = {layer["id"]: layer for layer in layers}
    assert by_id["gcn1"]["output_shape"] == [34, 16]
    assert by_id["edges"]["output_shape"] == [2, 156]


@pytest.mark.parametrize("example", ["gcn_karate", "gin_graph_classes"])
def test_train_then_export_every_format(example, tmp_path):
    path = EXAMPLES / f"{example}.layerlab.json"
    done = run("train", str(path), "--epochs", "2", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["event"] == "done"
    weights = tmp_path / "run" / "weights.pt"
    for fmt, out in [("onnx", "m.onnx"), ("torchscript", "m.pt"), ("python", "py")]:
        result = run("export", str(path), "--weights", str(weights), "--format", fmt,
                     "--out", str(tmp_path / out))
        assert result.returncode == 0, (fmt, result.stderr)
    # the exported files run on a graph of another size than the export's example
    import onnxruntime as ort

    trainer_model = Trainer(load_project(path), epochs=1)
    model = trainer_model.models["model"].eval()
    model.load_state_dict(torch.load(weights, weights_only=True)["model"])
    shapes = trainer_model.shapes["model"]
    xs = graph_example_inputs(model, shapes, 11, torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model(*xs).numpy()
    session = ort.InferenceSession(str(tmp_path / "m.onnx"))
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, {n: x.numpy() for n, x in zip(names, xs)})[0]
    assert np.abs(got - expected).max() < 1e-4
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    assert np.abs(scripted(*xs).detach().numpy() - expected).max() < 1e-4
    code = (tmp_path / "py" / "model.py").read_text()
    assert "torch_geometric" in code
    sys.path.insert(0, str(tmp_path / "py"))
    try:
        import importlib

        module = importlib.import_module("model")
        importlib.reload(module)
        plain = module.Model().eval()
        plain.load_state_dict(torch.load(tmp_path / "py" / "weights.pt", weights_only=True))
        with torch.no_grad():
            assert np.abs(plain(*xs).numpy() - expected).max() < 1e-5
    finally:
        sys.path.remove(str(tmp_path / "py"))
        sys.modules.pop("model", None)


def test_held_out_style_project_trains_from_the_command_line(tmp_path):
    """A project written to the contract by hand: GATConv on the karate club."""
    proj = {"format": "layerlab-project", "version": 1, "name": "gat", "models": {"model": {
        "nodes": [{"id": "x", "type": "Input", "params": {"key": "x"}},
                  {"id": "e", "type": "Input", "params": {"key": "edge_index"}},
                  {"id": "g1", "type": "GATConv", "params": {"out_channels": 8, "heads": 4}},
                  {"id": "a", "type": "ELU"},
                  {"id": "g2", "type": "GATConv", "params": {"out_channels": 4}},
                  {"id": "y", "type": "Output"}],
        "edges": [{"from": "x", "to": "g1", "to_port": "x"},
                  {"from": "e", "to": "g1", "to_port": "edge_index"},
                  {"from": "g1", "to": "a"}, {"from": "a", "to": "g2", "to_port": "x"},
                  {"from": "e", "to": "g2", "to_port": "edge_index"},
                  {"from": "g2", "to": "y"}]}},
        "dataset": {"name": "karate_club"},
        "training": {"task": "node_classification", "epochs": 100, "seed": 1,
                     "optimizer": {"type": "Adam", "lr": 0.01, "weight_decay": 0.0005}}}
    path = tmp_path / "gat.layerlab.json"
    path.write_text(json.dumps(proj))
    parse_project(proj)
    done = run("train", str(path), "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    epochs = [json.loads(line) for line in done.stdout.splitlines()
              if '"event": "epoch"' in line]
    assert len(epochs) == 100 and epochs[-1]["val_accuracy"] >= 0.6  # majority class: 0.43
    assert "karate_club: in memory (one graph of 34 nodes" in done.stderr
