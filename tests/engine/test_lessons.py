"""The lessons: every file loads, every project passes ``check``, and the figure each lesson's
note quotes is measured here (seeded, short, on the CPU). ``python -m pytest
tests/engine/test_lessons.py -s`` prints the figures."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.analysis import analyze
from engine.lessons import (LESSONS_DIR, LOOK_AT, LessonError, find_lesson, list_lessons,
                            load_lesson, ring_modes_covered)
from engine.project import load_project
from engine.training import Trainer


def fit(name: str, **training):
    project = load_project(LESSONS_DIR / f"{name}.layerlab.json")
    project.training.update(training)
    trainer = Trainer(project, device="cpu")
    trainer.fit()
    return trainer


def first_layer_gradient(name: str) -> float:
    """The first Linear layer's gradient norm after one backward pass on the first batch."""
    trainer = Trainer(load_project(LESSONS_DIR / f"{name}.layerlab.json"), device="cpu",
                      epochs=1)
    inputs, target = trainer.task.fetch(trainer.task.batches(1)[0])
    loss = trainer.task.loss_fn(trainer.task.forward(inputs), target)
    model = trainer.models["model"]
    model.zero_grad()
    loss.backward()
    return float(model.get_submodule(model.node_attrs["fc0"]).weight.grad.norm())


# -- the files ----------------------------------------------------------------------------------
def test_every_lesson_loads_and_its_projects_pass_check():
    lessons = list_lessons()
    assert len(lessons) >= 12
    assert len({lesson.concept for lesson in lessons}) == len(lessons)
    for lesson in lessons:
        assert lesson.look_at in LOOK_AT and lesson.steps and lesson.figure
        assert "{" not in lesson.figure, f"{lesson.slug}: figure not filled in"
        for path in lesson.projects:
            _, problems = analyze(load_project(path))
            assert problems == [], (path.name, problems)
    assert find_lesson("perceptron_limit") is lessons[0] or \
        find_lesson("perceptron_limit").slug == lessons[0].slug


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("title"), "title: must be a non-empty text"),
    (lambda d: d.update(look_at="everything"), "look_at: must be one of"),
    (lambda d: d.update(projects=["missing.layerlab.json"]),
     "projects: missing.layerlab.json: no such file"),
    (lambda d: d.update(steps=[]), "steps: must be a non-empty list"),
])
def test_a_broken_lesson_is_named_with_its_field(tmp_path, change, message):
    data = json.loads((LESSONS_DIR / "01_perceptron_limit.lesson.json").read_text("utf-8"))
    change(data)
    for project in ("perceptron_xor.layerlab.json", "mlp_xor.layerlab.json"):
        (tmp_path / project).write_bytes((LESSONS_DIR / project).read_bytes())
    path = tmp_path / "99_broken.lesson.json"
    path.write_text(json.dumps(data), "utf-8")
    with pytest.raises(LessonError, match="99_broken.lesson.json: " + message.split(":")[0]):
        load_lesson(path)
    with pytest.raises(LessonError, match=message.replace("(", r"\(")):
        load_lesson(path)


# -- the figures ---------------------------------------------------------------------------------
def test_the_perceptron_fails_on_xor_and_two_layers_solve_it():
    perceptron = fit("perceptron_xor").history[-1]["val_accuracy"]
    mlp = fit("mlp_xor").history[-1]["val_accuracy"]
    print(f"\nxor: perceptron {perceptron:.2f}, two layers {mlp:.2f}")
    assert perceptron <= 0.75 and mlp >= 0.95


def test_stacked_linear_layers_need_an_activation():
    linear = fit("linear_spirals").history[-1]["val_accuracy"]
    relu = fit("relu_spirals").history[-1]["val_accuracy"]
    print(f"\nspirals: no activation {linear:.2f}, ReLU {relu:.2f}")
    assert linear <= 0.7 and relu >= 0.9


def test_the_learning_rate_too_small_too_large_and_right():
    small = fit("lr_small_moons").history
    large = fit("lr_large_moons").history
    right = fit("lr_small_moons", optimizer={"type": "SGD", "lr": 0.5}).history
    large_losses = [h["val_loss"] for h in large[5:]]
    print(f"\nlr: 0.0001 {small[-1]['val_loss']:.3f}, 30 {large[-1]['val_loss']:.3f} "
          f"({min(large_losses):.2f}..{max(large_losses):.2f}), 0.5 {right[-1]['val_loss']:.3f}")
    assert small[0]["val_loss"] - small[-1]["val_loss"] < 0.1  # hardly moves
    assert max(large_losses) > 3 * min(large_losses)  # jumps about
    assert right[-1]["val_loss"] < 0.1 and right[-1]["val_loss"] < small[-1]["val_loss"] / 5


