"""The training block: defaults, every optimizer/scheduler/loss, and clear messages."""
from __future__ import annotations

import sys

import pytest
import torch

from engine.training.config import (LOSSES, OPTIMIZERS, SCHEDULERS, ConfigError, parse_training,
                                    training_problems)
from engine.training.optim import Updater, build_loss, build_optimizer, build_scheduler

torch.set_num_threads(1)


def problems(block) -> list[str]:
    return [f"{where}: {msg}" for where, msg in training_problems(block)]


def test_config_imports_no_torch():
    import subprocess

    code = ("import sys; import engine.training.config as c; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.stdout.strip() == "False", out.stderr


def test_defaults_and_the_design_example():
    cfg = parse_training({"task": "classification", "loss": "CrossEntropyLoss",
                          "optimizer": {"type": "Adam", "lr": 0.01},
                          "batch_size": 64, "epochs": 30, "seed": 0})
    assert (cfg.task, cfg.loss.type, cfg.optimizer.type) == ("classification",
                                                              "CrossEntropyLoss", "Adam")
    assert cfg.optimizer.kwargs == {"lr": 0.01} and (cfg.batch_size, cfg.epochs) == (64, 30)
    empty = parse_training({})
    assert empty.optimizer.type == "Adam" and empty.scheduler is None and empty.task is None
    assert parse_training(None).epochs == empty.epochs


def test_loss_aliases_and_objects():
    assert parse_training({"loss": "mse"}).loss.type == "MSELoss"
    assert parse_training({"loss": "cross_entropy"}).loss.type == "CrossEntropyLoss"
    assert parse_training({"loss": "hinge"}).loss.type == "HingeLoss"
    huber = parse_training({"loss": {"type": "HuberLoss", "delta": 0.5}}).loss
    assert huber.kwargs == {"delta": 0.5}


def test_unknown_keys_are_kept_and_misspellings_warned():
    cfg = parse_training({"epoch": 3, "my_gui_setting": {"x": 1}})
    assert cfg.extra == {"epoch": 3, "my_gui_setting": {"x": 1}}
    assert cfg.warnings == ["training.epoch: unknown setting (did you mean 'epochs'?); it is "
                            "ignored"]


@pytest.mark.parametrize("block,message", [
    ({"optimizer": {"type": "Adam", "lr": -1}},
     "training.optimizer.lr: must be a positive number; got -1"),
    ({"optimizer": {"type": "Adamm"}},
     "training.optimizer.type: unknown optimizer \"Adamm\" (did you mean 'Adam'?); known: SGD, "
     "Adam, AdamW, RMSprop, Adagrad"),
    ({"optimizer": {"type": "SGD", "momentun": 0.9}},
     "training.optimizer.momentun: unknown setting (did you mean 'momentum'?)"),
    ({"optimizer": {"type": "SGD", "nesterov": True}},
     "training.optimizer.nesterov: needs a momentum above 0 and no dampening"),
    ({"optimizer": {"type": "Adam", "betas": [0.9]}},
     "training.optimizer.betas: must be two numbers in [0, 1), e.g. [0.9, 0.999]; got [0.9]"),
    ({"batch_size": 0}, "training.batch_size: must be a whole number of at least 1; got 0"),
    ({"epochs": "ten"}, "training.epochs: must be a whole number of at least 1; got \"ten\""),
    ({"seed": 1.5}, "training.seed: must be a whole number of at least 0; got 1.5"),
    ({"task": "clasification"},
     "training.task: must be one of classification, regression, reconstruction, vae, gan, "
     "forecasting, dqn, policy_gradient, node_classification, graph_classification; got "
     "\"clasification\" (did you mean 'classification'?)"),
    ({"loss": "MSE Los"}, "training.loss: unknown loss \"MSE Los\""),
    ({"loss": {"type": "HuberLoss", "delta": 0}},
     "training.loss.delta: must be a positive number; got 0"),
    ({"scheduler": {"type": "StepLr"}},
     "training.scheduler.type: unknown scheduler \"StepLr\" (did you mean 'StepLR'?)"),
    ({"scheduler": {"type": "ReduceLROnPlateau", "factor": 1.5}},
     "training.scheduler.factor: must be a number in (0, 1); got 1.5"),
    ({"early_stopping": {"patience": 0}},
     "training.early_stopping.patience: must be a whole number of at least 1; got 0"),
    ({"early_stopping": "yes"}, "training.early_stopping: must be true, false or an object"),
    ({"grad_clip": -2}, "training.grad_clip: must be a positive number; got -2"),
    ({"l1": "a lot"}, "training.l1: must be a number of 0 or more; got \"a lot\""),
    ({"amp": 1}, "training.amp: must be true or false; got 1"),
    ({"device": "gpu"}, "training.device: must be one of auto, cpu, cuda, mps or cuda:N; "
                        "got \"gpu\""),
    ({"task": "gan", "early_stopping": True},
     "training.early_stopping: is not available for a GAN"),
    ({"task": "classification", "noise": 0.2}, "training.noise: adds input noise for "
                                               "reconstruction only"),
    ({"optimizers": [1]}, "training.optimizers: must be an object of model name -> optimizer"),
    ("fast", "training: must be an object; got \"fast\""),
])
def test_bad_values_get_a_message_naming_the_field(block, message):
    found = problems(block)
    assert any(p.startswith(message) for p in found), found


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse_training({"batch_size": -1, "epochs": 0, "optimizer": {"lr": "fast"}})
    assert [w for w, _ in err.value.problems] == ["training.batch_size", "training.epochs",
                                                  "training.optimizer.lr"]
    assert str(err.value).count("\n") == 2


def test_per_model_optimizers_override_the_shared_one():
    cfg = parse_training({"optimizer": {"type": "Adam", "lr": 0.001, "betas": [0.5, 0.999]},
                          "optimizers": {"generator": {"lr": 0.0002},
                                         "discriminator": {"type": "SGD", "lr": 0.01}}})
    assert cfg.optimizer_for("generator").kwargs == {"lr": 0.0002, "betas": (0.5, 0.999)}
    assert cfg.optimizer_for("discriminator").type == "SGD"
    assert cfg.optimizer_for("discriminator").kwargs == {"lr": 0.01}
    assert cfg.optimizer_for("other").kwargs["lr"] == 0.001


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))


