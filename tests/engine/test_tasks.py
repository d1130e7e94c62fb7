"""Task recipes: targets and losses per family, shape checks, samples of GANs and VAEs."""
from __future__ import annotations

import pytest
import torch

from engine.graph import Graph
from engine.project import Project
from engine.training import Trainer, TrainingError

torch.set_num_threads(1)

MOONS = {"name": "moons", "params": {"n_samples": 300, "noise": 0.1}, "val_split": 0.2}


def chain(*layers, input_params=None, name="model") -> Graph:
    """Input -> layers... -> Output; each layer is (type, params)."""
    g = Graph(name)
    g.add_node("Input", "x", input_params or {})
    prev = "x"
    for i, (kind, params) in enumerate(layers):
        node = f"l{i}"
        g.add_node(kind, node, params)
        g.connect(prev, node)
        prev = node
    g.add_node("Output", "y")
    g.connect(prev, "y")
    return g


def project(dataset, training, *graphs) -> Project:
    models = {g.name: g for g in graphs}
    return Project("test", models, dataset, {"epochs": 3, "batch_size": 32, "seed": 1,
                                             **training})


MLP2 = [("Linear", {"out_features": 16}), ("ReLU", {})]


@pytest.mark.parametrize("loss,last,threshold", [
    ("BCEWithLogitsLoss", [], 0.0), ("HingeLoss", [], 0.0),
    ("BCELoss", [("Sigmoid", {})], 0.5), ("MSELoss", [("Sigmoid", {})], 0.5),
])
def test_a_one_unit_classifier_is_binary(loss, last, threshold):
    graph = chain(*MLP2, ("Linear", {"out_features": 1}), *last)
    trainer = Trainer(project(MOONS, {"loss": loss, "optimizer": {"lr": 0.02}}, graph))
    task = trainer.task
    assert task.binary and task.threshold == threshold
    assert task.t_train.dtype == torch.float32 and task.t_train.shape[1:] == (1,)
    assert set(task.t_train.unique().tolist()) == {0.0, 1.0}
    history = trainer.fit().history
    assert history[-1]["val_accuracy"] > 0.75


def test_default_losses_follow_the_output():
    multi = Trainer(project(MOONS, {}, chain(*MLP2, ("Linear", {"out_features": 2}))))
    assert multi.task.loss_choice.type == "CrossEntropyLoss"
    logits = Trainer(project(MOONS, {}, chain(*MLP2, ("Linear", {"out_features": 1}))))
    assert logits.task.loss_choice.type == "BCEWithLogitsLoss"
    step = Trainer(project(MOONS, {}, chain(("Linear", {"out_features": 1}), ("Step", {}))))
    assert step.task.loss_choice.type == "MSELoss"


def test_mse_on_several_classes_uses_one_hot_targets():
    trainer = Trainer(project(MOONS, {"loss": "MSELoss"},
                              chain(*MLP2, ("Linear", {"out_features": 2}))))
    assert trainer.task.t_train.shape[1:] == (2,)
    assert torch.equal(trainer.task.t_train.argmax(1), trainer.dataset.y_train)
    trainer.fit()


@pytest.mark.parametrize("out,loss,message", [
    (1, "CrossEntropyLoss", "y: CrossEntropyLoss needs one output per class"),
    (3, None, "y: the output has 3 units but the dataset has 2 classes; set out_features to 2"),
])
def test_classifier_outputs_must_fit_the_classes(out, loss, message):
    training = {"loss": loss} if loss else {}
    graph = chain(*MLP2, ("Linear", {"out_features": out}))
    with pytest.raises(TrainingError) as err:
        Trainer(project(MOONS, training, graph))
    assert str(err.value).startswith(message) and err.value.node == "y"


def test_a_one_unit_classifier_needs_two_classes():
    blobs = {"name": "blobs", "params": {"n_samples": 90, "classes": 3}}
    with pytest.raises(TrainingError, match="y: one output unit makes a binary classifier, but "
                                            "the dataset has 3 classes"):
        Trainer(project(blobs, {}, chain(("Linear", {"out_features": 1}))))


