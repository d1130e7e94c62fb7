"""Graph tasks: classify the nodes of one graph, or classify whole graphs.

``node_classification``: the data are one graph (:class:`engine.data.graphs.NodeGraphSource`);
every step is a forward pass over the whole graph (full batch) and the loss is taken on the
training nodes only; validation scores the validation nodes. The model's Output gives one score
per class for every node (N×classes).

``graph_classification``: the data are many small graphs (``GraphSetSource``), batched by PyG:
a batch is ``{x, edge_index, batch, y}``; the model pools its nodes per graph (``GraphPool``)
and its Output gives one score per class for every graph. It is classification on assembled
batches, so it reuses :class:`ClassificationTask` and only says how a first batch and a probe
batch are made (a graph cannot be cut in two).
"""
from __future__ import annotations

import torch

from engine.errors import TrainingError
from engine.layers import fmt_shape
from engine.layers.spec import graph_level
from engine.training.config import Choice
from engine.training.optim import build_loss
from engine.training.tasks.base import Task, first, input_keys, output_shape
from engine.training.tasks.classification import INDEX_LOSSES, ClassificationTask


def output_feed(trainer, model_name: str, output_node: str):
    """The shape on the wire into an Output (with its graph marks), None when unknown."""
    graph = trainer.graphs[model_name]
    edges = graph.in_edges(output_node)
    if not edges:
        return None
    return trainer.shapes[model_name].info[edges[0].src].out_shapes.get(edges[0].src_port)


def _single_process(trainer, name: str) -> None:
    if getattr(trainer.strategy, "world_size", 1) > 1:
        raise TrainingError(f"training.task: {name} trains on one process; run it without "
                            "torchrun (a graph is not split between processes)")


class NodeClassificationTask(Task):
    """Full-batch node classification with train/validation node masks."""

    name = "node_classification"
    default_loss = "CrossEntropyLoss"
    eval_keys = ("val_loss", "val_accuracy")

    def __init__(self, trainer):
        super().__init__(trainer)
        _single_process(trainer, self.name)
        ds = self.dataset
        if not hasattr(ds, "mask"):
            raise TrainingError(f"training.task: node_classification needs one graph with "
                                f"node labels (karate_club, sbm, graph_csv, pyg_data); dataset "
                                f"'{ds.name}' is not one")
        if len(trainer.models) != 1:
            raise TrainingError(f"training.task: '{self.name}' trains one model; the project "
                                f"has {len(trainer.models)} ({', '.join(trainer.models)})")
        self.model_name = next(iter(trainer.models))
        self.model = trainer.models[self.model_name]
        self.net = trainer.train_models[self.model_name]
        self.output_node = self.model.output_names[0]
        self.output_feeders = set(trainer.graphs[self.model_name].predecessors(self.output_node))
        self.classes = ds.num_classes
        self.out_shape = output_shape(trainer, self.model_name)
        self._check_output()
        self.loss_choice = self.config.loss or Choice(self.default_loss)
        self.index_targets = self.loss_choice.type in INDEX_LOSSES
        self.loss_fn = build_loss(self.loss_choice).to(self.device)
        self.keys = input_keys(trainer, self.model_name)
        self.inputs = tuple(ds.fields[k] for k in self.keys)
        self.train_mask, self.val_mask = ds.mask("train"), ds.mask("val")
        y = ds.y
        self.labels = y
        self.target = y if self.index_targets else \
            torch.nn.functional.one_hot(y, self.classes).to(torch.float32)

    def _check_output(self) -> None:
        given = output_feed(self.trainer, self.model_name, self.output_node)
        if given is not None and graph_level(given) != "nodes":
            self.fail(f"node_classification needs a score per class for every node (N×"
                      f"{self.classes}); the output {fmt_shape(given)} is not per node (remove "
                      "the GraphPool, or use graph_classification)")
        if tuple(self.out_shape) != (self.classes,):
            self.fail(f"the output has {fmt_shape(self.out_shape)} per node but the graph has "
                      f"{self.classes} classes; set out_features to {self.classes}")

    def fail(self, message: str):
        raise TrainingError(f"{self.output_node}: {message}", self.output_node)

    # -- the trainer's interface --------------------------------------------------------------
    def batches(self, epoch: int):
        return [None]  # one full-graph step per epoch

    def steps_per_epoch(self) -> int:
        return 1

    def forward(self, net=None):
        return first((self.model if net is None else net)(*self.inputs))

    def train_step(self, batch) -> tuple:
        with self.autocast:
            out = self.forward(self.net)
            mask = self.train_mask
            loss = self.loss_fn(out[mask], self.target[mask])
        self.updaters[self.model_name](loss)
        return (loss.detach(),)

    def diagnose(self, batch) -> None:
        with torch.no_grad(), self.autocast:
            out = self.forward()
            self.loss_fn(out[self.train_mask], self.target[self.train_mask])

    def dry_run(self) -> None:
        out = self.forward()
        n = self.dataset.num_nodes
        if tuple(out.shape) != (n, self.classes):
            self.fail(f"the model computed {fmt_shape(tuple(out.shape))} where shape "
                      f"inference expected one row of {self.classes} scores per node ({n})")

    def evaluate(self) -> dict:
        if not self.has_val:
            return {}
        with self.autocast:
            out = self.forward().float()
        mask = self.val_mask
        loss = self.loss_fn(out[mask], self.target[mask])
        correct = (out[mask].argmax(dim=1) == self.labels[mask]).float().mean()
        values = torch.stack([loss.float(), correct]).tolist()
        return dict(zip(self.eval_keys, values))

    def predict_nodes(self):
        """The predicted class of every node (eval mode is the caller's), on the CPU."""
        return self.forward().argmax(dim=1).cpu()

    def probe_inputs(self, n: int) -> dict:
        return {self.model_name: self.inputs}  # the whole graph: a graph is not cut


PROBE_GRAPHS = 200  # graphs in the probe batch (their pooled vectors are projected live)


class GraphClassificationTask(ClassificationTask):
    """Classify whole graphs from batches of many small graphs."""

    name = "graph_classification"
    output_feeders: set = set()

    def __init__(self, trainer):
        _single_process(trainer, self.name)
        if not hasattr(trainer.dataset, "collate"):
            raise TrainingError(f"training.task: graph_classification needs a set of graphs "
                                f"(graph_classes); dataset '{trainer.dataset.name}' is not one")
        super().__init__(trainer)

    def check_loss(self, loss: str) -> None:
        given = output_feed(self.trainer, self.model_name, self.output_node)
        if graph_level(given) == "nodes":
            self.fail("graph_classification needs one score per class for every graph; the "
                      f"output ({fmt_shape(given)}) is per node: pool the nodes with GraphPool "
                      "(its batch port on the dataset's batch field) before the last Linear")
        super().check_loss(loss)

    def first_batch(self) -> tuple:
        fields = self.dataset.collate(self.dataset.train_index[:2])
        return tuple(fields[k] for k in self.keys), self.make_target(fields["y"])

    def probe_inputs(self, n: int) -> dict:
        index = self.dataset.val_index if self.has_val else self.dataset.train_index
        self.probe_index = index[:max(n, PROBE_GRAPHS)]
        fields = self.dataset.collate(self.probe_index)
        return {self.model_name: tuple(fields[k] for k in self.keys)}
