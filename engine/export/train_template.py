"""The ``train.py`` and ``README.md`` of the python export.

``train.py`` follows the project's training block as Layerlab's trainer reads it
(``engine.training.config``): the task, the loss and its default, the optimizer (per model for a
GAN), the scheduler, L1, gradient clipping, the batch size and the epochs. It is assembled from
plain-text blocks, writing only the task in use, and runs alone or under ``torchrun``
(DistributedDataParallel, gloo on CPU and nccl on CUDA, a DistributedSampler, logging and saving on
rank 0). It imports torch and the folder's ``model.py``, nothing else. Early stopping and mixed
precision are not carried over.
"""
from __future__ import annotations

import inspect
import math

from ..errors import ExportError

HEAD = '''"""Train the exported model '{model}' of the Layerlab project {project!r}.

    python train.py [--epochs N] [--batch-size B] [--lr LR] [--device cpu|cuda] [--fresh]
    torchrun --standalone --nproc_per_node 2 train.py --epochs 5

Runs alone, or under torchrun with DistributedDataParallel (gloo on CPU, nccl on CUDA). The data
is data.pt, written with the export. Prints one JSON line per epoch; saves to --out on rank 0.
"""
import argparse
import json
import os
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from model import {imports}

HERE = Path(__file__).resolve().parent
TASK = {task!r}
LOSS = {loss!r}
LOSS_ARGS = {loss_args!r}
OPTIMIZERS = {optimizers!r}  # model -> (torch.optim class, its arguments)
SCHEDULER = {scheduler!r}  # (torch.optim.lr_scheduler class, its arguments) or None
BATCH_SIZE = {batch_size!r}
EPOCHS = {epochs!r}
SEED = {seed!r}
L1 = {l1!r}  # L1 penalty on the weight matrices (0: none)
GRAD_CLIP = {grad_clip!r}  # largest gradient norm (None: no clipping)
'''

COMMON = '''

def parse_args():
    p = argparse.ArgumentParser(description="Train the exported model.")
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    p.add_argument("--lr", type=float, default=None, help="override the learning rate")
    p.add_argument("--data", default=str(HERE / "data.pt"))
    p.add_argument("--fresh", action="store_true", help="start from random weights instead of "
                   "the exported ones")
    p.add_argument("--out", default=str(HERE / "trained_weights.pt"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args()


def load_data(path):
    if not Path(path).is_file():
        raise SystemExit(f"no data at {path}: pass --data FILE, a torch.save'd dict of tensors "
                         "x_train, x_val (and y_train, y_val for targets)")
    return torch.load(path, weights_only=True)


def setup_distributed(device):
    """(rank, world size, device); joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, torch.device(device)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return dist.get_rank(), world, torch.device("cuda", local)
    dist.init_process_group("gloo")
    return dist.get_rank(), world, torch.device("cpu")


def make_criterion(device):
    kwargs = dict(LOSS_ARGS)
    if LOSS == "HingeLoss":
        return HingeLoss(**kwargs)
    if "pos_weight" in kwargs:
        kwargs["pos_weight"] = torch.tensor(kwargs["pos_weight"], device=device)
    return getattr(nn, LOSS)(**kwargs)


def make_optimizer(model, name, lr=None):
    kind, kwargs = OPTIMIZERS[name]
    kwargs = {**kwargs, **({"lr": lr} if lr else {})}
    return getattr(torch.optim, kind)([p for p in model.parameters() if p.requires_grad], **kwargs)


def make_scheduler(optimizer, epochs, steps_per_epoch):
    """The scheduler and whether it steps after every batch (OneCycleLR) or every epoch."""
    if SCHEDULER is None:
        return None, False
    kind, kwargs = SCHEDULER[0], dict(SCHEDULER[1])
    if kind == "CosineAnnealingLR":
        kwargs.setdefault("T_max", epochs)
    elif kind == "OneCycleLR":
        kwargs.setdefault("max_lr", optimizer.param_groups[0]["lr"])
        kwargs["total_steps"] = max(1, epochs * steps_per_epoch)
        if "betas" not in optimizer.defaults and not optimizer.defaults.get("momentum"):
            kwargs["cycle_momentum"] = False
    return getattr(torch.optim.lr_scheduler, kind)(optimizer, **kwargs), kind == "OneCycleLR"


def update(loss, optimizer, model):
    """Backward with the L1 penalty, clip the gradients, step."""
    optimizer.zero_grad()
    if L1:
        loss = loss + L1 * sum(p.abs().sum() for p in model.parameters()
                               if p.requires_grad and p.dim() > 1)
    loss.backward()
    if GRAD_CLIP:
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    optimizer.step()


def loader(tensors, batch_size, world, rank):
    data = TensorDataset(*tensors)
    sampler = DistributedSampler(data, world, rank, shuffle=True, seed=SEED) if world > 1 \\
        else None
    gen = torch.Generator().manual_seed(SEED)
    return DataLoader(data, batch_size, shuffle=sampler is None, sampler=sampler,
                      generator=gen), sampler


def mean_over_ranks(total, count, device, world):
    """Average a sum over every rank's samples (the same number on every rank)."""
    t = torch.tensor([float(total), float(count)], device=device)
    if world > 1:
        dist.all_reduce(t)
    return (t[0] / t[1].clamp(min=1)).item()


def first(out):
    return out[0] if isinstance(out, tuple) else out
'''