def test_regression_checks_the_target_shape_and_learns():
    sine = {"name": "sine", "params": {"n_samples": 400}}
    with pytest.raises(TrainingError, match=r"y: the output has shape \(2,\) per sample but the "
                                            r"dataset's targets have \(1,\)"):
        Trainer(project(sine, {}, chain(*MLP2, ("Linear", {"out_features": 2}))))
    with pytest.raises(TrainingError, match="regression needs float targets"):
        Trainer(project(MOONS, {"task": "regression"}, chain(("Linear", {"out_features": 1}))))
    trainer = Trainer(project(sine, {"epochs": 15, "optimizer": {"lr": 0.01}},
                              chain(("Linear", {"out_features": 32}), ("Tanh", {}),
                                    ("Linear", {"out_features": 1}))))
    assert trainer.task_name == "regression"
    history = trainer.fit().history
    assert history[-1]["val_mse"] < history[0]["val_mse"] * 0.5


def test_forecasting_on_sequences():
    seq = {"name": "sine_sequence", "params": {"n_samples": 300, "length": 12}}
    graph = chain(("GRU", {"hidden_size": 8}), ("SequencePool", {"mode": "last"}),
                  ("Linear", {"out_features": 1}))
    trainer = Trainer(project(seq, {"optimizer": {"lr": 0.01}}, graph))
    assert trainer.task_name == "forecasting"
    history = trainer.fit().history
    assert history[-1]["val_loss"] < history[0]["val_loss"]


def _autoencoder():
    return chain(("Flatten", {}), ("Linear", {"out_features": 8}), ("ReLU", {}),
                 ("Linear", {"out_features": 64}), ("Sigmoid", {}),
                 ("Reshape", {"shape": [1, 8, 8]}))


DIGITS = {"name": "digits", "val_split": 0.8}


def test_reconstruction_targets_are_the_clean_inputs():
    trainer = Trainer(project(DIGITS, {"task": "reconstruction", "noise": 0.5},
                              _autoencoder()))
    task = trainer.task
    assert task.t_train is trainer.dataset.x_train
    assert not torch.equal(task.x_val[0], trainer.dataset.x_val)  # fixed validation noise
    first = task.x_val[0].clone()
    trainer.fit()
    assert torch.equal(task.x_val[0], first)
    inputs = trainer.dataset.x_val[:3]
    assert task.reconstruct((inputs,)).shape == inputs.shape
    with pytest.raises(TrainingError, match="an autoencoder must output its input's shape"):
        Trainer(project(DIGITS, {"task": "reconstruction"},
                        chain(("Flatten", {}), ("Linear", {"out_features": 64}))))


def _vae() -> Graph:
    g = Graph("model")
    for node, kind, params in [
        ("x", "Input", {}), ("flat", "Flatten", {}), ("enc", "Linear", {"out_features": 16}),
        ("act", "ReLU", {}), ("mu", "Linear", {"out_features": 4}),
        ("logvar", "Linear", {"out_features": 4}), ("z", "Reparameterize", {}),
        ("dec", "Linear", {"out_features": 64}), ("sig", "Sigmoid", {}),
        ("image", "Reshape", {"shape": [1, 8, 8]}), ("y", "Output", {})]:
        g.add_node(kind, node, params)
    for src, dst in [("x", "flat"), ("flat", "enc"), ("enc", "act"), ("act", "mu"),
                     ("act", "logvar"), ("z", "dec"), ("dec", "sig"), ("sig", "image"),
                     ("image", "y")]:
        g.connect(src, dst)
    g.connect("mu", "z", dst_port="mu")
    g.connect("logvar", "z", dst_port="logvar")
    return g


