"""Checkpoints and final weights, written atomically and read with ``weights_only=True``.

A checkpoint (``DIR/checkpoint.pt``) holds everything needed to continue exactly where an epoch
ended: model, optimizer, scheduler and gradient-scaler states, the epoch and step counts, the RNG
states, the history, early-stopping state, and the training block it was made with.
``DIR/weights.pt`` is ``{model name: state_dict}`` with CPU tensors.
"""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import torch

from engine.errors import TrainingError
from engine.project import atomic_write

FORMAT = "layerlab-checkpoint"
VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
WEIGHTS_NAME = "weights.pt"


def save(path: str | os.PathLike, obj) -> Path:
    """torch.save ``obj`` to ``path`` so that a reader never sees half a file."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, buffer.getvalue())
    return path


def cpu_state(model) -> dict:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def save_weights(path: str | os.PathLike, models: dict) -> Path:
    return save(path, {name: cpu_state(m) for name, m in models.items()})


def load_checkpoint(path: str | os.PathLike, device) -> dict:
    state = _load(path, device)
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise TrainingError(f"{path}: not a Layerlab checkpoint (a weights file? resume needs "
                            f"DIR/{CHECKPOINT_NAME})")
    if state.get("version", 0) > VERSION:
        raise TrainingError(f"{path}: made by a newer Layerlab (checkpoint version "
                            f"{state.get('version')})")
    return state


def _load(path, device):
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise TrainingError(f"{path}: no such checkpoint") from None
    except IsADirectoryError:
        raise TrainingError(f"{path}: is a folder; resume from {Path(path) / CHECKPOINT_NAME}") \
            from None
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"{path}: cannot be read as a checkpoint ({first[:200]})") from None