CLASSIFICATION = '''

CLASSES = {classes!r}
BINARY = {binary!r}  # one output unit: targets 0/1, class 1 above THRESHOLD
THRESHOLD = {threshold!r}
INDEX_TARGETS = {index_targets!r}  # the loss takes class indices (else one-hot rows)


def targets(x, y):
    if BINARY:
        return y.float().unsqueeze(1)
    return y if INDEX_TARGETS else F.one_hot(y, CLASSES).float()


def task_loss(model, criterion, x, y):
    out = first(model(x))
    return criterion(out, targets(x, y)), out


def correct(out, y):
    pred = (out[:, 0] > THRESHOLD).long() if BINARY else out.argmax(dim=1)
    return (pred == y).sum().item()
'''

REGRESSION = '''

def task_loss(model, criterion, x, y):
    out = first(model(x))
    return criterion(out, y), out
'''

RECONSTRUCTION = '''

NOISE = {noise!r}  # denoising: std of the noise added to the input while training


def task_loss(model, criterion, x, y=None):
    noisy = x + NOISE * torch.randn_like(x) if NOISE and model.training else x
    out = first(model(noisy))
    return criterion(out, x), out
'''

VAE = '''

NOISE = {noise!r}  # std of the noise added to the input while training
KL_SCALE = {kl_scale!r}  # beta / values per sample, as the reconstruction loss is a mean
REPARAMETERIZE = {reparam!r}  # the submodule that samples z from (mu, logvar)
_captured = {{}}


def keep_mu_logvar(module, args):
    _captured["mu"], _captured["logvar"] = args


def task_loss(model, criterion, x, y=None):
    noisy = x + NOISE * torch.randn_like(x) if NOISE and model.training else x
    out = first(model(noisy))
    mu, logvar = _captured["mu"], _captured["logvar"]
    kl = (-0.5 * (1 + logvar - mu * mu - logvar.exp()).flatten(1).sum(dim=1)).mean()
    return criterion(out, x) + KL_SCALE * kl, out
'''

