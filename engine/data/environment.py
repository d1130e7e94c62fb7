"""Reinforcement-learning environments as a data source: any installed gymnasium id by name.

A project names its environment instead of a dataset::

    "environment": {"name": "CartPole-v1", "params": {"max_episode_steps": 500}}

``params`` holds ``max_episode_steps`` (the time limit; default the id's own) and any keyword
argument of the environment's constructor, passed to ``gymnasium.make`` as they are (e.g.
``{"is_slippery": false}`` for FrozenLake). The source is endless: the task steps the
environments itself (:meth:`EnvironmentSource.make_env`), so there are no batches to hand out.
Its ``shapes`` are ``{"x": observation shape}``: an ``Input`` takes the observation, and the
model's first ``Output`` must give one value per action (:func:`output_problems`). A discrete
observation (FrozenLake's cell number) is fed one-hot.

This module imports neither torch nor (until an environment is used) gymnasium.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np

from engine.data.augment import Augment
from engine.data.common import Rule, check_value
from engine.data.source import DataSource, SourceKind, register
from engine.errors import DataError

OWN_PARAMS = {"max_episode_steps": None}
OWN_RULES = {"max_episode_steps": Rule("int", 1, 10_000_000, choices=(None,))}
DRAWN = {"CartPoleEnv": "cartpole", "AcrobotEnv": "acrobot", "MountainCarEnv": "mountaincar"}


@dataclass(frozen=True)
class Spaces:
    """What a project needs to know about an environment without stepping it."""

    id: str
    obs_shape: tuple
    obs_discrete: int | None  # n for a Discrete observation space (fed one-hot), else None
    num_actions: int | None  # None for a continuous action space
    action_space: str  # e.g. "Discrete(2)"
    max_episode_steps: int | None
    reward_threshold: float | None
    drawing: str | None  # "cartpole" | "acrobot" | "mountaincar" | None


def _gym():
    try:
        import gymnasium
    except ImportError:
        raise DataError("environment: reinforcement learning needs gymnasium "
                        "(pip install gymnasium)") from None
    return gymnasium


def split_params(params: dict) -> tuple[str, dict, dict]:
    """(env id, Layerlab's own checked params, the constructor's keyword arguments)."""
    params = dict(params or {})
    env_id = params.pop("id", None)
    if not isinstance(env_id, str) or not env_id.strip():
        raise DataError(f"environment.name: must be a gymnasium id such as \"CartPole-v1\"; "
                        f"got {json.dumps(env_id)}")
    own = {k: check_value(f"environment.params.{k}", params.pop(k, d), OWN_RULES[k])
           for k, d in OWN_PARAMS.items()}
    return env_id, own, params


def make(env_id: str, own: dict, kwargs: dict, render: bool = False):
    """``gymnasium.make`` with every failure turned into a DataError naming the field."""
    gym = _gym()
    extra = {"render_mode": "rgb_array"} if render else {}
    if own.get("max_episode_steps"):
        extra["max_episode_steps"] = own["max_episode_steps"]
    try:
        return gym.make(env_id, **kwargs, **extra)
    except gym.error.DependencyNotInstalled as exc:
        raise DataError(f"environment.name: {env_id} needs a package that is not installed "
                        f"({_first_line(exc)})") from None
    except gym.error.Error as exc:  # NameNotFound, VersionNotFound, UnregisteredEnv ...
        known = ", ".join(_examples(gym))
        raise DataError(f"environment.name: unknown environment '{env_id}' "
                        f"({_first_line(exc)}); installed ids include {known}") from None
    except (TypeError, AttributeError) as exc:  # a setting of the wrong kind (render_mode: [])
        raise DataError(f"environment.params: {env_id} does not take these settings "
                        f"({_first_line(exc)})") from None
    except (ValueError, AssertionError, ImportError) as exc:
        raise DataError(f"environment: {env_id} could not be made ({_first_line(exc)})") \
            from None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _examples(gym) -> list[str]:
    ids = [k for k in gym.envs.registry if "/" not in k and not k.startswith(("Gym", "phys"))]
    preferred = [k for k in ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "LunarLander-v3")
                 if k in ids]
    return preferred + [k for k in ids if k not in preferred][:4]


@functools.lru_cache(maxsize=32)
def _spaces_cached(env_id: str, own_json: str, kwargs_json: str) -> Spaces:
    own, kwargs = json.loads(own_json), json.loads(kwargs_json)
    env = make(env_id, own, kwargs)
    try:
        return _describe(env_id, env)
    finally:
        env.close()


def _describe(env_id: str, env) -> Spaces:
    gym = _gym()
    obs, act = env.observation_space, env.action_space
    if isinstance(obs, gym.spaces.Discrete):
        obs_shape, obs_discrete = (int(obs.n),), int(obs.n)
    elif isinstance(obs, gym.spaces.Box):
        obs_shape, obs_discrete = tuple(int(s) for s in obs.shape), None
    else:
        raise DataError(f"environment.name: {env_id} has observations of type "
                        f"{type(obs).__name__}; Layerlab feeds Box and Discrete observations")
    actions = int(act.n) if isinstance(act, gym.spaces.Discrete) else None
    spec = env.spec
    return Spaces(env_id, obs_shape, obs_discrete, actions, str(act),
                  getattr(spec, "max_episode_steps", None),
                  getattr(spec, "reward_threshold", None),
                  DRAWN.get(type(env.unwrapped).__name__))


def spaces(params: dict) -> Spaces:
    """The spaces of the environment ``params`` names (cached; one ``make`` per id)."""
    env_id, own, kwargs = split_params(params)
    try:
        kwargs_json = json.dumps(kwargs, sort_keys=True)
    except (TypeError, ValueError):
        raise DataError("environment.params: must hold plain JSON values") from None
    return _spaces_cached(env_id, json.dumps(own, sort_keys=True), kwargs_json)


def block_params(block) -> dict:
    """The kind's params of a project's ``environment`` block: ``{"id": name, **params}``."""
    if not isinstance(block, dict) or "name" not in block:
        raise DataError("environment: must be an object with a 'name', e.g. "
                        "{\"name\": \"CartPole-v1\"}")
    params = block.get("params") or {}
    if not isinstance(params, dict):
        raise DataError("environment.params: must be an object of settings")
    return {"id": block["name"], **params}


def environment_shapes(params: dict, base_dir=None) -> dict:
    return {"x": spaces(params).obs_shape}


class EnvironmentSource(DataSource):
    """An endless source of experience: makes seeded copies of one gymnasium environment."""

    kind = "environment"
    task_hint = "environment"
    in_memory = True
    endless = True
    num_classes = None

    def __init__(self, params: dict, *, seed: int = 0, device="cpu"):
        self.env_id, self.own, self.kwargs = split_params(params)
        self.spaces = spaces(params)
        self.name = self.env_id
        self.shapes = {"x": self.spaces.obs_shape}
        self.num_actions = self.spaces.num_actions
        self.seed = int(seed)
        self.device = device
        self.reason = "experience is generated by stepping the environment"
        self.source = f"gymnasium {self.env_id}"
        self.augment = Augment()
        self._made = 0

    @property
    def train_size(self):
        return None

    @property
    def val_size(self) -> int:
        return 0

    @property
    def max_episode_steps(self) -> int | None:
        return self.spaces.max_episode_steps

    def describe(self) -> str:
        return f"{self.env_id}: observations {self.spaces.obs_shape}, actions " \
               f"{self.spaces.action_space} ({self.reason})"

    def make_env(self, render: bool = False, seed: int | None = None):
        """A fresh environment; ``render`` asks for ``render_mode="rgb_array"`` frames. The
        caller seeds its first ``reset`` (see :meth:`env_seed`)."""
        env = make(self.env_id, self.own, self.kwargs, render=render)
        env.action_space.seed(self.env_seed(self._made) if seed is None else seed)
        self._made += 1
        return env

    def env_seed(self, i: int) -> int:
        """The seed of the i-th environment's first reset: the run's seed, then one per copy."""
        return self.seed * 1000 + i

    def encode(self, obs) -> np.ndarray:
        """An observation as the float32 array the model reads (one-hot when discrete)."""
        n = self.spaces.obs_discrete
        if n is not None:
            out = np.zeros(n, dtype=np.float32)
            out[int(obs)] = 1.0
            return out
        return np.asarray(obs, dtype=np.float32)

    def can_render(self) -> bool:
        """Whether the environment draws ``rgb_array`` frames here (pygame installed)."""
        try:
            env = self.make_env(render=True, seed=0)
        except DataError:
            return False
        try:
            env.reset(seed=0)
            frame = env.render()
            return isinstance(frame, np.ndarray) and frame.ndim == 3
        except Exception:  # noqa: BLE001 - gymnasium raises DependencyNotInstalled and others
            return False
        finally:
            env.close()

    def train_batches(self, batch_size, generator, device, strategy):
        raise DataError(f"environment: {self.env_id} is stepped by a reinforcement-learning "
                        "task (training.task dqn or policy_gradient), not read in batches")

    def val_batches(self, size: int):
        return []

    def take(self, batch, split: str = "train") -> dict:
        raise DataError(f"environment: {self.env_id} has no stored samples")

    def head(self, key: str, n: int, split: str = "val"):
        return None

    def __repr__(self) -> str:
        return f"EnvironmentSource({self.env_id!r}, obs={self.spaces.obs_shape}, " \
               f"actions={self.spaces.action_space})"


def _load(params: dict, *, val_split: float = 0.0, seed: int = 0, device="cpu",
          base_dir=None) -> EnvironmentSource:
    return EnvironmentSource(params, seed=seed, device=device)


# -- what the model must look like --------------------------------------------------------------

def output_problems(env: Spaces, graph, shapes, task: str | None = None) -> list[tuple[str, str]]:
    """``(node id, message)`` for Outputs that do not fit the environment: the first Output (the
    Q-values or the action scores) needs one value per action, a second (a value head, for
    policy_gradient) one value. The node named is the one feeding the Output."""
    if env.num_actions is None:
        return [("environment.name", f"{env.id} has continuous actions ({env.action_space}); "
                 "dqn and policy_gradient need a discrete action space")]
    outputs = [n for n in graph.topological_order() if graph.node(n).type == "Output"]
    problems = []
    heads = sorted(outputs, key=lambda n: _shape(shapes, n) == (1,) and env.num_actions != 1)
    for i, node_id in enumerate(heads):
        shape = _shape(shapes, node_id)
        if shape is None:
            continue  # shape inference has already said why
        feeder = (graph.predecessors(node_id) or [node_id])[0]
        want = env.num_actions if i == 0 else 1
        what = "values" if i == 0 else "value (the state value)"
        if i >= 2:
            problems.append((node_id, "a reinforcement-learning model has at most two Outputs: "
                             "the action values and, for policy_gradient, a state value"))
        elif shape != (want,):
            count = shape[0] if len(shape) == 1 else "×".join(map(str, shape))
            tail = f"{env.id} has {want} actions" if i == 0 else "a value head outputs 1 value"
            problems.append((feeder, f"outputs {count} {_plural(count, what)} but {tail}"
                             + (f"; set out_features to {want}" if i == 0 else "")))
    if task == "dqn" and len(heads) > 1:
        problems.append((heads[1], "dqn reads one Output (the Q-values); remove this one or "
                         "use training.task policy_gradient"))
    return problems


def _shape(shapes, node_id: str):
    info = shapes.info.get(node_id)
    shape = info.out_shape if info is not None and not info.error else None
    return tuple(shape) if shape is not None else None


def _plural(count, what: str) -> str:
    return what if count != 1 else what.replace("values", "value")


KIND = register(SourceKind(
    name="environment",
    doc="a gymnasium environment stepped by a reinforcement-learning task (dqn, "
        "policy_gradient); params: max_episode_steps and the environment's own settings",
    params={"id": "CartPole-v1", **OWN_PARAMS},
    rules={"id": Rule("path", required=True), **OWN_RULES},
    shapes=environment_shapes,
    load=_load,
    task_hint="environment",
))
