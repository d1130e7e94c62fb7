"""``training.compile``: the training forward through ``torch.compile`` (inductor), with a
graceful way back to eager.

Only the model as trained (``Trainer.train_models``) is compiled; evaluation, probes, the fault
finder and export keep the eager ``GraphModule`` (the same parameters), so every live view works
as before. :func:`unavailable` says in one line why compiling cannot work here (no C++ compiler
for inductor on the CPU, a torch without dynamo) before anything is tried; an error that
compiling raises on the first call (an unsupported op, a failing backend) makes
:class:`CompiledNet` fall back to the eager module for good and tell the trainer why, never a
traceback. The first compiled call's time is the compile time, reported apart from training.
"""
from __future__ import annotations

import os
import shutil
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


class CompiledNet:
    """Calls ``torch.compile(module)``; on a compile error, the eager module from then on.

    Attribute access goes to the eager module (``parameters()``, ``train()``, ``node_attrs``),
    so an updater or a task holds it like the module itself."""

    def __init__(self, module, mode: str, on_fallback=None):
        self.__dict__["module"] = module
        self.__dict__["mode"] = mode
        self.__dict__["compiled"] = torch.compile(module, mode=mode)
        self.__dict__["active"] = self.compiled
        self.__dict__["on_fallback"] = on_fallback
        self.__dict__["compile_seconds"] = None

    def __call__(self, *args, **kwargs):
        if self.active is self.module:
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

    def __getattr__(self, name):
        return getattr(self.module, name)

    def __setattr__(self, name, value):
        setattr(self.module, name, value)


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