SUPERVISED_MAIN = '''

def evaluate(model, criterion, tensors, batch_size):
    model.eval()
    total, count, right = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, len(tensors[0]), max(batch_size, 256)):
            batch = [t[start:start + max(batch_size, 256)] for t in tensors]
            loss, out = task_loss(model, criterion, *batch)
            total += loss.item() * len(batch[0])
            count += len(batch[0])
            if TASK == "classification":
                right += correct(out, batch[1])
    model.train()
    result = {{"val_loss": total / max(count, 1)}}
    if TASK == "classification":
        result["val_accuracy"] = right / max(count, 1)
    return result


def main():
    args = parse_args()
    rank, world, device = setup_distributed(args.device)
    torch.manual_seed(SEED)
    data = load_data(args.data)
    keys = {keys!r}
    train = [data[k + "_train"].to(device) for k in keys]
    val = [data[k + "_val"].to(device) for k in keys if data.get(k + "_val") is not None]
    model = Model()
    if not args.fresh:
        model.load_state_dict(torch.load(HERE / "weights.pt", weights_only=True))
    model.to(device).train(){hook}
    net = DistributedDataParallel(model) if world > 1 else model
    criterion = make_criterion(device)
    optimizer = make_optimizer(model, "model", args.lr)
    batches, sampler = loader(train, args.batch_size, world, rank)
    scheduler, per_batch = make_scheduler(optimizer, args.epochs, len(batches))
    for epoch in range(1, args.epochs + 1):
        if sampler is not None:
            sampler.set_epoch(epoch)
        total, count = 0.0, 0
        for batch in batches:
            loss, _ = task_loss(net, criterion, *batch)
            update(loss, optimizer, model)
            if per_batch:
                scheduler.step()
            total += loss.item() * len(batch[0])
            count += len(batch[0])
        row = {{"event": "epoch", "epoch": epoch,
               "train_loss": mean_over_ranks(total, count, device, world)}}
        if val and len(val[0]):
            row.update(evaluate(model, criterion, val, args.batch_size))  # same on every rank
        if scheduler is not None and not per_batch:
            plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
            scheduler.step(row.get("val_loss", row["train_loss"])) if plateau else scheduler.step()
        if rank == 0:
            print(json.dumps(row), flush=True)
    if rank == 0:
        torch.save(model.state_dict(), args.out)
        print(json.dumps({{"event": "done", "out": args.out}}), flush=True)
    if world > 1:
        dist.barrier()  # leave together: rank 0 still saves after the last step
        dist.destroy_process_group()
        # every line was printed with flush=True; exit at once: torch's C++ teardown of a gloo group after Python's has aborted a rank
        # now and then ("terminate called without an active exception") after its work was done
        os._exit(0)


if __name__ == "__main__":
    main()
'''

GAN_MAIN = '''

LATENT_SHAPE = {latent!r}  # the generator's input: noise of this shape per sample


def gan_step(gen, disc, criterion, opt_g, opt_d, real, models):
    """One discriminator update, then one generator update (non-saturating)."""
    z = torch.randn(real.shape[0], *LATENT_SHAPE, device=real.device)
    fake = first(gen(z))
    d_real, d_fake = first(disc(real)), first(disc(fake.detach()))
    d_loss = criterion(d_real, torch.ones_like(d_real)) + \\
        criterion(d_fake, torch.zeros_like(d_fake))
    update(d_loss, opt_d, models["discriminator"])
    d_out = first(disc(fake))
    g_loss = criterion(d_out, torch.ones_like(d_out))
    update(g_loss, opt_g, models["generator"])
    return d_loss.item(), g_loss.item()


def main():
    args = parse_args()
    rank, world, device = setup_distributed(args.device)
    torch.manual_seed(SEED)
    real = load_data(args.data)["x_train"].to(device)
    models = {{"generator": {generator}(), "discriminator": {discriminator}()}}
    files = {files!r}
    for name, model in models.items():
        if not args.fresh:
            model.load_state_dict(torch.load(HERE / files[name], weights_only=True))
        model.to(device).train()
    gen, disc = models["generator"], models["discriminator"]
    if world > 1:
        gen, disc = DistributedDataParallel(gen), DistributedDataParallel(disc)
    criterion = make_criterion(device)
    opt_g = make_optimizer(models["generator"], "generator", args.lr)
    opt_d = make_optimizer(models["discriminator"], "discriminator", args.lr)
    batches, sampler = loader([real], args.batch_size, world, rank)
    schedulers = [make_scheduler(opt, args.epochs, len(batches)) for opt in (opt_g, opt_d)]
    for epoch in range(1, args.epochs + 1):
        if sampler is not None:
            sampler.set_epoch(epoch)
        d_total, g_total, count = 0.0, 0.0, 0
        for (batch,) in batches:
            d_loss, g_loss = gan_step(gen, disc, criterion, opt_g, opt_d, batch, models)
            d_total, g_total, count = d_total + d_loss, g_total + g_loss, count + 1
            for scheduler, per_batch in schedulers:
                if per_batch:
                    scheduler.step()
        d_mean = mean_over_ranks(d_total, count, device, world)
        g_mean = mean_over_ranks(g_total, count, device, world)
        for scheduler, per_batch in schedulers:
            if scheduler is not None and not per_batch:
                plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
                scheduler.step(g_mean) if plateau else scheduler.step()
        if rank == 0:
            print(json.dumps({{"event": "epoch", "epoch": epoch, "d_loss": d_mean,
                              "g_loss": g_mean}}), flush=True)
    if rank == 0:
        torch.save({{n: m.state_dict() for n, m in models.items()}}, args.out)
        print(json.dumps({{"event": "done", "out": args.out}}), flush=True)
    if world > 1:
        dist.barrier()  # leave together: rank 0 still saves after the last step
        dist.destroy_process_group()
        # every line was printed with flush=True; exit at once: torch's C++ teardown of a gloo group after Python's has aborted a rank
        # now and then ("terminate called without an active exception") after its work was done
        os._exit(0)


if __name__ == "__main__":
    main()
'''

