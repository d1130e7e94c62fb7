"""The hooks a :class:`~engine.training.Trainer` calls; subclass and override what you need.

The trainer knows nothing of its listeners: it calls these methods, in the order the callbacks
were given, from the thread that runs ``fit()``. A method left as the no-op below costs nothing
per step: the trainer calls only the hooks a callback overrides.

Epochs are numbered from 1. ``logs`` values are plain Python floats (never tensors):

- ``on_batch_end(trainer, step, logs)``: ``step`` is the global step count after this batch.
  ``logs`` always holds ``epoch`` and ``batch`` (0-based within the epoch); the losses are
  read from the device only every ``trainer.log_every`` steps and at the end of an epoch, so
  ``loss`` (GAN: ``d_loss``, ``g_loss``) and ``lr`` are present only on those steps, holding the
  mean over the steps since the previous one. Probes add ``probes`` when they refreshed.
- ``on_after_backward(trainer, model_name, model)``: gradients are fresh (and unscaled under
  mixed precision); called once per model update (a GAN step calls it for both models).
- ``on_epoch_end(trainer, epoch, logs)``: ``logs`` is the epoch's history entry
  (``train_loss``, ``val_loss``, ``val_accuracy`` ... see the task), also in ``trainer.history``.
- ``on_train_end(trainer, logs)``: ``logs`` holds ``stopped`` ('completed', 'stopped',
  'early_stopping'), ``epochs``, ``steps`` and ``seconds``. Not called when training failed.
- ``on_error(trainer, error)``: training failed; ``fit()`` re-raises the error afterwards.
"""
from __future__ import annotations

HOOKS = ("on_train_start", "on_epoch_start", "on_batch_end", "on_after_backward",
         "on_epoch_end", "on_train_end", "on_error")


class Callback:
    """Base class of training listeners: every hook is a no-op."""

    def on_train_start(self, trainer) -> None:
        pass

    def on_epoch_start(self, trainer, epoch: int) -> None:
        pass

    def on_batch_end(self, trainer, step: int, logs: dict) -> None:
        pass

    def on_after_backward(self, trainer, model_name: str, model) -> None:
        pass

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        pass

    def on_train_end(self, trainer, logs: dict) -> None:
        pass

    def on_error(self, trainer, error: BaseException) -> None:
        pass


def overriding(callbacks, hook: str) -> list:
    """The bound ``hook`` methods of the callbacks that override it (the others are no-ops)."""
    base = getattr(Callback, hook)
    found = []
    for cb in callbacks:
        if hook in getattr(cb, "__dict__", {}) or getattr(type(cb), hook, base) is not base:
            found.append(getattr(cb, hook))
    return found


class LambdaCallback(Callback):
    """A callback from plain functions, e.g. ``LambdaCallback(on_epoch_end=print_epoch)``."""

    def __init__(self, **hooks):
        unknown = set(hooks) - set(HOOKS)
        if unknown:
            raise TypeError(f"unknown hook(s): {', '.join(sorted(unknown))}")
        for name, fn in hooks.items():
            setattr(self, name, fn)
