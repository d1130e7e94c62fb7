"""Benchmark: one training step of the compiled `cnn_digits` model against the same CNN written
by hand as an nn.Module.

Both start from the same weights and train on the same batches with their own Adam optimizer
(forward, cross-entropy, backward, step). Blocks of steps are timed in interleaved pairs,
alternating which side goes first; the median of the per-pair time ratios is printed. On the CPU
the clock is the process's CPU time (robust to other load on a shared machine) with a fixed
thread count; on CUDA it is wall time after a synchronize. Target: compiled / hand-written
<= 1.02.

    python tests/bench/bench_compiled_step.py [--pairs 15] [--steps 40] [--device cpu]
    python -m pytest tests/bench/bench_compiled_step.py -s
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.analysis import analyze  # noqa: E402
from engine.compiler import compile_model  # noqa: E402
from engine.examples import EXAMPLES_DIR  # noqa: E402
from engine.project import load_project  # noqa: E402

TARGET = 1.02


class HandCNN(nn.Module):
    """cnn_digits as a person writes it."""

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


def compiled_cnn() -> nn.Module:
    project = load_project(EXAMPLES_DIR / "cnn_digits.layerlab.json")
    results, problems = analyze(project)
    assert not problems, problems
    return compile_model(project.models["model"], results["model"])


def clock(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


def make_stepper(model: nn.Module, batches):
    opt = torch.optim.Adam(model.parameters(), lr=0.003)
    loss_fn = nn.CrossEntropyLoss()

    def run() -> None:
        for x, y in batches:
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()
    return run


def timed(run, device) -> float:
    start = clock(device)
    run()
    return clock(device) - start


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=15)
    parser.add_argument("--steps", type=int, default=40, help="training steps per timed block")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    compiled = compiled_cnn().to(device)
    hand = HandCNN().to(device)
    hand.load_state_dict(compiled.state_dict())  # same names (node ids), same weights
    batches = [(torch.rand(args.batch, 1, 8, 8, device=device),
                torch.randint(0, 10, (args.batch,), device=device)) for _ in range(args.steps)]
    ours, theirs = make_stepper(compiled, batches), make_stepper(hand, batches)
    ours(), theirs()  # warm up (allocator, kernels, optimizer state)
    ratios, t_ours, t_hand = [], [], []
    for pair in range(args.pairs):
        if pair % 2:
            a, b = timed(theirs, device), timed(ours, device)
        else:
            b, a = timed(ours, device), timed(theirs, device)
        t_ours.append(b)
        t_hand.append(a)
        ratios.append(b / a)
    assert all(torch.equal(p, q) for p, q in zip(compiled.parameters(), hand.parameters())), \
        "the two models took different steps"
    ratio = statistics.median(ratios)
    per_step = 1000 / args.steps
    print(f"\ntraining step of cnn_digits, batch {args.batch}, {args.device}, {args.threads} "
          f"thread(s), {args.pairs} interleaved pairs of {args.steps} steps:")
    print(f"  compiled      {statistics.median(t_ours) * per_step:8.3f} ms/step")
    print(f"  hand-written  {statistics.median(t_hand) * per_step:8.3f} ms/step")
    print(f"  median ratio  {ratio:8.3f} (target <= {TARGET})")
    return ratio


def test_bench_compiled_step():
    assert main([]) <= TARGET


if __name__ == "__main__":
    main()
