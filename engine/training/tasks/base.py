"""What every task recipe shares: the :class:`Task` interface and the single-model recipe base.

A recipe turns a batch into losses and updates (``train_step``), scores the validation set
(``evaluate``) and knows which loss fits its models. It asks the data source for the epoch's
batches (``batches``): for data in memory a batch is an index tensor drawn from the trainer's
permutation and the recipe reads ``tensor[idx]`` itself (the fast path); for streamed data a batch
is ``{key: tensor}`` already on the device (see :mod:`engine.data.source`). Tasks that make their
own data (reinforcement learning, a whole graph per step) override ``batches``,
``steps_per_epoch`` and ``train_size``.
"""
from __future__ import annotations

import contextlib

import torch

from engine.errors import TrainingError
from engine.layers import fmt_shape
from engine.training.config import Choice
from engine.training.optim import build_loss

NULL_CONTEXT = contextlib.nullcontext()
# validation samples per forward pass: at least the batch size, fewer for large samples (at most
# VAL_BATCH_BYTES of input, engine.data.source.val_chunk)
EVAL_CHUNK = 1024


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
        return int(self.dataset.train_size)

    def batches(self, epoch: int):
        """This epoch's training batches: a sized, indexable sequence (indexed to replay after
        a fault)."""
        trainer = self.trainer
        return self.dataset.train_batches(self.config.batch_size, trainer.shuffle_generator,
                                          self.device, trainer.strategy)

    def steps_per_epoch(self) -> int:
        return self.trainer.strategy.steps_per_epoch(self.train_size, self.config.batch_size)

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
        return self.dataset.val_size > 0

    @property
    def val_size(self) -> int:
        return int(self.dataset.val_size)


def input_keys(trainer, model_name: str) -> tuple[str, ...]:
    """The dataset fields feeding the Input nodes of a model, in its input order."""
    graph = trainer.graphs[model_name]
    keys = []
    for node_id in trainer.models[model_name].input_names:
        key = graph.node(node_id).params.get("key", "x")
        if key not in trainer.dataset.shapes:
            has = ", ".join(trainer.dataset.shapes)
            raise TrainingError(f"{node_id}: reads dataset field '{key}', which "
                                f"'{trainer.dataset.name}' does not have (it has {has})", node_id)
        keys.append(key)
    return tuple(keys)


