"""``python main.py sweep PROJECT --param KEY=SPEC ... --trials N [--timeout S] [--jobs J]
[--storage URL] [--study NAME] [--metric M] [--direction minimize|maximize]
[--sampler tpe|random|grid] [--pruner median|hyperband|none] [--epochs E] [--seed S]``.

Searches the project's settings and structure with Optuna (see :mod:`engine.sweep` for the KEY
and SPEC forms). Prints one JSON line per trial - ``{"event": "trial", "trial": N, "state":
"complete" | "pruned" | "failed", "value": V, "params": {...}, "epochs": E, "seconds": S,
"run": DIR, "worker": PID}`` - then ``{"event": "best", "trial": N, "value": V, "params":
{...}, "run": DIR, "weights": DIR/best.pt, "project": FILE, "trials": T, ...}``: ``FILE`` is
the project with the best settings, ``weights`` the trial's best weights, ready for ``main.py
export FILE --weights ...``.

``--jobs J`` runs J worker processes on this machine against one study; on several machines run
the same command with the same ``--storage`` (PostgreSQL or MySQL URL, or SQLite on a shared
disk) and ``--study``. ``--trials`` is the study's total: workers stop when it holds that many
trials. The storage defaults to ``runs/STEM/sweeps.db`` beside the project; the study name to
``STEM-<date>-<time>`` (a new study). Exit 0 with a best trial, 1 when no trial completed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from datetime import datetime

from .cli import load_or_exit


def add_parser(sub, command: str) -> None:
    from .sweep import PRUNERS, SAMPLERS

    p = sub.add_parser("sweep", help="search settings and structure with Optuna; one JSON "
                       "line per trial, then the best")
    p.add_argument("project")
    p.add_argument("--param", action="append", default=[], metavar="KEY=SPEC",
                   help="a searched setting: training.optimizer.lr=float:1e-4:1e-1:log, "
                   "fc1.out_features=int:16:128, act.type=choice:ReLU,Tanh, "
                   "drop.include=choice:true,false, fc2..act2.repeat=int:1:4")
    p.add_argument("--trials", type=int, default=20, help="trials in the study (default 20)")
    p.add_argument("--timeout", type=float, metavar="S", help="stop starting trials after S s")
    p.add_argument("--jobs", type=int, default=1, metavar="J",
                   help="worker processes on this machine (default 1)")
    p.add_argument("--storage", metavar="URL",
                   help="Optuna RDB storage (default sqlite:///runs/STEM/sweeps.db)")
    p.add_argument("--study", metavar="NAME", help="study name (default STEM-DATE-TIME)")
    p.add_argument("--metric", help="the validation metric to optimise (default val_loss, "
                   "or the task's)")
    p.add_argument("--direction", choices=("minimize", "maximize"),
                   help="default: maximize for accuracy and return, else minimize")
    p.add_argument("--sampler", choices=SAMPLERS, default="tpe")
    p.add_argument("--pruner", choices=PRUNERS, default="median")
    p.add_argument("--epochs", type=int, help="epochs per trial (default: the project's)")
    p.add_argument("--seed", type=int, help="the sampler's seed")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=1, metavar="N",
                   help="CPU threads per trial (default 1: workers share the cores)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)


def _emit(row: dict, lock=threading.Lock()) -> None:
    with lock:
        sys.stdout.write(json.dumps(row) + "\n")
        sys.stdout.flush()


def run(args) -> int:
    from .runs import maximize, project_stem
    from .sweep import SweepError, SweepSettings, best_of, parse_space, run_worker

    project, code = load_or_exit(args.project)
    if project is None:
        return code
    if not args.param:
        raise SweepError("--param: give at least one KEY=SPEC to search, e.g. "
                         "training.optimizer.lr=float:1e-4:1e-1:log")
    if args.trials < 1 or args.jobs < 1:
        raise SweepError("--trials and --jobs: must be at least 1")
    spaces = [parse_space(text) for text in args.param]
    metric = args.metric or ("mean_return" if project.environment else "val_loss")
    direction = args.direction or ("maximize" if maximize(metric) else "minimize")
    study = args.study or f"{project_stem(project)}-{datetime.now():%Y%m%d-%H%M%S}"
    settings = SweepSettings(spaces=spaces, trials=args.trials, metric=metric,
                             direction=direction, sampler=args.sampler, pruner=args.pruner,
                             epochs=args.epochs, timeout=args.timeout, storage=args.storage,
                             study=study, seed=args.seed, device=args.device,
                             threads=args.threads)
    from .sweep import open_study

    open_study(project, settings)  # create it once, before the workers race to
    if args.worker:
        run_worker(project, settings, _emit)
        return 0
    workers = [_spawn(args, settings, i + 1) for i in range(args.jobs - 1)]
    try:
        run_worker(project, settings, _emit)
    finally:
        for proc in workers:
            proc.wait()
    failed = [p.returncode for p in workers if p.returncode]
    if failed:
        print(f"sweep: {len(failed)} worker process(es) failed (exit {failed[0]})",
              file=sys.stderr)
    best = best_of(project, settings)
    if best is None:
        print("sweep: no trial completed", file=sys.stderr)
        return 1
    _emit(best)
    return 0


def _spawn(args, settings, index: int) -> subprocess.Popen:
    """Worker ``index``: this command again with ``--worker``, the storage and the study fixed
    and its own sampler seed (workers must not propose the same values in lockstep)."""
    from .project import load_project
    from .sweep import default_storage

    storage = settings.storage or default_storage(load_project(args.project))
    command = [sys.executable, "-c", "import sys; from engine.cli import main; "
               "sys.exit(main(sys.argv[1:]))", "sweep", args.project, "--worker",
               "--trials", str(settings.trials), "--storage", storage, "--study",
               settings.study, "--metric", settings.metric, "--direction", settings.direction,
               "--sampler", settings.sampler, "--pruner", settings.pruner, "--device",
               settings.device, "--threads", str(settings.threads or 1)]
    for text in args.param:
        command += ["--param", text]
    for flag, value in (("--epochs", settings.epochs), ("--timeout", settings.timeout),
                        ("--seed", None if settings.seed is None else settings.seed + index)):
        if value is not None:
            command += [flag, str(value)]
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(command, env=env)