def test_ten_sigmoid_layers_starve_the_first_one_and_skips_feed_it():
    sigmoid = first_layer_gradient("deep_sigmoid")
    relu = first_layer_gradient("deep_relu")
    skips = first_layer_gradient("deep_sigmoid_skips")
    print(f"\nfirst-layer gradient: sigmoid {sigmoid:.2e}, ReLU {relu:.2e} "
          f"({relu / sigmoid:.0f}x), skips {skips:.2e}")
    assert relu >= 100 * sigmoid
    assert skips >= relu  # the skips close the gap (and more)


def test_exploding_updates_and_clipping():
    from engine.errors import TrainingError

    try:
        history = fit("deep_relu_explode").history
        exploded = not np.isfinite(history[-1]["val_loss"]) or history[-1]["val_loss"] > 10
    except TrainingError as exc:  # the trainer's NaN check names the node
        exploded = "not finite" in str(exc) or "NaN" in str(exc) or "inf" in str(exc).lower()
        print(f"\nexplode: {str(exc).splitlines()[0][:120]}")
    clipped = fit("deep_relu_clipped").history[-1]["val_loss"]
    print(f"clipped: val loss {clipped:.3f}")
    assert exploded and np.isfinite(clipped) and clipped < 1.0


def test_overfitting_and_each_regularizer_narrows_the_gap():
    def gap(history):
        return history[-1]["val_loss"] - history[-1]["train_loss"]

    wide = fit("overfit_wide").history
    val = [h["val_loss"] for h in wide]
    assert wide[-1]["train_loss"] < wide[0]["train_loss"] / 5  # training loss falls...
    assert val[-1] > 2 * min(val)  # ...while validation rises after its low point
    regularized = fit("overfit_regularized").history
    l2 = fit("overfit_wide", optimizer={"type": "Adam", "lr": 0.003, "weight_decay": 0.05})
    stopped = fit("overfit_wide", early_stopping={"patience": 10})
    project = load_project(LESSONS_DIR / "overfit_regularized.layerlab.json")
    project.training["optimizer"] = {"type": "Adam", "lr": 0.003}
    project.training.pop("early_stopping")
    dropout = Trainer(project, device="cpu")
    dropout.fit()
    gaps = {"wide": gap(wide), "regularized": gap(regularized), "dropout": gap(dropout.history),
            "l2": gap(l2.history), "early stopping": gap(stopped.history)}
    print("\noverfitting gaps (val - train loss at the end): " +
          ", ".join(f"{k} {v:.3f}" for k, v in gaps.items()))
    for name in ("regularized", "dropout", "l2", "early stopping"):
        assert gaps[name] < gaps["wide"] / 2, name


def test_a_gru_remembers_the_first_of_fifty_steps_and_an_rnn_does_not():
    gru = [h["val_accuracy"] for h in fit("memory_gru").history]
    rnn = fit("memory_rnn").history[-1]["val_accuracy"]
    project = load_project(LESSONS_DIR / "memory_gru.layerlab.json")
    project.models["model"].set_param("gru", "keep_bias", 0.0)
    closed = Trainer(project, device="cpu")
    closed.fit()
    shut = closed.history[-1]["val_accuracy"]
    print(f"\nmemory after 6 epochs: GRU {gru[-1]:.2f} (from epoch "
          f"{next(i for i, a in enumerate(gru, 1) if a >= 0.95)}), RNN {rnn:.2f}, "
          f"GRU with keep_bias 0 {shut:.2f}")
    assert gru[-1] >= 0.95 and rnn <= 0.6 and shut <= 0.6


