"""The training thread's side of the graph views: what the Graph tab needs once per run - the
graph itself for node classification (its edges, the true class of every node, which nodes
train and which validate) and the class names - read from the trainer's data source when the
run is built. What changes as it learns comes with the probes (``Probes(graph=True)``).
"""
from __future__ import annotations

GRAPH_TASKS = ("node_classification", "graph_classification")


def graph_info(trainer) -> dict | None:
    """The static info of the Graph tab (None for tasks that are not about graphs)."""
    task = trainer.task_name
    if task not in GRAPH_TASKS:
        return None
    ds = trainer.dataset
    classes = int(getattr(ds, "num_classes", 0) or 0)
    names = list(ds.class_names) if getattr(ds, "class_names", None) else \
        [f"class {k}" for k in range(classes)]
    info = {"task": task, "class_names": names, "num_classes": classes}
    if task == "node_classification":
        info.update(num_nodes=int(ds.num_nodes),
                    edge_index=ds.edge_index.detach().cpu().numpy(),
                    labels=ds.y.detach().cpu().numpy(),
                    train_mask=ds.train_mask.detach().cpu().numpy(),
                    val_mask=ds.val_mask.detach().cpu().numpy())
    return info
