"""What the reinforcement-learning recipes share: the environments they step, the episodes they
count and the live state the window reads.

An RL task drives its own data: a "batch" is one step of its ``n_envs`` environments (so an
epoch of ``rl.log_every_steps`` environment steps has ``ceil(log_every_steps / n_envs)``
batches), and ``train_step`` acts, steps the environments, stores what happened and updates the
model when its recipe says so. Environments run on the host; observations reach the device once
per step (the action needs them), experience in chunks. Episode returns are host floats, known
when an episode ends; the epoch's figures (``steps``, ``episodes``, ``mean_return`` of the last
20 episodes, ``train_loss`` over the epoch's updates) come from ``evaluate``.
"""
from __future__ import annotations

import math
import threading

import numpy as np
import torch

from engine.errors import TrainingError
from engine.layers import fmt_shape
from engine.training.rl_config import rl_settings
from engine.training.tasks.base import Task, evaluating, output_shape

RETURN_WINDOW = 20  # episodes in mean_return
PROBE_STREAM = 7919  # the probe states' generator, apart from the training streams
PROBE_STATES = 64


def _renders() -> bool:
    import importlib.util

    return importlib.util.find_spec("pygame") is not None


class RLLive:
    """Small host-side state of a run for the window, written by the training thread.

    ``returns`` only grows (readers keep how many they have taken); ``obs`` is the first
    environment's current observation; the window asks for frames with ``want_frames``."""

    def __init__(self, drawing: str | None, env_id: str, num_actions: int):
        self.lock = threading.Lock()
        self.returns: list[float] = []
        self.lengths: list[int] = []
        self.obs: np.ndarray | None = None
        self.epsilon: float | None = None
        self.env_steps = 0
        self.drawing = drawing
        self.env_id = env_id
        self.num_actions = num_actions
        self.want_frames = False

    def episode(self, ret: float, length: int) -> None:
        with self.lock:
            self.returns.append(ret)
            self.lengths.append(length)

    def returns_since(self, start: int) -> list[float]:
        with self.lock:
            return self.returns[start:]


