"""Deep Q-learning: epsilon-greedy acting, a replay buffer on the device, a target network.

The model maps a state to one Q-value per action (its only Output). Every environment step
stores ``(s, a, r, s', terminated)``; a time limit is not a termination, so the target still
bootstraps there. After ``learning_starts`` steps, every ``train_freq`` steps the task draws
``gradient_steps`` batches of ``training.batch_size`` transitions and minimises the Huber loss
(``training.loss``) between ``Q(s, a)`` and ``r + gamma * max_a' Q_target(s', a')``; with
``double_dqn`` the online network picks ``a'`` and the target network scores it. Every
``target_update_interval`` steps the target network becomes a copy of the online one (``tau``
1) or moves ``tau`` of the way towards it (Polyak averaging). Epsilon falls linearly from
``epsilon_start`` to ``epsilon_end`` over ``exploration_fraction`` of the run.

The hot path is lean: transitions wait in a small host array and reach the device buffer in
one copy before each update; all batches of an update are drawn at once, and without double DQN
their targets come from one forward pass of the (fixed during the update) target network.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from engine.errors import TrainingError
from engine.training.config import Choice
from engine.training.optim import build_loss
from engine.training.tasks.rl_base import RLTask

DQN_LOSSES = ("HuberLoss", "SmoothL1Loss", "MSELoss", "L1Loss")
EXPLORE_STREAM = 11  # the epsilon-greedy generator's seed is seed + this
SAMPLE_STREAM = 13  # the replay sampler's


class ReplayBuffer:
    """A ring buffer of transitions in device tensors, filled in chunks from a host stage."""

    def __init__(self, capacity: int, obs_shape: tuple, device, stage: int):
        self.capacity, self.device = capacity, device
        self.obs = torch.zeros((capacity, *obs_shape), device=device)
        self.next_obs = torch.zeros((capacity, *obs_shape), device=device)
        self.actions = torch.zeros(capacity, dtype=torch.int64, device=device)
        self.rewards = torch.zeros(capacity, device=device)
        self.dones = torch.zeros(capacity, device=device)
        self.stage_size = max(1, stage)
        self._s_obs = np.zeros((self.stage_size, *obs_shape), dtype=np.float32)
        self._s_next = np.zeros_like(self._s_obs)
        self._s_act = np.zeros(self.stage_size, dtype=np.int64)
        self._s_rew = np.zeros(self.stage_size, dtype=np.float32)
        self._s_done = np.zeros(self.stage_size, dtype=np.float32)
        self.staged = 0
        self.pos = 0
        self.size = 0

    def add(self, obs, actions, rewards, next_obs, dones) -> None:
        """Stage one step of every environment (host arrays); flushes when the stage is full."""
        n = len(actions)
        if self.staged + n > self.stage_size:
            self.flush()
        k = self.staged
        self._s_obs[k:k + n] = obs
        self._s_next[k:k + n] = next_obs
        self._s_act[k:k + n] = actions
        self._s_rew[k:k + n] = rewards
        self._s_done[k:k + n] = dones
        self.staged += n

    def flush(self) -> None:
        """Copy the staged transitions into the device buffer (one copy per field)."""
        k = self.staged
        if not k:
            return
        stage = (self._s_obs, self._s_next, self._s_act, self._s_rew, self._s_done)
        dest = (self.obs, self.next_obs, self.actions, self.rewards, self.dones)
        start = 0
        while start < k:
            n = min(k - start, self.capacity - self.pos)
            for src, dst in zip(stage, dest):
                dst[self.pos:self.pos + n].copy_(torch.from_numpy(src[start:start + n]),
                                                 non_blocking=False)
            self.pos = (self.pos + n) % self.capacity
            self.size = min(self.size + n, self.capacity)
            start += n
        self.staged = 0

    def __len__(self) -> int:
        return self.size + self.staged


class DQNTask(RLTask):
    """Deep Q-Network (see the module doc)."""

    name = "dqn"
    default_loss = "HuberLoss"

    def __init__(self, trainer):
        super().__init__(trainer)
        if self.value_index is not None:
            node = self.model.output_names[self.value_index]
            raise TrainingError(f"{node}: dqn reads one Output (the Q-values); remove this one "
                                "or use training.task policy_gradient", node)
        rl = self.rl
        choice = self.config.loss or Choice(self.default_loss)
        if choice.type not in DQN_LOSSES:
            raise TrainingError(f"training.loss: dqn regresses Q-values; use one of "
                                f"{', '.join(DQN_LOSSES)} (got {choice.type})")
        self.loss_fn = build_loss(choice).to(self.device)
        self.target = copy.deepcopy(self.model).eval()
        for p in self.target.parameters():
            p.requires_grad_(False)
        self._online_params = list(self.model.parameters())
        self._target_params = list(self.target.parameters())
        self.buffer = ReplayBuffer(rl.buffer_size, self.dataset.shapes["x"], self.device,
                                   stage=rl.train_freq * self.n_envs)
        self.batch_size = self.config.batch_size
        seed = trainer.seed
        self.rng = np.random.default_rng([seed, EXPLORE_STREAM])
        self.sampler = torch.Generator(device=self.device).manual_seed(seed + SAMPLE_STREAM)
        self._since_train = 0
        self._since_target = 0
        self.epsilon = rl.epsilon_start

    def batches(self, epoch: int):
        if not getattr(self, "_target_synced", False):  # after a resumed checkpoint's weights
            self._target_synced = True
            torch._foreach_copy_(self._target_params, [p.detach() for p in self._online_params])
        return super().batches(epoch)

    # -- the schedule -------------------------------------------------------------------------
    def epsilon_at(self, steps: int) -> float:
        rl = self.rl
        span = rl.exploration_fraction * self.total_steps
        if span <= 0:
            return rl.epsilon_end
        frac = min(1.0, steps / span)
        return rl.epsilon_start + frac * (rl.epsilon_end - rl.epsilon_start)

    def extra_logs(self) -> dict:
        return {"epsilon": round(self.epsilon, 6), "buffer": len(self.buffer)}

    # -- one environment step (the trainer's batch) -------------------------------------------
    def act(self) -> np.ndarray:
        n = self.n_envs
        self.epsilon = eps = self.epsilon_at(self.env_steps)
        self.live.epsilon = eps
        explore = self.rng.random(n) < eps
        if explore.all():
            return self.rng.integers(self.num_actions, size=n)
        q = self.act_values(self.obs_tensor())[0]
        actions = q.argmax(dim=1).cpu().numpy()
        if explore.any():
            actions = np.where(explore, self.rng.integers(self.num_actions, size=n), actions)
        return actions

    def train_step(self, batch) -> tuple:
        obs = self.obs.copy()
        actions = self.act()
        next_obs, rewards, terminated, _ = self.step_envs(actions)
        self.buffer.add(obs, actions, rewards, next_obs, terminated)
        self._since_target += self.n_envs
        if self._since_target >= self.rl.target_update_interval:
            self._since_target = 0
            self.update_target()
        self._since_train += 1
        if self._since_train < self.rl.train_freq or self.env_steps < self.rl.learning_starts:
            return (self._zero,)
        self._since_train = 0
        return self.record_loss(self.learn(self.rl.gradient_steps))

    # -- learning -------------------------------------------------------------------------------
    def learn(self, steps: int):
        """``steps`` gradient steps on batches drawn at once; the mean loss (on the device)."""
        buf = self.buffer
        buf.flush()
        idx = torch.randint(buf.size, (steps, self.batch_size), device=self.device,
                            generator=self.sampler)
        targets = None if self.rl.double_dqn else self._targets(idx.reshape(-1)).view(
            steps, self.batch_size)
        losses = []
        update = self.updaters[self.model_name]
        for g in range(steps):
            i = idx[g]
            y = targets[g] if targets is not None else self._targets(i, double=True)
            with self.autocast:
                q = self.outputs(buf.obs[i], self.net)[0]
                q = q.gather(1, buf.actions[i].unsqueeze(1)).squeeze(1)
                loss = self.loss_fn(q.float(), y)
            update(loss)
            losses.append(loss.detach())
        return torch.stack(losses).mean() if len(losses) > 1 else losses[0]

    @torch.no_grad()
    def _targets(self, i, double: bool = False):
        buf = self.buffer
        nxt = buf.next_obs[i]
        q_next = self.outputs(nxt, self.target)[0].float()
        if double:
            pick = self.outputs(nxt)[0].argmax(dim=1, keepdim=True)
            best = q_next.gather(1, pick).squeeze(1)
        else:
            best = q_next.amax(dim=1)
        return buf.rewards[i] + self.gamma * (1.0 - buf.dones[i]) * best

    @torch.no_grad()
    def update_target(self) -> None:
        tau = self.rl.tau
        if tau >= 1.0:
            torch._foreach_copy_(self._target_params, self._online_params)
        else:
            torch._foreach_lerp_(self._target_params, self._online_params, tau)
        for t, o in zip(self.target.buffers(), self.model.buffers()):
            t.copy_(o)
