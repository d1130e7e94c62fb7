"""Task recipes, one per file: how a batch becomes losses and updates, and how to score them.

``TASKS`` maps the ``training.task`` names to recipe classes; :func:`choose_task` picks a name
when the block leaves it out (two models named generator/discriminator -> gan, a Reparameterize
node -> vae, otherwise the dataset's hint).
"""
from __future__ import annotations

from engine.errors import TrainingError
from engine.training.tasks.base import Task, evaluating
from engine.training.tasks.classification import ClassificationTask
from engine.training.tasks.dqn import DQNTask
from engine.training.tasks.forecasting import ForecastingTask
from engine.training.tasks.gan import GANTask
from engine.training.tasks.graph import GraphClassificationTask, NodeClassificationTask
from engine.training.tasks.policy_gradient import PolicyGradientTask
from engine.training.tasks.reconstruction import ReconstructionTask
from engine.training.tasks.regression import RegressionTask
from engine.training.tasks.vae import VAETask

TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (
    ClassificationTask, RegressionTask, ReconstructionTask, VAETask, GANTask, ForecastingTask,
    DQNTask, PolicyGradientTask, NodeClassificationTask, GraphClassificationTask)}

_HINTS = {"classification": "classification", "regression": "regression",
          "forecasting": "forecasting", "unlabeled": "reconstruction",
          "environment": "dqn",  # an environment without training.task: deep Q-learning
          "node_classification": "node_classification",
          "graph_classification": "graph_classification"}


def choose_task(project, dataset) -> str:
    models = project.models
    if set(models) == {"generator", "discriminator"}:
        return "gan"
    if any(g.nodes_of_type("Reparameterize") for g in models.values()):
        return "vae"
    hint = dataset.task_hint or dataset.kind
    if hint not in _HINTS:
        raise TrainingError(f"training.task: not set, and dataset '{dataset.name}' does not "
                            f"suggest one; choose one of {', '.join(TASKS)}")
    return _HINTS[hint]


def build_task(name: str, trainer) -> Task:
    return TASKS[name](trainer)


__all__ = ["TASKS", "Task", "build_task", "choose_task", "evaluating"]
