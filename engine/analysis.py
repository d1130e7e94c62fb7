"""Whole-project checks shared by the command line and the window."""
from __future__ import annotations

from .errors import DataError
from .project import Project
from .shapes import ShapeInference, infer_shapes


def analyze(project: Project) -> tuple[dict[str, ShapeInference], list[tuple[str, str]]]:
    """Shape inference for every model, and every problem as ``(where, message)`` lines.

    ``where`` is a node id (with `` (model NAME)`` appended to the message when the project has
    several models), a model name for model-wide problems, or ``dataset``.
    """
    problems: list[tuple[str, str]] = []
    try:
        input_shapes = project.input_shapes()
    except DataError as exc:
        problems.append(("dataset", str(exc)))
        input_shapes = {}
    results = {}
    several = len(project.models) > 1
    for name, graph in project.models.items():
        shapes = infer_shapes(graph, input_shapes)
        results[name] = shapes
        suffix = f" (model {name})" if several else ""
        problems += [(name, m) for m in shapes.model_problems()]
        order = {n: i for i, n in enumerate(graph.node_ids())}
        for node_id, msg in sorted(shapes.errors().items(), key=lambda kv: order[kv[0]]):
            if msg.startswith("has no shape") and not input_shapes and problems[:1] and \
                    problems[0][0] == "dataset":
                continue  # the dataset problem already explains it
            problems.append((node_id, msg + suffix))
    return results, problems
