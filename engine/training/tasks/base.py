"""What every task recipe shares: the :class:`Task` interface and the single-model recipe base.

A recipe turns a batch of indices into losses and updates (``train_step``), scores the validation
set (``evaluate``) and knows which loss fits its models. Data stay on the device as whole tensors:
a batch is ``tensor[idx]`` for an index tensor ``idx`` drawn from the trainer's permutation.
"""
from __future__ import annotations

import contextlib

import torch

from engine.errors import TrainingError
from engine.layers import fmt_shape
from engine.training.config import Choice
from engine.training.optim import build_loss

NULL_CONTEXT = contextlib.nullcontext()
EVAL_CHUNK = 1024  # validation samples per forward pass (at least the batch size)


class Task:
    """A training recipe; subclasses set ``name`` and ``step_losses`` and implement the steps."""

    name = ""
    step_losses: tuple[str, ...] = ("loss",)  # what train_step returns, in order
    epoch_keys: tuple[str, ...] = ("train_loss",)  # their names in the epoch's logs
    default_loss = "MSELoss"

    def __init__(self, trainer):
        self.trainer = trainer
        self.config = trainer.config
        self.device = trainer.device
        self.dataset = trainer.dataset
        self.autocast = trainer.autocast or NULL_CONTEXT
        self.updaters: dict = {}  # model name -> Updater, bound by the trainer

    # -- the interface the trainer calls ----------------------------------------------------
    @property
    def train_size(self) -> int:
        return int(self.dataset.x_train.shape[0])

    def train_step(self, idx) -> tuple:
        """One update on the batch ``idx``; returns the detached loss tensors (no sync)."""
        raise NotImplementedError

    def evaluate(self) -> dict:
        """Validation metrics as plain floats; ``{}`` when there is no validation data."""
        return {}

    def diagnose(self, idx) -> None:
        """Run the forward passes of ``train_step(idx)`` without updating (fault finding)."""
        raise NotImplementedError

    def dry_run(self) -> None:
        """A forward pass on two samples in eval mode, to catch runtime errors before training."""
        raise NotImplementedError

    def sample(self, n: int, generator=None):
        """Generated samples (GAN, VAE); None for tasks that generate nothing."""
        return None

    def probe_inputs(self, n: int) -> dict:
        """{model name: tuple of input tensors}: a fixed batch of at most n validation samples."""
        return {}

    def monitor_default(self) -> str:
        return "val_loss" if self.has_val else "train_loss"

    @property
    def has_val(self) -> bool:
        return self.dataset.x_val is not None and int(self.dataset.x_val.shape[0]) > 0


def model_inputs(trainer, model_name: str, split: str) -> tuple:
    """The dataset tensors feeding the Input nodes of a model, in its input order."""
    graph = trainer.graphs[model_name]
    model = trainer.models[model_name]
    tensors = []
    for node_id in model.input_names:
        key = graph.node(node_id).params.get("key", "x")
        if key not in ("x", "y"):
            raise TrainingError(f"{node_id}: reads dataset field '{key}', which "
                                f"'{trainer.dataset.name}' does not have (it has x, y)", node_id)
        tensor = getattr(trainer.dataset, f"{key}_{split}")
        if tensor is None:
            raise TrainingError(f"{node_id}: reads dataset field '{key}', which "
                                f"'{trainer.dataset.name}' does not have", node_id)
        tensors.append(tensor)
    return tuple(tensors)


def output_shape(trainer, model_name: str) -> tuple:
    """The per-sample shape of a model's first Output."""
    model = trainer.models[model_name]
    node_id = model.output_names[0]
    return tuple(trainer.shapes[model_name].info[node_id].out_shape)


def last_layer_type(trainer, model_name: str) -> str | None:
    """The type of the node that feeds the model's first Output."""
    graph = trainer.graphs[model_name]
    preds = graph.predecessors(trainer.models[model_name].output_names[0])
    return graph.node(preds[0]).type if preds else None


def first(out):
    """The first Output's tensor of a model call (models with several Outputs return a tuple)."""
    return out[0] if isinstance(out, tuple) else out


@contextlib.contextmanager
def evaluating(*models):
    """Put models (and every submodule) in eval mode; restore each module's mode afterwards."""
    modes = [(m, m.training) for model in models for m in model.modules()]
    try:
        for model in models:
            model.eval()
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def chunks(n: int, size: int):
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


