"""Benchmark: Layerlab's dqn against stable-baselines3's DQN on CartPole-v1, and
policy_gradient's REINFORCE against its target.

DQN: for each seed, ``dqn_cartpole`` (the example, unchanged) and SB3's ``DQN`` with the same
published rl-zoo CartPole-v1 hyperparameters (lr 2.3e-3, batch 64, buffer 100k, learning_starts
1000, train_freq 256, gradient_steps 128, target_update_interval 10, exploration 0.16 -> 0.04,
net 256x256, max_grad_norm 10) run for the same environment steps, one after the other,
alternating which goes first. Printed per seed: the mean return of the last 20 training
episodes of each and the wall times; then the median time ratio Layerlab / SB3 and how many
seeds reach 475. Targets: mean return >= 475 for at least 2 of seeds 0, 1, 2 within 100,000
steps; time ratio <= 1.0; Layerlab's return not lower than SB3's.

Policy gradient: ``policy_gradient_cartpole`` for each seed; target mean return >= 475 within
200,000 steps.

    python tests/bench/bench_rl.py [--seeds 0 1 2] [--steps 100000] [--pg-steps 200000]
                                   [--skip-sb3] [--skip-pg] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.examples import EXAMPLES_DIR  # noqa: E402
from engine.project import load_project  # noqa: E402
from engine.training import Trainer  # noqa: E402

TARGET = 475.0
WINDOW = 20


def layerlab_run(example: str, seed: int, steps: int) -> tuple[float, float, list]:
    project = load_project(EXAMPLES_DIR / f"{example}.layerlab.json")
    training = dict(project.training)
    training["seed"] = seed
    training["rl"] = {**training["rl"], "total_steps": steps}
    project.training = training
    t0 = time.perf_counter()
    trainer = Trainer(project, device="cpu")
    result = trainer.fit()
    seconds = time.perf_counter() - t0
    curve = [round(h["mean_return"], 1) for h in result.history]
    return result.history[-1]["mean_return"], seconds, curve


def sb3_run(seed: int, steps: int) -> tuple[float, float]:
    from stable_baselines3 import DQN

    t0 = time.perf_counter()
    model = DQN("MlpPolicy", "CartPole-v1", learning_rate=2.3e-3, batch_size=64,
                buffer_size=100_000, learning_starts=1000, gamma=0.99,
                target_update_interval=10, train_freq=256, gradient_steps=128,
                exploration_fraction=0.16, exploration_final_eps=0.04,
                policy_kwargs={"net_arch": [256, 256]}, seed=seed, device="cpu", verbose=0)
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - t0
    returns = [info["r"] for info in model.ep_info_buffer][-WINDOW:]
    return float(np.mean(returns)), seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--pg-steps", type=int, default=200_000)
    parser.add_argument("--skip-sb3", action="store_true")
    parser.add_argument("--skip-pg", action="store_true")
    parser.add_argument("--skip-dqn", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s), seeds {args.seeds}")
    ok = True
    if not args.skip_dqn:
        print(f"\ndqn_cartpole vs stable-baselines3 DQN, {args.steps:,} steps")
        ours, theirs, ratios = [], [], []
        for k, seed in enumerate(args.seeds):
            runs = {}
            order = ("layerlab", "sb3") if k % 2 == 0 else ("sb3", "layerlab")
            for who in order:
                if who == "layerlab":
                    runs[who] = layerlab_run("dqn_cartpole", seed, args.steps)
                elif not args.skip_sb3:
                    runs[who] = sb3_run(seed, args.steps)
            ret, sec, curve = runs["layerlab"]
            ours.append(ret)
            line = f"  seed {seed}: layerlab return {ret:6.1f} in {sec:6.1f} s"
            if "sb3" in runs:
                r3, s3 = runs["sb3"]
                theirs.append(r3)
                ratios.append(sec / s3)
                line += f" | sb3 return {r3:6.1f} in {s3:6.1f} s | time ratio {sec / s3:.2f}"
            print(line, flush=True)
            print(f"          layerlab mean return per epoch: {curve}", flush=True)
        hits = sum(r >= TARGET for r in ours)
        print(f"  layerlab seeds >= {TARGET:g}: {hits} of {len(ours)} (target: 2 of 3)")
        ok &= hits >= min(2, len(ours))
        if ratios:
            med = statistics.median(ratios)
            print(f"  median time ratio layerlab / sb3: {med:.2f} (target <= 1.0)")
            print(f"  mean return layerlab {np.mean(ours):.1f} vs sb3 {np.mean(theirs):.1f} "
                  f"(target: not lower)")
            ok &= med <= 1.0 and np.mean(ours) >= np.mean(theirs)
    if not args.skip_pg:
        print(f"\npolicy_gradient_cartpole (REINFORCE), {args.pg_steps:,} steps")
        hits = 0
        for seed in args.seeds:
            ret, sec, curve = layerlab_run("policy_gradient_cartpole", seed, args.pg_steps)
            hits += ret >= TARGET
            print(f"  seed {seed}: return {ret:6.1f} in {sec:6.1f} s; per epoch {curve}",
                  flush=True)
        print(f"  seeds >= {TARGET:g}: {hits} of {len(args.seeds)}")
        ok &= hits >= min(2, len(args.seeds))
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
