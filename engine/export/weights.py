"""Weights files: reading the ``weights.pt`` that training writes, and loading it into a model.

A weights file is ``{model name: state_dict}`` (what ``python main.py train`` writes); a plain
state_dict (``.pt``) or a ``.safetensors`` file is taken as the weights of the chosen model. A file
that does not fit the compiled model gets a message naming the first parameter at fault.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ExportError


class WeightsFileError(ExportError):
    """The weights file cannot be read at all (missing, not a weights file)."""


def read_weights(path: str | os.PathLike) -> dict:
    """The file's contents: ``{model: state_dict}`` or a flat state_dict."""
    import torch

    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a weights file" if path.is_dir() else "no such file"
        raise WeightsFileError(f"{path}: {what}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data = load_file(str(path))
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many kinds for a foreign file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsFileError(f"{path}: not a weights file that can be read safely "
                               f"({reason[:200]})") from None
    if not isinstance(data, dict) or not data:
        raise WeightsFileError(f"{path}: not a weights file (expected {{model name: "
                               "state_dict}} as written by `python main.py train`)")
    return data


def pick_state_dict(weights: dict, model: str, source: str = "weights") -> dict:
    """The state_dict of ``model`` in ``weights`` (nested per model, or already flat)."""
    import torch

    if all(isinstance(v, torch.Tensor) for v in weights.values()):
        return weights
    if model in weights and isinstance(weights[model], dict):
        return weights[model]
    names = ", ".join(str(k) for k in weights if isinstance(weights[k], dict)) or "none"
    raise ExportError(f"{source}: has no weights for model '{model}' (it has: {names})")


def check_state_dict(module, state: dict, *, model: str = "model", source: str = "weights",
                     names: dict | None = None) -> None:
    """Raise ExportError naming the first parameter of ``state`` that does not fit ``module``.

    ``names`` maps submodule names to node ids, for the message.
    """
    own = module.state_dict()
    problems = []
    for key, tensor in own.items():
        if key not in state:
            problems.append(f"{_label(key, names)}: missing from the file (the model needs "
                            f"{_shape(tensor)})")
        elif tuple(state[key].shape) != tuple(tensor.shape):
            problems.append(f"{_label(key, names)}: file has {_shape(state[key])}, model needs "
                            f"{_shape(tensor)}")
    problems += [f"{_label(k, names)}: in the file, but the model has no such parameter"
                 for k in state if k not in own]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ExportError(f"{source}: the weights do not match model '{model}': "
                          f"{problems[0]}{more}")


def load_state_dict(module, state: dict, *, model: str = "model", source: str = "weights",
                    names: dict | None = None) -> None:
    """Check, then load ``state`` into ``module`` (strictly)."""
    import torch

    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise ExportError(f"{source}: {bad[0]} is not a tensor; not a state_dict of model "
                          f"'{model}'")
    check_state_dict(module, state, model=model, source=source, names=names)
    module.load_state_dict(state, strict=True)


def _shape(tensor) -> str:
    return str(tuple(tensor.shape))


def _label(key: str, names: dict | None) -> str:
    """``fc1.weight``, or ``n_code.weight (node code)`` when the submodule name differs."""
    head = key.split(".", 1)[0]
    node = (names or {}).get(head)
    return f"{key} (node {node})" if node and node != head else key
