"""The project's ``training`` block: parsed, checked and given defaults.

Every bad value is named by its path, e.g. ``training.optimizer.lr: must be a positive number;
got -1``. Unknown top-level keys are kept (the project file keeps them) and only draw a warning
when they look like a misspelled known key; unknown keys inside ``optimizer``, ``scheduler`` or
``loss`` are errors, since they would be handed to torch. This module imports no torch.
"""
from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from engine.errors import TrainingError

TASKS = ("classification", "regression", "reconstruction", "vae", "gan", "forecasting", "dqn",
         "policy_gradient", "node_classification", "graph_classification")
DEVICES = ("auto", "cpu", "cuda", "mps")


class ConfigError(TrainingError):
    """A training block with bad values; ``problems`` lists ``(field path, message)``."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("\n".join(f"{where}: {msg}" for where, msg in problems))


class _Bad(Exception):
    """Raised by a rule with the sentence that follows 'field: '."""


# -- value rules ---------------------------------------------------------------------------------

def _got(value: Any) -> str:
    try:
        return json.dumps(value)[:60]
    except (TypeError, ValueError):
        return repr(value)[:60]


def _num(value: Any, noun: str = "a number") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _Bad(f"must be {noun}; got {_got(value)}")
    return value


def positive(value):
    if _num(value, "a positive number") <= 0:
        raise _Bad(f"must be a positive number; got {_got(value)}")
    return float(value)


def non_negative(value):
    if _num(value, "a number of 0 or more") < 0:
        raise _Bad(f"must be a number of 0 or more; got {_got(value)}")
    return float(value)


def fraction(lo_open: bool = False, hi_open: bool = True) -> Callable:
    """A number in [0, 1), (0, 1), [0, 1] ... as the flags say."""
    span = f"{'(' if lo_open else '['}0, 1{')' if hi_open else ']'}"

    def rule(value):
        v = _num(value, f"a number in {span}")
        if (v <= 0 if lo_open else v < 0) or (v >= 1 if hi_open else v > 1):
            raise _Bad(f"must be a number in {span}; got {_got(value)}")
        return float(v)
    return rule


def whole(lo: int = 0) -> Callable:
    def rule(value):
        v = _num(value, f"a whole number of at least {lo}")
        if v != int(v) or v < lo:
            raise _Bad(f"must be a whole number of at least {lo}; got {_got(value)}")
        return int(v)
    return rule


def flag(value):
    if not isinstance(value, bool):
        raise _Bad(f"must be true or false; got {_got(value)}")
    return value


def optional_flag(value):
    return None if value is None else flag(value)


def choice(*options: str) -> Callable:
    def rule(value):
        if value not in options:
            raise _Bad(f"must be one of {', '.join(options)}; got {_got(value)}"
                       f"{_hint(value, options)}")
        return value
    return rule


def betas(value):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise _Bad(f"must be two numbers in [0, 1), e.g. [0.9, 0.999]; got {_got(value)}")
    return tuple(fraction()(v) for v in value)


def _hint(value: Any, options) -> str:
    close = difflib.get_close_matches(str(value), list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# -- the known keys of nested blocks -----------------------------------------------------------

_TORCH_FLAGS = {"maximize": flag, "foreach": optional_flag, "differentiable": flag}
OPTIMIZERS: dict[str, dict[str, Callable]] = {
    "SGD": {"lr": positive, "momentum": fraction(), "dampening": fraction(hi_open=False),
            "weight_decay": non_negative, "nesterov": flag, "fused": optional_flag,
            **_TORCH_FLAGS},
    "Adam": {"lr": positive, "betas": betas, "eps": positive, "weight_decay": non_negative,
             "amsgrad": flag, "capturable": flag, "fused": optional_flag, **_TORCH_FLAGS},
    "AdamW": {"lr": positive, "betas": betas, "eps": positive, "weight_decay": non_negative,
              "amsgrad": flag, "capturable": flag, "fused": optional_flag, **_TORCH_FLAGS},
    "RMSprop": {"lr": positive, "alpha": fraction(hi_open=False), "eps": positive,
                "weight_decay": non_negative, "momentum": non_negative, "centered": flag,
                "capturable": flag, **_TORCH_FLAGS},
    "Adagrad": {"lr": positive, "lr_decay": non_negative, "weight_decay": non_negative,
                "initial_accumulator_value": non_negative, "eps": positive,
                "fused": optional_flag, **_TORCH_FLAGS},
}
DEFAULT_LR = {"SGD": 0.01, "Adam": 0.001, "AdamW": 0.001, "RMSprop": 0.01, "Adagrad": 0.01}

SCHEDULERS: dict[str, dict[str, Callable]] = {
    "StepLR": {"step_size": whole(1), "gamma": positive},
    "CosineAnnealingLR": {"T_max": whole(1), "eta_min": non_negative},
    "ReduceLROnPlateau": {"mode": choice("min", "max"), "factor": fraction(lo_open=True),
                          "patience": whole(0), "threshold": non_negative,
                          "threshold_mode": choice("rel", "abs"), "cooldown": whole(0),
                          "min_lr": non_negative, "eps": non_negative},
    "OneCycleLR": {"max_lr": positive, "pct_start": fraction(lo_open=True),
                   "anneal_strategy": choice("cos", "linear"), "cycle_momentum": flag,
                   "base_momentum": fraction(), "max_momentum": fraction(),
                   "div_factor": positive, "final_div_factor": positive, "three_phase": flag},
}
SCHEDULER_DEFAULTS = {"StepLR": {"step_size": 10}, "ReduceLROnPlateau": {"patience": 5}}

LOSSES: dict[str, dict[str, Callable]] = {
    "MSELoss": {}, "L1Loss": {}, "HuberLoss": {"delta": positive},
    "SmoothL1Loss": {"beta": non_negative},
    "CrossEntropyLoss": {"label_smoothing": fraction()},
    "BCELoss": {}, "BCEWithLogitsLoss": {"pos_weight": positive},
    "HingeLoss": {"margin": positive},
}
_LOSS_ALIASES = {"mse": "MSELoss", "l2": "MSELoss", "l1": "L1Loss", "mae": "L1Loss",
                 "huber": "HuberLoss", "smoothl1": "SmoothL1Loss",
                 "crossentropy": "CrossEntropyLoss", "ce": "CrossEntropyLoss",
                 "bce": "BCELoss", "binarycrossentropy": "BCELoss",
                 "bcewithlogits": "BCEWithLogitsLoss", "hinge": "HingeLoss"}
#: losses that compare logits, so a one-unit classifier predicts class 1 above 0 (not 0.5)
LOGIT_LOSSES = ("BCEWithLogitsLoss", "HingeLoss")


# -- the parsed block ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Choice:
    """A named torch class and its keyword arguments (an optimizer, scheduler or loss)."""

    type: str
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    patience: int = 5
    restore_best: bool = True
    min_delta: float = 0.0
    monitor: str = "val_loss"


@dataclass
class TrainConfig:
    """A checked training block with every default filled in."""

    task: str | None = None  # None: chosen from the dataset and the graph
    loss: Choice | None = None  # None: the task's default
    optimizer: Choice = field(default_factory=lambda: Choice("Adam", {"lr": 0.001}))
    optimizers: dict[str, Choice] = field(default_factory=dict)  # per model (GAN)
    scheduler: Choice | None = None
    batch_size: int = 32
    epochs: int = 10
    seed: int = 0
    l1: float = 0.0
    grad_clip: float | None = None
    early_stopping: EarlyStopping | None = None
    noise: float = 0.0
    beta: float = 1.0
    amp: bool = False
    compile: bool | str = False  # torch.compile: True (mode "default") or one of COMPILE_MODES
    device: str = "auto"
    tensorboard: bool | str = False  # True: OUT/tensorboard; a string: that folder
    rl: Any = None  # rl_config.RLConfig of the ``rl`` block (dqn, policy_gradient)
    extra: dict = field(default_factory=dict)  # unknown keys, kept as they were
    warnings: list[str] = field(default_factory=list)

    def optimizer_for(self, model: str) -> Choice:
        return self.optimizers.get(model, self.optimizer)


class _Parser:
    def __init__(self, where: str):
        self.where = where
        self.problems: list[tuple[str, str]] = []

    def check(self, path: str, rule: Callable, value: Any, default: Any = None) -> Any:
        try:
            return rule(value)
        except _Bad as exc:
            self.problems.append((f"{self.where}.{path}", str(exc)))
            return default

    def unknown(self, path: str, key: str, known) -> None:
        self.problems.append((f"{self.where}.{path}.{key}",
                              f"unknown setting{_hint(key, known)}; known: {', '.join(known)}"))


def parse_training(block: Any, where: str = "training") -> TrainConfig:
    """Check a project's training block; raise :class:`ConfigError` listing every problem."""
    if block is None:
        block = {}
    if not isinstance(block, dict):
        raise ConfigError([(where, f"must be an object; got {_got(block)}")])
    p, cfg = _Parser(where), TrainConfig()
    for key, value in block.items():
        handler = _TOP.get(key)
        if handler is None:
            cfg.extra[key] = value
            hint = _hint(key, _TOP)
            if hint:
                cfg.warnings.append(f"{where}.{key}: unknown setting{hint}; it is ignored")
        elif value is not None:
            handler(p, cfg, value)
    _parse_optimizers(p, cfg, block)
    if cfg.rl is not None and block.get("epochs") is None:
        cfg.epochs = cfg.rl.epochs  # an epoch is rl.log_every_steps environment steps
    _cross_checks(p, cfg)
    if p.problems:
        raise ConfigError(p.problems)
    return cfg


