"""GAN: a generator and a discriminator, alternating updates, the non-saturating loss.

Each step draws noise of the generator Input's shape (``params.shape`` = latent size), updates the
discriminator on real (target 1) and generated (target 0, detached) samples, then the generator so
that the discriminator calls its samples real (target 1) - the non-saturating form of
Goodfellow et al. The loss is ``BCEWithLogitsLoss`` by default (``BCELoss`` when the discriminator
ends in ``Sigmoid``; ``MSELoss`` gives a least-squares GAN). Each model has its own optimizer
(``training.optimizers.generator`` / ``.discriminator`` override ``training.optimizer``).
"""
from __future__ import annotations

import torch

from engine.errors import TrainingError
from engine.layers import fmt_shape
from engine.training.config import Choice
from engine.training.optim import build_loss
from engine.training.tasks.base import Task, evaluating, first, last_layer_type, output_shape

GAN_LOSSES = ("BCEWithLogitsLoss", "BCELoss", "MSELoss")
GENERATOR, DISCRIMINATOR = "generator", "discriminator"


class GANTask(Task):
    """Adversarial training of ``generator`` against ``discriminator``."""

    name = "gan"
    step_losses = ("d_loss", "g_loss")
    epoch_keys = ("d_loss", "g_loss")

    def __init__(self, trainer):
        super().__init__(trainer)
        if set(trainer.models) != {GENERATOR, DISCRIMINATOR}:
            raise TrainingError(f"training.task: a GAN needs two models named '{GENERATOR}' and "
                                f"'{DISCRIMINATOR}'; the project has "
                                f"{', '.join(trainer.models)}")
        self.g = trainer.models[GENERATOR]
        self.d = trainer.models[DISCRIMINATOR]
        self.g_net = trainer.train_models[GENERATOR]  # as trained (maybe wrapped)
        self.d_net = trainer.train_models[DISCRIMINATOR]
        self._check_models(trainer)
        loss = self.config.loss or Choice(
            "BCELoss" if last_layer_type(trainer, DISCRIMINATOR) == "Sigmoid"
            else "BCEWithLogitsLoss")
        if loss.type not in GAN_LOSSES:
            raise TrainingError(f"training.loss: a GAN trains with {', '.join(GAN_LOSSES)}; "
                                f"got '{loss.type}'")
        self.loss_fn = build_loss(loss).to(self.device)
        self.x = self.dataset.x_train if self.dataset.in_memory else None
        shape = (self.config.batch_size, *self.d_shape)
        self.ones = torch.ones(shape, device=self.device)
        self.zeros = torch.zeros(shape, device=self.device)

    def _check_models(self, trainer) -> None:
        if len(self.g.input_names) != 1 or len(self.d.input_names) != 1:
            raise TrainingError("training.task: the GAN's generator and discriminator each need "
                                "exactly one Input")
        g_input = self.g.input_names[0]
        self.latent_shape = tuple(trainer.shapes[GENERATOR].info[g_input].out_shapes["out"])
        if not trainer.graphs[GENERATOR].node(g_input).params.get("shape"):
            raise TrainingError(f"{g_input}: the generator's Input needs params.shape, the "
                                f"latent size, e.g. [16]", g_input)
        data_shape = tuple(self.dataset.shapes["x"])
        g_out = output_shape(trainer, GENERATOR)
        if g_out != data_shape:
            node = self.g.output_names[0]
            raise TrainingError(f"{node}: the generator makes samples of shape {fmt_shape(g_out)}; "
                                f"the data are {fmt_shape(data_shape)}", node)
        self.d_shape = output_shape(trainer, DISCRIMINATOR)
        if self.d_shape not in ((1,), ()):
            node = self.d.output_names[0]
            raise TrainingError(f"{node}: the discriminator must output one score per sample, "
                                f"shape (1,); it outputs {fmt_shape(self.d_shape)}", node)

    def noise(self, n: int, generator=None):
        if generator is None:
            return torch.randn((n, *self.latent_shape), device=self.device)
        z = torch.randn((n, *self.latent_shape), generator=generator, device=generator.device)
        return z.to(self.device)

    def real(self, batch):
        """The real samples of a training batch (augmented like any training input)."""
        if self.x is not None and not self.dataset.augment.random_steps:
            return self.x[batch]
        return self.dataset.take(batch)["x"]

    def train_step(self, batch) -> tuple:
        real = self.real(batch)
        n = real.shape[0]
        ones, zeros = self.ones[:n], self.zeros[:n]
        g, d = self.g_net, self.d_net
        with self.autocast:
            fake = first(g(self.noise(n)))
            d_loss = (self.loss_fn(first(d(real)), ones)
                      + self.loss_fn(first(d(fake.detach())), zeros))
        self.updaters[DISCRIMINATOR](d_loss)
        with self.autocast:
            g_loss = self.loss_fn(first(d(fake)), ones)
        self.updaters[GENERATOR](g_loss)
        return d_loss.detach(), g_loss.detach()

    def diagnose(self, batch) -> None:
        real = self.real(batch)
        with torch.no_grad(), self.autocast:
            fake = first(self.g(self.noise(real.shape[0])))
            self.loss_fn(first(self.d(real)), self.ones[:real.shape[0]])
            self.loss_fn(first(self.d(fake)), self.zeros[:real.shape[0]])

    def dry_run(self) -> None:
        real = self.dataset.head("x", 2, "train")
        fake = first(self.g(self.noise(real.shape[0], torch.Generator().manual_seed(0))))
        first(self.d(real))
        first(self.d(fake))

    def sample(self, n: int, generator=None):
        with torch.no_grad(), evaluating(self.g):
            return first(self.g(self.noise(n, generator)))

    def probe_inputs(self, n: int) -> dict:
        real = self.dataset.head("x", n, "val" if self.has_val else "train")
        z = self.noise(n, torch.Generator().manual_seed(self.trainer.seed))
        return {GENERATOR: (z,), DISCRIMINATOR: (real,)}

    def monitor_default(self) -> str:
        return "g_loss"
