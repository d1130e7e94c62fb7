"""Policy gradients: REINFORCE with a baseline, and advantage actor-critic (A2C).

The model's first Output scores the actions (logits; a softmax gives the policy); an optional
second Output of one unit is the value head ``V(s)``. Actions are sampled from the policy, in
``n_envs`` environments at once.

``reinforce`` (default): whole episodes are collected until ``episodes_per_update`` have ended;
each step's return ``G_t = r_t + gamma r_{t+1} + ...`` is weighed against a baseline - the value
head (``baseline: "value"``, trained on ``G_t`` by mean squared error, weight ``value_coef``),
the batch's mean return (``"mean"``) or nothing (``"none"``) - and the loss is
``-mean(log pi(a_t|s_t) * A_t) - entropy_coef * entropy``. ``normalize_advantages`` scales the
advantages of a batch to mean 0 and standard deviation 1.

``a2c``: every ``n_steps`` steps of all environments, the advantages are the generalised
advantage estimates (``gae_lambda``; 1 gives n-step returns) bootstrapped from the value head,
also at a time limit (from the last observation of the episode), not at a termination.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from engine.errors import TrainingError
from engine.training.tasks.rl_base import RLTask

POLICY_STREAM = 17  # the action sampler's seed is seed + this


class PolicyGradientTask(RLTask):
    """REINFORCE with a baseline, or A2C (see the module doc)."""

    name = "policy_gradient"
    default_n_envs = 8

    def __init__(self, trainer):
        super().__init__(trainer)
        rl = self.rl
        self.algorithm = rl.algorithm
        has_value = self.value_index is not None
        self.baseline = rl.baseline or ("value" if has_value else "mean")
        if self.baseline == "value" and not has_value:
            where = "training.rl.algorithm" if self.algorithm == "a2c" else "training.rl.baseline"
            raise TrainingError(f"{where}: needs a value head: a second Output fed by a "
                                f"Linear(1) (e.g. from the last hidden layer)")
        if has_value and self.baseline != "value":
            node = self.model.output_names[self.value_index]
            raise TrainingError(f"{node}: the value head is used with baseline \"value\" only; "
                                f"remove it or set training.rl.baseline to \"value\"", node)
        self.sampler = torch.Generator(device=self.device).manual_seed(trainer.seed
                                                                       + POLICY_STREAM)
        # reinforce: per environment, the steps of its running episode; finished ones wait
        self._running = [([], [], []) for _ in range(self.n_envs)]
        self._finished: list = []
        # a2c: the rollout's steps
        self._roll: list = []

    def values_shown(self, out):
        return out.float().softmax(dim=1)

    # -- acting -----------------------------------------------------------------------------------
    def act(self):
        """Sample an action per environment; returns (actions on the host, all Outputs)."""
        outs = self.act_values(self.obs_tensor())
        probs = outs[self.policy_index].float().softmax(dim=1)
        actions = torch.multinomial(probs, 1, generator=self.sampler).squeeze(1)
        return actions.cpu().numpy(), outs

    def train_step(self, batch) -> tuple:
        obs = self.obs.copy()
        actions, outs = self.act()
        next_obs, rewards, terminated, ended = self.step_envs(actions)
        if self.algorithm == "a2c":
            return self._a2c_step(obs, actions, next_obs, rewards, terminated, ended)
        for i in range(self.n_envs):
            o, a, r = self._running[i]
            o.append(obs[i])
            a.append(actions[i])
            r.append(rewards[i])
            if ended[i]:
                self._finished.append(self._running[i])
                self._running[i] = ([], [], [])
        if len(self._finished) < self.rl.episodes_per_update:
            return (self._zero,)
        episodes, self._finished = self._finished, []
        return self.record_loss(self._reinforce(episodes))

    # -- REINFORCE ----------------------------------------------------------------------------------
    def _reinforce(self, episodes: list):
        obs = torch.from_numpy(np.concatenate([np.stack(o) for o, _, _ in episodes])).to(
            self.device)
        actions = torch.from_numpy(np.concatenate([np.asarray(a) for _, a, _ in episodes])).to(
            self.device)
        returns = torch.from_numpy(np.concatenate(
            [discounted(np.asarray(r, dtype=np.float64), self.gamma) for _, _, r in episodes]
        ).astype(np.float32)).to(self.device)
        with self.autocast:
            outs = self.outputs(obs, self.net)
        logits = outs[self.policy_index].float()
        value_loss = None
        if self.baseline == "value":
            values = outs[self.value_index].float().squeeze(1)
            advantages = returns - values.detach()
            value_loss = F.mse_loss(values, returns)
        elif self.baseline == "mean":
            advantages = returns - returns.mean()
        else:
            advantages = returns
        return self._update(logits, actions, advantages, value_loss)

    def _update(self, logits, actions, advantages, value_loss):
        rl = self.rl
        if rl.normalize_advantages and advantages.numel() > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        log_probs = logits.log_softmax(dim=1)
        chosen = log_probs.gather(1, actions.unsqueeze(1)).squeeze(1)
        loss = -(chosen * advantages).mean()
        if rl.entropy_coef:
            entropy = -(log_probs.exp() * log_probs).sum(dim=1).mean()
            loss = loss - rl.entropy_coef * entropy
        if value_loss is not None:
            loss = loss + rl.value_coef * value_loss
        self.updaters[self.model_name](loss)
        return loss

    # -- A2C ---------------------------------------------------------------------------------------
    def _a2c_step(self, obs, actions, next_obs, rewards, terminated, ended) -> tuple:
        self._roll.append((obs, actions, next_obs, rewards, terminated, ended))
        if len(self._roll) < self.rl.n_steps:
            return (self._zero,)
        roll, self._roll = self._roll, []
        return self.record_loss(self._a2c(roll))

    def _a2c(self, roll: list):
        t, n = len(roll), self.n_envs
        obs = torch.from_numpy(np.stack([r[0] for r in roll])).to(self.device)  # (T, n, ...)
        actions = torch.from_numpy(np.stack([r[1] for r in roll])).to(self.device)
        nxt = torch.from_numpy(np.stack([r[2] for r in roll])).to(self.device)
        rewards = torch.from_numpy(np.stack([r[3] for r in roll])).to(self.device)
        terminal = torch.from_numpy(np.stack([r[4] for r in roll])).to(self.device)
        ended = torch.from_numpy(np.stack([r[5] for r in roll]).astype(np.float32)).to(
            self.device)
        flat = obs.reshape(t * n, *obs.shape[2:])
        with self.autocast:
            outs = self.outputs(flat, self.net)
        logits = outs[self.policy_index].float()
        values = outs[self.value_index].float().view(t, n)
        with torch.no_grad():
            next_values = self.outputs(nxt.reshape(t * n, *nxt.shape[2:]))[self.value_index]
            next_values = next_values.float().view(t, n) * (1.0 - terminal)
            advantages = gae(rewards, values.detach(), next_values, ended, self.gamma,
                             self.rl.gae_lambda)
            returns = advantages + values.detach()
        value_loss = F.mse_loss(values.reshape(-1), returns.reshape(-1))
        return self._update(logits, actions.reshape(-1), advantages.reshape(-1), value_loss)


def discounted(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """``G_t = r_t + gamma * G_{t+1}`` for one episode."""
    out = np.empty_like(rewards)
    running = 0.0
    for k in range(len(rewards) - 1, -1, -1):
        running = rewards[k] + gamma * running
        out[k] = running
    return out


def gae(rewards, values, next_values, ended, gamma: float, lam: float):
    """Generalised advantage estimates over a (T, n) rollout; ``next_values`` is 0 past a
    termination, and no advantage flows back across an episode's end."""
    t = rewards.shape[0]
    adv = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for k in range(t - 1, -1, -1):
        delta = rewards[k] + gamma * next_values[k] - values[k]
        running = delta + gamma * lam * (1.0 - ended[k]) * running
        adv[k] = running
    return adv
