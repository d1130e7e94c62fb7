"""Benchmark: ``main.py sweep`` against the same sweep run with Optuna directly.

Both sides search the learning rate of the ``mlp_spirals`` example (float 1e-4..1e-1, log) with
the random sampler and no pruning, so that every trial costs the same training, for ``--trials``
trials with ``--jobs`` worker processes sharing one SQLite study, ``--epochs`` epochs each:

- ``layerlab``: ``python main.py sweep`` (each trial a Trainer run, recorded in the run history);
- ``optuna``: a hand-written training function (the same MLP in plain PyTorch, the same data
  tensors, batch 32, Adam, validation loss every epoch) optimised by ``study.optimize`` in the
  same number of processes on the same kind of storage.

Printed: wall time of each sweep and the mean seconds per trial (from the trials' own start and
end in the storage), then the overhead per trial, layerlab / optuna - 1. Target <= 5 %.

    python tests/bench/bench_sweep.py [--trials 30] [--jobs 2] [--epochs 20] [--rounds 1]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "resources" / "examples" / "mlp_spirals.layerlab.json"


def _data():
    from engine.data.dataset import load_source
    from engine.project import load_project

    project = load_project(EXAMPLE)
    return load_source(project.dataset, seed=0)


def _hand_objective(epochs: int):
    import torch
    import torch.nn as nn

    ds = _data()
    x, y, xv, yv = ds.x_train, ds.y_train, ds.x_val, ds.y_val

    def objective(trial):
        lr = trial.suggest_float("training.optimizer.lr", 1e-4, 1e-1, log=True)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                              nn.Linear(64, 2))
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        gen = torch.Generator().manual_seed(0)
        best = float("inf")
        for _ in range(epochs):
            model.train()
            for idx in torch.randperm(len(x), generator=gen).split(32):
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                best = min(best, nn.functional.cross_entropy(model(xv), yv).item())
        return best

    return objective


def _hand_worker(storage: str, study: str, trials: int, epochs: int, seed: int) -> None:
    import optuna
    import torch
    from optuna.study import MaxTrialsCallback

    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = optuna.load_study(study_name=study, storage=storage,
                          sampler=optuna.samplers.RandomSampler(seed=seed))
    s.optimize(_hand_objective(epochs), n_trials=trials,
               callbacks=[MaxTrialsCallback(trials, states=None)])


def run_hand(folder: Path, trials: int, jobs: int, epochs: int) -> tuple[float, float]:
    import optuna

    storage = f"sqlite:///{folder / 'hand.db'}"
    optuna.create_study(study_name="hand", storage=storage, direction="minimize")
    start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hand_worker, args=(storage, "hand", trials, epochs, i))
             for i in range(jobs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    wall = time.perf_counter() - start
    return wall, _per_trial(storage, "hand")


def run_layerlab(folder: Path, trials: int, jobs: int, epochs: int) -> tuple[float, float]:
    project = folder / "mlp_spirals.layerlab.json"
    project.write_text(EXAMPLE.read_text())
    storage = f"sqlite:///{folder / 'layerlab.db'}"
    env = dict(os.environ, LAYERLAB_RUNS_DIR=str(folder / "runs"))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "sweep", str(project),
                           "--param", "training.optimizer.lr=float:1e-4:1e-1:log",
                           "--trials", str(trials), "--jobs", str(jobs), "--epochs", str(epochs),
                           "--sampler", "random", "--pruner", "none", "--storage", storage,
                           "--study", "layerlab", "--seed", "0"],
                          capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    best = json.loads(done.stdout.strip().splitlines()[-1])
    assert best["event"] == "best" and best["trials"] >= trials
    return wall, _per_trial(storage, "layerlab")


def _per_trial(storage: str, study: str) -> float:
    import optuna

    s = optuna.load_study(study_name=study, storage=storage)
    spans = [(t.datetime_complete - t.datetime_start).total_seconds() for t in s.trials
             if t.datetime_complete is not None]
    return statistics.mean(spans)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--rounds", type=int, default=1)
    args = p.parse_args()
    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores; {args.trials} trials, "
          f"{args.jobs} workers, {args.epochs} epochs each, mlp_spirals")
    ratios = []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            order = [run_layerlab, run_hand] if r % 2 == 0 else [run_hand, run_layerlab]
            result = {fn.__name__: fn(folder, args.trials, args.jobs, args.epochs)
                      for fn in order}
        (lw, lt), (hw, ht) = result["run_layerlab"], result["run_hand"]
        ratios.append(lt / ht)
        print(f"round {r + 1}: layerlab {lw:.1f} s wall, {lt:.3f} s per trial; optuna + "
              f"hand-written {hw:.1f} s wall, {ht:.3f} s per trial; per trial "
              f"{lt / ht:.3f} (wall {lw / hw:.3f})")
    overhead = statistics.median(ratios) - 1
    print(f"overhead per trial (median): {overhead * 100:+.1f} %   target <= +5 %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
