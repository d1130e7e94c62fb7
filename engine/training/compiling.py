"""``training.compile``: the training step through ``torch.compile`` (inductor), with a
graceful way back to eager.

Two parts of a step are compiled. The optimizer's ``step()`` (:class:`CompiledStep`): torch's
"compiled optimizer", one generated kernel for the whole update instead of several operations per
parameter, which is what makes small models faster on a CPU. And the model as trained
(``Trainer.train_models``, :class:`CompiledNet`); evaluation, probes, the fault finder and export
keep the eager ``GraphModule`` (the same parameters), so every live view works as before. On the
CPU a compiled forward and backward can be slower than eager for a small model (the compiled
graph's runtime wrapper costs more than the few operations it replaces), so there the first steps
after compiling are a trial (:class:`ForwardTrial`): blocks of steps alternate between the
compiled and the eager forward, and the faster one trains from then on; the trainer reports the
choice and both times per step (``compile_forward``).

:func:`unavailable` says in one line why compiling cannot work here (no C++ compiler for inductor
on the CPU, a torch without dynamo) before anything is tried; an error that compiling raises on
the first call (an unsupported op, a failing backend) makes the part fall back to eager for good
and tell the trainer why, never a traceback. The compiling calls' time is the compile time,
reported apart from training.
"""
from __future__ import annotations

import os
import shutil
import statistics
import threading
import time

import torch

CXX_NAMES = ("c++", "g++", "clang++")


def mode_of(setting) -> str | None:
    """The ``torch.compile`` mode of a ``training.compile`` setting; None: do not compile."""
    if setting is True:
        return "default"
    return setting if isinstance(setting, str) else None


def unavailable(device: torch.device) -> str | None:
    """Why torch.compile cannot run on ``device`` here, in one line; None when it can try."""
    try:
        import torch._dynamo  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means: no compile
        return f"torch._dynamo does not load ({type(exc).__name__}: {exc})"
    if device.type == "cpu":
        cxx = os.environ.get("CXX")
        if not (cxx and shutil.which(cxx)) and not any(shutil.which(n) for n in CXX_NAMES):
            return "inductor needs a C++ compiler on the CPU and none was found (install g++ " \
                   "or clang, or set CXX)"
    if device.type == "mps":
        return "inductor does not compile for MPS here"
    return None


def describe(logs: dict) -> list[str]:
    """What an epoch's line says about compiling, in words (the window's status bar): the
    compile time, a fallback, the trial's choice."""
    said = []
    if "compile_seconds" in logs:
        said.append(f"torch.compile: compiled in {logs['compile_seconds']:.1f} s")
    if logs.get("compile_fallback"):
        said.append(f"torch.compile: training eager ({logs['compile_fallback']})")
    choice = logs.get("compile_forward")
    if choice:
        models = choice if "choice" not in choice else {"": choice}
        for name, c in models.items():
            who = f"{name}: " if name else ""
            faster = c["choice"]
            said.append(f"torch.compile: {who}the {faster} forward trains faster here "
                        f"({c['compiled_ms']:.2f} ms a step compiled, {c['eager_ms']:.2f} ms "
                        f"eager); the optimizer step stays compiled")
    return said


_FITTING = 0  # compiled runs training now in this process
_FITTING_LOCK = threading.Lock()


def fresh_start() -> None:
    """Before a new compiled run: forget the compiled code of the runs that have ended.

    dynamo keeps compiled code per Python function, guarded on the objects it read: every run's
    optimizer is a new object, so each run adds an entry to ``Optimizer.step``'s cache. After 8
    (the window or an in-process sweep training again and again) dynamo stops compiling it, and
    every step checks each stale guard first. Nothing is forgotten while another compiled run is
    training (a sweep's parallel trials)."""
    with _FITTING_LOCK:
        if _FITTING == 0:
            torch._dynamo.reset()


def fit_started() -> None:
    global _FITTING
    with _FITTING_LOCK:
        _FITTING += 1


def fit_ended() -> None:
    global _FITTING
    with _FITTING_LOCK:
        _FITTING = max(0, _FITTING - 1)


# dynamo's own timers (seconds per call): tracing and compiling the forward, compiling the
# backward (AOTAutograd compiles it lazily, at the first backward)
_TIMERS = ("_compile.compile_inner", "compile_fx.<locals>.bw_compiler")


def compile_time_total() -> float | None:
    """Seconds torch.compile has spent in this process so far (forward and backward graphs,
    recompiles included); None when dynamo keeps no such timers."""
    try:
        from torch._dynamo.utils import compilation_time_metrics
    except Exception:  # noqa: BLE001 - a private timer: absent in some versions
        return None
    return float(sum(sum(compilation_time_metrics.get(k, ())) for k in _TIMERS))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    return f"{type(exc).__name__}: {line}"[:300]


