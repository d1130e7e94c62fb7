"""Importers for a user's own graph: graph_csv (a nodes and an edges CSV) and pyg_data (a .pt
file of tensors or a torch_geometric Data), their shapes, sources, errors, and a short run."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.data.dataset import dataset_shapes, load_source
from engine.data.graphs import NodeGraphSource
from engine.errors import DataError, LayerlabError

NODES = """id,label,f1,f2,f3
a0,a,1,0,0.5
a1,a,0.9,0.1,0
a2,a,0.8,0,0.2
b0,b,0,1,0.1
b1,b,0.1,0.9,0
b2,b,0,0.8,0.3
"""
# two triangles joined by the edge a2-b0: 7 undirected edges, 14 directed
EDGES = """source,target
a0,a1
a1,a2
a2,a0
b0,b1
b1,b2
b2,b0
a2,b0
"""


def write(folder: Path, nodes: str = NODES, edges: str = EDGES) -> Path:
    (folder / "nodes.csv").write_text(nodes)
    (folder / "edges.csv").write_text(edges)
    return folder


def csv_block(**params) -> dict:
    return {"name": "graph_csv",
            "params": {"nodes": "nodes.csv", "edges": "edges.csv", **params}, "val_split": 0.34}


def csv_error(tmp_path, nodes=NODES, edges=EDGES, **params) -> str:
    write(tmp_path, nodes, edges)
    with pytest.raises(DataError) as info:
        load_source(csv_block(**params), base_dir=tmp_path)
    return str(info.value)


# -- graph_csv ----------------------------------------------------------------------------------

def test_csv_shapes_count_nodes_features_and_edges_both_ways(tmp_path):
    shapes = dataset_shapes(csv_block(), write(tmp_path))
    assert tuple(shapes["x"]) == (3,) and shapes["x"].nodes == 6
    assert shapes["edge_index"].edges == 14
    assert tuple(shapes["y"]) == () and shapes["y"].nodes == 6
    directed = dataset_shapes(csv_block(directed=True), tmp_path)
    assert directed["edge_index"].edges == 7


def test_csv_loads_a_node_graph_source(tmp_path):
    source = load_source(csv_block(), seed=3, base_dir=write(tmp_path))
    assert isinstance(source, NodeGraphSource)
    assert source.task_hint == "node_classification"
    assert source.num_nodes == 6 and tuple(source.x.shape) == (6, 3)
    assert source.x.dtype == torch.float32 and source.x[0, 2].item() == 0.5
    assert source.num_classes == 2 and source.class_names == ["a", "b"]
    assert source.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert source.feature_names == ["f1", "f2", "f3"]
    edges = {tuple(e) for e in source.edge_index.t().tolist()}
    assert len(edges) == source.edge_index.shape[1] == 14
    assert (2, 3) in edges and (3, 2) in edges  # a2-b0, both ways
    assert not (source.train_mask & source.val_mask).any()
    assert (source.train_mask | source.val_mask).all()
    assert source.val_size == 2 and source.train_size == 4
    again = load_source(csv_block(), seed=3, base_dir=tmp_path)
    assert torch.equal(again.val_mask, source.val_mask)  # the split is seeded


def test_csv_directed_keeps_the_edges_as_listed(tmp_path):
    source = load_source(csv_block(directed=True), base_dir=write(tmp_path))
    assert source.edge_index.shape[1] == 7
    assert source.edge_index[:, 0].tolist() == [0, 1]


def test_csv_integer_ids_and_labels_and_other_column_names(tmp_path):
    nodes = "node;cls;w\n10;1;0.1\n20;0;0.2\n30;2;0.3\n"
    edges = "from;to;weight\n10;20;1\n20;30;1\n"
    write(tmp_path, nodes, edges)
    block = csv_block(id_column="node", label_column="cls", source_column="from",
                      target_column=1, delimiter=";")
    source = load_source(block, base_dir=tmp_path)
    assert source.y.tolist() == [1, 0, 2] and source.num_classes == 3
    assert source.class_names is None
    assert {tuple(e) for e in source.edge_index.t().tolist()} == {(0, 1), (1, 0), (1, 2),
                                                                  (2, 1)}
    assert dataset_shapes(block, tmp_path)["x"].nodes == 3


def test_csv_edge_to_an_unknown_node_names_file_line_and_column(tmp_path):
    edges = EDGES.replace("b2,b0", "b2,x9")  # the 7th line
    message = csv_error(tmp_path, edges=edges)
    assert message == "edges.csv, line 7: column 'target': node 'x9' is not in nodes.csv"


def test_csv_lines_count_the_header_and_skip_blank_lines(tmp_path):
    edges = "source,target\n\na0,a1\nq,a2\n"
    assert "edges.csv, line 4: column 'source': node 'q' is not in nodes.csv" == \
        csv_error(tmp_path, edges=edges)


def test_csv_non_numeric_feature_names_the_cell(tmp_path):
    message = csv_error(tmp_path, nodes=NODES.replace("b1,b,0.1,0.9,0", "b1,b,0.1,high,0"))
    assert message.startswith("nodes.csv, line 6: column 'f2': 'high' is not a number")


def test_csv_missing_feature_and_missing_label(tmp_path):
    message = csv_error(tmp_path, nodes=NODES.replace("a1,a,0.9,0.1,0", "a1,a,0.9,,0"))
    assert message.startswith("nodes.csv, line 3: column 'f2': missing value")
    message = csv_error(tmp_path, nodes=NODES.replace("b2,b,", "b2,,"))
    assert message.startswith("nodes.csv, line 7: column 'label': missing label")


def test_csv_missing_column_lists_the_columns(tmp_path):
    message = csv_error(tmp_path, label_column="class")
    assert "nodes.csv: has no column 'class'" in message
    assert "label_column" in message and "'id', 'label', 'f1', 'f2', 'f3'" in message
    message = csv_error(tmp_path, edges=EDGES.replace("source,target", "src,target"))
    assert "edges.csv: has no column 'source'" in message and "'src', 'target'" in message
    with pytest.raises(DataError, match="edges.csv: has no column 'source'"):
        dataset_shapes(csv_block(), tmp_path)


def test_csv_missing_file_and_duplicate_ids(tmp_path):
    write(tmp_path)
    with pytest.raises(DataError, match=r"^gone.csv: file not found"):
        load_source(csv_block(nodes="gone.csv"), base_dir=tmp_path)
    with pytest.raises(DataError, match=r"^gone.csv: file not found"):
        dataset_shapes(csv_block(edges="gone.csv"), tmp_path)
    message = csv_error(tmp_path, nodes=NODES + "a1,b,1,1,1\n")
    assert message == "nodes.csv, line 8: column 'id': node 'a1' is already on line 3"


def test_csv_a_row_longer_than_the_header_is_named(tmp_path):
    message = csv_error(tmp_path, edges=EDGES.replace("b0,b1", "b0,b1,3"))
    assert message == "edges.csv, line 5: expected 2 columns (as the header), found 3"


def test_csv_params_are_checked(tmp_path):
    write(tmp_path)
    with pytest.raises(DataError, match="dataset.params.nodes: is required"):
        dataset_shapes({"name": "graph_csv", "params": {"edges": "edges.csv"}}, tmp_path)
    with pytest.raises(DataError, match="dataset.params.directed: must be true or false"):
        dataset_shapes(csv_block(directed="yes"), tmp_path)
    with pytest.raises(DataError, match="no feature columns"):
        write(tmp_path, "id,label\na,0\nb,1\n", "source,target\na,b\n")
        load_source(csv_block(), base_dir=tmp_path)


def test_csv_shapes_follow_a_changed_file(tmp_path):
    write(tmp_path)
    assert dataset_shapes(csv_block(), tmp_path)["edge_index"].edges == 14
    write(tmp_path, edges=EDGES + "a0,b2\n")
    assert dataset_shapes(csv_block(), tmp_path)["edge_index"].edges == 16


# -- pyg_data -----------------------------------------------------------------------------------

def graph_tensors() -> dict:
    edges = torch.tensor([[0, 1, 1, 2, 2, 3, 3, 0], [1, 0, 2, 1, 3, 2, 0, 3]])
    return {"x": torch.randn(4, 5), "edge_index": edges, "y": torch.tensor([0, 1, 0, 1]),
            "train_mask": torch.tensor([True, True, True, False]),
            "val_mask": torch.tensor([False, False, False, True])}


class Custom:
    """A class torch.load(weights_only=True) refuses to build."""


def pyg_block(name: str = "graph.pt") -> dict:
    return {"name": "pyg_data", "params": {"path": name}}


def pyg_error(tmp_path, obj) -> str:
    torch.save(obj, tmp_path / "graph.pt")
    with pytest.raises(DataError) as info:
        load_source(pyg_block(), base_dir=tmp_path)
    return str(info.value)


def test_pyg_dict_of_tensors_round_trip_keeps_the_masks(tmp_path):
    tensors = graph_tensors()
    torch.save(tensors, tmp_path / "graph.pt")
    shapes = dataset_shapes(pyg_block(), tmp_path)
    assert tuple(shapes["x"]) == (5,) and shapes["x"].nodes == 4
    assert shapes["edge_index"].edges == 8
    source = load_source(pyg_block(), base_dir=tmp_path)
    assert isinstance(source, NodeGraphSource) and source.num_classes == 2
    assert torch.equal(source.x, tensors["x"]) and torch.equal(source.y, tensors["y"])
    assert torch.equal(source.edge_index, tensors["edge_index"])
    assert torch.equal(source.train_mask, tensors["train_mask"])
    assert torch.equal(source.val_mask, tensors["val_mask"])


def test_pyg_without_masks_splits_by_val_split(tmp_path):
    tensors = graph_tensors()
    del tensors["train_mask"], tensors["val_mask"]
    torch.save(tensors, tmp_path / "graph.pt")
    source = load_source({**pyg_block(), "val_split": 0.25}, base_dir=tmp_path)
    assert source.val_size == 1 and source.train_size == 3
    tensors["train_mask"] = torch.tensor([True, False, True, False])
    torch.save(tensors, tmp_path / "graph.pt")
    source = load_source(pyg_block(), base_dir=tmp_path)
    assert source.val_mask.tolist() == [False, True, False, True]  # the complement


def test_pyg_data_object_round_trip(tmp_path):
    pytest.importorskip("torch_geometric")
    from torch_geometric.data import Data

    tensors = graph_tensors()
    torch.save(Data(**tensors), tmp_path / "graph.pt")
    shapes = dataset_shapes(pyg_block(), tmp_path)
    assert shapes["x"].nodes == 4 and shapes["edge_index"].edges == 8
    source = load_source(pyg_block(), base_dir=tmp_path)
    assert torch.equal(source.x, tensors["x"])
    assert torch.equal(source.edge_index, tensors["edge_index"])
    assert torch.equal(source.train_mask, tensors["train_mask"])
    assert torch.equal(source.val_mask, tensors["val_mask"])


def test_pyg_bad_edge_index_shape_and_ids(tmp_path):
    tensors = graph_tensors()
    message = pyg_error(tmp_path, {**tensors, "edge_index": tensors["edge_index"].t()})
    assert message == "graph.pt: 'edge_index' must have shape (2, E): the source and target " \
                      "node of every edge; got shape (8, 2)"
    message = pyg_error(tmp_path, {**tensors, "edge_index": tensors["edge_index"].float()})
    assert "'edge_index' must hold integer node ids" in message
    bad = tensors["edge_index"].clone()
    bad[1, 5] = 9
    message = pyg_error(tmp_path, {**tensors, "edge_index": bad})
    assert message == "graph.pt: 'edge_index' edge 5 names node 9, but 'x' has 4 nodes " \
                      "(ids 0..3)"


def test_pyg_missing_keys_and_wrong_shapes(tmp_path):
    tensors = graph_tensors()
    message = pyg_error(tmp_path, {k: v for k, v in tensors.items() if k != "y"})
    assert message.startswith("graph.pt: has no 'y' (its keys: x, edge_index, train_mask")
    message = pyg_error(tmp_path, {**tensors, "x": torch.randn(4)})
    assert "'x' must be node features of shape (N, F)" in message and "(4,)" in message
    message = pyg_error(tmp_path, {**tensors, "y": torch.tensor([0, 1, 0])})
    assert "'y' must have shape (4,)" in message and "got shape (3,)" in message
    message = pyg_error(tmp_path, {**tensors, "y": tensors["y"].float()})
    assert "'y' must hold integer class indices" in message
    message = pyg_error(tmp_path, {**tensors, "val_mask": torch.tensor([0, 0, 0, 1])})
    assert "'val_mask' must be a bool tensor of shape (4,)" in message
    message = pyg_error(tmp_path, [tensors, tensors])
    assert "holds a list of 2" in message


def test_pyg_missing_and_unloadable_files(tmp_path):
    with pytest.raises(DataError, match=r"^graph.pt: file not found"):
        load_source(pyg_block(), base_dir=tmp_path)
    (tmp_path / "graph.pt").write_bytes(b"not a torch file")
    with pytest.raises(DataError, match=r"^graph.pt: is not a file torch.save wrote"):
        dataset_shapes(pyg_block(), tmp_path)
    message = pyg_error(tmp_path, {"x": Custom()})
    assert "weights_only=True" in message and "Custom" in message


# -- a short run --------------------------------------------------------------------------------

def gcn_project(folder: Path):
    from engine.project import parse_project

    project = parse_project({
        "format": "layerlab-project", "version": 1, "name": "my graph",
        "models": {"model": {
            "nodes": [{"id": "x", "type": "Input", "params": {"key": "x"}},
                      {"id": "ei", "type": "Input", "params": {"key": "edge_index"}},
                      {"id": "g1", "type": "GCNConv", "params": {"out_channels": 8}},
                      {"id": "relu", "type": "ReLU"},
                      {"id": "g2", "type": "GCNConv", "params": {"out_channels": 2}},
                      {"id": "y", "type": "Output"}],
            "edges": [{"from": "x", "to": "g1", "to_port": "x"},
                      {"from": "ei", "to": "g1", "to_port": "edge_index"},
                      {"from": "g1", "to": "relu"},
                      {"from": "relu", "to": "g2", "to_port": "x"},
                      {"from": "ei", "to": "g2", "to_port": "edge_index"},
                      {"from": "g2", "to": "y"}]}},
        "dataset": csv_block(),
        "training": {"task": "node_classification", "epochs": 30,
                     "optimizer": {"type": "Adam", "lr": 0.05}}})
    project.path = folder / "graph.layerlab.json"
    return project


def test_a_gcn_trains_on_a_csv_graph(tmp_path):
    pytest.importorskip("torch_geometric")
    try:
        from engine.training.tasks.graph import NodeClassificationTask  # noqa: F401
    except ImportError:
        pytest.skip("the node_classification task is not there yet")
    from engine.training import Trainer

    project = gcn_project(write(tmp_path))
    shapes = project.input_shapes()
    assert shapes["x"].nodes == 6 and shapes["edge_index"].edges == 14
    try:
        trainer = Trainer(project, device="cpu", seed=0)
    except LayerlabError as exc:  # pragma: no cover - the task is registered under its name
        if "node_classification" in str(exc) and "unknown" in str(exc).lower():
            pytest.skip(f"the node_classification task is not registered yet ({exc})")
        raise
    history = trainer.fit().history
    assert len(history) == 30
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    assert history[-1]["val_accuracy"] == 1.0  # the features tell the two triangles apart
