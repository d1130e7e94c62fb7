"""Reinforcement learning: the environment block, dqn and policy_gradient runs, their checks,
reproducibility and the exported policy with its play.py."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from engine.analysis import analyze
from engine.errors import LayerlabError
from engine.examples import EXAMPLES_DIR
from engine.project import load_project
from engine.training import Trainer

pytest.importorskip("gymnasium")
torch.set_num_threads(1)


def example(name: str, **rl):
    """An RL example with its ``training.rl`` block overridden (a short run)."""
    project = load_project(EXAMPLES_DIR / f"{name}.layerlab.json")
    training = dict(project.training)
    training["rl"] = {**training.get("rl", {}), **rl}
    project.training = training
    return project


def short_dqn(**rl):
    settings = dict(total_steps=3000, log_every_steps=1000, learning_starts=500,
                    train_freq=64, gradient_steps=16, buffer_size=5000,
                    exploration_fraction=0.9)
    settings.update(rl)
    return example("dqn_cartpole", **settings)


def test_dqn_logs_every_epoch_with_the_rl_fields():
    result = Trainer(short_dqn()).fit()
    assert result.stopped == "completed"
    history = result.history
    assert [h["steps"] for h in history] == [1000, 2000, 3000]
    for h in history:
        assert h["episodes"] >= 1
        assert math.isfinite(h["mean_return"]) and h["mean_return"] >= 8  # CartPole's floor
        assert 0.01 <= h["epsilon"] <= 1.0
    assert math.isnan(history[0]["train_loss"]) or history[0]["train_loss"] >= 0
    assert math.isfinite(history[-1]["train_loss"])  # updates ran after learning_starts
    assert history[0]["epsilon"] > history[-1]["epsilon"]  # the schedule falls


def _figures(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def test_the_same_seed_gives_the_same_run():
    a = _figures(Trainer(short_dqn(total_steps=2000)).fit().history)
    b = _figures(Trainer(short_dqn(total_steps=2000)).fit().history)
    assert json.dumps(a) == json.dumps(b)
    project = short_dqn(total_steps=2000)
    project.training = {**project.training, "seed": 5}
    c = _figures(Trainer(project).fit().history)
    assert json.dumps(c) != json.dumps(a)


def test_double_dqn_and_polyak_updates_run():
    result = Trainer(short_dqn(total_steps=2000, double_dqn=True, tau=0.05,
                               target_update_interval=1)).fit()
    assert result.stopped == "completed"
    assert math.isfinite(result.history[-1]["train_loss"])


def test_reinforce_learns_something_in_a_short_run():
    project = example("policy_gradient_cartpole", total_steps=12000, log_every_steps=4000)
    history = Trainer(project).fit().history
    assert [h["steps"] for h in history] == [4000, 8000, 12000]
    assert all(math.isfinite(h["train_loss"]) for h in history)
    # a random policy averages about 22 on CartPole; REINFORCE is above it within 12k steps
    assert history[-1]["mean_return"] > 30, history


def _with_value_head(project):
    """The policy example with a second Output: a one-unit value head from the last hidden
    layer."""
    graph = project.models["model"]
    graph.add_node("Linear", "v", {"out_features": 1}, pos=(600, 165))
    graph.add_node("Output", "value", pos=(800, 165))
    graph.connect("a2", "v")
    graph.connect("v", "value")
    return project


def test_a2c_with_a_value_head_runs():
    project = _with_value_head(example("policy_gradient_cartpole", total_steps=4000,
                                       log_every_steps=2000, algorithm="a2c", n_steps=8,
                                       baseline="value"))
    shapes, problems = analyze(project)
    assert problems == []
    history = Trainer(project).fit().history
    assert len(history) == 2 and all(math.isfinite(h["train_loss"]) for h in history)


def test_an_unknown_environment_is_named():
    project = short_dqn()
    project.extra["environment"] = {"name": "CartPoel-v1"}
    with pytest.raises(LayerlabError) as err:
        Trainer(project)
    assert "environment.name" in str(err.value) and "CartPoel-v1" in str(err.value)


def test_an_output_with_the_wrong_action_count_names_its_node():
    project = short_dqn()
    graph = project.models["model"]
    graph.set_params("q", {"out_features": 3})
    shapes, problems = analyze(project)
    assert problems, "a Q-head of 3 for CartPole's 2 actions must be reported"
    where, message = problems[0]
    assert where in ("q_values", "q") and "2" in message, problems
    with pytest.raises(LayerlabError) as err:
        Trainer(project)
    assert "q_values" in str(err.value) or "q" in str(err.value)


def test_dqn_rejects_a_classification_loss():
    project = short_dqn()
    project.training = {**project.training, "loss": "CrossEntropyLoss"}
    with pytest.raises(LayerlabError) as err:
        Trainer(project)
    assert "training.loss" in str(err.value)


def test_exported_policy_plays_its_environment(tmp_path):
    from engine.export import export_model

    project = short_dqn(total_steps=1000)
    trainer = Trainer(project)
    trainer.fit()
    out = tmp_path / "policy"
    export_model(project, "python", out, weights=trainer.models["model"].state_dict())
    assert (out / "play.py").exists() and (out / "weights.pt").exists()
    proc = subprocess.run([sys.executable, "play.py", "--episodes", "2", "--seed", "3"],
                          cwd=out, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines[-1]["event"] == "done"
    assert math.isfinite(lines[-1]["mean_return"]) and lines[-1]["mean_return"] >= 8
