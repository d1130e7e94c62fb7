"""Benchmark: the graph examples against their accuracy targets, and Layerlab's trainer against
a hand-written PyTorch Geometric loop on the same network.

For each example (``gcn_karate``, ``gcn_sbm``, ``gin_graph_classes``) and seed: the example
unchanged (only ``training.seed`` set) trained by Layerlab's Trainer, then the same network
written by hand with ``torch_geometric.nn`` and trained by a plain loop (Adam, the example's
learning rate, weight decay and epochs; full-batch steps for node classification, PyG
``DataLoader`` batches for graph classification) on the same data, alternating which goes
first. Printed per run: the final validation accuracy and the wall time of the training loop;
then per example the median time ratio Layerlab / hand-written and how many seeds reach the
target. Targets (validation accuracy, the non-training nodes for the karate club):
``gcn_karate`` >= 0.85, ``gcn_sbm`` >= 0.9, ``gin_graph_classes`` >= 0.9.

    python tests/bench/bench_gnn.py [--seeds 0 1 2] [--only NAME] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.data.dataset import load_source  # noqa: E402
from engine.examples import EXAMPLES_DIR  # noqa: E402
from engine.project import parse_project  # noqa: E402
from engine.training import Trainer  # noqa: E402
from tests.engine.test_examples import GCN, GIN  # noqa: E402 - the same hand-written networks

TARGETS = {"gcn_karate": 0.85, "gcn_sbm": 0.9, "gin_graph_classes": 0.9}


def load(name: str, seed: int) -> dict:
    data = json.loads((EXAMPLES_DIR / f"{name}.layerlab.json").read_text())
    data["training"]["seed"] = seed
    return data


def run_layerlab(name: str, seed: int) -> tuple[float, float]:
    trainer = Trainer(parse_project(load(name, seed)))
    start = time.perf_counter()
    trainer.fit()
    return trainer.history[-1]["val_accuracy"], time.perf_counter() - start


def run_hand(name: str, seed: int) -> tuple[float, float]:
    """The same network and data, a plain PyTorch Geometric training loop."""
    data = load(name, seed)
    training, opt = data["training"], data["training"]["optimizer"]
    source = load_source(data["dataset"], seed=seed)
    torch.manual_seed(seed)
    if name == "gin_graph_classes":
        return _hand_graphs(source, training, opt, seed)
    model = GCN(source.x.shape[1], 16, source.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=opt["lr"],
                                 weight_decay=opt.get("weight_decay", 0.0))
    x, edges, y = source.x, source.edge_index, source.y
    train, val = source.train_mask, source.val_mask
    start = time.perf_counter()
    for _ in range(training["epochs"]):
        model.train()
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x, edges)[train], y[train])
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():  # validation every epoch, as the trainer does
            out = model(x, edges)
            nn.functional.cross_entropy(out[val], y[val])
            acc = (out[val].argmax(1) == y[val]).float().mean().item()
    return acc, time.perf_counter() - start


def _hand_graphs(source, training, opt, seed) -> tuple[float, float]:
    from torch_geometric.loader import DataLoader

    graphs = source.graphs
    train = [graphs[i] for i in source.train_index]
    val = [graphs[i] for i in source.val_index]
    model = GIN(int(graphs[0].x.shape[1]), 32, source.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=opt["lr"])
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(train, batch_size=training["batch_size"], shuffle=True,
                        generator=generator)
    val_loader = DataLoader(val, batch_size=1024)
    start = time.perf_counter()
    for _ in range(training["epochs"]):
        model.train()
        for batch in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(batch.x, batch.edge_index, batch.batch),
                                               batch.y)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for batch in val_loader:
                correct += int((model(batch.x, batch.edge_index, batch.batch).argmax(1)
                                == batch.y).sum())
        acc = correct / len(val)
    return acc, time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", choices=sorted(TARGETS))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    ok = True
    for name in [args.only] if args.only else list(TARGETS):
        print(f"\n{name}: target validation accuracy >= {TARGETS[name]}")
        print(f"  {'seed':>4}  {'layerlab acc':>12}  {'s':>6}  {'hand acc':>8}  {'s':>6}  ratio")
        ratios, reached = [], 0
        for i, seed in enumerate(args.seeds):
            order = [run_layerlab, run_hand] if i % 2 == 0 else [run_hand, run_layerlab]
            results = {fn.__name__: fn(name, seed) for fn in order}
            (acc, t), (hand_acc, hand_t) = results["run_layerlab"], results["run_hand"]
            ratios.append(t / hand_t)
            reached += acc >= TARGETS[name]
            print(f"  {seed:>4}  {acc:>12.3f}  {t:>6.2f}  {hand_acc:>8.3f}  {hand_t:>6.2f}  "
                  f"{t / hand_t:.3f}")
        print(f"  seeds reaching {TARGETS[name]}: {reached} of {len(args.seeds)}; time "
              f"layerlab / hand-written (median): {statistics.median(ratios):.3f}")
        ok &= reached * 2 > len(args.seeds)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
