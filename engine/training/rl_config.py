"""The ``training.rl`` block of a reinforcement-learning project: parsed, checked, defaulted.

::

    "training": {"task": "dqn", "optimizer": {"type": "Adam", "lr": 0.001}, "batch_size": 64,
                 "seed": 0, "rl": {"total_steps": 100000, "log_every_steps": 2000, ...}}

Common keys: ``total_steps`` (environment steps of the whole run; the run has
``ceil(total_steps / log_every_steps)`` epochs unless ``training.epochs`` is given),
``log_every_steps`` (environment steps per epoch, one JSON line each), ``gamma`` (discount),
``n_envs`` (copies of the environment stepped together; dqn 1, policy_gradient 8 by default).

dqn: ``buffer_size``, ``learning_starts`` (random-policy steps before the first update),
``train_freq`` (an update every so many steps), ``gradient_steps`` (batches per update; the batch
is ``training.batch_size``), ``target_update_interval`` (environment steps between target
updates), ``tau`` (1: hard copy, below 1: Polyak averaging), ``epsilon_start``, ``epsilon_end``,
``exploration_fraction`` (of ``total_steps`` over which epsilon falls linearly), ``double_dqn``.
The loss is ``training.loss`` (default ``HuberLoss``; ``MSELoss`` and ``SmoothL1Loss`` also fit).

policy_gradient: ``algorithm`` (``reinforce``: Monte-Carlo returns of whole episodes;
``a2c``: ``n_steps``-step rollouts bootstrapped by the value head), ``baseline`` (``value``: the
model's second Output, one unit; ``mean``: the batch's mean return; ``none``),
``episodes_per_update`` (reinforce), ``n_steps`` and ``gae_lambda`` (a2c), ``entropy_coef``,
``value_coef``, ``normalize_advantages``.

This module imports no torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from engine.training import config as c


@dataclass(frozen=True)
class RLConfig:
    """A checked ``training.rl`` block (see the module doc for each key)."""

    total_steps: int = 50_000
    log_every_steps: int = 1_000
    gamma: float = 0.99
    n_envs: int | None = None  # None: the task's default
    # dqn
    buffer_size: int = 100_000
    learning_starts: int = 1_000
    train_freq: int = 4
    gradient_steps: int = 1
    target_update_interval: int = 500
    tau: float = 1.0
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    exploration_fraction: float = 0.1
    double_dqn: bool = False
    # policy_gradient
    algorithm: str = "reinforce"
    baseline: str | None = None  # None: value when the model has a value head, else mean
    episodes_per_update: int = 8
    n_steps: int = 16
    gae_lambda: float = 1.0
    entropy_coef: float = 0.0
    value_coef: float = 0.5
    normalize_advantages: bool = True

    @property
    def epochs(self) -> int:
        return max(1, math.ceil(self.total_steps / self.log_every_steps))


RULES = {
    "total_steps": c.whole(1), "log_every_steps": c.whole(1),
    "gamma": c.fraction(hi_open=False), "n_envs": c.whole(1),
    "buffer_size": c.whole(1), "learning_starts": c.whole(0), "train_freq": c.whole(1),
    "gradient_steps": c.whole(1), "target_update_interval": c.whole(1),
    "tau": c.fraction(lo_open=True, hi_open=False),
    "epsilon_start": c.fraction(hi_open=False), "epsilon_end": c.fraction(hi_open=False),
    "exploration_fraction": c.fraction(hi_open=False), "double_dqn": c.flag,
    "algorithm": c.choice("reinforce", "a2c"), "baseline": c.choice("value", "mean", "none"),
    "episodes_per_update": c.whole(1), "n_steps": c.whole(1),
    "gae_lambda": c.fraction(hi_open=False), "entropy_coef": c.non_negative,
    "value_coef": c.non_negative, "normalize_advantages": c.flag,
}
assert set(RULES) == {f.name for f in fields(RLConfig)}
RL_TASKS = ("dqn", "policy_gradient")


def parse_rl(p, value) -> RLConfig | None:
    """Check ``training.rl`` with the training block's parser ``p`` (problems go there)."""
    if not isinstance(value, dict):
        p.problems.append((f"{p.where}.rl", "must be an object such as {\"total_steps\": "
                           f"50000, \"log_every_steps\": 1000}}; got {c._got(value)}"))
        return None
    kwargs = c._kwargs(p, "rl", value, RULES)
    try:
        return RLConfig(**kwargs)
    except TypeError:  # a bad value was dropped; its problem is already listed
        return None


def cross_check(p, cfg) -> None:
    """The RL keys against the rest of the block (called after every key is parsed)."""
    rl = cfg.rl
    if rl is None:
        return
    if cfg.task is not None and cfg.task not in RL_TASKS:
        p.problems.append((f"{p.where}.rl", f"reinforcement-learning settings, but the task "
                           f"is '{cfg.task}' (use dqn or policy_gradient)"))
    if rl.epsilon_end > rl.epsilon_start:
        p.problems.append((f"{p.where}.rl.epsilon_end", f"must not be above epsilon_start "
                           f"({rl.epsilon_start}); got {rl.epsilon_end}"))
    if rl.algorithm == "a2c" and rl.baseline in ("mean", "none"):
        p.problems.append((f"{p.where}.rl.baseline", "a2c bootstraps with the value head; "
                           "use baseline \"value\" (or leave it out)"))


def rl_settings(cfg) -> RLConfig:
    """The run's RL settings: the block's, else the defaults."""
    return cfg.rl if cfg.rl is not None else RLConfig()
