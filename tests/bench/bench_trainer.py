"""Benchmark: the project's Trainer against a hand-written PyTorch loop, and probes on vs off.

Same model (the hand-written module gets the trainer's initial weights), same device tensors,
same batch size, epochs and per-epoch validation. Runs are interleaved (alternating which goes
first); printed are the median of the per-pair time ratios and, beside it, the ratio of the
fastest run of each side (the least disturbed by other load), plus a noise floor: the
hand-written loop against itself. On the CPU the time is the process's CPU time; on CUDA it is
wall time after a synchronize. Short runs and many pairs keep both sides of a pair under the
same conditions on a shared machine. Targets: trainer / hand-written <= 1.03, probes on
(default rates) / off <= 1.05.

    python tests/bench/bench_trainer.py [--reps 21] [--threads 1] [--device cpu|cuda]
    python -m pytest tests/bench/bench_trainer.py -s
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.examples import EXAMPLES_DIR  # noqa: E402
from engine.project import load_project  # noqa: E402
from engine.training import Probes, Trainer  # noqa: E402


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.a1 = nn.Linear(2, 64), nn.ReLU()
        self.fc2, self.a2 = nn.Linear(64, 64), nn.ReLU()
        self.fc3 = nn.Linear(64, 2)

    def forward(self, x):
        return self.fc3(self.a2(self.fc2(self.a1(self.fc1(x)))))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.relu1, self.pool1 = nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), \
            nn.MaxPool2d(2)
        self.conv2, self.relu2, self.pool2 = nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), \
            nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc1, self.relu3, self.fc2 = nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc2(self.relu3(self.fc1(self.flat(x))))


class LSTMForecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(1, 32, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


CASES = {  # name: (example file, dataset params, epochs, hand-written module, classification?)
    "mlp_spirals": ("mlp_spirals", {"n_samples": 8000, "noise": 0.1}, 2, MLP, True),
    "cnn_digits": ("cnn_digits", None, 1, CNN, True),
    "lstm_sine": ("lstm_sine", {"n_samples": 2000, "length": 20}, 1, LSTMForecaster, False),
}


def make_project(case: str):
    example, params, epochs, _, _ = CASES[case]
    project = load_project(EXAMPLES_DIR / f"{example}.layerlab.json")
    if params:
        project.dataset = {**project.dataset, "params": params}
    return project, epochs


def hand_written(trainer: Trainer, module_cls, init_state: dict, epochs: int,
                 classification: bool) -> float:
    """The loop a person would write: shuffle, index, forward, backward, step, validate."""
    ds, cfg = trainer.dataset, trainer.config
    model = module_cls().to(trainer.device)
    model.load_state_dict(init_state)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optimizer.kwargs["lr"])
    loss_fn = nn.CrossEntropyLoss() if classification else nn.MSELoss()
    gen = torch.Generator().manual_seed(0)
    start = clock(trainer.device)
    for _ in range(epochs):
        model.train()
        losses = []
        for idx in torch.randperm(len(ds), generator=gen).to(trainer.device).split(cfg.batch_size):
            loss = loss_fn(model(ds.x_train[idx]), ds.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        train_loss = torch.stack(losses).mean().item()
        model.eval()
        with torch.no_grad():
            out = model(ds.x_val)
            val = [loss_fn(out, ds.y_val)]
            if classification:
                val.append((out.argmax(1) == ds.y_val).float().mean())
            torch.stack(val).tolist()
        del train_loss
    return clock(trainer.device) - start


def run_trainer(project, epochs: int, device: str, callbacks=()) -> float:
    return _timed_fit(Trainer(project, device=device, epochs=epochs, callbacks=list(callbacks)))


def clock(device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


def compare_loop(case: str, reps: int, device: str) -> tuple[float, float]:
    project, epochs = make_project(case)
    _, _, _, module_cls, classification = CASES[case]
    pairs = []
    for rep in range(reps + 1):  # the first pair warms up and is dropped
        trainer = Trainer(project, device=device, epochs=epochs)
        init = copy.deepcopy(trainer.models["model"].state_dict())
        if rep % 2:
            t_hand = hand_written(trainer, module_cls, init, epochs, classification)
            t_ours = _timed_fit(trainer)
        else:
            t_ours = _timed_fit(trainer)
            t_hand = hand_written(trainer, module_cls, init, epochs, classification)
        if rep:
            pairs.append((t_ours, t_hand))
    return summarize(pairs)


def summarize(pairs: list) -> tuple[float, float]:
    """(median of the per-pair ratios, ratio of the fastest run of each side)."""
    median = statistics.median(a / b for a, b in pairs)
    return median, min(a for a, _ in pairs) / min(b for _, b in pairs)


def noise_floor(case: str, reps: int, device: str) -> tuple[float, float]:
    """The hand-written loop against itself: how far from 1.0 a ratio strays on this machine."""
    project, epochs = make_project(case)
    _, _, _, module_cls, classification = CASES[case]
    trainer = Trainer(project, device=device, epochs=epochs)
    init = copy.deepcopy(trainer.models["model"].state_dict())
    pairs = [(hand_written(trainer, module_cls, init, epochs, classification),
              hand_written(trainer, module_cls, init, epochs, classification))
             for _ in range(reps + 1)][1:]
    return summarize(pairs)


def _timed_fit(trainer: Trainer) -> float:
    start = clock(trainer.device)
    trainer.fit()
    return clock(trainer.device) - start


def compare_probes(case: str, reps: int, device: str) -> tuple[float, float]:
    project, epochs = make_project(case)
    pairs = []
    for rep in range(reps + 1):
        if rep % 2:
            t_off = run_trainer(project, epochs, device)
            t_on = run_trainer(project, epochs, device, [Probes()])
        else:
            t_on = run_trainer(project, epochs, device, [Probes()])
            t_off = run_trainer(project, epochs, device)
        if rep:
            pairs.append((t_on, t_off))
    return summarize(pairs)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)  # the same for both sides of every comparison
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}, "
          f"{args.reps} interleaved pairs per figure (median ratio)")
    results = {}
    floor = noise_floor(args.cases.split(",")[0], args.reps, args.device)
    print(f"noise floor: hand-written/hand-written {floor[0]:.3f} (fastest {floor[1]:.3f})")
    for case in args.cases.split(","):
        loop = compare_loop(case, args.reps, args.device)
        probes = compare_probes(case, args.reps, args.device)
        results[case] = (loop, probes)
        print(f"{case:12s} trainer/hand-written {loop[0]:.3f} (fastest {loop[1]:.3f}; target "
              f"<= 1.03)   probes on/off {probes[0]:.3f} (fastest {probes[1]:.3f}; target "
              f"<= 1.05)", flush=True)
    return results


def test_bench_trainer():
    main(["--reps", "11"])


if __name__ == "__main__":
    main()
