"""From a project and a weights file to the compiled, loaded model an exporter writes."""
from __future__ import annotations

import functools
import os

from ..compiler import CompileError, compile_model
from ..shapes import infer_shapes
from .formats import ExportJob, example_inputs
from .weights import load_state_dict, pick_state_dict, read_weights


def build_job(project, name: str, weights=None) -> ExportJob:
    """Compile model ``name`` (CompileError names the node at fault), load its weights."""
    data, source = _weights_data(weights)
    input_shapes = project.input_shapes()
    shapes = infer_shapes(project.models[name], input_shapes)
    model = _compiled(project, name, shapes, data, source, required=True)
    others = {}
    for other, graph in project.models.items():
        if other != name:
            try:
                other_shapes = infer_shapes(graph, input_shapes)
                compiled = _compiled(project, other, other_shapes, data, source)
                others[other] = (compiled, other_shapes)
            except CompileError:
                continue  # only a GAN's python export needs the partner; it says so itself
    make = functools.partial(example_inputs, model, project.models[name], shapes)
    return ExportJob(name, model, make, project, project.models[name], shapes, others)


def _weights_data(weights) -> tuple[dict | None, str]:
    if weights is None:
        return None, "weights"
    if isinstance(weights, (str, os.PathLike)):
        return read_weights(weights), str(weights)
    return weights, "weights"


def _compiled(project, name: str, shapes, data, source: str, required: bool = False):
    """The compiled model in evaluation mode, seeded like training, weights loaded if given."""
    import torch

    seed = project.training.get("seed", 0)
    torch.manual_seed(seed if isinstance(seed, int) and not isinstance(seed, bool) else 0)
    model = compile_model(project.models[name], shapes)
    if data is not None:
        flat = all(isinstance(v, torch.Tensor) for v in data.values())
        if required or (not flat and name in data):
            names = {a: n for n, a in model.node_attrs.items()}
            state = pick_state_dict(data, name, source)
            load_state_dict(model, state, model=name, source=source, names=names)
    return model.eval()
