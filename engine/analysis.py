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
        problems.append(_data_problem(project, exc))
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
                    problems[0][0].startswith(("dataset", "environment")):
                continue  # the dataset problem already explains it
            problems.append((node_id, msg + suffix))
        if project.environment and input_shapes:
            problems += _environment_problems(project, graph, shapes, suffix)
    return results, problems


def _data_problem(project: Project, exc: DataError) -> tuple[str, str]:
    """An environment's problem names its own field (``environment.name: ...``)."""
    text = str(exc)
    if project.environment and text.startswith("environment") and ": " in text:
        where, msg = text.split(": ", 1)
        return where, msg
    return "dataset", text


def _environment_problems(project: Project, graph, shapes, suffix: str) -> list:
    """The Outputs of a reinforcement-learning model against the environment's actions."""
    from .data.environment import block_params, output_problems, spaces

    task = project.training.get("task") if isinstance(project.training, dict) else None
    env = spaces(block_params(project.environment))
    return [(where, msg + suffix) for where, msg in output_problems(env, graph, shapes, task)]
