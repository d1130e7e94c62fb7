"""``play.py`` of the ``python`` format for a reinforcement-learning project: it runs the trained
policy in the project's gymnasium environment and prints each episode's return.

The policy acts greedily: the action with the highest Q-value (``dqn``) or the highest score
(``policy_gradient``), or, with ``--sample``, one drawn from the softmax of the scores.
"""
from __future__ import annotations

import json

from ..data.environment import block_params, spaces, split_params

PLAY = '''"""{project}: play the trained policy {model!r} in {env_id}, exported by Layerlab.

    python play.py                 # {episodes} episodes, greedy actions, prints each return
    python play.py --episodes 5 --seed 1 --sample
    python play.py --render        # a window (needs pygame: pip install "gymnasium[classic-control]")

Needs torch, numpy and gymnasium.
"""
import argparse
import json

import gymnasium as gym
import numpy as np
import torch

from model import Model

ENV_ID = {env_id!r}
ENV_KWARGS = json.loads({kwargs!r})
MAX_EPISODE_STEPS = {max_steps!r}  # None: the environment's own time limit
OBS_DISCRETE = {obs_discrete!r}  # n for a discrete observation (fed one-hot), else None
NUM_ACTIONS = {num_actions}
TASK = {task!r}


def encode(obs):
    if OBS_DISCRETE is not None:
        out = np.zeros(OBS_DISCRETE, dtype=np.float32)
        out[int(obs)] = 1.0
        return out
    return np.asarray(obs, dtype=np.float32)


def action_scores(model, obs):
    out = model(torch.as_tensor(encode(obs)).unsqueeze(0))
    if isinstance(out, (tuple, list)):  # an actor-critic: the head with one value per action
        out = next(o for o in out if o.shape[-1] == NUM_ACTIONS)
    return out[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default={episodes})
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", default="weights.pt")
    parser.add_argument("--sample", action="store_true",
                        help="draw actions from the softmax of the scores instead of the best")
    parser.add_argument("--render", action="store_true", help="show the environment in a window")
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model = Model()
    model.load_state_dict(torch.load(args.weights, map_location="cpu", weights_only=True))
    model.eval()
    extra = {{"render_mode": "human"}} if args.render else {{}}
    if MAX_EPISODE_STEPS:
        extra["max_episode_steps"] = MAX_EPISODE_STEPS
    env = gym.make(ENV_ID, **ENV_KWARGS, **extra)
    returns = []
    with torch.no_grad():
        for episode in range(args.episodes):
            obs, _ = env.reset(seed=args.seed * 1000 + episode)
            total, done = 0.0, False
            while not done:
                scores = action_scores(model, obs)
                if args.sample:
                    action = int(torch.distributions.Categorical(logits=scores).sample())
                else:
                    action = int(scores.argmax())
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
            print(json.dumps({{"episode": episode + 1, "return": total}}), flush=True)
    env.close()
    print(json.dumps({{"event": "done", "episodes": len(returns),
                      "mean_return": sum(returns) / len(returns)}}), flush=True)


if __name__ == "__main__":
    main()
'''

README = '''# {project}: the policy {model!r}, exported by Layerlab

| File | What it holds |
|---|---|
| `model.py` | `Model(nn.Module)`: the network, in plain PyTorch (needs only torch) |
| `weights.pt` | its weights: `Model().load_state_dict(torch.load("weights.pt", weights_only=True))` |
| `play.py` | runs the policy in `{env_id}` and prints each episode's return |

The model reads one observation of shape {obs_shape} (a batch: `torch.randn(1, {obs_dims})`) and
gives {num_actions} {what}, one per action; the policy takes the highest.

    pip install torch numpy gymnasium
    python play.py --episodes 10

It was trained with the task `{task}` (`layerlab train PROJECT` trains it again).
'''


def environment_of(project) -> dict:
    """``{id, own, kwargs, spaces}`` of a project's environment block."""
    params = block_params(project.environment)
    env_id, own, kwargs = split_params(params)
    return {"id": env_id, "own": own, "kwargs": kwargs, "spaces": spaces(params)}


def render_play(job, task: str, episodes: int = 10) -> str:
    from .pycode import safe_text

    env = environment_of(job.project)
    sp = env["spaces"]
    return PLAY.format(project=safe_text(job.project.name), model=safe_text(job.name),
                       env_id=env["id"], kwargs=json.dumps(env["kwargs"], sort_keys=True),
                       max_steps=env["own"].get("max_episode_steps"),
                       obs_discrete=sp.obs_discrete, num_actions=sp.num_actions, task=task,
                       episodes=episodes)


def render_play_readme(job, task: str) -> str:
    env = environment_of(job.project)
    sp = env["spaces"]
    return README.format(project=job.project.name, model=job.name, env_id=env["id"],
                         obs_shape="×".join(map(str, sp.obs_shape)),
                         obs_dims=", ".join(map(str, sp.obs_shape)), num_actions=sp.num_actions,
                         what="Q-values" if task == "dqn" else "action scores (logits)",
                         task=task)