def training_problems(block: Any) -> list[tuple[str, str]]:
    """Every problem of a training block as ``(field path, message)`` (for ``check``)."""
    try:
        parse_training(block)
    except ConfigError as exc:
        return exc.problems
    return []


def _set(name: str, rule: Callable) -> Callable:
    def handler(p: _Parser, cfg: TrainConfig, value):
        checked = p.check(name, rule, value)
        if checked is not None:
            setattr(cfg, name, checked)
    return handler


def _task(p: _Parser, cfg: TrainConfig, value) -> None:
    cfg.task = p.check("task", choice(*TASKS), value)


def _loss(p: _Parser, cfg: TrainConfig, value) -> None:
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict):
        p.problems.append((f"{p.where}.loss", f"must be a loss name such as \"MSELoss\" or an "
                           f"object with a \"type\"; got {_got(value)}"))
        return
    name = value.get("type")
    canonical = loss_name(name) if isinstance(name, str) else None
    if canonical is None:
        p.problems.append((f"{p.where}.loss", f"unknown loss {_got(name)}"
                           f"{_hint(name, LOSSES)}; known: {', '.join(LOSSES)}"))
        return
    kwargs = _kwargs(p, "loss", value, LOSSES[canonical])
    cfg.loss = Choice(canonical, kwargs)


