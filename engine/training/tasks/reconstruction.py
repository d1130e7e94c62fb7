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

    def __init__(self, trainer):
        super().__init__(trainer)
        if len(self.x_train) != 1:
            raise TrainingError(f"training.task: '{self.name}' needs a model with one Input; "
                                f"'{self.model_name}' has {len(self.x_train)}")
        self.noise = float(self.config.noise)
        if self.noise and self.has_val:
            gen = torch.Generator().manual_seed(trainer.seed + VAL_NOISE_STREAM)
            clean = self.t_val
            draw = torch.randn(clean.shape, generator=gen).to(clean.device, clean.dtype)
            self.x_val = (clean + self.noise * draw,)

    def targets(self, split: str):
        x = getattr(self.dataset, f"x_{split}")
        if tuple(x.shape[1:]) != self.out_shape:
            self.fail(f"an autoencoder must output its input's shape "
                      f"{fmt_shape(tuple(x.shape[1:]))}; the output is {fmt_shape(self.out_shape)}")
        return x

    def noisy(self, clean):
        return clean + self.noise * torch.randn_like(clean) if self.noise else clean

    def train_step(self, idx) -> tuple:
        clean = self.t_train[idx]
        with self.autocast:
            loss = self.loss_fn(self.forward((self.noisy(clean),), self.net), clean)
        self.updaters[self.model_name](loss)
        return (loss.detach(),)

    def diagnose(self, idx) -> None:
        clean = self.t_train[idx]
        with torch.no_grad(), self.autocast:
            self.loss_fn(self.forward((self.noisy(clean),)), clean)

    def reconstruct(self, inputs):
        """The model's output for ``inputs`` (eval mode, no gradients)."""
        with torch.no_grad(), evaluating(self.model):
            return self.forward(inputs)
