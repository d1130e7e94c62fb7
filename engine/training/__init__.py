"""Training: the trainer, its hooks, task recipes, probes, checkpoints and fault messages.

Public API::

    Trainer(project, *, device="auto", seed=None, callbacks=(), out_dir=None, epochs=None,
            resume_from=None, strategy=None, log_every=20)
        .fit() -> FitResult            (history, stopped, epochs, steps, seconds, best_epoch)
        .pause() / .resume() / .stop() (from any thread)
        .models {name: GraphModule}, .device, .dataset, .history, .step, .epoch, .task, .config
        .save_weights(path), .predict(*inputs, model=None), .checkpoint()
    Callback                           no-op hooks; see engine.training.callbacks
    Probes(every=..., nodes=..., ...)  a Callback whose ``latest`` dict the GUI reads
    parse_training(block) -> TrainConfig   (ConfigError with 'training.x: ...' problems)
    TASKS, LOSSES, OPTIMIZERS, SCHEDULERS

Importing this package (and ``Callback`` or the config helpers from it) does not import torch;
``Trainer``, ``FitResult`` and ``Probes`` are imported on first use.
"""
from __future__ import annotations

import importlib

from engine.errors import TrainingError
from engine.training.callbacks import Callback, LambdaCallback
from engine.training.config import (LOSSES, OPTIMIZERS, SCHEDULERS, TASKS, ConfigError,
                                    TrainConfig, parse_training, training_problems)

_LAZY = {"Trainer": "engine.training.trainer", "FitResult": "engine.training.trainer",
         "Probes": "engine.training.probes"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'engine.training' has no attribute {name!r}")

__all__ = [
    "Callback", "ConfigError", "FitResult", "LambdaCallback", "LOSSES", "OPTIMIZERS", "Probes",
    "SCHEDULERS", "TASKS", "TrainConfig", "Trainer", "TrainingError", "parse_training",
    "training_problems",
]
