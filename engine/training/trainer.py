"""The trainer: a project's models, data, task recipe and optimizers, and the loop that trains them.

``fit()`` runs in the calling thread; ``pause()``, ``resume()`` and ``stop()`` may be called from
any other thread. The loop does what a hand-written PyTorch loop does - index the device tensors
with a permutation (or read the batches a DataLoader streams), forward, backward, step - and
nothing more per step: losses stay on the device
and are read every ``log_every`` steps (one sync), hooks are called only when a callback overrides
them, and fault finding runs only after something went wrong.
"""
from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.compiler import compile_model
from engine.data.dataset import load_project_source
from engine.errors import TrainingError
from engine.shapes import infer_shapes
from engine.training import checkpoints, faults
from engine.training.callbacks import HOOKS, overriding
from engine.training.compiling import fit_ended, fit_started
from engine.training.config import parse_training
from engine.training.optim import Updater, build_optimizer, build_scheduler
from engine.training.runtime import (EarlyStopper, SingleProcess, resolve_device, rng_state,
                                     set_rng_state)
from engine.training.tasks import build_task, choose_task, evaluating

SHUFFLE_STREAM = 1  # the shuffle generator's seed is seed + this
# what torch raises for bad shapes, targets or memory (a TypeError would be our own bug)
RUN_ERRORS = (RuntimeError, ValueError, IndexError)


@dataclass
class FitResult:
    """What ``fit()`` returns."""

    history: list
    stopped: str  # 'completed' | 'stopped' | 'early_stopping'
    epochs: int
    steps: int
    seconds: float
    best_epoch: int | None = None


