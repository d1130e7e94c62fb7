"""Reconstruction (autoencoders): the target is the input itself.

With ``training.noise`` > 0 the model sees its input plus Gaussian noise of that standard
deviation and must reproduce the clean input (a denoising autoencoder). The validation inputs get
one fixed draw of noise, so validation losses of different epochs compare like with like.
"""
from __future__ import annotations

import torch

from engine.errors import TrainingError
from engine.layers import fmt_shape
from engine.training.tasks.base import SupervisedTask, evaluating

VAL_NOISE_STREAM = 7919  # offset of the seed of the fixed validation noise


class ReconstructionTask(SupervisedTask):
    """Reproduce the input (optionally from a noisy copy of it)."""

    name = "reconstruction"
    target_key = "x"

    def __init__(self, trainer):
        super().__init__(trainer)
        if self.keys != ("x",):
            raise TrainingError(f"training.task: '{self.name}' needs a model with one Input of "
                                f"the dataset's x; '{self.model_name}' reads "
                                f"{', '.join(self.keys)}")
        self.noise = float(self.config.noise)
        if self.noise and self.has_val and self.in_memory:
            clean = self.t_val
            draw = torch.randn(clean.shape, generator=self._val_generator(0))
            self.x_val = (clean + self.noise * draw.to(clean.device, clean.dtype),)

    def _val_generator(self, chunk: int):
        return torch.Generator().manual_seed(self.trainer.seed + VAL_NOISE_STREAM + chunk)

    def check_target(self, shape: tuple) -> None:
        if shape != self.out_shape:
            self.fail(f"an autoencoder must output its input's shape {fmt_shape(shape)}; the "
                      f"output is {fmt_shape(self.out_shape)}")

    def val_inputs(self, inputs: tuple, chunk: int) -> tuple:
        if not self.noise:
            return inputs
        (clean,) = inputs
        draw = torch.randn(clean.shape, generator=self._val_generator(chunk))
        return (clean + self.noise * draw.to(clean.device, clean.dtype),)

    def clean_batch(self, batch):
        """The (augmented) clean inputs of a training batch: the model's target."""
        if self.in_memory:
            return self.inputs(batch)[0] if self._augmented else self.t_train[batch]
        return self.dataset.take(batch)["x"]

    def noisy(self, clean):
        return clean + self.noise * torch.randn_like(clean) if self.noise else clean

    def train_step(self, batch) -> tuple:
        clean = self.clean_batch(batch)
        with self.autocast:
            loss = self.loss_fn(self.forward((self.noisy(clean),), self.net), clean)
        self.updaters[self.model_name](loss)
        return (loss.detach(),)

    def diagnose(self, batch) -> None:
        clean = self.clean_batch(batch)
        with torch.no_grad(), self.autocast:
            self.loss_fn(self.forward((self.noisy(clean),)), clean)

    def reconstruct(self, inputs):
        """The model's output for ``inputs`` (eval mode, no gradients)."""
        with torch.no_grad(), evaluating(self.model):
            return self.forward(inputs)
