"""TensorBoard event files for a run: scalars, weight and gradient histograms, sample images.

:class:`TensorBoardLogger` is an ordinary callback; whoever starts the training attaches it (the
CLI's ``--tensorboard [DIR]``, or the project's ``training.tensorboard``), the trainer knows
nothing of it. Tags:

- ``epoch/<key>`` for every number of an epoch's logs (``train_loss``, ``val_loss``,
  ``val_accuracy``, ``d_loss``, ``g_loss``, ``lr`` ...), x-axis: the epoch;
- ``step/<loss>`` and ``step/lr`` every ``trainer.log_every`` steps, x-axis: the global step;
- ``weights/<model>/<parameter>`` at the end of every epoch and ``grads/<model>/<parameter>``
  from the last update of every epoch (histograms; parameters are named ``<node id>.weight``...);
- ``images/samples`` (GAN, VAE: the same latent draw every epoch) and
  ``images/reconstructions`` (autoencoders: a row of validation inputs over a row of outputs),
  when the data are images (C, H, W) with 1 or 3 channels; values are clamped to [0, 1].

``tensorboard`` (the package) is imported only when a logger is made. Under DDP attach the
logger on rank 0 only.
"""
from __future__ import annotations

from pathlib import Path

from engine.errors import TrainingError
from engine.training.callbacks import Callback

DEFAULT_DIR = "tensorboard"  # under the run's output folder
INSTALL_HINT = ("writing TensorBoard event files needs the 'tensorboard' package; install it "
                "with: pip install tensorboard")


def summary_writer_class():
    """``torch.utils.tensorboard.SummaryWriter``, or a TrainingError naming the package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrainingError(f"tensorboard: {INSTALL_HINT}") from None
    return SummaryWriter


def log_dir_for(setting, out_dir, base_dir=None) -> Path | None:
    """Where the event files go: None for ``None``/``False``; ``out_dir/tensorboard`` for
    ``True``; a folder string as it is when absolute, else under ``base_dir`` (the project's
    folder for the training block's setting; the current folder for the command line's)."""
    if setting is None or setting is False:
        return None
    if setting is True:
        return Path(out_dir) / DEFAULT_DIR
    path = Path(setting).expanduser()
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path


class TensorBoardLogger(Callback):
    """Writes a run's scalars, histograms and images as TensorBoard event files."""

    def __init__(self, log_dir, *, images: int = 8, histograms: bool = True):
        self.log_dir = Path(log_dir)
        self.images = images
        self.histograms = histograms
        self._writer_class = summary_writer_class()
        self.writer = None
        self._batch = 0

    # -- hooks ---------------------------------------------------------------------------------
    def on_train_start(self, trainer) -> None:
        if self.writer is None:
            try:
                self.writer = self._writer_class(str(self.log_dir))
            except OSError as exc:
                raise TrainingError(f"tensorboard: cannot write to {self.log_dir} "
                                    f"({exc.strerror or exc})") from None

    def on_epoch_start(self, trainer, epoch: int) -> None:
        self._batch = 0

    def on_batch_end(self, trainer, step: int, logs: dict) -> None:
        self._batch = logs["batch"] + 1
        for name in (*trainer.task.step_losses, "lr"):
            if name in logs:
                self.writer.add_scalar(f"step/{name}", logs[name], step)

    def on_after_backward(self, trainer, model_name: str, model) -> None:
        if self.histograms and self._batch == trainer.steps_per_epoch - 1:
            for name, param in trainer.models[model_name].named_parameters():
                if param.grad is not None:
                    self._histogram(f"grads/{model_name}/{name}", param.grad, trainer.epoch + 1)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        for key, value in logs.items():
            if key != "epoch" and isinstance(value, (int, float)):
                self.writer.add_scalar(f"epoch/{key}", value, epoch)
        if self.histograms:
            for model_name, model in trainer.models.items():
                for name, param in model.named_parameters():
                    self._histogram(f"weights/{model_name}/{name}", param, epoch)
        if self.images:
            self._write_images(trainer, epoch)
        self.writer.flush()

    def on_train_end(self, trainer, logs: dict) -> None:
        self.close()

    def on_error(self, trainer, error: BaseException) -> None:
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # -- helpers -------------------------------------------------------------------------------
    def _histogram(self, tag: str, tensor, step: int) -> None:
        values = tensor.detach().flatten().float()
        values = values[values.isfinite()]  # a skipped mixed-precision step has inf gradients
        if values.numel():
            self.writer.add_histogram(tag, values, step)

    def _write_images(self, trainer, epoch: int) -> None:
        import torch

        task, n = trainer.task, self.images
        samples = task.sample(n, torch.Generator().manual_seed(trainer.seed))
        if _is_image(samples):
            self.writer.add_images("images/samples", _unit(samples), epoch)
        reconstruct = getattr(task, "reconstruct", None)
        if reconstruct is None:
            return
        inputs = next(iter(task.probe_inputs(n).values()), ())
        if len(inputs) == 1 and _is_image(inputs[0]):
            outputs = reconstruct(inputs)
            grid = torch.cat([inputs[0], outputs.to(inputs[0].dtype)])
            self.writer.add_images("images/reconstructions", _unit(grid), epoch)


def _is_image(batch) -> bool:
    return batch is not None and batch.dim() == 4 and batch.shape[1] in (1, 3)


def _unit(batch):
    return batch.detach().float().clamp(0, 1).cpu()