class Trainer:
    """Trains a project's models on its dataset with the recipe of its ``training.task``."""

    def __init__(self, project, *, device: str | None = "auto", seed: int | None = None,
                 callbacks=(), out_dir=None, epochs: int | None = None, resume_from=None,
                 strategy=None, log_every: int = 20, progress=None):
        self.project = project
        self.config = parse_training(project.training)
        self.seed = _whole("seed", self.config.seed if seed is None else seed, 0)
        self.epochs = _whole("epochs", self.config.epochs if epochs is None else epochs, 1)
        self.log_every = _whole("log_every", log_every, 1)
        self.device = resolve_device(device, self.config.device)
        self.strategy = strategy or SingleProcess()
        self.callbacks = list(callbacks)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.history: list[dict] = []
        self.step = 0
        self.epoch = 0  # epochs completed
        self.warnings = list(self.config.warnings)
        self._stop_event = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.stepping = False  # step_once() asked for one step
        self._build(progress)
        self._resume_rng = None
        if resume_from is not None:
            self._load(resume_from)

    # -- building ----------------------------------------------------------------------------
    def _build(self, progress) -> None:
        self.dataset = self.strategy.shard_validation(load_project_source(
            self.project, seed=self.seed, device=self.device, progress=progress))
        self.graphs = dict(self.project.models)
        self.shapes = {n: infer_shapes(g, self.dataset.shapes) for n, g in self.graphs.items()}
        torch.manual_seed(self.seed)  # the initial weights depend on the seed alone
        self.models = {n: compile_model(g, self.shapes[n]).to(self.device)
                       for n, g in self.graphs.items()}
        self.train_models = {n: self.strategy.wrap(n, m) for n, m in self.models.items()}
        self._compile()
        self.amp = self._use_amp()
        kind = self.device.type
        self.autocast = torch.autocast(kind, dtype=torch.float16) if self.amp else None
        self.task_name = self.config.task or choose_task(self.project, self.dataset)
        self.task = build_task(self.task_name, self)
        self._check_optimizer_names()
        self.steps_per_epoch = self.task.steps_per_epoch()
        self.optimizers = {n: build_optimizer(self.config.optimizer_for(n), m.parameters(),
                                              self._optimizer_where(n))
                           for n, m in self.models.items()}
        self.schedules = {n: s for n, s in (
            (n, build_scheduler(self.config.scheduler, opt, epochs=self.epochs,
                                steps_per_epoch=self.steps_per_epoch))
            for n, opt in self.optimizers.items()) if s is not None}
        self.scalers = {n: torch.amp.GradScaler(kind) for n in self.models} if self.amp else {}
        self._shuffle = torch.Generator().manual_seed(self.seed + SHUFFLE_STREAM)
        self.monitor = self._monitor()
        es = self.config.early_stopping
        self.early_stopper = EarlyStopper(es, self.monitor) if es else None
        self._rewind = faults.Rewind(self)
        self._marked_at = 0.0
        self._dry_run()

    def _compile(self) -> None:
        """``training.compile``: the trained forward through torch.compile (see
        :mod:`engine.training.compiling`); a one-line warning when it cannot be."""
        from .compiling import (CompiledNet, ForwardTrial, compile_time_total, fresh_start, mode_of,
                                unavailable)

        self.compile_mode = mode_of(self.config.compile)
        self.compile_fallback: str | None = None
        self.compile_wall = 0.0
        self.compiled_steps: dict = {}
        self._choice_reported = False
        if self.compile_mode is None:
            return
        reason = unavailable(self.device)
        if reason is not None:
            self.warnings.append(f"training.compile: {reason}; training without compile")
            self.compile_fallback = reason
            self.compile_mode = None
            return

        fresh_start()
        # on a CPU the compiled forward is kept only where it trains faster (see ForwardTrial)
        trial = self.device.type == "cpu"
        self.train_models = {n: CompiledNet(m, self.compile_mode, self._compile_fell_back,
                                            ForwardTrial() if trial else None)
                             for n, m in self.train_models.items()}
        self._compile_clock = compile_time_total()

    def _compile_fell_back(self, why: str) -> None:
        if self.compile_fallback is None:  # the first reason (the forward's, then the step's)
            self.compile_fallback = why

    def _optimizer_step(self, name: str):
        """The compiled ``step()`` of model ``name``'s optimizer under ``training.compile``
        (None: the optimizer's own): not under mixed precision (the scaler steps), not for
        optimizers torch does not compile (LBFGS)."""
        from .compiling import STEP_TYPES, CompiledStep

        if self.compile_mode is None or name in self.scalers:
            return None
        optimizer = self.optimizers[name]
        if type(optimizer).__name__ not in STEP_TYPES:
            return None
        if name not in self.compiled_steps:
            self.compiled_steps[name] = CompiledStep(
                optimizer, self.compile_mode,
                lambda why: self._compile_fell_back(f"optimizer step: {why}"))
        return self.compiled_steps[name]

    def _backward_guard(self, step):
        """``step`` that survives a backward that fails to compile: AOTAutograd compiles the
        backward at the first ``backward()``, after the compiled forward has run, so that error
        comes out of the step, not out of :class:`CompiledNet`. Every model then trains with its
        eager forward and the step runs again (its gradients are set afresh; under a task with
        two updates, such as a GAN, an update already made in that step is made twice)."""
        from .compiling import CompiledNet, _compile_error

        def guarded(idx):
            try:
                return step(idx)
            except Exception as exc:  # noqa: BLE001 - only compile errors are handled
                nets = [m for m in self.train_models.values()
                        if isinstance(m, CompiledNet) and m.is_compiled]
                if not nets or not _compile_error(exc):
                    raise
                for net in nets:
                    net.fall_back(exc)
                return step(idx)
        return guarded

    def _compile_timer(self, step):
        """``step`` that adds its wall time to ``compile_wall`` whenever torch.compile compiled
        during it (the first steps, a new batch size): the compile time, apart from training."""
        from .compiling import compile_time_total

        def timed(idx):
            before, start = compile_time_total(), time.perf_counter()
            out = step(idx)
            if compile_time_total() != before:
                self.compile_wall += time.perf_counter() - start
            return out
        return timed

    def compile_report(self) -> dict:
        """``compile_seconds`` (the first compiled calls) and ``compile_fallback`` (why it went
        back to eager), for the first epoch's logs."""
        from .compiling import CompiledNet

        nets = [m for m in self.train_models.values() if isinstance(m, CompiledNet)]
        report = {}
        seconds = [m.compile_seconds for m in nets if m.compile_seconds is not None]
        if self.compile_wall:
            report["compile_seconds"] = round(self.compile_wall, 3)
        elif seconds:  # the first compiled forward calls (dynamo keeps no timers)
            report["compile_seconds"] = round(sum(seconds), 3)
        if self.compile_fallback:
            report["compile_fallback"] = self.compile_fallback
        report.update(self._forward_choice())
        return report

    def _forward_choice(self) -> dict:
        """``compile_forward`` once the CPU's trial has decided (on the epoch it decided):
        which forward trains and both times per step, e.g. ``{"choice": "eager",
        "compiled_ms": 0.52, "eager_ms": 0.41}``."""
        from .compiling import CompiledNet

        if self._choice_reported:
            return {}
        choices = {n: m.choice for n, m in self.train_models.items()  # none that fell back
                   if isinstance(m, CompiledNet) and m.trial is not None and
                   (m.is_compiled or m.choice is not None)}
        if not choices or any(c is None for c in choices.values()):
            return {}
        self._choice_reported = True
        if len(choices) == 1:
            return {"compile_forward": next(iter(choices.values()))}
        return {"compile_forward": choices}

    def _use_amp(self) -> bool:
        if self.config.amp and self.device.type != "cuda":
            self.warnings.append("training.amp: mixed precision runs on CUDA only; training in "
                                 f"float32 on {self.device}")
        return self.config.amp and self.device.type == "cuda"

    def _check_optimizer_names(self) -> None:
        for name in self.config.optimizers:
            if name not in self.models:
                raise TrainingError(f"training.optimizers.{name}: no model named '{name}' "
                                    f"(models: {', '.join(self.models)})")

    def _optimizer_where(self, name: str) -> str:
        if name in self.config.optimizers:
            return f"training.optimizers.{name}"
        return "training.optimizer"

    def _monitor(self) -> str:
        es = self.config.early_stopping
        if es is not None and es.monitor != "val_loss":
            return es.monitor
        return self.task.monitor_default()

    def _dry_run(self) -> None:
        def run():
            with torch.no_grad(), evaluating(*self.models.values()):
                self.task.dry_run()
        try:
            run()
        except RUN_ERRORS as exc:
            raise faults.runtime_error(self, exc, run, "trying a first batch") from None

    # -- control from other threads ------------------------------------------------------------
    def pause(self) -> None:
        """Block the loop before its next step until :meth:`resume` (or :meth:`stop`)."""
        self._running.clear()

    def resume(self) -> None:
        self.stepping = False  # a Step in flight becomes a plain resume
        self._running.set()

    def step_once(self) -> None:
        """From a pause: one step (one batch, forward and backward), then paused again; the
        hooks see ``stepping`` true during it (the probes refresh after it)."""
        self.stepping = True
        self._running.set()

    def stop(self) -> None:
        """End a running ``fit()`` after its current step; ``fit()`` returns normally. Calling
        ``fit()`` again goes on from the last finished epoch."""
        self._stop_event.set()
        self._running.set()

    @property
    def is_paused(self) -> bool:
        return not self._running.is_set()

    @property
    def stop_requested(self) -> bool:
        return self._stop_event.is_set()

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> FitResult:
        """Train until the last epoch, a stop request or early stopping; return the history."""
        hooks = {h: overriding(self.callbacks, h) for h in HOOKS}
        self._stop_event.clear()  # a stop() that came after the last fit() ended
        self._bind(hooks["on_after_backward"])
        self._fit_start = time.perf_counter()
        benchmark = torch.backends.cudnn.benchmark
        if self.device.type == "cuda" and self.dataset.in_memory:
            torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN's fastest kernels
        compiled = self.compile_mode is not None
        try:
            if compiled:
                fit_started()
            for hook in hooks["on_train_start"]:
                hook(self)
            if self._resume_rng is not None:
                set_rng_state(self._resume_rng, self._shuffle)
                self._resume_rng = None
            stopped = self._epochs(hooks)
            return self._finish(stopped, hooks)
        except BaseException as exc:
            for hook in hooks["on_error"]:
                hook(self, exc)
            raise
        finally:
            if compiled:
                fit_ended()
            torch.backends.cudnn.benchmark = benchmark  # this run's choice, not the process's
            self.dataset.close()  # reader processes; a later fit() starts them again

    def _bind(self, after_backward) -> None:
        cfg = self.config
        self.task.updaters = {
            n: Updater(self, n, self.train_models[n], self.optimizers[n],
                       scaler=self.scalers.get(n), clip=cfg.grad_clip, l1=cfg.l1,
                       hooks=after_backward, step=self._optimizer_step(n))
            for n in self.models}

    def _epochs(self, hooks) -> str:
        while self.epoch < self.epochs:
            if self._stop_event.is_set():
                return "stopped"
            epoch = self.epoch + 1
            for hook in hooks["on_epoch_start"]:
                hook(self, epoch)
            if not self._run_epoch(epoch, hooks["on_batch_end"]):
                return "stopped"
            logs = self._end_epoch(epoch)
            for hook in hooks["on_epoch_end"]:
                hook(self, epoch, logs)
            if self.early_stopper is not None and self.early_stopper.should_stop:
                return "early_stopping"
        return "completed"

    def _run_epoch(self, epoch: int, on_batch_end) -> bool:
        for model in self.models.values():
            model.train()
        self.strategy.set_epoch(epoch)
        batches = self.task.batches(epoch)
        self._batches = batches
        self._sums = [0.0] * len(self.task.step_losses)
        self._count = 0
        self._mark(0)
        train_step, per_batch = self.task.train_step, self._per_batch_schedulers()
        if getattr(self, "_compile_clock", None) is not None:
            train_step = self._backward_guard(train_step)
            if not self.history:
                train_step = self._compile_timer(train_step)
        pending, last, log_every = [], len(batches) - 1, self.log_every
        self._pending = pending
        for i, idx in enumerate(batches):
            if not self._running.is_set():
                self._running.wait()
            if self._stop_event.is_set():
                self._sync(pending, epoch, i - 1)
                return False
            try:
                pending.append(train_step(idx))
            except RUN_ERRORS as exc:
                raise self._step_error(exc, idx, epoch) from None
            for scheduler in per_batch:
                scheduler.step()
            self.step += 1
            logs = self._sync(pending, epoch, i) if len(pending) >= log_every or i == last else None
            if on_batch_end:
                logs = {"epoch": epoch, "batch": i, **(logs or {})}
                for hook in on_batch_end:
                    hook(self, self.step, logs)
            if self.stepping:  # step_once: paused again before the next batch
                self.stepping = False
                self._running.clear()
        return True

    def _per_batch_schedulers(self) -> list:
        return [s.scheduler for s in self.schedules.values() if s.per_batch]

    def _sync(self, pending: list, epoch: int, batch: int) -> dict | None:
        """Read the pending losses from the device (the loop's only sync); stop on NaN/Inf."""
        if not pending:
            return None
        k = len(self.task.step_losses)
        flat = torch.stack([t for losses in pending for t in losses]).tolist()
        if not math.isfinite(sum(flat)):
            raise self._first_nonfinite(flat, k, epoch, batch - len(pending) + 1)
        rows = len(pending)
        pending.clear()
        totals = [sum(flat[j::k]) for j in range(k)]
        self._sums = [s + t for s, t in zip(self._sums, totals)]
        self._count += rows
        self._mark(batch + 1)
        logs = {name: total / rows for name, total in zip(self.task.step_losses, totals)}
        logs["lr"] = self.lr
        return logs

    def _first_nonfinite(self, flat: list, k: int, epoch: int, first: int) -> TrainingError:
        bad = next(i for i, v in enumerate(flat) if not math.isfinite(v))
        batch = first + bad // k
        step = self.step - (first + len(flat) // k - 1 - batch)
        return self._nonfinite(epoch, batch, step, self.task.step_losses[bad % k], flat[bad])

    @property
    def lr(self) -> float:
        """The learning rate of the first model's first parameter group."""
        return float(next(iter(self.optimizers.values())).param_groups[0]["lr"])

    def _end_epoch(self, epoch: int) -> dict:
        train = {key: s / max(self._count, 1) for key, s in zip(self.task.epoch_keys, self._sums)}
        with torch.no_grad(), evaluating(*self.models.values()):
            try:
                val = self.task.evaluate()
            except RUN_ERRORS as exc:
                raise faults.runtime_error(self, exc, self.task.evaluate, "validating") from None
        val_count = self.dataset.val_size
        logs = {"epoch": epoch, **self.strategy.reduce(train, self._count),
                **self.strategy.reduce(val, val_count), "lr": self.lr,
                "seconds": round(time.perf_counter() - self._fit_start, 3)}
        if self.config.compile and not self.history:
            logs.update(self.compile_report())
        elif self.config.compile:
            logs.update(self._forward_choice())
        self.history.append(logs)
        self.epoch = epoch
        metric = logs.get(self.monitor)
        for schedule in self.schedules.values():
            schedule.epoch_end(metric)
        if self.early_stopper is not None:
            self.early_stopper.update(logs, epoch, self.models)
        if self.out_dir is not None and self.strategy.is_main:
            checkpoints.save(self.out_dir / checkpoints.CHECKPOINT_NAME, self.checkpoint())
        return logs

    def _finish(self, stopped: str, hooks) -> FitResult:
        best = None
        if self.early_stopper is not None:
            best = self.early_stopper.best_epoch or None
            self.early_stopper.restore(self.models)
        seconds = time.perf_counter() - self._fit_start
        result = FitResult(self.history, stopped, self.epoch, self.step, seconds, best)
        logs = {"stopped": stopped, "epochs": self.epoch, "steps": self.step,
                "seconds": round(seconds, 3)}
        for hook in hooks["on_train_end"]:
            hook(self, logs)
        return result

    @property
    def shuffle_generator(self) -> torch.Generator:
        """The generator of the training order (seeded from the run's seed)."""
        return self._shuffle

    def close(self) -> None:
        """Release the data source's reader processes and files."""
        self.dataset.close()

    # -- faults ----------------------------------------------------------------------------------
    def _mark(self, batch: int) -> None:
        """Remember the state before ``batch`` of this epoch, to replay from it after a NaN."""
        now = time.perf_counter()
        if batch == 0 or now - self._marked_at >= 1.0:
            self._rewind.take(batch)
            self._marked_at = now

    def _step_error(self, exc: Exception, idx, epoch: int) -> TrainingError:
        def rerun():
            self.task.diagnose(idx)
        return faults.runtime_error(self, exc, rerun, f"training (epoch {epoch})")

    def _nonfinite(self, epoch: int, batch: int, step: int, name: str,
                   value: float) -> TrainingError:
        """Go back to the last snapshot, replay up to the bad batch, and find the culprit; the
        models are left as they were just before it (finite, usable)."""
        self._pending.clear()
        self._rewind.restore()
        self.step = step - 1 - (batch - self._rewind.batch)
        for i in range(self._rewind.batch, batch):
            self._replay(self._batches[i])
        idx = self._batches[batch]
        return faults.nonfinite_error(self, lambda: self.task.diagnose(idx), epoch=epoch,
                                      step=step, loss_name=name, value=value)

    def _replay(self, idx) -> None:
        updaters = self.task.updaters
        hooks = {n: u.hooks for n, u in updaters.items()}
        try:
            for u in updaters.values():
                u.hooks = ()
            self.task.train_step(idx)
            for scheduler in self._per_batch_schedulers():
                scheduler.step()
            self.step += 1
        finally:
            for n, u in updaters.items():
                u.hooks = hooks[n]

    # -- state -----------------------------------------------------------------------------------
    def _live_state(self) -> dict:
        """References to every piece of training state (clone before keeping it)."""
        return {"models": {n: m.state_dict() for n, m in self.models.items()},
                "optimizers": {n: o.state_dict() for n, o in self.optimizers.items()},
                "schedulers": {n: s.state_dict() for n, s in self.schedules.items()},
                "scalers": {n: s.state_dict() for n, s in self.scalers.items()},
                "rng": rng_state(self.device, self._shuffle)}

    def _restore(self, state: dict) -> None:
        state = copy.deepcopy(state)  # optimizers adopt the given tensors; keep ours intact
        for name, model in self.models.items():
            model.load_state_dict(state["models"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, schedule in self.schedules.items():
            schedule.load_state_dict(state["schedulers"][name])
        for name, scaler in self.scalers.items():
            if name in state["scalers"]:
                scaler.load_state_dict(state["scalers"][name])
        set_rng_state(state["rng"], self._shuffle)

    def checkpoint(self) -> dict:
        """The state at the end of the last completed epoch, as saved in DIR/checkpoint.pt."""
        return {"format": checkpoints.FORMAT, "version": checkpoints.VERSION,
                "project": self.project.name, "task": self.task_name,
                "training": self.project.training, "seed": self.seed, "epoch": self.epoch,
                "step": self.step, "history": list(self.history), **self._live_state(),
                "early_stopping": self.early_stopper.state_dict() if self.early_stopper
                else None}

    def _load(self, path) -> None:
        state = checkpoints.load_checkpoint(path, self.device)
        missing = set(self.models) - set(state.get("models", {}))
        if missing:
            raise TrainingError(f"{path}: the checkpoint has no weights for model(s) "
                                f"{', '.join(sorted(missing))}")
        try:
            self._restore({k: state[k] for k in ("models", "optimizers", "schedulers",
                                                  "scalers", "rng")})
        except (RuntimeError, KeyError, ValueError) as exc:
            raise TrainingError(f"{path}: the checkpoint does not fit this project "
                                f"({faults.first_line(exc)})") from None
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.history = list(state["history"])
        if self.early_stopper is not None and state.get("early_stopping"):
            self.early_stopper.load_state_dict(state["early_stopping"])
        self._resume_rng = state["rng"]

    # -- conveniences ------------------------------------------------------------------------
    def save_weights(self, path) -> Path:
        """Write ``{model name: state_dict}`` (CPU tensors) atomically."""
        return checkpoints.save_weights(path, self.models)

    def predict(self, *inputs, model: str | None = None):
        """The output of a model (the first by default) for a batch, in eval mode. From another
        thread, call it only while training is paused or finished."""
        net = self.models[model or next(iter(self.models))]
        with torch.no_grad(), evaluating(net):
            return net(*(torch.as_tensor(x, device=self.device) for x in inputs))


def _whole(name: str, value, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise TrainingError(f"{name}: must be a whole number of at least {lo}; got {value!r}")
    return value
