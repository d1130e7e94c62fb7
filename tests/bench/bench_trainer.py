"""Benchmark: the project's Trainer against a hand-written PyTorch loop, and probes on vs off.

Same model (the hand-written module gets the trainer's initial weights), same device tensors,
same batch size, epochs and per-epoch validation. Runs are interleaved (alternating which goes
first); printed are the median of the per-pair time ratios and, beside it, the ratio of the
fastest run of each side (the least disturbed by other load), plus a noise floor: the
hand-written loop against itself. On the CPU the time is the process's CPU time; on CUDA it is
wall time after a synchronize. Short runs and many pairs keep both sides of a pair under the
same conditions on a shared machine. Targets: trainer / hand-written <= 1.02, probes on
(default rates) / off <= 1.03; with ``training.compile`` on, compiled / hand-written eager
<= 0.9 on two of the three (the compile itself is timed apart; the row says which forward each
compiled run kept after its trial: the optimizer step is compiled either way); beside PyTorch Lightning
(installed for the bench only, ``pip install lightning``), trainer / Lightning <= 0.8 on the
MLP and <= 1.0 on the others; beside Keras 3 on the torch backend (bench-only too,
``pip install keras``), trainer / Keras <= 1.0.

    python tests/bench/bench_trainer.py [--reps 21] [--threads 1] [--device cpu|cuda]
                                        [--only loop,probes,compile,lightning,keras]
    python -m pytest tests/bench/bench_trainer.py -s
"""
from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.examples import EXAMPLES_DIR  # noqa: E402
from engine.project import load_project  # noqa: E402
from engine.training import Probes, Trainer  # noqa: E402


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.a1 = nn.Linear(2, 64), nn.ReLU()
        self.fc2, self.a2 = nn.Linear(64, 64), nn.ReLU()
        self.fc3 = nn.Linear(64, 2)

    def forward(self, x):
        return self.fc3(self.a2(self.fc2(self.a1(self.fc1(x)))))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.relu1, self.pool1 = nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), \
            nn.MaxPool2d(2)
        self.conv2, self.relu2, self.pool2 = nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), \
            nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc1, self.relu3, self.fc2 = nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc2(self.relu3(self.fc1(self.flat(x))))


class LSTMForecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(1, 32, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


CASES = {  # name: (example file, dataset params, epochs, hand-written module, classification?)
    "mlp_spirals": ("mlp_spirals", {"n_samples": 8000, "noise": 0.1}, 2, MLP, True),
    "cnn_digits": ("cnn_digits", None, 1, CNN, True),
    "lstm_sine": ("lstm_sine", {"n_samples": 2000, "length": 20}, 1, LSTMForecaster, False),
}


def make_project(case: str):
    example, params, epochs, _, _ = CASES[case]
    project = load_project(EXAMPLES_DIR / f"{example}.layerlab.json")
    if params:
        project.dataset = {**project.dataset, "params": params}
    return project, epochs


def hand_written(trainer: Trainer, module_cls, init_state: dict, epochs: int,
                 classification: bool) -> float:
    """The loop a person would write: shuffle, index, forward, backward, step, validate."""
    ds, cfg = trainer.dataset, trainer.config
    model = module_cls().to(trainer.device)
    model.load_state_dict(init_state)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optimizer.kwargs["lr"])
    loss_fn = nn.CrossEntropyLoss() if classification else nn.MSELoss()
    gen = torch.Generator().manual_seed(0)
    start = clock(trainer.device)
    for _ in range(epochs):
        model.train()
        losses = []
        for idx in torch.randperm(len(ds), generator=gen).to(trainer.device).split(cfg.batch_size):
            loss = loss_fn(model(ds.x_train[idx]), ds.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        train_loss = torch.stack(losses).mean().item()
        model.eval()
        with torch.no_grad():
            out = model(ds.x_val)
            val = [loss_fn(out, ds.y_val)]
            if classification:
                val.append((out.argmax(1) == ds.y_val).float().mean())
            torch.stack(val).tolist()
        del train_loss
    return clock(trainer.device) - start


def run_trainer(project, epochs: int, device: str, callbacks=()) -> float:
    return _timed_fit(Trainer(project, device=device, epochs=epochs, callbacks=list(callbacks)))


def clock(device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter()
    return time.process_time()


def compare_loop(case: str, reps: int, device: str) -> tuple[float, float]:
    project, epochs = make_project(case)
    _, _, _, module_cls, classification = CASES[case]
    pairs = []
    for rep in range(reps + 1):  # the first pair warms up and is dropped
        trainer = Trainer(project, device=device, epochs=epochs)
        init = copy.deepcopy(trainer.models["model"].state_dict())
        if rep % 2:
            t_hand = hand_written(trainer, module_cls, init, epochs, classification)
            t_ours = _timed_fit(trainer)
        else:
            t_ours = _timed_fit(trainer)
            t_hand = hand_written(trainer, module_cls, init, epochs, classification)
        if rep:
            pairs.append((t_ours, t_hand))
    return summarize(pairs)


def summarize(pairs: list) -> tuple[float, float]:
    """(median of the per-pair ratios, ratio of the fastest run of each side)."""
    median = statistics.median(a / b for a, b in pairs)
    return median, min(a for a, _ in pairs) / min(b for _, b in pairs)


def noise_floor(case: str, reps: int, device: str) -> tuple[float, float]:
    """The hand-written loop against itself: how far from 1.0 a ratio strays on this machine."""
    project, epochs = make_project(case)
    _, _, _, module_cls, classification = CASES[case]
    trainer = Trainer(project, device=device, epochs=epochs)
    init = copy.deepcopy(trainer.models["model"].state_dict())
    pairs = [(hand_written(trainer, module_cls, init, epochs, classification),
              hand_written(trainer, module_cls, init, epochs, classification))
             for _ in range(reps + 1)][1:]
    return summarize(pairs)


def _timed_fit(trainer: Trainer) -> float:
    start = clock(trainer.device)
    trainer.fit()
    return clock(trainer.device) - start


def compare_probes(case: str, reps: int, device: str) -> tuple[float, float]:
    project, epochs = make_project(case)
    pairs = []
    for rep in range(reps + 1):
        if rep % 2:
            t_off = run_trainer(project, epochs, device)
            t_on = run_trainer(project, epochs, device, [Probes()])
        else:
            t_on = run_trainer(project, epochs, device, [Probes()])
            t_off = run_trainer(project, epochs, device)
        if rep:
            pairs.append((t_on, t_off))
    return summarize(pairs)


class EpochClock:
    """A trainer callback that reads the bench's clock at the end of every epoch."""

    def __init__(self, device):
        self.device, self.marks = device, []

    def __getattr__(self, name):  # every other hook: nothing
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        self.marks.append(clock(trainer.device))


def run_compiled(project, epochs: int, device: str) -> tuple[float, float]:
    """(time of ``epochs`` compiled epochs, compile time): the run first trains the epochs that
    compile (the last partial batch included) and, on a CPU, hold the trial of compiled against
    eager forward (see engine.training.compiling.ForwardTrial); those are not counted."""
    from engine.training.compiling import ForwardTrial

    compiled = copy.deepcopy(project)
    compiled.training = {**compiled.training, "compile": True}
    timer = EpochClock(torch.device(device))
    trainer = Trainer(compiled, device=device, epochs=epochs, callbacks=[timer])
    trial = ForwardTrial()
    warm = 1 if device != "cpu" else \
        -(-(trial.warm + trial.block * trial.blocks + 1) // trainer.steps_per_epoch)
    trainer = Trainer(compiled, device=device, epochs=epochs + warm, callbacks=[timer])
    assert trainer.train_models["model"].is_compiled, trainer.warnings
    trainer.fit()
    assert trainer.compile_fallback is None, trainer.compile_fallback
    timer.marks = timer.marks[warm - 1:]
    choice = next((h["compile_forward"] for h in trainer.history if "compile_forward" in h), None)
    CHOICES.append(choice["choice"] if choice else "compiled")
    return timer.marks[-1] - timer.marks[0], trainer.history[0].get("compile_seconds", 0.0)


CHOICES: list[str] = []  # the forward each compiled run kept (the CPU's trial)


def compare_compiled(case: str, reps: int, device: str) -> tuple[float, float, float]:
    """Compiled Layerlab against the hand-written eager loop: (median ratio, fastest ratio,
    median compile seconds)."""
    project, epochs = make_project(case)
    _, _, _, module_cls, classification = CASES[case]
    pairs, compiles = [], []
    for rep in range(reps + 1):
        trainer = Trainer(project, device=device, epochs=epochs)
        init = copy.deepcopy(trainer.models["model"].state_dict())
        if rep % 2:
            t_hand = hand_written(trainer, module_cls, init, epochs, classification)
            t_ours, t_compile = run_compiled(project, epochs, device)
        else:
            t_ours, t_compile = run_compiled(project, epochs, device)
            t_hand = hand_written(trainer, module_cls, init, epochs, classification)
        if rep:
            pairs.append((t_ours, t_hand))
            compiles.append(t_compile)
    return (*summarize(pairs), statistics.median(compiles))


def lightning_fit(trainer: Trainer, module_cls, init_state: dict, epochs: int,
                  classification: bool) -> float | None:
    """The same model, data, batch, optimizer and epochs in PyTorch Lightning, the way its
    documentation writes it (a LightningModule, DataLoaders over the tensors, per-epoch
    validation); None when Lightning is not installed (it is a bench-only package)."""
    try:
        import lightning as L
    except ImportError:
        try:
            import pytorch_lightning as L
        except ImportError:
            return None
    import logging

    from torch.utils.data import DataLoader, TensorDataset

    logging.getLogger("lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    ds, cfg = trainer.dataset, trainer.config
    lr = cfg.optimizer.kwargs["lr"]
    loss_fn = nn.CrossEntropyLoss() if classification else nn.MSELoss()

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = module_cls()
            self.model.load_state_dict(init_state)

        def forward(self, x):
            return self.model(x)

        def training_step(self, batch, _i):
            x, y = batch
            return loss_fn(self.model(x), y)

        def validation_step(self, batch, _i):
            x, y = batch
            out = self.model(x)
            self.log("val_loss", loss_fn(out, y))
            if classification:
                self.log("val_accuracy", (out.argmax(1) == y).float().mean())

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=lr)

    gen = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(ds.x_train.cpu(), ds.y_train.cpu()),
                       batch_size=cfg.batch_size, shuffle=True, generator=gen)
    val = DataLoader(TensorDataset(ds.x_val.cpu(), ds.y_val.cpu()), batch_size=len(ds.x_val))
    accelerator = "gpu" if trainer.device.type == "cuda" else "cpu"
    fit = L.Trainer(max_epochs=epochs, accelerator=accelerator, devices=1, logger=False,
                    enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, num_sanity_val_steps=0)
    start = clock(trainer.device)
    fit.fit(Module(), train, val)
    return clock(trainer.device) - start


def compare_lightning(case: str, reps: int, device: str) -> tuple[float, float] | None:
    project, epochs = make_project(case)
    _, _, _, module_cls, classification = CASES[case]
    pairs = []
    for rep in range(reps + 1):
        trainer = Trainer(project, device=device, epochs=epochs)
        init = copy.deepcopy(trainer.models["model"].state_dict())
        if rep % 2:
            t_light = lightning_fit(trainer, module_cls, init, epochs, classification)
            if t_light is None:
                return None
            t_ours = _timed_fit(trainer)
        else:
            t_ours = _timed_fit(trainer)
            t_light = lightning_fit(trainer, module_cls, init, epochs, classification)
            if t_light is None:
                return None
        if rep:
            pairs.append((t_ours, t_light))
    return summarize(pairs)


def _keras():
    """Keras 3 on the torch backend, or None when it is not installed or another backend was
    loaded first (a bench-only package, like Lightning)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError:
        return None
    return keras if keras.backend.backend() == "torch" else None


def keras_model(keras, case: str, torch_model: nn.Module):
    """The case's model in Keras layers, holding the torch model's weights (Keras keeps a Dense
    kernel as (in, out), a Conv2D kernel as (h, w, in, out), an LSTM's two biases as one, all
    in torch's gate order i, f, g, o); convolutions read channels first, as the data is."""
    L = keras.layers
    if case == "mlp_spirals":
        model = keras.Sequential([keras.Input((2,)), L.Dense(64, activation="relu"),
                                  L.Dense(64, activation="relu"), L.Dense(2)])
    elif case == "cnn_digits":
        conv = {"padding": "same", "activation": "relu", "data_format": "channels_first"}
        model = keras.Sequential([
            keras.Input((1, 8, 8)), L.Conv2D(16, 3, **conv),
            L.MaxPooling2D(2, data_format="channels_first"), L.Conv2D(32, 3, **conv),
            L.MaxPooling2D(2, data_format="channels_first"), L.Flatten(),
            L.Dense(64, activation="relu"), L.Dense(10)])
    else:
        model = keras.Sequential([keras.Input((20, 1)), L.LSTM(32), L.Dense(1)])
    torch_layers = [m for m in torch_model.modules()
                    if isinstance(m, (nn.Linear, nn.Conv2d, nn.LSTM))]
    keras_layers = [layer for layer in model.layers if layer.weights]
    assert len(torch_layers) == len(keras_layers), (torch_layers, keras_layers)
    for ours, theirs in zip(torch_layers, keras_layers):
        if isinstance(ours, nn.Linear):
            weights = [ours.weight.T, ours.bias]
        elif isinstance(ours, nn.Conv2d):
            weights = [ours.weight.permute(2, 3, 1, 0), ours.bias]
        else:
            weights = [ours.weight_ih_l0.T, ours.weight_hh_l0.T, ours.bias_ih_l0 + ours.bias_hh_l0]
        theirs.set_weights([w.detach().cpu().numpy() for w in weights])
    count = sum(p.numel() for p in torch_model.parameters())
    assert model.count_params() == count - (128 if case == "lstm_sine" else 0), \
        (model.count_params(), count)  # Keras's LSTM has one bias of 4 x 32, torch's two
    return model


def keras_fit(trainer: Trainer, module_cls, init_state: dict, epochs: int,
              classification: bool, case: str) -> float | None:
    """The same model, weights, data, batch, optimizer and epochs in Keras 3 on the torch
    backend, the way its documentation writes it (``compile`` then ``fit`` on arrays, shuffled,
    validated once per epoch in one batch as the others are); eager (``jit_compile=False``),
    as the hand-written loop is. None when Keras is not installed."""
    keras = _keras()
    if keras is None:
        return None
    ds, cfg = trainer.dataset, trainer.config
    reference = module_cls()
    reference.load_state_dict(init_state)
    device = "cuda" if trainer.device.type == "cuda" else "cpu"  # Keras picks CUDA if it can
    with keras.device(device):
        model = keras_model(keras, case, reference)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True) if classification \
            else keras.losses.MeanSquaredError()
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=cfg.optimizer.kwargs["lr"]),
                      loss=loss, metrics=["accuracy"] if classification else None,
                      jit_compile=False)
        arrays = [t.cpu().numpy() for t in (ds.x_train, ds.y_train, ds.x_val, ds.y_val)]
        rng = torch.get_rng_state()  # Keras seeds torch's global generator: put it back after
        keras.utils.set_random_seed(0)
        start = clock(trainer.device)
        model.fit(arrays[0], arrays[1], batch_size=cfg.batch_size, epochs=epochs, shuffle=True,
                  validation_data=(arrays[2], arrays[3]), validation_batch_size=len(arrays[2]),
                  verbose=0)
        seconds = clock(trainer.device) - start
    torch.set_rng_state(rng)
    return seconds


