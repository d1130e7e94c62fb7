"""Regression: a float target per sample, scored by the loss and the MSE."""
from __future__ import annotations

from engine.errors import TrainingError
from engine.layers import fmt_shape
from engine.training.tasks.base import SupervisedTask


class RegressionTask(SupervisedTask):
    """Predict the dataset's float targets."""

    name = "regression"

    def __init__(self, trainer):
        data = trainer.dataset
        if "y" not in data.shapes or data.kind == "classification":
            what = "no targets" if "y" not in data.shapes else "class labels"
            raise TrainingError(f"training.task: {self.name} needs float targets; dataset "
                                f"'{trainer.dataset.name}' has {what} (use task "
                                f"'classification'?)")
        super().__init__(trainer)

    def check_target(self, shape: tuple) -> None:
        if shape != self.out_shape:
            self.fail(f"the output has shape {fmt_shape(self.out_shape)} per sample but the "
                      f"dataset's targets have {fmt_shape(shape)}")
