"""Graphs as a data source: one graph whose nodes are classified, or many small graphs that are.

Two kinds of source fill the contract of :mod:`engine.data.source`:

- :class:`NodeGraphSource` holds one graph on the device - node features ``x`` (N×F), its
  ``edge_index`` (2×E), a class per node ``y`` - and which nodes train and which validate
  (``train_mask``, ``val_mask``). A training step sees the whole graph (full batch); the task
  ``node_classification`` scores only the masked nodes.
- :class:`GraphSetSource` holds many small graphs (PyG ``Data`` objects) and batches them with
  PyG's ``Batch``: a batch's ``x`` stacks the nodes of its graphs, ``edge_index`` is offset to
  match, ``batch`` names each node's graph, ``y`` has a class per graph. The task
  ``graph_classification`` pools the nodes per graph (``GraphPool``) and classifies.

Built-in graphs, generated in-process (nothing is downloaded): ``karate_club`` (Zachary's
karate club, 34 members in four communities, one labelled member per community, from PyG),
``sbm`` (a stochastic block model: ``n_nodes`` split into ``blocks``, an edge inside a block with
probability ``p_in`` and between blocks ``p_out``, node features the block's one-hot code plus
Gaussian noise) and ``graph_classes`` (cycles, trees and cliques of ``min_nodes``..``max_nodes``
nodes, each with a few random extra edges; the class is the kind). A user's own graph comes
through the importers of :mod:`engine.data.graph_files`.

Shapes carry marks (:class:`~engine.layers.spec.NodeShape`, ``EdgeShape``) so that wires read
``34×16`` or ``N×16`` and ``2×E``. torch_geometric is imported when a graph is loaded, not before.
"""
from __future__ import annotations

import numpy as np

from engine.data.augment import Augment
from engine.data.common import Rule, check_val_split, rng_for
from engine.data.source import DataSource, SourceKind, register
from engine.errors import DataError
from engine.layers.spec import EdgeShape, NodeShape

GENERATE_STREAM = 0
SPLIT_STREAM = 1
GRAPH_CLASSES = ("cycle", "tree", "clique")


def pyg():
    """The torch_geometric package, or a DataError that says how to get it."""
    try:
        import torch_geometric
    except ImportError:
        raise DataError("dataset: graph datasets need torch_geometric "
                        "(pip install torch_geometric)") from None
    return torch_geometric


def undirected(edges: np.ndarray) -> np.ndarray:
    """Both directions of every edge, each once, no self loops, sorted: a (2, E) int64 array."""
    edges = np.asarray(edges, dtype=np.int64).reshape(2, -1)
    both = np.concatenate([edges, edges[::-1]], axis=1)
    both = both[:, both[0] != both[1]]
    if both.shape[1] == 0:
        return both
    return np.unique(both, axis=1)


# -- one graph, its nodes classified ----------------------------------------------------------
class NodeGraphSource(DataSource):
    """One graph on the device; the nodes of ``train_mask`` train, those of ``val_mask``
    validate. ``train_batches`` gives one batch per epoch: the whole graph."""

    kind = "classification"
    task_hint = "node_classification"
    in_memory = True

    def __init__(self, name: str, x, edge_index, y, train_mask, val_mask, *, device="cpu",
                 class_names=None, feature_names=None, source=None):
        import torch

        n = int(x.shape[0])
        self.name = name
        self.source = source
        self.x = torch.as_tensor(x, dtype=torch.float32).to(device)
        self.edge_index = torch.as_tensor(edge_index, dtype=torch.int64).to(device)
        self.y = torch.as_tensor(y, dtype=torch.int64).to(device)
        self.train_mask = torch.as_tensor(train_mask, dtype=torch.bool).to(device)
        self.val_mask = torch.as_tensor(val_mask, dtype=torch.bool).to(device)
        self.num_classes = int(self.y.max()) + 1 if n else 0
        self.class_names = list(class_names) if class_names else None
        self.feature_names = feature_names
        self.augment = Augment()
        self.shapes = graph_shapes(n, int(self.x.shape[1]), int(self.edge_index.shape[1]))
        self._train_size = int(self.train_mask.sum())
        self._val_size = int(self.val_mask.sum())
        self.reason = (f"one graph of {n} nodes and {self.edge_index.shape[1]} directed edges, "
                       f"{self._train_size} training nodes, {self._val_size} validation nodes")
        self.fields = {"x": self.x, "edge_index": self.edge_index, "y": self.y}

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def train_size(self) -> int:
        return self._train_size

    @property
    def val_size(self) -> int:
        return self._val_size

    def describe(self) -> str:
        return f"{self.name}: in memory ({self.reason})"

    def train_batches(self, batch_size, generator, device, strategy):
        return [None]  # full batch: every step sees the whole graph

    def val_batches(self, size: int):
        return [self.fields] if self._val_size else []

    def take(self, batch, split: str = "train") -> dict:
        return self.fields

    def head(self, key: str, n: int, split: str = "val"):
        return self.fields.get(key)  # a graph is not cut: the probes see all of it

    def item(self, i: int, split: str = "val") -> dict:
        return self.fields

    def mask(self, split: str):
        return self.train_mask if split == "train" else self.val_mask

    def __repr__(self) -> str:
        return f"NodeGraphSource({self.name!r}, nodes={self.num_nodes}, " \
               f"edges={self.edge_index.shape[1]}, classes={self.num_classes})"


