"""``python main.py train PROJECT [--epochs N] [--device D] [--out DIR] [--seed S]
[--distributed] [--tensorboard [DIR]]``.

Prints one JSON object per line on stdout for every epoch, then ``{"event": "done", "out": DIR}``;
``DIR`` (default ``runs/<project stem>`` under the current folder) holds ``checkpoint.pt``
(rewritten atomically after every epoch) and, at the end, ``weights.pt``
(``{model name: state_dict}``, loadable with ``torch.load(..., weights_only=True)``). A progress
bar goes to stderr when stderr is a terminal. Mistakes in the project exit 1 with one line each on
stderr, never a traceback.

``--distributed`` under ``torchrun`` trains with DistributedDataParallel
(:mod:`engine.training.distributed`): every process trains on its shard with the project's
``batch_size``, and only rank 0 prints and writes ``DIR``. ``--tensorboard [DIR]`` (or the
training block's ``"tensorboard": true | "folder"``) adds TensorBoard event files
(:mod:`engine.training.tensorboard`), by default in ``DIR/tensorboard``.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

from .cli import load_or_exit
from .errors import TrainingError

SUFFIX = ".layerlab.json"


def add_parser(sub, command: str) -> None:
    p = sub.add_parser("train", help="train a project headless; one JSON line per epoch")
    p.add_argument("project")
    p.add_argument("--epochs", type=int, help="epochs to train (default: the project's)")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--out", help="folder for checkpoints and weights.pt "
                   "(default: runs/<project stem>)")
    p.add_argument("--seed", type=int, help="random seed (default: the project's, else 0)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads per op (default: 1 for small models, else torch's choice)")
    p.add_argument("--resume", metavar="CHECKPOINT",
                   help="continue from DIR/checkpoint.pt of an earlier run")
    p.add_argument("--distributed", action="store_true",
                   help="train with DistributedDataParallel on every process that torchrun "
                   "starts (gloo on CPU, nccl on CUDA); batch_size is per process")
    p.add_argument("--tensorboard", nargs="?", const=True, metavar="DIR",
                   help="write TensorBoard event files to DIR (default: OUT/tensorboard)")
    p.add_argument("--compile", nargs="?", const=True, metavar="MODE",
                   help="train through torch.compile (inductor); MODE: default, "
                   "reduce-overhead, max-autotune, max-autotune-no-cudagraphs (overrides "
                   "training.compile; the first epoch's line holds compile_seconds)")
    p.add_argument("--no-record", action="store_true",
                   help="do not record the run in the project's run history (runs/STEM/ID)")


def default_out(project_path: str) -> Path:
    name = Path(project_path).name
    stem = name[:-len(SUFFIX)] if name.endswith(SUFFIX) else Path(name).stem
    return Path("runs") / (stem or "project")


def run(args) -> int:
    project, code = load_or_exit(args.project)
    if project is None:
        return code
    if args.epochs is not None and args.epochs < 1:
        raise TrainingError(f"--epochs: must be at least 1; got {args.epochs}")
    if args.threads is not None and args.threads < 1:
        raise TrainingError(f"--threads: must be at least 1; got {args.threads}")
    from .training.config import COMPILE_MODES, parse_training

    if args.compile is not None:
        if args.compile is not True and args.compile not in COMPILE_MODES:
            raise TrainingError(f"--compile: the mode must be one of {', '.join(COMPILE_MODES)}"
                                f"; got {args.compile!r}")
        project.training["compile"] = args.compile
    config = parse_training(project.training)
    # notes follow the "data:" line, which is always train's first line on stderr
    if not args.distributed:
        notes = []
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            notes.append("note: started by torchrun without --distributed: every process "
                         "trains alone; add --distributed to share the work")
        return _train(args, project, config, None, notes)
    if "WORLD_SIZE" not in os.environ:
        return _train(args, project, config, None, [
            "note: --distributed outside torchrun (no WORLD_SIZE in the environment); "
            "training in one process"])
    from .training.distributed import UsageError, process_group

    try:
        with process_group(args.device, config.device) as strategy:
            code = _train(args, project, config, strategy)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    _leave(code)


def _leave(code: int) -> None:
    """End a rank that has trained and left its process group. The process exits at once:
    torch's C++ objects of a finished gloo group are torn down after Python's own, and one
    rank in some 15 to 30 was aborted there ("terminate called without an active exception",
    exit -6, no Python frame) after all its work was done and written."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _train(args, project, config, strategy, notes=()) -> int:
    """Train in this process; only the main process (rank 0) prints and writes files."""
    import torch

    from .training import Trainer
    from .training.runtime import suggested_threads

    main = strategy is None or strategy.is_main
    out = Path(args.out) if args.out else default_out(args.project)
    device = str(strategy.device) if strategy is not None else args.device
    callbacks = _callbacks(args, project, config, out) if main else []
    if main and not getattr(args, "no_record", False):
        from .runs import RunRecorder

        callbacks.append(RunRecorder(project, source="cli"))
    trainer = Trainer(project, device=device, seed=args.seed, epochs=args.epochs,
                      out_dir=out, callbacks=callbacks, resume_from=args.resume,
                      strategy=strategy)
    threads = args.threads or suggested_threads(trainer)
    if threads:
        torch.set_num_threads(threads)
    if main:
        print(f"data: {trainer.dataset.describe()}", file=sys.stderr, flush=True)
        for note in notes:
            print(note, file=sys.stderr)
    for warning in trainer.warnings if main else ():
        print(f"warning: {warning}", file=sys.stderr)
    trainer.fit()
    fallback = getattr(trainer, "compile_fallback", None)
    if main and fallback and not any(w.startswith("training.compile") for w in trainer.warnings):
        print(f"warning: training.compile: {fallback}; trained without compile",
              file=sys.stderr)
    if main:
        trainer.save_weights(out / "weights.pt")
        _emit(sys.stdout, {"event": "done", "out": str(out)})
    return 0