class ForwardTrial:
    """Which forward trains faster here, measured on the run's own steps.

    After ``warm`` compiled steps (compiling, a recompile for a last smaller batch), ``blocks``
    blocks of ``block`` steps alternate eager and compiled. The time from one forward call to the
    next is one whole step (forward, backward, optimizer, the trainer's bookkeeping); the median
    over a side's steps is its time per step. Compiled stays unless eager is clearly faster
    (by more than ``margin``)."""

    def __init__(self, warm: int = 3, block: int = 8, blocks: int = 4, margin: float = 0.03):
        self.warm, self.block, self.blocks, self.margin = warm, block, blocks, margin
        self.calls = 0
        self.times: dict[bool, list[float]] = {True: [], False: []}
        self.last: tuple[bool, float] | None = None
        self.result: dict | None = None

    def next(self) -> bool | None:
        """True: this call runs compiled, False: eager; None once the trial has decided."""
        now = time.perf_counter()
        if self.last is not None and self.calls > self.warm:
            self.times[self.last[0]].append(now - self.last[1])
        i = self.calls - self.warm
        self.calls += 1
        if i >= self.block * self.blocks:
            self._decide()
            return None
        compiled = i < 0 or (i // self.block) % 2 == 1
        self.last = (compiled, now)
        return compiled

    def _decide(self) -> None:
        med = statistics.median
        compiled, eager = med(self.times[True]), med(self.times[False])
        keep = not eager < compiled * (1 - self.margin)
        self.result = {"choice": "compiled" if keep else "eager",
                       "compiled_ms": round(compiled * 1e3, 3), "eager_ms": round(eager * 1e3, 3)}


class CompiledNet:
    """Calls ``torch.compile(module)``; on a compile error, the eager module from then on.
    With ``trial`` (a :class:`ForwardTrial`), the faster of the two after the trial.

    Attribute access goes to the eager module (``parameters()``, ``train()``, ``node_attrs``),
    so an updater or a task holds it like the module itself."""

    def __init__(self, module, mode: str, on_fallback=None, trial: ForwardTrial | None = None):
        self.__dict__["module"] = module
        self.__dict__["mode"] = mode
        self.__dict__["compiled"] = torch.compile(module, mode=mode)
        self.__dict__["active"] = self.compiled
        self.__dict__["on_fallback"] = on_fallback
        self.__dict__["compile_seconds"] = None
        self.__dict__["trial"] = trial

    def __call__(self, *args, **kwargs):
        if self.active is self.module:
            return self.module(*args, **kwargs)
        trial = self.trial
        if trial is not None and trial.result is None:
            use = trial.next()
            if use is False:
                return self.module(*args, **kwargs)
            if use is None and trial.result["choice"] == "eager":
                self.__dict__["active"] = self.module
                return self.module(*args, **kwargs)
        first = self.compile_seconds is None
        start = time.perf_counter()
        try:
            out = self.active(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - see _compile_error
            if not _compile_error(exc):
                raise
            self.fall_back(exc)
            return self.module(*args, **kwargs)
        if first:
            self.__dict__["compile_seconds"] = time.perf_counter() - start
        return out

    def fall_back(self, exc: BaseException) -> None:
        reason = _first_line(exc)
        self.__dict__["active"] = self.module
        if self.on_fallback is not None:
            self.on_fallback(reason)

    @property
    def is_compiled(self) -> bool:
        return self.active is not self.module

    @property
    def choice(self) -> dict | None:
        """The trial's result ({"choice", "compiled_ms", "eager_ms"}) once it has decided."""
        return self.trial.result if self.trial is not None else None

    def __getattr__(self, name):
        return getattr(self.module, name)

    def __setattr__(self, name, value):
        setattr(self.module, name, value)


# optimizers whose step() torch.compile turns into generated kernels (torch's compiled
# optimizer); LBFGS takes a closure and is left eager
STEP_TYPES = ("Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam",
              "Adadelta", "ASGD", "Rprop")


class CompiledStep:
    """``optimizer.step()`` through ``torch.compile``; on a compile error, the eager step from
    then on. A learning rate that a scheduler changes becomes a dynamic value after its first
    change (one recompile, not one per change)."""

    def __init__(self, optimizer, mode: str | None = None, on_fallback=None):
        self.optimizer, self.eager = optimizer, optimizer.step
        # CUDA graphs ("reduce-overhead") are for the forward; the update mutates its state
        mode = None if mode in (None, "default", "reduce-overhead") else mode
        self.active = torch.compile(optimizer.step, mode=mode)
        self.on_fallback = on_fallback

    def __call__(self):
        if self.active is self.eager:
            return self.eager()
        try:
            return self.active()
        except Exception as exc:  # noqa: BLE001 - see _compile_error
            if not _compile_error(exc):
                raise
            self.active = self.eager
            if self.on_fallback is not None:
                self.on_fallback(_first_line(exc))
            return self.eager()

    @property
    def is_compiled(self) -> bool:
        return self.active is not self.eager


def _compile_error(exc: BaseException) -> bool:
    """An error that torch.compile raised while compiling (not one of the model itself, which
    eager would raise as well)."""
    try:
        from torch._dynamo import exc as dynamo_exc
    except Exception:  # noqa: BLE001
        return False
    kinds = tuple(k for k in (getattr(dynamo_exc, "BackendCompilerFailed", None),
                              getattr(dynamo_exc, "Unsupported", None),
                              getattr(dynamo_exc, "InternalTorchDynamoError", None),
                              getattr(dynamo_exc, "TorchRuntimeError", None))
                  if isinstance(k, type))
    if isinstance(exc, kinds):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("torch._dynamo", "torch._inductor", "torch._subclasses"))
