"""The trainer: every example learns, control from another thread, faults, checkpoints."""
from __future__ import annotations

import json
import math
import threading
import time

import pytest
import torch

from engine.examples import EXAMPLES_DIR, example_paths
from engine.project import load_project
from engine.training import Callback, Trainer, TrainingError
from engine.training.callbacks import LambdaCallback

torch.set_num_threads(1)

SMALL = {  # example -> dataset changes that keep its test to a fraction of a second
    "digits": {"val_split": 0.75},
    "spirals": {"params": {"n_samples": 400, "noise": 0.1}},
    "moons": {"params": {"n_samples": 400, "noise": 0.15}},
    "blobs": {"params": {"n_samples": 200, "noise": 0.3}},
    "sine_sequence": {"params": {"n_samples": 400, "length": 20}},
    "ring": {"params": {"n_samples": 512}},
}


def small(example: str, epochs: int | None = None, **training):
    """A copy of an example with a small dataset (and training settings overridden)."""
    project = load_project(EXAMPLES_DIR / f"{example}.layerlab.json")
    project.dataset = {**project.dataset, **SMALL.get(project.dataset["name"], {})}
    project.training = {**project.training, **training}
    if epochs is not None:
        project.training["epochs"] = epochs
    return project


SUPERVISED = [p for p in example_paths() if "environment" not in json.loads(p.read_text())]


@pytest.mark.parametrize("path", SUPERVISED, ids=lambda p: p.name.split(".")[0])
def test_every_example_trains_and_its_loss_falls(path):
    """Every example with a dataset (the RL examples are trained in tests/engine/test_rl.py)."""
    example = path.name.split(".")[0]
    trainer = Trainer(small(example, epochs=3))
    result = trainer.fit()
    assert result.stopped == "completed" and trainer.epoch == 3
    first, last = result.history[0], result.history[-1]
    if trainer.task_name == "gan":
        assert all(math.isfinite(h[k]) for h in result.history for k in ("d_loss", "g_loss"))
        samples = trainer.task.sample(5)
        assert tuple(samples.shape) == (5, 2) and torch.isfinite(samples).all()
    else:
        assert last["train_loss"] < first["train_loss"]
        assert last["val_loss"] <= first["val_loss"] * 1.05
    for entry in result.history:
        assert all(isinstance(v, (int, float)) for v in entry.values())


def test_the_perceptron_learns_by_the_perceptron_rule():
    project = load_project(EXAMPLES_DIR / "perceptron.layerlab.json")
    assert project.training["loss"] == "MSELoss"
    result = Trainer(project).fit()
    assert result.history[-1]["val_accuracy"] >= 0.95
    assert result.history[0]["train_loss"] > result.history[-1]["train_loss"]


def test_device_auto_is_cpu_here_and_a_missing_cuda_is_a_clear_error():
    project = small("perceptron", epochs=1)
    trainer = Trainer(project, device="auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert trainer.device.type in (expected, "mps")
    assert trainer.dataset.x_train.device.type == trainer.device.type
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="CUDA is not available"):
            Trainer(project, device="cuda")


def test_amp_on_the_cpu_warns_and_trains_in_float32():
    trainer = Trainer(small("mlp_spirals", epochs=1, amp=True))
    assert not trainer.amp and any("amp" in w for w in trainer.warnings)
    trainer.fit()


@pytest.mark.parametrize("example", ["mlp_spirals", "gan_ring"])
def test_the_mixed_precision_path_with_its_grad_scaler(example, monkeypatch):
    """The CUDA recipe (autocast float16 + GradScaler), forced on the CPU to exercise it here."""
    monkeypatch.setattr(Trainer, "_use_amp", lambda self: True)
    seen = []
    probe = LambdaCallback(on_after_backward=lambda t, name, model: seen.append(
        max(p.grad.abs().max().item() for p in model.parameters())))
    trainer = Trainer(small(example, epochs=2, grad_clip=1.0), callbacks=[probe])
    assert trainer.amp and trainer.autocast is not None and set(trainer.scalers) == \
        set(trainer.models)
    history = trainer.fit().history
    key = "d_loss" if example == "gan_ring" else "train_loss"
    assert all(math.isfinite(h[key]) for h in history)
    assert max(seen) < 1e3  # hooks see unscaled gradients (the scale starts at 65536)
    if example == "mlp_spirals":
        assert history[-1]["train_loss"] < history[0]["train_loss"]


# -- hooks ---------------------------------------------------------------------------------------

class Recorder(Callback):
    def __init__(self):
        self.calls, self.batch_logs, self.epoch_logs = [], [], []

    def on_train_start(self, trainer):
        self.calls.append("train_start")

    def on_epoch_start(self, trainer, epoch):
        self.calls.append(f"epoch_start {epoch}")

    def on_batch_end(self, trainer, step, logs):
        self.batch_logs.append((step, dict(logs)))

    def on_after_backward(self, trainer, model_name, model):
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)

    def on_epoch_end(self, trainer, epoch, logs):
        self.epoch_logs.append(logs)

    def on_train_end(self, trainer, logs):
        self.calls.append(f"train_end {logs['stopped']}")