def _callbacks(args, project, config, out: Path) -> list:
    from .training.tensorboard import TensorBoardLogger, log_dir_for

    callbacks = [ProgressBar(sys.stderr)] if _is_tty(sys.stderr) else []
    callbacks.append(JsonLines(sys.stdout))
    if args.tensorboard is not None:  # the command line's folder is relative to the cwd
        log_dir = log_dir_for(args.tensorboard, out)
    else:  # the project's, to the project's folder
        log_dir = log_dir_for(config.tensorboard, out, project.base_dir)
    if log_dir is not None:
        callbacks.append(TensorBoardLogger(log_dir))
    return callbacks


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _clean(value):
    """JSON has no NaN or Infinity: non-finite numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _emit(stream, obj: dict) -> None:
    stream.write(json.dumps({k: _clean(v) for k, v in obj.items()}) + "\n")
    stream.flush()


def _callback_base():
    from .training import Callback

    return Callback


class JsonLines(_callback_base()):
    """Prints ``{"event": "epoch", "epoch": N, ...}`` for every finished epoch."""

    def __init__(self, stream):
        self.stream = stream

    def on_epoch_end(self, trainer, epoch, logs):
        _emit(self.stream, {"event": "epoch", **logs})


class ProgressBar(_callback_base()):
    """A one-line progress bar on a terminal, redrawn at most ten times a second."""

    def __init__(self, stream, width: int = 24):
        self.stream = stream
        self.width = width
        self._drawn = 0.0
        self._loss = ""

    def on_batch_end(self, trainer, step, logs):
        names = trainer.task.step_losses
        if names[0] in logs:
            self._loss = "  ".join(f"{n} {logs[n]:.4g}" for n in names)
        now = time.monotonic()
        if now - self._drawn < 0.1:
            return
        self._drawn = now
        done = (logs["batch"] + 1) / trainer.steps_per_epoch
        filled = int(done * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r\033[Kepoch {logs['epoch']}/{trainer.epochs} [{bar}] "
                          f"{logs['batch'] + 1}/{trainer.steps_per_epoch}  {self._loss}")
        self.stream.flush()

    def on_epoch_end(self, trainer, epoch, logs):
        self.stream.write("\r\033[K")
        self.stream.flush()

    def on_error(self, trainer, error):
        self.on_epoch_end(trainer, 0, {})