def compare_keras(case: str, reps: int, device: str) -> tuple[float, float] | None:
    project, epochs = make_project(case)
    _, _, _, module_cls, classification = CASES[case]
    if _keras() is None:
        return None
    pairs = []
    for rep in range(reps + 1):
        trainer = Trainer(project, device=device, epochs=epochs)
        init = copy.deepcopy(trainer.models["model"].state_dict())
        if rep % 2:
            t_keras = keras_fit(trainer, module_cls, init, epochs, classification, case)
            t_ours = _timed_fit(trainer)
        else:
            t_ours = _timed_fit(trainer)
            t_keras = keras_fit(trainer, module_cls, init, epochs, classification, case)
        if rep:
            pairs.append((t_ours, t_keras))
    return summarize(pairs)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--only", default="loop,probes,compile,lightning,keras",
                        help="which comparisons (default: all five)")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    torch.set_num_threads(args.threads)  # the same for both sides of every comparison
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}, "
          f"{args.reps} interleaved pairs per figure (median ratio)")
    results = {}
    floor = noise_floor(args.cases.split(",")[0], args.reps, args.device)
    print(f"noise floor: hand-written/hand-written {floor[0]:.3f} (fastest {floor[1]:.3f})")
    for case in args.cases.split(","):
        row = results[case] = {}
        if "loop" in only:
            loop = row["loop"] = compare_loop(case, args.reps, args.device)
            print(f"{case:12s} trainer/hand-written {loop[0]:.3f} (fastest {loop[1]:.3f}; "
                  f"target <= 1.02)", flush=True)
        if "probes" in only:
            probes = row["probes"] = compare_probes(case, args.reps, args.device)
            print(f"{case:12s} probes on/off {probes[0]:.3f} (fastest {probes[1]:.3f}; "
                  f"target <= 1.03)", flush=True)
        if "compile" in only:
            CHOICES.clear()
            comp = row["compile"] = compare_compiled(case, max(3, args.reps // 3), args.device)
            kept = ", ".join(f"{CHOICES.count(c)} {c}" for c in sorted(set(CHOICES)))
            print(f"{case:12s} compiled/hand-written eager {comp[0]:.3f} (fastest "
                  f"{comp[1]:.3f}; target <= 0.9 on two of three; compile "
                  f"{comp[2]:.1f} s apart; forward kept: {kept})", flush=True)
        if "lightning" in only:
            light = row["lightning"] = compare_lightning(case, max(3, args.reps // 3),
                                                         args.device)
            target = 0.8 if case == "mlp_spirals" else 1.0
            print(f"{case:12s} trainer/Lightning " + (
                f"{light[0]:.3f} (fastest {light[1]:.3f}; target <= {target})" if light else
                "skipped: lightning is not installed (pip install lightning)"), flush=True)
        if "keras" in only:
            ker = row["keras"] = compare_keras(case, max(3, args.reps // 3), args.device)
            print(f"{case:12s} trainer/Keras 3 (torch backend) " + (
                f"{ker[0]:.3f} (fastest {ker[1]:.3f}; target <= 1.0)" if ker else
                "skipped: keras is not installed (pip install keras)"), flush=True)
    return results


def test_bench_trainer():
    main(["--reps", "11"])


if __name__ == "__main__":
    main()