def loss_name(name: str) -> str | None:
    """The canonical loss name for ``name`` ('mse', 'MSELoss', 'cross_entropy'...), or None."""
    if name in LOSSES:
        return name
    key = name.lower().replace("_", "").replace("-", "").replace(" ", "")
    if key.endswith("loss"):
        key = key[:-4]
    return _LOSS_ALIASES.get(key)


def _kwargs(p: _Parser, path: str, block: dict, rules: dict) -> dict:
    kwargs = {}
    for key, value in block.items():
        if key == "type":
            continue
        if key not in rules:
            p.unknown(path, key, list(rules) or ["(none)"])
            continue
        checked = p.check(f"{path}.{key}", rules[key], value, default=_Bad)
        if checked is not _Bad:
            kwargs[key] = checked
    return kwargs


def _optimizer_choice(p: _Parser, path: str, value, base: Choice | None = None) -> Choice | None:
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict):
        p.problems.append((f"{p.where}.{path}", f"must be an object such as "
                           f"{{\"type\": \"Adam\", \"lr\": 0.001}}; got {_got(value)}"))
        return None
    kind = value.get("type", base.type if base else "Adam")
    if kind not in OPTIMIZERS:
        p.problems.append((f"{p.where}.{path}.type", f"unknown optimizer {_got(kind)}"
                           f"{_hint(kind, OPTIMIZERS)}; known: {', '.join(OPTIMIZERS)}"))
        return None
    kwargs = {"lr": DEFAULT_LR[kind]}
    if base is not None and base.type == kind:
        kwargs.update(base.kwargs)
    kwargs.update(_kwargs(p, path, value, OPTIMIZERS[kind]))
    if kwargs.get("nesterov") and (kwargs.get("momentum", 0) <= 0 or kwargs.get("dampening", 0)):
        p.problems.append((f"{p.where}.{path}.nesterov",
                           "needs a momentum above 0 and no dampening"))
    return Choice(kind, kwargs)


def _optimizer(p: _Parser, cfg: TrainConfig, value) -> None:
    choice_ = _optimizer_choice(p, "optimizer", value)
    if choice_ is not None:
        cfg.optimizer = choice_


def _parse_optimizers(p: _Parser, cfg: TrainConfig, block: dict) -> None:
    per_model = block.get("optimizers")
    if per_model is None:
        return
    if not isinstance(per_model, dict):
        p.problems.append((f"{p.where}.optimizers", "must be an object of model name -> "
                           f"optimizer, e.g. {{\"generator\": {{\"lr\": 0.0002}}}}; got "
                           f"{_got(per_model)}"))
        return
    for model, value in per_model.items():
        choice_ = _optimizer_choice(p, f"optimizers.{model}", value, base=cfg.optimizer)
        if choice_ is not None:
            cfg.optimizers[model] = choice_


