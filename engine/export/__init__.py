"""Export: a trained model leaves Layerlab in the forms the PyTorch world uses.

Public API (the command line and the window's File -> Export call the same function)::

    FORMATS                                  ("onnx", "torchscript", "safetensors", "state_dict",
                                              "python")
    export_model(project, fmt, out, *, weights=None, model=None, untrained=False)
                                             -> ExportResult (path, format, model, notes, checks)
    default_out_path(project, fmt, model=None) -> Path   a suggestion for a save dialog
    pick_model(project, model=None)          -> (name, note or None)
    ExportError                              every user mistake (bad project, weights, path)

``weights`` is the ``weights.pt`` that training writes (``{model name: state_dict}``), a plain
state_dict or ``.safetensors`` file, or such a dict already loaded. Every format is written to a
temporary beside ``out`` and renamed into place once checked: ONNX against onnxruntime,
TorchScript and the generated ``model.py`` against the engine's model, at batch sizes 1 and 7.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ExportError
from .weights import WeightsFileError

FORMATS = ("onnx", "torchscript", "safetensors", "state_dict", "python")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt", "safetensors": ".safetensors",
            "state_dict": ".pt", "python": ""}
DESCRIPTIONS = {
    "onnx": "ONNX model (opset 17, dynamic batch), checked with onnxruntime",
    "torchscript": "TorchScript module for torch.jit.load (dynamic batch)",
    "safetensors": "weights as safetensors",
    "state_dict": "weights as a PyTorch state_dict (.pt)",
    "python": "a folder with plain PyTorch code (model.py), the weights and train.py",
}
NO_WEIGHTS = ("no weights given: train first (layerlab train PROJECT) and pass "
              "--weights OUT/weights.pt, or pass --untrained")


@dataclass
class ExportResult:
    """What an export wrote and what its checks measured."""

    path: Path
    format: str
    model: str
    notes: list[str] = field(default_factory=list)
    checks: dict = field(default_factory=dict)  # e.g. {"max_abs_diff": 2e-7, "opset": 17}

    def summary(self) -> str:
        """One line for a status bar or the command line."""
        text = f"exported model '{self.model}' as {self.format} to {self.path}"
        diff = self.checks.get("max_abs_diff")
        if diff == 0:
            text += " (outputs equal the model's at batch sizes 1 and 7)"
        elif diff is not None:
            text += f" (outputs match the model within {diff:.2g} at batch sizes 1 and 7)"
        elif "tensors" in self.checks:
            text += f" ({self.checks['tensors']} tensors)"
        return text


def pick_model(project, model: str | None = None) -> tuple[str, str | None]:
    """The model to export and, when the choice was made for the user, a note saying so."""
    names = list(project.models)
    if model is not None:
        if model not in project.models:
            raise ExportError(f"the project has no model '{model}' (it has: {', '.join(names)})")
        return model, None
    if len(names) == 1:
        return names[0], None
    return names[0], (f"the project has models {', '.join(names)}; exporting '{names[0]}' "
                      "(the first); choose another with --model NAME")


def default_out_path(project, fmt: str, model: str | None = None) -> Path:
    """A file (or, for python, folder) name next to the project: ``<project>_<model>.onnx``."""
    stem = re.sub(r"\W+", "_", project.name).strip("_").lower() or "model"
    if model and len(project.models) > 1:
        stem += f"_{model}"
    if fmt == "python":
        stem += "_pytorch"
    return project.base_dir / (stem + SUFFIXES[fmt])


def export_model(project, fmt: str, out: str | os.PathLike, *, weights=None,
                 model: str | None = None, untrained: bool = False) -> ExportResult:
    """Export one model of ``project`` as ``fmt`` to ``out``; ExportError for any user mistake."""
    from .build import build_job

    if fmt not in FORMATS:
        raise ExportError(f"unknown format '{fmt}'; choose one of {', '.join(FORMATS)}")
    if weights is None and not untrained:
        raise ExportError(NO_WEIGHTS)
    name, note = pick_model(project, model)
    job = build_job(project, name, weights)
    checks = _writer(fmt)(job, Path(out))
    notes = [note] if note else []
    if weights is None:
        notes.append("exported untrained (freshly initialised) weights")
    return ExportResult(Path(out), fmt, name, notes, checks)


def _writer(fmt: str):
    from . import formats, pycode

    return {"onnx": formats.write_onnx, "torchscript": formats.write_torchscript,
            "safetensors": formats.write_safetensors, "state_dict": formats.write_state_dict,
            "python": pycode.write_python}[fmt]


__all__ = ["FORMATS", "SUFFIXES", "DESCRIPTIONS", "NO_WEIGHTS", "ExportResult", "ExportError",
           "WeightsFileError", "export_model", "default_out_path", "pick_model"]