def test_keep_bias_sets_the_keeping_gate_and_exports():
    import torch.nn as nn

    from engine.layers.modules import KeepGRU, KeepLSTM

    for cls, base in ((KeepLSTM, nn.LSTM), (KeepGRU, nn.GRU)):
        layer = cls(3, 4, num_layers=2, bidirectional=True, batch_first=True, keep_bias=3.0)
        assert isinstance(layer, base)
        for name, p in layer.named_parameters():
            if name.startswith("bias_ih"):
                assert torch.equal(p[4:8], torch.full((4,), 3.0)), name
            elif name.startswith("bias_hh"):
                assert torch.equal(p[4:8], torch.zeros(4)), name
    assert analyze(load_project(LESSONS_DIR / "memory_gru.layerlab.json"))[1] == []
    project = load_project(LESSONS_DIR / "memory_gru.layerlab.json")
    project.models["model"].set_param("gru", "bias", False)
    _, problems = analyze(project)
    assert any("keep_bias 3 needs bias on" in str(p) for p in problems), problems


def test_the_two_number_code_of_the_autoencoder_separates_digits():
    from sklearn.neighbors import KNeighborsClassifier

    from engine.tryout import Tryout  # noqa: F401 - the Try dock's map uses the same activations

    trainer = fit("autoencoder_2d", epochs=30)  # the lesson trains 60
    model = trainer.models["model"]
    codes = {}
    handle = model.get_submodule(model.node_attrs["code"]).register_forward_hook(
        lambda _m, _a, out: codes.setdefault("v", out.detach()))
    ds = trainer.dataset
    with torch.no_grad():
        model.eval()
        model(ds.x_val)
        val = codes.pop("v").numpy()
        model(ds.x_train)
        train = codes.pop("v").numpy()
    handle.remove()
    assert val.shape[1] == 2
    knn = KNeighborsClassifier(5).fit(train, ds.y_train.numpy())
    accuracy = knn.score(val, ds.y_val.numpy())
    print(f"\nautoencoder: 5-NN on the 2-D codes {accuracy:.2f} (chance 0.10)")
    assert accuracy >= 0.2  # chance is 0.10


def test_the_gan_covers_eight_modes_with_one_setting_and_collapses_with_the_other():
    covers = fit("gan_ring_covers")
    collapse = fit("gan_ring_collapse")
    noise = torch.Generator().manual_seed(0)
    n_cover = ring_modes_covered(covers.task.sample(2000, noise).numpy())
    n_collapse = ring_modes_covered(collapse.task.sample(2000, noise).numpy())
    print(f"\nGAN modes covered: {n_cover} of 8, collapsed: {n_collapse} of 8")
    assert n_cover == 8 and n_collapse <= 4
    ring = np.concatenate([covers.dataset.x_train.numpy()])
    assert ring_modes_covered(ring) == 8  # the data themselves


def test_ring_modes_covered_counts_modes():
    angles = 2 * np.pi * np.array([0, 0, 1, 1]) / 8
    points = 2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    assert ring_modes_covered(points) == 2
    assert ring_modes_covered(np.zeros((10, 2))) == 0


def test_the_echo_state_network_trains_its_readout_only():
    project = load_project(LESSONS_DIR / "esn_readout.layerlab.json")
    trainer = Trainer(project, device="cpu", epochs=5)
    model = trainer.models["model"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.fit()
    after = model.state_dict()
    reservoir = [k for k in after if k.startswith(model.node_attrs["reservoir"])]
    readout = [k for k in after if k.startswith(model.node_attrs["readout"])]
    assert reservoir and readout
    assert all(torch.equal(before[k], after[k]) for k in reservoir)
    assert any(not torch.equal(before[k], after[k]) for k in readout)
    history = trainer.history
    print(f"\nESN: reservoir unchanged ({len(reservoir)} tensors), val loss "
          f"{history[0]['val_loss']:.4f} → {history[-1]['val_loss']:.4f}")
    assert history[-1]["val_loss"] < history[0]["val_loss"]


def test_attention_looks_at_the_marker():
    from engine.explain import attention_maps
    from engine.training.tasks import evaluating

    trainer = fit("attention_marker", epochs=8)
    accuracy = trainer.history[-1]["val_accuracy"]
    model = trainer.models["model"]
    x = trainer.dataset.x_val[:200]
    with evaluating(model):
        maps = attention_maps(model, (x,), ["attn"])["attn"]  # (batch, heads, T, T)
    marked = x[:, :, -1].numpy().argmax(axis=1)  # the marker channel
    mass = maps.mean(axis=1)[np.arange(len(x)), :, marked].mean()  # weight on the marked step
    print(f"\nattention: val accuracy {accuracy:.2f}, mean weight on the marked step {mass:.2f} "
          f"(uniform {1 / x.shape[1]:.2f})")
    assert accuracy >= 0.95 and mass >= 3 / x.shape[1]
