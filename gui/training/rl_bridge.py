"""The training thread's side of the reinforcement-learning views: a callback that, on a clock
(a few times a second however fast the environment steps), copies what the views show out of the
task - the episodes ended since the last look, the first environment's state (or a rendered
frame), the policy's values for that state and epsilon - into a small dict the window takes.

It is inert for tasks that step no environment (they have no ``live`` attribute).
"""
from __future__ import annotations

import threading
import time

from engine.training import Callback

RL_INTERVAL_S = 0.2  # the environment is drawn at most five times a second
RL_TASKS = ("dqn", "policy_gradient")


class LiveRL(Callback):
    """Thread-safe news of an RL run; :meth:`take` hands it over (see the module doc)."""

    def __init__(self, interval: float = RL_INTERVAL_S):
        self.interval = interval
        self.frames = True  # draw rendered frames when the environment gives them
        self._lock = threading.Lock()
        self._news: dict = {}
        self._taken_returns = 0
        self._due = 0.0
        self._task = None

    def on_train_start(self, trainer) -> None:
        task = trainer.task
        self._task = task if getattr(task, "live", None) is not None else None
        self._taken_returns = len(task.live.returns) if self._task is not None else 0
        self._due = 0.0

    def on_batch_end(self, trainer, step: int, logs: dict) -> None:
        if self._task is None:
            return
        now = time.perf_counter()
        if now >= self._due:
            self._due = now + self.interval
            self.refresh()

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        if self._task is not None:
            self.refresh()

    def refresh(self) -> None:
        """Copy the task's live state (in the training thread, between two steps)."""
        task = self._task
        live = task.live
        returns = live.returns_since(self._taken_returns)
        self._taken_returns += len(returns)
        news = {"obs": None if live.obs is None else live.obs.copy(),
                "epsilon": live.epsilon, "steps": live.env_steps}
        try:
            news["values"] = task.current_values()
            if self.frames:
                news["frame"] = task.render_frame()
        except RuntimeError:  # like the probes: a view must never end training
            pass
        with self._lock:
            old = self._news.get("returns", [])
            self._news = {**news, "returns": old + returns}

    def take(self) -> dict | None:
        """What changed since the last call, or None."""
        with self._lock:
            news, self._news = self._news, {}
        return news or None


def environment_info(trainer) -> dict | None:
    """What the window needs to set up the RL tab (None for tasks without an environment)."""
    task = trainer.task
    live = getattr(task, "live", None)
    if live is None:
        return None
    return {"env_id": live.env_id, "drawing": live.drawing, "num_actions": live.num_actions,
            "kind": "q" if trainer.task_name == "dqn" else "probs"}
