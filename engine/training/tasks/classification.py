"""Classification: class targets, accuracy on the validation set.

With one output per class the loss compares scores with class indices (cross-entropy, hinge) or
with one-hot rows (MSE, BCE...). A model with a single output unit is a binary classifier: its
targets are 0/1 floats and it predicts class 1 when the output is above 0.5, or above 0 when the
loss takes raw scores (``BCEWithLogitsLoss``, hinge). So a perceptron - ``Linear(1)`` then
``Step`` trained with ``MSELoss`` - learns by the perceptron rule.
"""
from __future__ import annotations

import torch

from engine.layers import fmt_shape
from engine.training.config import LOGIT_LOSSES
from engine.training.tasks.base import SupervisedTask, last_layer_type

INDEX_LOSSES = ("CrossEntropyLoss", "HingeLoss")  # compare scores with class indices


class ClassificationTask(SupervisedTask):
    """Predict a class; report accuracy."""

    name = "classification"
    default_loss = "CrossEntropyLoss"
    eval_keys = ("val_loss", "val_accuracy")

    def __init__(self, trainer):
        self.classes = trainer.dataset.num_classes
        if "y" not in trainer.dataset.shapes or self.classes is None:
            from engine.errors import TrainingError

            raise TrainingError(f"training.task: classification needs class labels; dataset "
                                f"'{trainer.dataset.name}' has none")
        super().__init__(trainer)

    @property
    def units(self) -> int:
        return self.out_shape[-1] if len(self.out_shape) == 1 else -1

    @property
    def binary(self) -> bool:
        return self.units == 1

    def pick_loss(self) -> str:
        if self.units != 1:
            return "CrossEntropyLoss"
        last = last_layer_type(self.trainer, self.model_name)
        return {"Sigmoid": "BCELoss", "Step": "MSELoss"}.get(last, "BCEWithLogitsLoss")

    def check_loss(self, loss: str) -> None:
        if len(self.out_shape) != 1:
            self.fail(f"a classifier needs one score per class, shape (classes,); the output "
                      f"is {fmt_shape(self.out_shape)} (add Flatten or SequencePool, then Linear)")
        if self.binary and self.classes != 2:
            self.fail(f"one output unit makes a binary classifier, but the dataset has "
                      f"{self.classes} classes; use Linear({self.classes})")
        if self.binary and loss == "CrossEntropyLoss":
            self.fail("CrossEntropyLoss needs one output per class; with a single unit use "
                      "BCEWithLogitsLoss (or Linear(2))")
        if not self.binary and self.units != self.classes:
            self.fail(f"the output has {self.units} units but the dataset has {self.classes} "
                      f"classes; set out_features to {self.classes}")
        self.threshold = 0.0 if loss in LOGIT_LOSSES else 0.5
        self.index_targets = loss in INDEX_LOSSES and not self.binary

    def make_target(self, y):
        if self.binary:
            return y.to(torch.float32).unsqueeze(1)
        if self.index_targets:
            return y
        return torch.nn.functional.one_hot(y, self.classes).to(torch.float32)

    def predict(self, out):
        if self.binary:
            return (out[:, 0] > self.threshold).long()
        return out.argmax(dim=1)

    def eval_terms(self, out, target, labels) -> list:
        count = out.shape[0]
        loss = self.loss_fn(out, target) * count
        correct = (self.predict(out) == labels).sum()
        return [loss, correct.to(loss.dtype)]