TASK_BLOCKS = {"classification": CLASSIFICATION, "regression": REGRESSION,
               "forecasting": REGRESSION, "reconstruction": RECONSTRUCTION, "vae": VAE}
INDEX_LOSSES = ("CrossEntropyLoss", "HingeLoss")


# -- what the project says ------------------------------------------------------------------------
def training_config(job):
    """The project's training block as the trainer reads it (ConfigError names the field)."""
    from ..training.config import parse_training

    return parse_training(job.project.training)


def choose_task(job, config, dataset) -> str:
    """``training.task``, or the trainer's choice from the models and the dataset."""
    if config.task:
        return config.task
    models = job.project.models
    if set(models) == {"generator", "discriminator"}:
        return "gan"
    if any(g.nodes_of_type("Reparameterize") for g in models.values()):
        return "vae"
    hint = (dataset.task_hint or dataset.kind) if dataset is not None else None
    return {"unlabeled": "reconstruction"}.get(hint, hint or "regression")


def _last_layer_type(graph, model) -> str | None:
    preds = graph.predecessors(model.output_names[0])
    return graph.node(preds[0]).type if preds else None


def _out_shape(model, shapes) -> tuple:
    return tuple(shapes.info[model.output_names[0]].out_shape)


def _loss(job, task: str, config) -> tuple[str, dict]:
    if config.loss is not None:
        return config.loss.type, dict(config.loss.kwargs)
    if task == "gan":
        disc = job.model if job.name == "discriminator" else job.others["discriminator"][0]
        graph = job.project.models["discriminator"]
        return ("BCELoss" if _last_layer_type(graph, disc) == "Sigmoid"
                else "BCEWithLogitsLoss"), {}
    if task == "classification" and _out_shape(job.model, job.shapes)[-1:] == (1,):
        last = _last_layer_type(job.graph, job.model)
        return {"Sigmoid": "BCELoss", "Step": "MSELoss"}.get(last, "BCEWithLogitsLoss"), {}
    return ("CrossEntropyLoss" if task == "classification" else "MSELoss"), {}


def settings(job, task: str, config) -> dict:
    """train.py's constants."""
    loss, loss_args = _loss(job, task, config)
    names = list(job.project.models) if task == "gan" else ["model"]
    optimizers = {n: (config.optimizer_for(n if task == "gan" else job.name).type,
                      dict(config.optimizer_for(n if task == "gan" else job.name).kwargs))
                  for n in names}
    scheduler = (config.scheduler.type, dict(config.scheduler.kwargs)) if config.scheduler \
        else None
    return {"loss": loss, "loss_args": loss_args, "optimizers": optimizers,
            "scheduler": scheduler, "batch_size": config.batch_size, "epochs": config.epochs,
            "seed": config.seed, "l1": config.l1, "grad_clip": config.grad_clip}


# -- train.py -----------------------------------------------------------------------------------
def render_train(job, task: str, classes: dict[str, str], config, dataset) -> str:
    from .pycode import safe_text

    s = settings(job, task, config)
    head = HEAD.format(model=safe_text(job.name), project=safe_text(job.project.name),
                       imports=", ".join(classes.values()), task=task, **s)
    common = COMMON
    if s["loss"] == "HingeLoss":
        common += "\n\n" + _hinge_source()
    if task == "gan":
        return head + common + _gan_main(job, classes)
    if task not in TASK_BLOCKS:
        raise ExportError(f"python: train.py does not know the task '{task}'")
    values = _task_values(job, task, s, config, dataset)
    return head + common + TASK_BLOCKS[task].format(**values) + \
        SUPERVISED_MAIN.format(**values)


def _hinge_source() -> str:
    from ..training.optim import HingeLoss

    return inspect.getsource(HingeLoss).rstrip() + "\n"


