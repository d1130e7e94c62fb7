"""Variational autoencoder: reconstruction plus ``beta`` times the KL divergence of the latent.

The model's ``Reparameterize`` node receives ``mu`` and ``logvar``; a forward hook on it reads
them for the KL term ``-1/2 * sum(1 + logvar - mu^2 - exp(logvar))`` per sample. The KL is divided
by the number of output values, like the mean-reduced reconstruction loss, so ``beta = 1`` is the
usual evidence lower bound up to that constant factor. Samples come from the prior N(0, I) through
the decoder: the sub-graph downstream of ``Reparameterize``, compiled with ``start=`` and sharing
the trained modules.
"""
from __future__ import annotations

import math

import torch

from engine.errors import TrainingError
from engine.training.tasks.base import evaluating
from engine.training.tasks.reconstruction import ReconstructionTask


class VAETask(ReconstructionTask):
    """Reconstruct the input through a sampled latent code, regularised towards the prior."""

    name = "vae"
    eval_keys = ("val_loss", "val_mse", "val_kl")

    def __init__(self, trainer):
        super().__init__(trainer)
        graph = trainer.graphs[self.model_name]
        nodes = [n.id for n in graph.nodes_of_type("Reparameterize")]
        if len(nodes) != 1:
            raise TrainingError(f"training.task: 'vae' needs exactly one Reparameterize node in "
                                f"'{self.model_name}'; found {len(nodes) or 'none'}")
        self.latent_node = nodes[0]
        self.latent_shape = tuple(trainer.shapes[self.model_name].info[nodes[0]].out_shape)
        self.beta = float(self.config.beta)
        self.kl_scale = self.beta / math.prod(self.out_shape)
        module = getattr(self.model, self.model.node_attrs[self.latent_node])
        self._stats = None
        self._hook = module.register_forward_hook(self._capture)
        self.decoder = self._build_decoder(trainer, graph)

    def _capture(self, module, args, output) -> None:
        self._stats = args

    def _build_decoder(self, trainer, graph):
        from engine.compiler import compile_model

        decoder = compile_model(graph, trainer.shapes[self.model_name], start=self.latent_node)
        for attr in decoder.node_attrs.values():
            setattr(decoder, attr, getattr(self.model, attr))  # share the trained modules
        return decoder.to(self.device)

    def kl(self):
        mu, logvar = (t.float() for t in self._stats)
        per_sample = -0.5 * (1 + logvar - mu * mu - logvar.exp()).flatten(1).sum(dim=1)
        return per_sample.mean()

    def train_step(self, batch) -> tuple:
        clean = self.clean_batch(batch)
        with self.autocast:
            loss = self.loss_fn(self.forward((self.noisy(clean),), self.net), clean)
        loss = loss + self.kl_scale * self.kl()
        self.updaters[self.model_name](loss)
        return (loss.detach(),)

    def eval_terms(self, out, target, labels) -> list:
        count = out.shape[0]
        kl = self.kl() * count
        loss = self.loss_fn(out, target) * count + self.kl_scale * kl
        mse = torch.nn.functional.mse_loss(out, target) * count
        return [loss, mse, kl]

    def sample(self, n: int, generator=None):
        """n images decoded from the prior (eval mode, no gradients)."""
        z = torch.randn((n, *self.latent_shape), generator=generator,
                        device=generator.device if generator is not None else "cpu")
        with torch.no_grad(), evaluating(self.model):
            return self.decoder(z.to(self.device))
