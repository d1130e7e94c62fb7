"""Probes: what the live views read, small, on the CPU, and without changing training."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.examples import EXAMPLES_DIR
from engine.project import load_project
from engine.training import LambdaCallback, Probes, Trainer

torch.set_num_threads(1)


def example(name: str, epochs: int = 2, **dataset_params):
    project = load_project(EXAMPLES_DIR / f"{name}.layerlab.json")
    if dataset_params:
        project.dataset = {**project.dataset,
                           "params": {**project.dataset.get("params", {}), **dataset_params}}
    if project.dataset["name"] == "digits":
        project.dataset = {**project.dataset, "val_split": 0.8}
    project.training = {**project.training, "epochs": epochs}
    return project


def test_classifier_probes_cover_every_view():
    probes = Probes(every=5, interval=0, nodes=["a1"], histograms=["fc2"], boundary=True,
                    confusion=True, grid=20)
    refreshed = []
    spy = LambdaCallback(on_batch_end=lambda t, step, logs: refreshed.append(step)
                         if "probes" in logs else None)
    trainer = Trainer(example("mlp_spirals", n_samples=400), callbacks=[probes, spy])
    trainer.fit()
    assert refreshed and all(step % 5 == 0 for step in refreshed)
    data = probes.latest
    assert data["step"] == trainer.step and probes.version >= len(refreshed)
    norms = data["grad_norms"]["model"]
    assert norms["nodes"] == ["fc1", "fc2", "fc3"]
    assert norms["values"].shape == (len(norms["steps"]), 3) and (norms["values"] > 0).all()
    assert set(data["means"]["model"]) == {"fc1", "a1", "fc2", "a2", "fc3"}
    act = data["activations"]["model"]["a1"]
    assert isinstance(act, np.ndarray) and act.shape == (16, 64) and (act >= 0).all()
    counts, lo, hi = data["histograms"]["model"]["fc2"]["weight"]
    assert counts.sum() == 64 * 64 + 64 and lo < hi
    assert data["histograms"]["model"]["fc2"]["grad"][0].sum() == 64 * 64 + 64
    boundary = data["boundary"]
    assert boundary["classes"].shape == (20, 20) and boundary["score"].shape == (20, 20)
    assert set(np.unique(boundary["classes"])) <= {0, 1}
    matrix = data["confusion"]
    assert matrix.shape == (2, 2) and matrix.sum() == len(trainer.dataset.x_val)
    accuracy = np.trace(matrix) / matrix.sum()
    assert accuracy == pytest.approx(trainer.history[-1]["val_accuracy"], abs=1e-6)


def test_short_epochs_are_probed_at_most_once_an_interval_and_the_last_always():
    """Probes cost a forward pass a refresh: epochs shorter than the interval are not each
    probed (three epochs inside a minute: one refresh), yet the run ends on its final state,
    also when it stops early; an interval of 0 probes every epoch."""
    epochs_seen = []
    probes = Probes(every=10_000, interval=60.0)
    original = probes.refresh
    probes.refresh = lambda t, epoch_end=False: epochs_seen.append(t.epoch) or original(
        t, epoch_end)
    trainer = Trainer(example("mlp_spirals", epochs=3, n_samples=200), callbacks=[probes])
    trainer.fit()
    assert epochs_seen == [3] and probes.version == 1
    assert probes.latest["epoch"] == 3 and probes.latest["step"] == trainer.step
    stopper = LambdaCallback(on_epoch_end=lambda t, epoch, logs: t.stop() if epoch == 2 else None)
    epochs_seen.clear()
    trainer = Trainer(example("mlp_spirals", epochs=5, n_samples=200),
                      callbacks=[probes, stopper])
    trainer.fit()
    assert trainer.epoch == 2 and epochs_seen == [2] and probes.latest["epoch"] == 2
    # a refreshed epoch end, then a stop inside the next epoch: the steps since are shown
    probes = Probes(every=10_000, interval=0.0)
    inside = LambdaCallback(on_batch_end=lambda t, step, logs: t.stop()
                            if t.epoch == 1 and logs["batch"] == 3 else None)
    trainer = Trainer(example("mlp_spirals", epochs=3, n_samples=200),
                      callbacks=[probes, inside])
    trainer.fit()
    assert trainer.epoch == 1 and probes.latest["step"] == trainer.step
    every = Probes(every=10_000, interval=0)
    trainer = Trainer(example("mlp_spirals", epochs=3, n_samples=200), callbacks=[every])
    trainer.fit()
    assert every.version == 3


def test_gradient_norms_every_few_updates_name_their_steps():
    probes = Probes(every=8, interval=0, means=False, keep=100,
                    grad_interval=0)  # grad_every 4 by default
    trainer = Trainer(example("perceptron", epochs=1), callbacks=[probes])
    trainer.fit()
    steps = probes.latest["grad_norms"]["model"]["steps"].tolist()
    assert steps == [1, 2, 3, *range(4, trainer.step + 1, 4)]  # the first ones, then every 4th


def test_gradient_norms_are_taken_at_most_once_an_interval_for_each_model():
    """Tiny steps: a norm at most every grad_interval seconds (here: only the first few and
    the first 4th step), each model counted apart (a GAN's two)."""
    probes = Probes(every=10_000, interval=0, means=False, grad_interval=60.0)
    trainer = Trainer(example("perceptron", epochs=1), callbacks=[probes])
    trainer.fit()
    assert trainer.step > 8
    assert probes.latest["grad_norms"]["model"]["steps"].tolist() == [1, 2, 3, 4]
    gan = Probes(every=10_000, interval=0, means=False, grad_interval=60.0)
    trainer = Trainer(example("gan_ring", epochs=1), callbacks=[gan])
    trainer.fit()
    norms = gan.latest["grad_norms"]
    assert set(norms) == {"generator", "discriminator"}
    assert all(n["steps"].tolist() == [1, 2, 3, 4] for n in norms.values())


def test_gradient_norms_cover_every_step_in_a_rolling_window():
    probes = Probes(every=3, interval=0, means=False, keep=7, grad_every=1, grad_interval=0)
    windows = []
    trainer = Trainer(example("perceptron", epochs=1), callbacks=[probes])
    original = probes.refresh

    def spy(t, epoch_end=False):
        data = original(t, epoch_end)
        windows.append(data["grad_norms"]["model"]["steps"].tolist())
        return data
    probes.refresh = spy
    trainer.fit()
    assert windows[0] == [1, 2, 3] and windows[1] == [1, 2, 3, 4, 5, 6]
    assert windows[-1] == list(range(trainer.step - 6, trainer.step + 1))
    assert all(w == list(range(w[-1] - len(w) + 1, w[-1] + 1)) for w in windows)


def test_probes_change_no_loss():
    plain = Trainer(example("vae_digits")).fit().history
    probed = Trainer(example("vae_digits"), callbacks=[
        Probes(every=2, interval=0, nodes=["enc_act"], histograms=["dec2"], samples=True)]
    ).fit().history
    for a, b in zip(plain, probed):
        assert {k: v for k, v in a.items() if k != "seconds"} == \
               {k: v for k, v in b.items() if k != "seconds"}


def test_vae_and_autoencoder_samples_have_the_data_shape():
    probes = Probes(every=1000, samples=True, n_samples=8, batch=4)
    Trainer(example("vae_digits", epochs=1), callbacks=[probes]).fit()
    assert probes.latest["samples"].shape == (8, 1, 8, 8)
    assert np.isfinite(probes.latest["samples"]).all()
    recon = probes.latest["reconstructions"]
    assert recon["inputs"].shape == recon["outputs"].shape == (4, 1, 8, 8)
    probes = Probes(every=1000, samples=True, batch=5)
    trainer = Trainer(example("denoising_autoencoder_digits", epochs=1), callbacks=[probes])
    trainer.fit()
    assert "samples" not in probes.latest
    recon = probes.latest["reconstructions"]
    assert recon["inputs"].shape == recon["outputs"].shape == (5, 1, 8, 8)
    noisy = trainer.task.x_val[0][:5].cpu().numpy()
    assert np.array_equal(recon["inputs"], noisy)  # the denoiser's noisy inputs


def test_gan_samples_come_from_fixed_noise_beside_real_points():
    probes = Probes(every=1000, samples=True, n_samples=32)
    trainer = Trainer(example("gan_ring", epochs=1, n_samples=256), callbacks=[probes])
    trainer.fit()
    first = probes.latest["samples"]
    assert first.shape == (32, 2) and probes.latest["real"].shape == (32, 2)
    again = probes.refresh(trainer)["samples"]
    assert np.array_equal(first, again)  # same noise, same weights: same samples
    assert set(probes.latest["grad_norms"]) == {"generator", "discriminator"}


def test_feature_maps_are_cut_on_the_device():
    probes = Probes(every=1000, nodes=["conv2", "model:fc1", "other:conv1"], max_channels=4,
                    batch=3, means=False)
    Trainer(example("cnn_digits", epochs=1), callbacks=[probes]).fit()
    acts = probes.latest["activations"]["model"]
    assert set(acts) == {"conv2", "fc1"}
    assert acts["conv2"].shape == (3, 4, 4, 4) and acts["fc1"].shape == (3, 64)
    assert "means" not in probes.latest and "histograms" not in probes.latest


def test_configure_changes_what_is_probed():
    probes = Probes(every=1000)
    trainer = Trainer(example("mlp_spirals", epochs=1, n_samples=200), callbacks=[probes])
    trainer.fit()
    assert "activations" not in probes.latest
    probes.configure(nodes=["fc3"], means=False)
    data = probes.refresh(trainer)
    assert set(data["activations"]["model"]) == {"fc3"} and "means" not in data
    with pytest.raises(TypeError, match="no setting"):
        probes.configure(colour="red")