def _task_values(job, task: str, s: dict, config, dataset) -> dict:
    from ..training.config import LOGIT_LOSSES

    out = _out_shape(job.model, job.shapes)
    binary = out[-1:] == (1,)
    reparam = [job.model.node_attrs[n.id] for n in job.graph.nodes_of_type("Reparameterize")
               if n.id in job.model.node_attrs]
    if task == "vae" and len(reparam) != 1:
        raise ExportError("python: task 'vae' needs exactly one Reparameterize node")
    return {"classes": getattr(dataset, "num_classes", None), "binary": binary,
            "threshold": 0.0 if s["loss"] in LOGIT_LOSSES else 0.5,
            "index_targets": s["loss"] in INDEX_LOSSES and not binary,
            "noise": config.noise, "kl_scale": config.beta / math.prod(out),
            "reparam": reparam[0] if reparam else None,
            "keys": ["x"] if task in ("reconstruction", "vae") else ["x", "y"],
            "hook": ("\n    getattr(model, REPARAMETERIZE).register_forward_pre_hook("
                     "keep_mu_logvar)" if task == "vae" else "")}


def _gan_main(job, classes: dict[str, str]) -> str:
    roles = {"generator": classes.get("generator"), "discriminator": classes.get("discriminator")}
    if None in roles.values():
        raise ExportError("python: a GAN project's models must be named 'generator' and "
                          f"'discriminator' (they are: {', '.join(job.project.models)})")
    gen_model = job.model if job.name == "generator" else job.others["generator"][0]
    gen_shapes = job.shapes if job.name == "generator" else job.others["generator"][1]
    latent = gen_shapes.info[gen_model.input_names[0]].out_shapes["out"]
    files = {n: "weights.pt" if n == job.name else f"{n}_weights.pt" for n in roles}
    return GAN_MAIN.format(latent=tuple(latent), generator=roles["generator"],
                           discriminator=roles["discriminator"], files=files)


# -- README.md ------------------------------------------------------------------------------------
README = """# {project}: model '{model}'

Exported by Layerlab. Everything here needs only PyTorch; nothing of Layerlab.

| file | what |
|---|---|
| `model.py` | `Model`, plain PyTorch (`import torch`, `torch.nn`){partner_row} |
| `weights.pt` | its weights: `Model().load_state_dict(torch.load("weights.pt", weights_only=True))`{partner_file} |
| `data.pt` | the project's training and validation tensors ({data}) |
| `train.py` | trains it: task `{task}`, loss `{loss}`, {optimizer}, batch size {batch_size}, {epochs} epochs |

```python
import torch
from model import Model

model = Model()
model.load_state_dict(torch.load("weights.pt", weights_only=True))
model.eval()
print(model({example}))
```

Training:

```sh
python train.py --epochs 5                              # one process (CPU, or CUDA if present)
torchrun --standalone --nproc_per_node 2 train.py       # DistributedDataParallel on one machine
torchrun --nnodes 2 --node_rank 0 --master_addr HOST --master_port 29500 \\
         --nproc_per_node 4 train.py                    # several machines: run on each node
```

`train.py` starts from `weights.pt` (`--fresh` starts from random weights), prints one JSON line
per epoch and saves {saved} to `trained_weights.pt` (`--out`). Under `torchrun` it uses
DistributedDataParallel (gloo on CPU, nccl on CUDA) with a DistributedSampler; only rank 0
prints and saves. Early stopping and mixed precision, if the project uses them, are not carried
over.
"""


def render_readme(job, task: str, classes: dict[str, str], config) -> str:
    s = settings(job, task, config)
    partner = [n for n in classes if n != job.name]
    shapes = [job.shapes.info[n].out_shapes["out"] for n in job.model.input_names]
    example = ", ".join(f"torch.randn(1, {', '.join(map(str, sh))})" for sh in shapes)
    data = "inputs only" if task in ("reconstruction", "vae", "gan") else "inputs and targets"
    if not job.project.dataset:
        data = "not written: the project has no dataset; give train.py --data FILE"
    optimizer = "; ".join(f"`{kind}` {args}" for kind, args in s["optimizers"].values())
    return README.format(
        project=job.project.name, model=job.name, task=task, data=data, optimizer=optimizer,
        partner_row=(f"; `{classes[partner[0]]}` is the GAN's {partner[0]}" if partner else ""),
        partner_file=(f"; `{partner[0]}_weights.pt` holds the {partner[0]}'s" if partner else ""),
        example=example, loss=s["loss"], batch_size=s["batch_size"], epochs=s["epochs"],
        saved=("both models' weights, {'generator': ..., 'discriminator': ...}," if task == "gan"
               else "the trained weights"))