class RLTask(Task):
    """A recipe that steps gymnasium environments (see the module doc)."""

    default_n_envs = 1
    value_head_allowed = False

    def __init__(self, trainer):
        super().__init__(trainer)
        source = self.dataset
        if getattr(source, "kind", None) != "environment":
            raise TrainingError(f"training.task: '{self.name}' learns from an environment; add "
                                f"an \"environment\": {{\"name\": \"CartPole-v1\"}} block "
                                f"instead of the dataset")
        if len(trainer.models) != 1:
            raise TrainingError(f"training.task: '{self.name}' trains one model; the project has "
                                f"{len(trainer.models)} ({', '.join(trainer.models)})")
        self.rl = rl_settings(self.config)
        self.model_name = next(iter(trainer.models))
        self.model = trainer.models[self.model_name]
        self.net = trainer.train_models[self.model_name]
        self._check_outputs(trainer)
        self.num_actions = source.num_actions
        self.n_envs = self.rl.n_envs or self.default_n_envs
        self.gamma = self.rl.gamma
        # the first environment draws frames for the window when pygame is there (rgb_array
        # renders only when asked, so it costs nothing otherwise)
        self.envs = [source.make_env(render=i == 0 and _renders()) for i in range(self.n_envs)]
        self.obs = np.stack([self._reset(i, first=True) for i in range(self.n_envs)])
        self.ep_return = np.zeros(self.n_envs)
        self.ep_length = np.zeros(self.n_envs, dtype=np.int64)
        self.env_steps = 0
        self.returns: list[float] = []
        self.live = RLLive(source.spaces.drawing, source.env_id, self.num_actions)
        self.live.obs = self.obs[0].copy()
        self._loss_sum = torch.zeros((), device=self.device)
        self._updates = 0
        self._zero = torch.zeros((), device=self.device)
        self._needs_eval_mode = any(isinstance(m, (torch.nn.Dropout, torch.nn.modules.batchnorm
                                                   ._BatchNorm)) for m in self.model.modules())

    # -- checks -------------------------------------------------------------------------------
    def _check_outputs(self, trainer) -> None:
        from engine.data.environment import output_problems

        problems = output_problems(self.dataset.spaces, trainer.graphs[self.model_name],
                                   trainer.shapes[self.model_name], self.name)
        if problems:
            where, msg = problems[0]
            raise TrainingError(f"{where}: {msg}", where if where in self.model.node_attrs
                                or where in trainer.graphs[self.model_name] else None)
        names = self.model.output_names
        shapes = [tuple(trainer.shapes[self.model_name].info[n].out_shape) for n in names]
        self.policy_index = next((i for i, s in enumerate(shapes) if s != (1,)), 0)
        self.value_index = next((i for i, s in enumerate(shapes) if i != self.policy_index),
                                None)
        self.out_shape = output_shape(trainer, self.model_name)

    # -- the trainer's interface ----------------------------------------------------------------
    @property
    def train_size(self):
        return None

    def steps_per_epoch(self) -> int:
        return max(1, math.ceil(self.rl.log_every_steps / self.n_envs))

    def batches(self, epoch: int):
        self._epoch_returns_from = len(self.returns)
        self._loss_sum = torch.zeros((), device=self.device)
        self._updates = 0
        return range(self.steps_per_epoch())

    @property
    def total_steps(self) -> int:
        """Environment steps of the whole run (``epochs`` x ``log_every_steps``)."""
        return self.trainer.epochs * self.rl.log_every_steps

    def evaluate(self) -> dict:
        recent = self.returns[-RETURN_WINDOW:]
        logs = {"steps": self.env_steps, "episodes": len(self.returns),
                "mean_return": float(np.mean(recent)) if recent else float("nan"),
                "train_loss": float(self._loss_sum) / self._updates if self._updates
                else float("nan")}
        logs.update(self.extra_logs())
        return logs

    def extra_logs(self) -> dict:
        return {}

    def monitor_default(self) -> str:
        return "mean_return"

    @property
    def has_val(self) -> bool:
        return False

    def dry_run(self) -> None:
        out = self.outputs(self.obs_tensor())
        got = tuple(out[self.policy_index].shape[1:])
        if got != (self.num_actions,):
            node = self.model.output_names[self.policy_index]
            raise TrainingError(f"{node}: the model computed {fmt_shape(got)} per state where "
                                f"{self.dataset.env_id} has {self.num_actions} actions", node)

    def diagnose(self, batch) -> None:
        with torch.no_grad():
            self.outputs(self.obs_tensor())

    def probe_inputs(self, n: int) -> dict:
        return {self.model_name: (self.probe_states(n),)}

    # -- shared helpers ---------------------------------------------------------------------------
    def outputs(self, x, net=None) -> list:
        """Every Output of the model for a batch of observations, as a list."""
        out = (net or self.model)(x)
        return list(out) if isinstance(out, tuple) else [out]

    def obs_tensor(self):
        return torch.from_numpy(self.obs).to(self.device)

    def act_values(self, x):
        """The first Output for acting: no gradients, eval mode only when the model needs it."""
        with torch.no_grad():
            if self._needs_eval_mode:
                with evaluating(self.model):
                    return self.outputs(x)
            return self.outputs(x)

    def _reset(self, i: int, first: bool = False) -> np.ndarray:
        seed = self.dataset.env_seed(i) if first else None
        obs, _ = self.envs[i].reset(seed=seed)
        return self.dataset.encode(obs)

    def step_envs(self, actions) -> tuple:
        """Step every environment; reset those whose episode ended. Returns (next observations
        for storing: the last of an ended episode; rewards; terminated; episode ended)."""
        n = self.n_envs
        next_obs = np.empty_like(self.obs)
        rewards = np.empty(n, dtype=np.float32)
        terminated = np.zeros(n, dtype=np.float32)
        ended = np.zeros(n, dtype=bool)
        encode = self.dataset.encode
        for i, env in enumerate(self.envs):
            obs, reward, term, trunc, _ = env.step(int(actions[i]))
            next_obs[i] = encode(obs)
            rewards[i] = reward
            self.ep_return[i] += reward
            self.ep_length[i] += 1
            if term or trunc:
                terminated[i] = float(term)
                ended[i] = True
                self._episode_end(i)
                self.obs[i] = self._reset(i)
            else:
                self.obs[i] = next_obs[i]
        self.env_steps += n
        live = self.live
        live.obs = self.obs[0].copy()
        live.env_steps = self.env_steps
        return next_obs, rewards, terminated, ended

    def _episode_end(self, i: int) -> None:
        ret, length = float(self.ep_return[i]), int(self.ep_length[i])
        self.returns.append(ret)
        self.live.episode(ret, length)
        self.ep_return[i], self.ep_length[i] = 0.0, 0

    def record_loss(self, loss) -> tuple:
        """Count one update's loss (on the device) and return it as the step's loss tuple."""
        loss = loss.detach()
        self._loss_sum = self._loss_sum + loss
        self._updates += 1
        return (loss,)

    def probe_states(self, n: int):
        """``n`` states met by a random policy in a separately seeded environment (fixed for
        the run, so the probes compare like with like)."""
        n = min(n, PROBE_STATES)
        env = self.dataset.make_env(seed=PROBE_STREAM)
        rng = np.random.default_rng(PROBE_STREAM + self.trainer.seed)
        obs, _ = env.reset(seed=PROBE_STREAM + self.trainer.seed)
        states = []
        for _ in range(n):
            states.append(self.dataset.encode(obs))
            obs, _, term, trunc, _ = env.step(int(rng.integers(self.num_actions)))
            if term or trunc:
                obs, _ = env.reset()
        env.close()
        return torch.from_numpy(np.stack(states)).to(self.device)

    # -- for the window (called from the training thread, between steps) ---------------------------
    def current_values(self) -> np.ndarray:
        """The policy head's output for the first environment's current state (Q-values for
        dqn, action probabilities for policy_gradient)."""
        x = torch.from_numpy(self.obs[:1]).to(self.device)
        with torch.no_grad(), evaluating(self.model):
            out = self.outputs(x)[self.policy_index]
        return self.values_shown(out)[0].float().cpu().numpy()

    def values_shown(self, out):
        return out

    def render_frame(self):
        """An RGB frame of the first environment, when it renders (pygame); else None."""
        env = self.envs[0]
        if getattr(env, "render_mode", None) != "rgb_array":
            return None
        try:
            return env.render()
        except Exception:  # noqa: BLE001 - a frame must never end training
            return None

    def close(self) -> None:
        for env in self.envs:
            env.close()