def model_inputs(trainer, model_name: str, split: str) -> tuple:
    """The in-memory dataset tensors feeding the Input nodes of a model, in its input order."""
    return tuple(getattr(trainer.dataset, f"{key}_{split}")
                 for key in input_keys(trainer, model_name))


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

    Subclasses say what the target is (``target_key``, ``check_target``, ``make_target``) and
    which metrics validation reports (``eval_keys``, ``eval_terms``). With data in memory the
    targets are made once for the whole split; streamed batches get theirs batch by batch.
    """

    target_key = "y"  # the dataset field the target is made from

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
        self.keys = input_keys(trainer, self.model_name)
        self.in_memory = self.dataset.in_memory
        self.augment = self.dataset.augment
        self._augmented = self.in_memory and bool(self.augment.random_steps) and "x" in self.keys
        self._one_input = len(self.keys) == 1 and not self._augmented
        self._multi_output = len(self.model.output_names) > 1
        self.check_target(tuple(self.dataset.shapes.get(self.target_key, ())))
        if self.in_memory:
            self.x_train = model_inputs(trainer, self.model_name, "train")
            self.x_val = model_inputs(trainer, self.model_name, "val") if self.has_val else ()
            self.t_train = self.targets("train")
            self.t_val = self.targets("val") if self.has_val else None

    # -- recipe-specific parts ---------------------------------------------------------------
    def pick_loss(self) -> str:
        return self.default_loss

    def check_loss(self, loss: str) -> None:
        if loss in ("CrossEntropyLoss", "HingeLoss"):
            self.fail(f"{loss} is for classification; the task is '{self.name}'")

    def check_target(self, shape: tuple) -> None:
        """Fail with a message on the Output when the data's target field cannot be a target."""

    def make_target(self, y):
        """The loss's target for a batch (or a whole split) of the ``target_key`` field."""
        return y

    def targets(self, split: str):
        return self.make_target(getattr(self.dataset, f"{self.target_key}_{split}"))

    def inputs(self, idx, split: str = "train") -> tuple:
        """The model's inputs for a batch of in-memory indices (training ones augmented)."""
        xs = self.x_train if split == "train" else self.x_val
        if split == "train" and self._augmented:
            return tuple(self.augment.train_random(x[idx]) if key == "x" else x[idx]
                         for key, x in zip(self.keys, xs))
        return tuple(x[idx] for x in xs)

    def fetch(self, batch, split: str = "train") -> tuple:
        """(inputs, target) of a training batch, whichever way the data are held."""
        if self.in_memory:
            if self._one_input:
                return (self.x_train[0][batch],), self.t_train[batch]
            return self.inputs(batch, split), self.t_train[batch]
        fields = self.dataset.take(batch, split)
        return tuple(fields[k] for k in self.keys), self.make_target(fields[self.target_key])

    def val_parts(self):
        """(inputs, target, labels) of each validation chunk; labels are the raw ``y`` field
        (None when the data have none)."""
        size = max(EVAL_CHUNK, self.config.batch_size)
        if self.in_memory:
            from ...data.source import val_chunk

            sample_bytes = sum(x[0].numel() * x.element_size() for x in self.x_val if len(x))
            size = val_chunk(size, self.config.batch_size, sample_bytes)
            y = self.dataset.y_val
            for part in chunks(self.val_size, size):
                yield self.inputs(part, "val"), self.t_val[part], None if y is None else y[part]
            return
        for i, batch in enumerate(self.dataset.val_batches(size)):
            inputs = self.val_inputs(tuple(batch[k] for k in self.keys), i)
            yield inputs, self.make_target(batch[self.target_key]), batch.get("y")

    def val_inputs(self, inputs: tuple, chunk: int) -> tuple:
        """The inputs of the ``chunk``-th streamed validation batch (denoising adds noise)."""
        return inputs

    def fail(self, message: str):
        raise TrainingError(f"{self.output_node}: {message}", self.output_node)

    # -- steps --------------------------------------------------------------------------------
    def forward(self, inputs: tuple, net=None):
        out = (self.model if net is None else net)(*inputs)
        return out[0] if self._multi_output else out

    def train_step(self, batch) -> tuple:
        inputs, target = self.fetch(batch)
        with self.autocast:
            loss = self.loss_fn(self.forward(inputs, self.net), target)
        self.updaters[self.model_name](loss)
        return (loss.detach(),)

    def diagnose(self, batch) -> None:
        inputs, target = self.fetch(batch)
        with torch.no_grad(), self.autocast:
            self.loss_fn(self.forward(inputs), target)

    def first_batch(self) -> tuple:
        """(inputs, target) of the first two training samples, not augmented."""
        if self.in_memory:
            idx = torch.arange(min(2, self.train_size), device=self.device)
            return tuple(x[idx] for x in self.x_train), self.t_train[idx]
        batch = self.dataset.train_batches(2, torch.Generator().manual_seed(0), self.device,
                                           self.trainer.strategy)[0]
        return (tuple(batch[k][:2] for k in self.keys),
                self.make_target(batch[self.target_key][:2]))

    def dry_run(self) -> None:
        inputs, target = self.first_batch()
        out = self.forward(inputs)
        if tuple(out.shape[1:]) != tuple(self.out_shape):
            self.fail(f"the model computed {fmt_shape(tuple(out.shape[1:]))} per sample where "
                      f"shape inference expected {fmt_shape(self.out_shape)}")
        self.loss_fn(out, target)  # a target that does not fit fails here

    def probe_inputs(self, n: int) -> dict:
        split = "val" if self.has_val else "train"
        if self.in_memory:
            xs = self.x_val if self.has_val else self.x_train
            return {self.model_name: tuple(x[:n] for x in xs)}
        return {self.model_name: tuple(self.dataset.head(k, n, split) for k in self.keys)}

    def evaluate(self) -> dict:
        if not self.has_val:
            return {}
        sums, n = None, 0
        for inputs, target, labels in self.val_parts():
            with self.autocast:
                out = self.forward(inputs)
            terms = self.eval_terms(out.float(), target, labels)
            sums = terms if sums is None else [s + t for s, t in zip(sums, terms)]
            n += int(out.shape[0])
        values = (torch.stack(sums) / n).tolist()
        return dict(zip(self.eval_keys, values))

    eval_keys: tuple[str, ...] = ("val_loss", "val_mse")

    def eval_terms(self, out, target, labels) -> list:
        """Per-chunk sums (tensors) of the validation metrics named by ``eval_keys``."""
        count = out.shape[0]
        loss = self.loss_fn(out, target) * count
        mse = torch.nn.functional.mse_loss(out, target.to(out.dtype)) * count
        return [loss, mse]