def test_hooks_are_called_in_order_with_plain_float_logs():
    recorder = Recorder()
    trainer = Trainer(small("mlp_spirals", epochs=2), callbacks=[recorder], log_every=4)
    trainer.fit()
    assert recorder.calls == ["train_start", "epoch_start 1", "epoch_start 2",
                              "train_end completed"]
    steps = [s for s, _ in recorder.batch_logs]
    assert steps == list(range(1, trainer.step + 1))
    logged = [(s, logs) for s, logs in recorder.batch_logs if "loss" in logs]
    per_epoch = trainer.steps_per_epoch
    assert [s for s, _ in logged] == sorted({*range(4, per_epoch + 1, 4), per_epoch,
                                             *range(per_epoch + 4, 2 * per_epoch + 1, 4),
                                             2 * per_epoch})
    assert all(type(logs["loss"]) is float and type(logs["lr"]) is float for _, logs in logged)
    assert [e["epoch"] for e in recorder.epoch_logs] == [1, 2]
    assert all(type(v) in (int, float) for e in recorder.epoch_logs for v in e.values())
    assert recorder.epoch_logs == trainer.history


def test_an_error_in_training_reaches_on_error_and_is_reraised():
    seen = []
    boom = LambdaCallback(on_batch_end=lambda t, s, logs: (_ for _ in ()).throw(
        ValueError("callback bug")), on_error=lambda t, e: seen.append(e))
    with pytest.raises(ValueError, match="callback bug"):
        Trainer(small("perceptron", epochs=1), callbacks=[boom]).fit()
    assert isinstance(seen[0], ValueError)


# -- control from another thread -------------------------------------------------------------

def test_pause_resume_and_stop_from_another_thread_keep_the_model():
    started = threading.Event()
    hook = LambdaCallback(on_batch_end=lambda t, step, logs: started.set() if step >= 5 else None)
    trainer = Trainer(small("mlp_spirals", epochs=10_000), callbacks=[hook])
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=trainer.fit()))
    worker.start()
    try:
        assert started.wait(30)
        trainer.pause()
        assert trainer.is_paused
        time.sleep(0.3)
        paused_at = trainer.step
        time.sleep(0.3)
        assert trainer.step == paused_at  # blocked between steps
        points = trainer.dataset.x_val[:4]
        assert torch.isfinite(trainer.predict(points)).all()  # the model is usable while paused
        trainer.resume()
        deadline = time.monotonic() + 30
        while trainer.step < paused_at + 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert trainer.step >= paused_at + 10  # training went on
        trainer.stop()
        worker.join(30)
        assert not worker.is_alive()
    finally:
        trainer.stop()
        worker.join(30)
    result = outcome["result"]
    assert result.stopped == "stopped" and result.steps == trainer.step
    assert all(torch.isfinite(p).all() for p in trainer.models["model"].parameters())
    assert trainer.predict(trainer.dataset.x_val).shape == (len(trainer.dataset.x_val), 2)
    trainer.epochs = trainer.epoch + 2  # fit() again goes on from the last finished epoch
    done = len(trainer.history)
    assert trainer.fit().stopped == "completed" and len(trainer.history) == done + 2


def test_stop_while_paused_ends_training():
    trainer = Trainer(small("perceptron", epochs=10_000))
    trainer.pause()
    worker = threading.Thread(target=trainer.fit)
    worker.start()
    time.sleep(0.2)
    assert trainer.step == 0
    trainer.stop()
    worker.join(30)
    assert not worker.is_alive() and trainer.step == 0


# -- faults ----------------------------------------------------------------------------------

def _inject_inf(trainer, node: str, from_step: int):
    model = trainer.models["model"]

    def hook(module, args, output):
        return output * math.inf if trainer.step >= from_step else output
    getattr(model, model.node_attrs[node]).register_forward_hook(hook)


def test_an_infinite_layer_output_stops_training_naming_that_node():
    trainer = Trainer(small("mlp_spirals", epochs=20))
    _inject_inf(trainer, "fc2", from_step=30)
    with pytest.raises(TrainingError) as err:
        trainer.fit()
    assert err.value.node == "fc2"
    assert str(err.value).startswith("fc2: the output of this Linear layer became infinite")
    assert "step 31" in str(err.value) and "learning rate" in str(err.value)
    assert trainer.step == 30
    assert all(torch.isfinite(p).all() for p in trainer.models["model"].parameters())


def test_after_a_nan_the_model_is_exactly_as_it_was_before_the_bad_step():
    clean = Trainer(small("mlp_spirals", epochs=10, optimizer={"type": "SGD", "lr": 0.05,
                                                             "momentum": 0.9}))
    faulty = Trainer(clean.project)
    bad = 17  # not at a log step: the trainer must go back and replay
    stop_at = LambdaCallback(on_batch_end=lambda t, step, logs: t.stop() if step == bad - 1
                             else None)
    clean.callbacks.append(stop_at)
    clean.fit()
    _inject_inf(faulty, "fc3", from_step=bad - 1)
    with pytest.raises(TrainingError, match="fc3"):
        faulty.fit()
    for name, value in clean.models["model"].state_dict().items():
        assert torch.equal(value, faulty.models["model"].state_dict()[name]), name