class SupervisedTask(Task):
    """One model, inputs from the dataset, a target per sample, a loss between output and target.

    Subclasses say what the target is (``targets``) and which metrics validation reports.
    """

    def __init__(self, trainer):
        super().__init__(trainer)
        if len(trainer.models) != 1:
            raise TrainingError(f"training.task: '{self.name}' trains one model; the project has "
                                f"{len(trainer.models)} ({', '.join(trainer.models)})")
        self.model_name = next(iter(trainer.models))
        self.model = trainer.models[self.model_name]
        self.net = trainer.train_models[self.model_name]  # the model as trained (maybe wrapped)
        self.output_node = self.model.output_names[0]
        self.out_shape = output_shape(trainer, self.model_name)
        self.loss_choice = self.config.loss or Choice(self.pick_loss())
        self.check_loss(self.loss_choice.type)
        self.loss_fn = build_loss(self.loss_choice).to(self.device)
        self.x_train = model_inputs(trainer, self.model_name, "train")
        self.x_val = model_inputs(trainer, self.model_name, "val") if self.has_val else ()
        self.t_train = self.targets("train")
        self.t_val = self.targets("val") if self.has_val else None
        self._one_input = len(self.x_train) == 1
        self._multi_output = len(self.model.output_names) > 1

    # -- recipe-specific parts ---------------------------------------------------------------
    def pick_loss(self) -> str:
        return self.default_loss

    def check_loss(self, loss: str) -> None:
        if loss in ("CrossEntropyLoss", "HingeLoss"):
            self.fail(f"{loss} is for classification; the task is '{self.name}'")

    def targets(self, split: str):
        raise NotImplementedError

    def inputs(self, idx, split: str = "train") -> tuple:
        xs = self.x_train if split == "train" else self.x_val
        return tuple(x[idx] for x in xs)

    def fail(self, message: str):
        raise TrainingError(f"{self.output_node}: {message}", self.output_node)

    # -- steps --------------------------------------------------------------------------------
    def forward(self, inputs: tuple, net=None):
        out = (self.model if net is None else net)(*inputs)
        return out[0] if self._multi_output else out

    def train_step(self, idx) -> tuple:
        inputs = (self.x_train[0][idx],) if self._one_input else self.inputs(idx)
        with self.autocast:
            loss = self.loss_fn(self.forward(inputs, self.net), self.t_train[idx])
        self.updaters[self.model_name](loss)
        return (loss.detach(),)

    def diagnose(self, idx) -> None:
        with torch.no_grad(), self.autocast:
            self.loss_fn(self.forward(self.inputs(idx)), self.t_train[idx])

    def dry_run(self) -> None:
        idx = torch.arange(min(2, self.train_size), device=self.device)
        out = self.forward(self.inputs(idx))
        if tuple(out.shape[1:]) != tuple(self.out_shape):
            self.fail(f"the model computed {fmt_shape(tuple(out.shape[1:]))} per sample where "
                      f"shape inference expected {fmt_shape(self.out_shape)}")
        self.loss_fn(out, self.t_train[idx])  # a target that does not fit fails here

    def probe_inputs(self, n: int) -> dict:
        xs = self.x_val if self.has_val else self.x_train
        return {self.model_name: tuple(x[:n] for x in xs)}

    def evaluate(self) -> dict:
        if not self.has_val:
            return {}
        n = int(self.x_val[0].shape[0])
        sums = None
        for part in chunks(n, max(EVAL_CHUNK, self.config.batch_size)):
            with self.autocast:
                out = self.forward(self.inputs(part, "val"))
            terms = self.eval_terms(out.float(), part)
            sums = terms if sums is None else [s + t for s, t in zip(sums, terms)]
        values = (torch.stack(sums) / n).tolist()
        return dict(zip(self.eval_keys, values))

    eval_keys: tuple[str, ...] = ("val_loss", "val_mse")

    def eval_terms(self, out, part) -> list:
        """Per-chunk sums (tensors) of the validation metrics named by ``eval_keys``."""
        target = self.t_val[part]
        count = out.shape[0]
        loss = self.loss_fn(out, target) * count
        mse = torch.nn.functional.mse_loss(out, target.to(out.dtype)) * count
        return [loss, mse]
