"""Regression: a float target per sample, scored by the loss and the MSE."""
from __future__ import annotations

import torch

from engine.errors import TrainingError
from engine.layers import fmt_shape
from engine.training.tasks.base import SupervisedTask


class RegressionTask(SupervisedTask):
    """Predict the dataset's float targets."""

    name = "regression"

    def __init__(self, trainer):
        y = trainer.dataset.y_train
        if y is None or y.dtype == torch.int64:
            what = "no targets" if y is None else "class labels"
            raise TrainingError(f"training.task: {self.name} needs float targets; dataset "
                                f"'{trainer.dataset.name}' has {what} (use task "
                                f"'classification'?)")
        super().__init__(trainer)

    def targets(self, split: str):
        y = getattr(self.dataset, f"y_{split}")
        if tuple(y.shape[1:]) != self.out_shape:
            self.fail(f"the output has shape {fmt_shape(self.out_shape)} per sample but the "
                      f"dataset's targets have {fmt_shape(tuple(y.shape[1:]))}")
        return y