def test_a_huge_learning_rate_is_reported_with_a_node_and_advice():
    project = small("mlp_spirals", epochs=5, optimizer={"type": "SGD", "lr": 1e12})
    trainer = Trainer(project)
    with pytest.raises(TrainingError) as err:
        trainer.fit()
    assert err.value.node in trainer.models["model"].node_attrs
    assert "Lower the learning rate (now 1e+12)" in str(err.value)


def test_a_runtime_shape_error_names_the_node():
    trainer = Trainer(small("mlp_spirals", epochs=1))
    trainer.models["model"].fc2 = torch.nn.Linear(5, 64)  # no longer fits fc1's 64 outputs
    with pytest.raises(TrainingError) as err:
        trainer.fit()
    assert err.value.node == "fc2"
    assert str(err.value).startswith("fc2: this Linear layer failed while training")


def test_out_of_memory_is_a_message_and_the_model_survives():
    trainer = Trainer(small("mlp_spirals", epochs=2))
    before = {k: v.clone() for k, v in trainer.models["model"].state_dict().items()}

    def hook(module, args, output):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    trainer.models["model"].fc1.register_forward_hook(hook)
    with pytest.raises(TrainingError) as err:
        trainer.fit()
    message = str(err.value)
    assert message.startswith("training.batch_size: out of memory")
    assert f"with batch_size {trainer.config.batch_size}" in message
    after = trainer.models["model"].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


# -- checkpoints -----------------------------------------------------------------------------

@pytest.mark.parametrize("example,training", [
    ("mlp_spirals", {"optimizer": {"type": "SGD", "lr": 0.05, "momentum": 0.9},
                     "scheduler": {"type": "StepLR", "step_size": 1, "gamma": 0.8}}),
    ("vae_digits", {"scheduler": {"type": "OneCycleLR"}}),
    ("gan_ring", {}),
], ids=["mlp-sgd-steplr", "vae-onecycle", "gan"])
def test_resuming_a_checkpoint_reproduces_the_uninterrupted_losses(tmp_path, example, training):
    project = small(example, epochs=4, **training)
    if example == "vae_digits":
        project.dataset["val_split"] = 0.9
    uninterrupted = Trainer(project).fit().history
    interrupt = LambdaCallback(on_epoch_end=lambda t, epoch, logs: t.stop() if epoch == 2
                               else None)
    Trainer(project, out_dir=tmp_path, callbacks=[interrupt]).fit()
    resumed = Trainer(project, resume_from=tmp_path / "checkpoint.pt")
    assert resumed.epoch == 2 and len(resumed.history) == 2
    history = resumed.fit().history
    assert len(history) == 4
    for a, b in zip(uninterrupted, history):
        assert {k: v for k, v in a.items() if k != "seconds"} == \
               {k: v for k, v in b.items() if k != "seconds"}


def test_checkpoints_are_written_each_epoch_and_bad_ones_are_refused(tmp_path):
    project = small("perceptron", epochs=2)
    epochs_seen = []
    watch = LambdaCallback(on_epoch_end=lambda t, e, logs: epochs_seen.append(
        torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"]))
    Trainer(project, out_dir=tmp_path, callbacks=[watch]).fit()
    assert epochs_seen == [1, 2]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TrainingError, match="junk.pt: cannot be read as a checkpoint"):
        Trainer(project, resume_from=tmp_path / "junk.pt")
    with pytest.raises(TrainingError, match="no such checkpoint"):
        Trainer(project, resume_from=tmp_path / "missing.pt")
    with pytest.raises(TrainingError, match="no weights for model"):
        Trainer(small("gan_ring", epochs=1), resume_from=tmp_path / "checkpoint.pt")


def test_early_stopping_stops_and_restores_the_best_weights():
    project = small("mlp_spirals", epochs=200, early_stopping={"patience": 2})
    trainer = Trainer(project)
    result = trainer.fit()
    assert result.stopped == "early_stopping" and trainer.epoch < 200
    best = min(h["val_loss"] for h in result.history)
    assert result.best_epoch == next(h["epoch"] for h in result.history if h["val_loss"] == best)
    with torch.no_grad():
        trainer.models["model"].eval()
        assert trainer.task.evaluate()["val_loss"] == pytest.approx(best, rel=1e-6)


def test_weights_file_loads_with_weights_only(tmp_path):
    trainer = Trainer(small("gan_ring", epochs=1))
    trainer.fit()
    trainer.save_weights(tmp_path / "weights.pt")
    weights = torch.load(tmp_path / "weights.pt", weights_only=True)
    assert set(weights) == {"generator", "discriminator"}
    assert weights["generator"].keys() == trainer.models["generator"].state_dict().keys()