def _scheduler(p: _Parser, cfg: TrainConfig, value) -> None:
    if isinstance(value, str):
        value = {"type": value}
    if not isinstance(value, dict):
        p.problems.append((f"{p.where}.scheduler", f"must be an object with a \"type\"; got "
                           f"{_got(value)}"))
        return
    kind = value.get("type")
    if kind in (None, "none", "None"):
        return
    if kind not in SCHEDULERS:
        p.problems.append((f"{p.where}.scheduler.type", f"unknown scheduler {_got(kind)}"
                           f"{_hint(kind, SCHEDULERS)}; known: {', '.join(SCHEDULERS)}"))
        return
    kwargs = dict(SCHEDULER_DEFAULTS.get(kind, {}))
    kwargs.update(_kwargs(p, "scheduler", value, SCHEDULERS[kind]))
    cfg.scheduler = Choice(kind, kwargs)


def _early_stopping(p: _Parser, cfg: TrainConfig, value) -> None:
    if value is False:
        return
    if value is True:
        value = {}
    elif isinstance(value, int) and not isinstance(value, bool):
        value = {"patience": value}
    if not isinstance(value, dict):
        p.problems.append((f"{p.where}.early_stopping", "must be true, false or an object such "
                           f"as {{\"patience\": 5, \"restore_best\": true}}; got {_got(value)}"))
        return
    rules = {"patience": whole(1), "restore_best": flag, "min_delta": non_negative,
             "monitor": choice("val_loss", "train_loss", "val_accuracy")}
    cfg.early_stopping = EarlyStopping(**_kwargs(p, "early_stopping", value, rules))


def _grad_clip(p: _Parser, cfg: TrainConfig, value) -> None:
    if isinstance(value, dict):
        extra = [k for k in value if k != "max_norm"]
        if extra:
            p.unknown("grad_clip", extra[0], ["max_norm"])
        value = value.get("max_norm")
    if value is not None:
        cfg.grad_clip = p.check("grad_clip", positive, value)


def _device(p: _Parser, cfg: TrainConfig, value) -> None:
    ok = isinstance(value, str) and (value in DEVICES or value.startswith("cuda:"))
    if not ok:
        p.problems.append((f"{p.where}.device", f"must be one of {', '.join(DEVICES)} or "
                           f"cuda:N; got {_got(value)}"))
        return
    cfg.device = value


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_setting(value):
    """``true``/``false``, or a ``torch.compile`` mode."""
    if isinstance(value, bool) or value in COMPILE_MODES:
        return value
    raise _Bad(f"must be true, false or a torch.compile mode ({', '.join(COMPILE_MODES)}); "
               f"got {_got(value)}")


def tensorboard_setting(value):
    """``true``/``false``, or the folder for TensorBoard's event files."""
    if isinstance(value, bool) or (isinstance(value, str) and value.strip()):
        return value
    raise _Bad(f"must be true, false or a folder for the event files such as "
               f"\"runs/tensorboard\"; got {_got(value)}")


def _rl(p: _Parser, cfg: TrainConfig, value) -> None:
    from engine.training.rl_config import parse_rl  # reinforcement learning's own keys

    cfg.rl = parse_rl(p, value)


_TOP: dict[str, Callable] = {
    "task": _task,
    "loss": _loss,
    "optimizer": _optimizer,
    "optimizers": lambda p, cfg, value: None,  # parsed after 'optimizer' (it overrides it)
    "scheduler": _scheduler,
    "batch_size": _set("batch_size", whole(1)),
    "epochs": _set("epochs", whole(1)),
    "seed": _set("seed", whole(0)),
    "l1": _set("l1", non_negative),
    "grad_clip": _grad_clip,
    "early_stopping": _early_stopping,
    "noise": _set("noise", non_negative),
    "beta": _set("beta", non_negative),
    "amp": _set("amp", flag),
    "compile": _set("compile", compile_setting),
    "device": _device,
    "tensorboard": _set("tensorboard", tensorboard_setting),
    "rl": _rl,
}


def _cross_checks(p: _Parser, cfg: TrainConfig) -> None:
    from engine.training.rl_config import cross_check

    cross_check(p, cfg)
    if cfg.task == "gan" and cfg.early_stopping is not None:
        p.problems.append((f"{p.where}.early_stopping", "is not available for a GAN (its losses "
                           "do not measure progress); remove it"))
    if cfg.noise and cfg.task not in (None, "reconstruction", "vae"):
        p.problems.append((f"{p.where}.noise", f"adds input noise for reconstruction only; the "
                           f"task is '{cfg.task}'"))