def graph_shapes(nodes: int, features: int, edges: int) -> dict:
    return {"x": NodeShape.of((features,), nodes), "edge_index": EdgeShape.of(edges),
            "y": NodeShape.of((), nodes)}


def node_split(n: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train mask, validation mask) of ``n`` nodes: a seeded ``val_split`` of them validate."""
    n_val = int(round(val_split * n))
    if n - n_val < 1:
        raise DataError(f"dataset.val_split: {val_split} of {n} nodes leaves none to train on")
    order = rng_for(seed, SPLIT_STREAM).permutation(n)
    val = np.zeros(n, dtype=bool)
    val[order[:n_val]] = True
    return ~val, val


# karate_club ---------------------------------------------------------------------------------

def _karate_shapes(params, base_dir=None) -> dict:
    return graph_shapes(34, 34, 156)


def _karate_load(params, *, val_split=0.2, seed=0, device="cpu", base_dir=None):
    from torch_geometric.datasets import KarateClub

    pyg()
    data = KarateClub()[0]
    train = data.train_mask.numpy()
    return NodeGraphSource("karate_club", data.x, data.edge_index, data.y, train, ~train,
                           device=device, class_names=[f"community {i}" for i in range(4)],
                           source="Zachary's karate club (torch_geometric.datasets.KarateClub)")


# sbm -----------------------------------------------------------------------------------------
SBM_PARAMS = {"n_nodes": 1000, "blocks": 4, "p_in": 0.05, "p_out": 0.01, "features": 16,
              "noise": 1.0}
SBM_RULES = {"n_nodes": Rule("int", 2, 1_000_000), "blocks": Rule("int", 2, 1000),
             "p_in": Rule("float", 0.0, 1.0), "p_out": Rule("float", 0.0, 1.0),
             "features": Rule("int", 1, 100_000), "noise": Rule("float", 0.0, 1000.0)}


def _sbm_check(params) -> None:
    if params["features"] < params["blocks"]:
        raise DataError(f"dataset.params.features: {params['features']} features cannot carry "
                        f"the one-hot block code of {params['blocks']} blocks; use at least "
                        f"{params['blocks']}")
    if params["blocks"] > params["n_nodes"]:
        raise DataError(f"dataset.params.blocks: {params['blocks']} blocks need at least as "
                        f"many nodes; n_nodes is {params['n_nodes']}")


def _sbm_sizes(params) -> list[int]:
    n, k = params["n_nodes"], params["blocks"]
    return [n // k + (1 if i < n % k else 0) for i in range(k)]


def _sbm_expected_edges(params) -> int:
    sizes, p_in, p_out = _sbm_sizes(params), params["p_in"], params["p_out"]
    n = sum(sizes)
    inside = sum(s * (s - 1) for s in sizes) * p_in
    between = (n * n - sum(s * s for s in sizes)) * p_out
    return int(round(inside + between))


def _sbm_shapes(params, base_dir=None) -> dict:
    _sbm_check(params)
    return graph_shapes(params["n_nodes"], params["features"], 0)  # E is drawn at random


def sbm_graph(params: dict, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (N, F), edge_index (2, E), block per node) of a seeded stochastic block model,
    drawn with ``torch_geometric.utils.stochastic_blockmodel_graph``."""
    import torch

    from torch_geometric.utils import stochastic_blockmodel_graph

    _sbm_check(params)
    sizes = _sbm_sizes(params)
    k = len(sizes)
    probs = torch.full((k, k), params["p_out"])
    probs.fill_diagonal_(params["p_in"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        edge_index = stochastic_blockmodel_graph(sizes, probs, directed=False)
    rng = rng_for(seed, GENERATE_STREAM)
    block = np.repeat(np.arange(k), sizes)
    x = rng.normal(0.0, params["noise"], size=(len(block), params["features"]))
    x[np.arange(len(block)), block] += 1.0
    return x.astype(np.float32), edge_index.numpy(), block


def _sbm_load(params, *, val_split=0.2, seed=0, device="cpu", base_dir=None):
    pyg()
    x, edge_index, block = sbm_graph(params, seed)
    train, val = node_split(len(block), val_split, seed)
    return NodeGraphSource("sbm", x, edge_index, block, train, val, device=device,
                           class_names=[f"block {i}" for i in range(params["blocks"])],
                           source=f"stochastic block model, {params['n_nodes']} nodes")


# -- many graphs, each classified -------------------------------------------------------------
class GraphSetSource(DataSource):
    """Many small graphs (PyG ``Data``, on the CPU); a batch is the ``Batch`` of some of them,
    ``{x, edge_index, batch, y}`` on the device."""

    kind = "classification"
    task_hint = "graph_classification"
    in_memory = False  # batches are assembled ({key: tensor}), not index tensors

    def __init__(self, name: str, graphs: list, num_classes: int, *, val_split: float,
                 seed: int, device="cpu", class_names=None, source=None):
        import torch

        if not graphs:
            raise DataError(f"dataset {name}: has no graphs")
        self.name = name
        self.source = source
        self.graphs = graphs
        self.device = torch.device(device)
        self.num_classes = int(num_classes)
        self.class_names = list(class_names) if class_names else None
        self.feature_names = None
        self.augment = Augment()
        n_val = int(round(val_split * len(graphs)))
        if len(graphs) - n_val < 1:
            raise DataError(f"dataset.val_split: {val_split} of {len(graphs)} graphs leaves "
                            "none to train on")
        order = rng_for(seed, SPLIT_STREAM).permutation(len(graphs))
        self.train_index, self.val_index = order[n_val:], order[:n_val]
        features = int(graphs[0].x.shape[1])
        self.shapes = {"x": NodeShape.of((features,), 0), "edge_index": EdgeShape.of(0),
                       "batch": NodeShape.of((), 0), "y": ()}
        nodes = sum(int(g.num_nodes) for g in graphs)
        self.reason = (f"{len(graphs)} graphs, {nodes / len(graphs):.1f} nodes each on "
                       "average, batched with torch_geometric")

    @property
    def train_size(self) -> int:
        return len(self.train_index)

    @property
    def val_size(self) -> int:
        return len(self.val_index)

    def describe(self) -> str:
        return f"{self.name}: in memory ({self.reason})"

    def train_batches(self, batch_size, generator, device, strategy):
        import torch

        order = torch.randperm(len(self.train_index), generator=generator).numpy()
        index = self.train_index[order]
        return [index[i:i + batch_size] for i in range(0, len(index), batch_size)]

    def val_batches(self, size: int):
        return [self.collate(self.val_index[i:i + size])
                for i in range(0, len(self.val_index), size)]

    def collate(self, index) -> dict:
        from torch_geometric.data import Batch

        batch = Batch.from_data_list([self.graphs[int(i)] for i in index])
        return {"x": batch.x.to(self.device), "edge_index": batch.edge_index.to(self.device),
                "batch": batch.batch.to(self.device), "y": batch.y.to(self.device)}

    def take(self, batch, split: str = "train") -> dict:
        return self.collate(batch)

    def head(self, key: str, n: int, split: str = "val"):
        index = self.val_index if split == "val" else self.train_index
        if not len(index):
            return None
        return self.collate(index[:n]).get(key)

    def item(self, i: int, split: str = "val") -> dict:
        index = self.val_index if split == "val" else self.train_index
        return self.collate(index[i:i + 1])

    def __repr__(self) -> str:
        return f"GraphSetSource({self.name!r}, graphs={len(self.graphs)}, " \
               f"classes={self.num_classes})"


# graph_classes -------------------------------------------------------------------------------
CLASSES_PARAMS = {"n_graphs": 600, "min_nodes": 8, "max_nodes": 24, "extra_edges": 2,
                  "features": "constant"}
CLASSES_RULES = {"n_graphs": Rule("int", 3, 1_000_000), "min_nodes": Rule("int", 4, 10_000),
                 "max_nodes": Rule("int", 4, 10_000), "extra_edges": Rule("int", 0, 1000),
                 "features": Rule("choice", choices=("constant", "degree"))}
MAX_DEGREE_FEATURE = 16  # "degree" features: one-hot of min(degree, 16)


def _classes_check(params) -> None:
    if params["min_nodes"] > params["max_nodes"]:
        raise DataError(f"dataset.params.min_nodes: {params['min_nodes']} is more than "
                        f"max_nodes ({params['max_nodes']})")


def _classes_shapes(params, base_dir=None) -> dict:
    _classes_check(params)
    features = 1 if params["features"] == "constant" else MAX_DEGREE_FEATURE + 1
    return {"x": NodeShape.of((features,), 0), "edge_index": EdgeShape.of(0),
            "batch": NodeShape.of((), 0), "y": ()}


def class_graph(kind: str, n: int, extra: int, rng: np.random.Generator) -> np.ndarray:
    """The undirected edges (2, E) of one graph of a kind: a cycle, a random tree (each node
    joins an earlier one) or a clique, plus ``extra`` random edges."""
    if kind == "cycle":
        edges = np.stack([np.arange(n), (np.arange(n) + 1) % n])
    elif kind == "tree":
        edges = np.stack([np.arange(1, n), [rng.integers(0, i) for i in range(1, n)]])
    else:
        edges = np.stack(np.triu_indices(n, 1))
    if extra:
        edges = np.concatenate([edges, rng.integers(0, n, size=(2, extra))], axis=1)
    return undirected(edges)


def _classes_graphs(params, seed: int) -> list:
    import torch
    from torch_geometric.data import Data

    _classes_check(params)
    rng = rng_for(seed, GENERATE_STREAM)
    graphs = []
    for i in range(params["n_graphs"]):
        label = i % len(GRAPH_CLASSES)
        n = int(rng.integers(params["min_nodes"], params["max_nodes"] + 1))
        edges = class_graph(GRAPH_CLASSES[label], n, params["extra_edges"], rng)
        if params["features"] == "constant":
            x = np.ones((n, 1), dtype=np.float32)
        else:
            degree = np.minimum(np.bincount(edges[0], minlength=n), MAX_DEGREE_FEATURE)
            x = np.eye(MAX_DEGREE_FEATURE + 1, dtype=np.float32)[degree]
        graphs.append(Data(x=torch.from_numpy(x), edge_index=torch.from_numpy(edges),
                           y=torch.tensor([label]), num_nodes=n))
    return graphs


def _classes_load(params, *, val_split=0.2, seed=0, device="cpu", base_dir=None):
    pyg()
    return GraphSetSource("graph_classes", _classes_graphs(params, seed), len(GRAPH_CLASSES),
                          val_split=check_val_split(val_split), seed=seed, device=device,
                          class_names=list(GRAPH_CLASSES),
                          source=f"{params['n_graphs']} generated graphs")


# -- registration ------------------------------------------------------------------------------
KINDS = [
    register(SourceKind(
        name="karate_club",
        doc="Zachary's karate club: 34 members, 78 friendships, four communities; one member "
            "of each is labelled (node classification)",
        params={}, rules={}, shapes=_karate_shapes, load=_karate_load,
        task_hint="node_classification")),
    register(SourceKind(
        name="sbm",
        doc="a stochastic block model: n_nodes in blocks, edges with probability p_in inside "
            "a block and p_out between blocks; features the block's one-hot code plus noise "
            "(node classification)",
        params=dict(SBM_PARAMS), rules=SBM_RULES, shapes=_sbm_shapes, load=_sbm_load,
        task_hint="node_classification")),
    register(SourceKind(
        name="graph_classes",
        doc="cycles, trees and cliques of min_nodes..max_nodes nodes with extra_edges random "
            "edges each; the class is the kind (graph classification)",
        params=dict(CLASSES_PARAMS), rules=CLASSES_RULES, shapes=_classes_shapes,
        load=_classes_load, task_hint="graph_classification")),
]

__all__ = ["NodeGraphSource", "GraphSetSource", "graph_shapes", "node_split", "undirected",
           "sbm_graph", "class_graph"]