def test_vae_adds_beta_kl_and_samples_from_the_prior_through_the_decoder():
    trainer = Trainer(project(DIGITS, {"beta": 2.0}, _vae()))
    assert trainer.task_name == "vae"
    task = trainer.task
    assert task.latent_shape == (4,) and task.kl_scale == pytest.approx(2.0 / 64)
    history = trainer.fit().history
    assert {"val_loss", "val_mse", "val_kl"} <= set(history[-1])
    assert history[-1]["val_loss"] == pytest.approx(
        history[-1]["val_mse"] + 2.0 / 64 * history[-1]["val_kl"], rel=1e-4)
    samples = task.sample(6, torch.Generator().manual_seed(0))
    assert samples.shape == (6, 1, 8, 8) and ((samples >= 0) & (samples <= 1)).all()
    assert task.decoder.dec is trainer.models["model"].dec  # the trained modules, shared
    again = task.sample(6, torch.Generator().manual_seed(0))
    assert torch.equal(samples, again)


def test_sampling_restores_the_training_mode():
    trainer = Trainer(project(DIGITS, {"epochs": 1}, _vae()))
    model = trainer.models["model"]
    model.train()
    trainer.task.sample(2)
    assert all(m.training for m in model.modules())


def _gan(latent=4) -> tuple[Graph, Graph]:
    generator = chain(("Linear", {"out_features": 16}), ("ReLU", {}),
                      ("Linear", {"out_features": 2}), input_params={"shape": [latent]},
                      name="generator")
    discriminator = chain(("Linear", {"out_features": 16}), ("LeakyReLU", {}),
                          ("Linear", {"out_features": 1}), name="discriminator")
    return generator, discriminator


RING = {"name": "ring", "params": {"n_samples": 256}}


def test_gan_trains_both_models_with_their_own_optimizers():
    training = {"optimizer": {"type": "Adam", "lr": 0.001, "betas": [0.5, 0.999]},
                "optimizers": {"generator": {"lr": 0.0005}}}
    trainer = Trainer(project(RING, training, *_gan()))
    assert trainer.task_name == "gan" and trainer.task.loss_fn.__class__.__name__ == \
        "BCEWithLogitsLoss"
    assert trainer.optimizers["generator"].param_groups[0]["lr"] == 0.0005
    assert trainer.optimizers["discriminator"].param_groups[0]["lr"] == 0.001
    assert trainer.optimizers["generator"].param_groups[0]["betas"] == (0.5, 0.999)
    before = {n: [p.clone() for p in m.parameters()] for n, m in trainer.models.items()}
    history = trainer.fit().history
    assert set(history[0]) >= {"d_loss", "g_loss"} and "train_loss" not in history[0]
    for name, model in trainer.models.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], model.parameters()))
    samples = trainer.task.sample(10)
    assert samples.shape == (10, 2)


def test_gan_models_are_checked():
    generator, discriminator = _gan()
    wide = chain(("Linear", {"out_features": 3}), input_params={"shape": [4]}, name="generator")
    with pytest.raises(TrainingError, match=r"y: the generator makes samples of shape \(3,\); "
                                            r"the data are \(2,\)"):
        Trainer(project(RING, {}, wide, discriminator))
    no_latent = chain(("Linear", {"out_features": 2}), name="generator")
    with pytest.raises(TrainingError):
        Trainer(project(RING, {"task": "gan"}, no_latent, discriminator))
    with pytest.raises(TrainingError, match="a GAN trains with"):
        Trainer(project(RING, {"loss": "L1Loss"}, generator, discriminator))
    with pytest.raises(TrainingError, match="training.optimizers.gen: no model named 'gen'"):
        Trainer(project(RING, {"optimizers": {"gen": {"lr": 0.1}}}, generator, discriminator))


def test_the_task_is_chosen_when_left_out():
    assert Trainer(project(MOONS, {}, chain(("Linear", {"out_features": 2})))).task_name == \
        "classification"
    assert Trainer(project(RING, {}, chain(("Linear", {"out_features": 2})))).task_name == \
        "reconstruction"
    with pytest.raises(TrainingError, match="trains one model"):
        Trainer(project(MOONS, {"task": "classification"}, *_gan()))