def _one_step(model, optimizer, schedule=None, **updater):
    x, y = torch.randn(8, 3), torch.randn(8, 2)
    before = [p.detach().clone() for p in model.parameters()]
    Updater(None, "model", model, optimizer, **updater)(((model(x) - y) ** 2).mean())
    if schedule is not None:
        if schedule.per_batch:
            schedule.scheduler.step()
        schedule.epoch_end(1.0)
    return any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimizer_builds_and_steps(name):
    extra = {"SGD": {"momentum": 0.9, "nesterov": True}, "Adam": {"amsgrad": True},
             "AdamW": {"weight_decay": 0.1}, "RMSprop": {"centered": True, "momentum": 0.5},
             "Adagrad": {"lr_decay": 0.01}}[name]
    cfg = parse_training({"optimizer": {"type": name, **extra}})
    model = _model()
    opt = build_optimizer(cfg.optimizer, model.parameters())
    assert type(opt).__name__ == name
    assert _one_step(model, opt)


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_scheduler_builds_and_steps(name):
    cfg = parse_training({"optimizer": {"type": "SGD", "lr": 0.1},
                          "scheduler": {"type": name}})
    model = _model()
    opt = build_optimizer(cfg.optimizer, model.parameters())
    schedule = build_scheduler(cfg.scheduler, opt, epochs=3, steps_per_epoch=4)
    assert type(schedule.scheduler).__name__ == name
    assert schedule.per_batch == (name == "OneCycleLR")
    assert _one_step(model, opt, schedule)


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_builds_and_backpropagates(name):
    loss = build_loss(parse_training({"loss": name}).loss)
    scores = torch.randn(6, 3, requires_grad=True)
    if name in ("CrossEntropyLoss", "HingeLoss"):
        target = torch.tensor([0, 1, 2, 0, 1, 2])
    else:
        target = torch.rand(6, 3)
    inputs = scores.sigmoid() if name == "BCELoss" else scores
    value = loss(inputs, target)
    value.backward()
    assert value.ndim == 0 and scores.grad is not None and torch.isfinite(value)


def test_binary_hinge_takes_zero_one_targets():
    loss = build_loss(parse_training({"loss": "hinge"}).loss)
    scores = torch.tensor([[2.0], [-2.0], [0.5]])
    assert loss(scores, torch.tensor([[1.0], [0.0], [0.0]])).item() == pytest.approx(1.5 / 3)


def test_l1_and_clipping_in_the_update():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    grads = []
    hook = lambda t, name, m: grads.append(  # noqa: E731
        torch.nn.utils.get_total_norm([p.grad for p in m.parameters()]).item())
    Updater(None, "model", model, opt, clip=1e-3, hooks=[hook])(model(torch.randn(4, 3)).sum())
    total = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item()
    assert grads[0] > 1e-3 and total == pytest.approx(1e-3, rel=1e-4)
    plain, penalised = _model(), _model()
    for m, l1 in ((plain, 0.0), (penalised, 1.0)):
        Updater(None, "m", m, torch.optim.SGD(m.parameters(), lr=0.0), l1=l1)(
            m(torch.ones(1, 3)).sum() * 0)
    assert plain[0].weight.grad.abs().sum() == 0
    assert torch.equal(penalised[0].weight.grad, penalised[0].weight.detach().sign())
    assert penalised[0].bias.grad.abs().sum() == 0  # biases are not penalised


def test_a_bad_training_block_stops_the_trainer_before_any_work():
    from engine.examples import EXAMPLES_DIR
    from engine.project import load_project
    from engine.training import Trainer, TrainingError

    project = load_project(EXAMPLES_DIR / "perceptron.layerlab.json")
    project.training = {**project.training, "optimizer": {"type": "SGD", "lr": -1}}
    with pytest.raises(TrainingError, match=r"training.optimizer.lr: must be a positive number; "
                                            r"got -1"):
        Trainer(project)
