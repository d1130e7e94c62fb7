"""Sweeps: search a project's settings and structure with Optuna.

A search space is a list of ``KEY=SPEC`` strings (the ``--param`` of ``main.py sweep``).

KEY names what changes:

- ``training.optimizer.lr``, ``training.batch_size``, ``dataset.params.noise``: a value in the
  project's ``training`` or ``dataset`` block (a dotted path; missing levels are created);
- ``fc1.out_features``, ``drop.p``: a parameter of a node (``model:fc1.out_features`` when the
  project has several models);
- ``act1.type``: the node's layer type (an activation swapped for another; parameters the new
  type does not have are dropped);
- ``drop.include``: whether the node is kept (false: it is removed and its input wired straight
  to what it fed; it must have one input);
- ``fc2..act2.repeat``: how many times the chain from ``fc2`` to ``act2`` appears (1 keeps it;
  copies are named ``fc2_2`` ... and wired one after another; the chain must have one way in and
  one way out).

SPEC says which values: ``float:LO:HI`` (``float:LO:HI:log`` on a log scale), ``int:LO:HI``
(``int:LO:HI:STEP``), ``choice:A,B,C`` (each read as JSON when it parses - numbers, true,
false - else as text).

:func:`run_sweep` runs trials in this process against an Optuna study in an RDB storage (SQLite
by default, so that several processes - ``--jobs`` - or machines share it; each trial is one
Trainer run recorded in the run history with source "sweep"); pruning stops poor trials early
on the validation metric. This module imports no Qt.
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import LayerlabError, first_line

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")


class SweepError(LayerlabError):
    """A search space or sweep setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class Space:
    """One searched setting: ``key`` (as given), ``kind`` (float, int, choice) and its range."""

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: int | None = None
    choices: tuple = ()

    def suggest(self, trial):
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high),
                                     step=self.step or 1)
        return trial.suggest_categorical(self.key, list(self.choices))

    def grid(self) -> list:
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, self.step or 1))
        raise SweepError(f"--param {self.key}: the grid sampler needs a list of values; use "
                         f"choice:... or int:LO:HI[:STEP] instead of float:{self.low}:{self.high}")


def _number(text: str, key: str, whole: bool = False):
    try:
        value = float(text)
    except ValueError:
        raise SweepError(f"--param {key}: {text!r} is not a number") from None
    if whole:
        if not value.is_integer():
            raise SweepError(f"--param {key}: {text!r} is not a whole number")
        return int(value)
    return value


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_space(text: str) -> Space:
    """``KEY=SPEC`` -> :class:`Space`; a :class:`SweepError` naming the part at fault."""
    if "=" not in text:
        raise SweepError(f"--param {text!r}: write KEY=SPEC, e.g. training.optimizer.lr="
                         "float:1e-4:1e-1:log or fc1.out_features=int:16:128")
    key, spec = (part.strip() for part in text.split("=", 1))
    if not key:
        raise SweepError(f"--param {text!r}: the key before '=' is empty")
    kind, _, rest = spec.partition(":")
    if kind == "choice":
        values = tuple(_value(v.strip()) for v in rest.split(",") if v.strip())
        if not values:
            raise SweepError(f"--param {key}: choice needs values, e.g. choice:ReLU,Tanh")
        return Space(key, "choice", choices=values)
    if kind in ("float", "int"):
        parts = rest.split(":")
        if len(parts) < 2:
            raise SweepError(f"--param {key}: {kind} needs a range, e.g. {kind}:1:10")
        whole = kind == "int"
        low, high = _number(parts[0], key, whole), _number(parts[1], key, whole)
        if low > high:
            raise SweepError(f"--param {key}: the range {low}..{high} is empty")
        log = step = None
        for extra in parts[2:]:
            if extra == "log":
                log = True
            elif whole:
                step = _number(extra, key, True)
                if step < 1:
                    raise SweepError(f"--param {key}: the step must be at least 1")
            else:
                raise SweepError(f"--param {key}: unknown option {extra!r} (float takes 'log')")
        if log and low <= 0:
            raise SweepError(f"--param {key}: a log scale needs a range above 0")
        if log and step not in (None, 1):
            raise SweepError(f"--param {key}: a log scale takes no step (Optuna draws log "
                             f"values from the whole range); drop one of them")
        return Space(key, kind, low, high, bool(log), step)
    raise SweepError(f"--param {key}: unknown kind {kind!r}; use float:LO:HI[:log], "
                     "int:LO:HI[:STEP] or choice:A,B,...")


# -- applying values to a project -------------------------------------------------------------
def apply_values(data: dict, values: dict) -> dict:
    """A copy of the project dict ``data`` with the searched ``values`` ({key: value}) set:
    layer types first (a parameter of the new type is then known), parameters (so that the
    copies of a repeated chain have them too), then repeats, then skipped layers."""
    data = copy.deepcopy(data)
    order = sorted(values, key=lambda k: (-1 if k.endswith(".type") else
                                          1 if k.endswith(".repeat") and ".." in k else
                                          2 if k.endswith(".include") else 0))
    for key in order:
        _apply(data, key, values[key])
    return data


def _apply(data: dict, key: str, value) -> None:
    head = key.split(".", 1)[0]
    if head in ("training", "dataset") and "." in key:
        target = data.setdefault(head, {})
        *path, last = key.split(".")[1:]
        for part in path:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise SweepError(f"--param {key}: {part} is not an object in the project")
        target[last] = value
        return
    model_name, _, rest = key.rpartition(":")
    graph = _model(data, model_name, key)
    if rest.endswith(".repeat") and ".." in rest:
        first, last = rest[:-len(".repeat")].split("..", 1)
        _repeat(graph, first, last, int(value), key)
        return
    node_id, _, attr = rest.rpartition(".")
    if not node_id or not attr:
        raise SweepError(f"--param {key}: write NODE.PARAM (e.g. fc1.out_features), "
                         "training.SETTING or dataset.params.SETTING")
    node = _node(graph, node_id, key)
    if attr == "include":
        if value in (False, "false", 0):
            _remove(graph, node_id, key)
        return
    if attr == "type":
        from .layers import CATALOG

        if value not in CATALOG:
            raise SweepError(f"--param {key}: unknown layer type {value!r}")
        node["type"] = value
        names = set(CATALOG[value].param_names)
        node["params"] = {k: v for k, v in (node.get("params") or {}).items() if k in names}
        return
    from .layers import CATALOG

    spec = CATALOG.get(node.get("type"))
    if spec is not None and attr not in spec.param_names:
        raise SweepError(f"--param {key}: {node_id} ({spec.type}) has no parameter {attr!r} "
                         f"(it has {', '.join(spec.param_names) or 'none'})")
    node.setdefault("params", {})[attr] = value


def _model(data: dict, name: str, key: str) -> dict:
    models = data.get("models", {})
    if name:
        if name not in models:
            raise SweepError(f"--param {key}: no model named {name!r} "
                             f"(models: {', '.join(models)})")
        return models[name]
    if len(models) != 1:
        raise SweepError(f"--param {key}: the project has {len(models)} models; write "
                         f"MODEL:{key} (models: {', '.join(models)})")
    return next(iter(models.values()))


def _node(graph: dict, node_id: str, key: str) -> dict:
    for node in graph.get("nodes", []):
        if node["id"] == node_id:
            return node
    ids = ", ".join(n["id"] for n in graph.get("nodes", []))
    raise SweepError(f"--param {key}: no node {node_id!r} (nodes: {ids})")


def _remove(graph: dict, node_id: str, key: str) -> None:
    edges = graph.get("edges", [])
    ins = [e for e in edges if e["to"] == node_id]
    outs = [e for e in edges if e["from"] == node_id]
    if len(ins) != 1:
        raise SweepError(f"--param {key}: {node_id} has {len(ins)} inputs; only a node with "
                         "one input can be skipped")
    src = ins[0]
    graph["nodes"] = [n for n in graph["nodes"] if n["id"] != node_id]
    kept = [e for e in edges if e["to"] != node_id and e["from"] != node_id]
    for e in outs:
        new = {"from": src["from"], "to": e["to"]}
        if src.get("from_port", "out") != "out":
            new["from_port"] = src["from_port"]
        if e.get("to_port"):
            new["to_port"] = e["to_port"]
        kept.append(new)
    graph["edges"] = kept


def _chain(graph: dict, first: str, last: str, key: str) -> list[str]:
    edges = graph.get("edges", [])
    chain, node = [first], first
    while node != last:
        nxt = [e["to"] for e in edges if e["from"] == node]
        if len(nxt) != 1:
            raise SweepError(f"--param {key}: {node} feeds {len(nxt)} nodes; a repeated chain "
                             f"must run in one line from {first} to {last}")
        node = nxt[0]
        if node in chain:
            raise SweepError(f"--param {key}: the chain from {first} loops")
        chain.append(node)
    inside = set(chain)
    for e in edges:
        if e["to"] in inside and e["to"] != first and e["from"] not in inside:
            raise SweepError(f"--param {key}: {e['to']} also takes input from {e['from']}, "
                             "outside the chain")
    return chain


def _repeat(graph: dict, first: str, last: str, times: int, key: str) -> None:
    _node(graph, first, key), _node(graph, last, key)
    if times < 1:
        raise SweepError(f"--param {key}: a chain repeats at least once; got {times}")
    chain = _chain(graph, first, last, key)
    if times == 1:
        return
    edges = graph["edges"]
    nodes = {n["id"]: n for n in graph["nodes"]}
    exits = [e for e in edges if e["from"] == last]
    graph["edges"] = [e for e in edges if e["from"] != last]
    taken = set(nodes)
    prev_last = last
    for i in range(2, times + 1):
        names = {}
        for node_id in chain:
            name, k = f"{node_id}_{i}", i
            while name in taken:
                k += 1
                name = f"{node_id}_{k}"
            names[node_id] = name
            taken.add(name)
            clone = copy.deepcopy(nodes[node_id])
            clone["id"] = name
            if "pos" in clone:
                clone["pos"] = [clone["pos"][0], clone["pos"][1] + 165 * (i - 1)]
            graph["nodes"].append(clone)
        for e in edges:
            if e["from"] in names and e["to"] in names and e["from"] != last:
                graph["edges"].append({**e, "from": names[e["from"]], "to": names[e["to"]]})
        entry = [e for e in edges if e["to"] == first and e["from"] not in chain][:1]
        port = entry[0].get("to_port") if entry else None
        link = {"from": prev_last, "to": names[first]}
        if port:
            link["to_port"] = port
        graph["edges"].append(link)
        prev_last = names[last]
    for e in exits:
        graph["edges"].append({**e, "from": prev_last})


# -- running ------------------------------------------------------------------------------------
def default_storage(project) -> str:
    from .runs import runs_root

    return f"sqlite:///{(runs_root(project) / 'sweeps.db').resolve()}"


def check_storage(url: str) -> str:
    if "://" not in url:
        raise SweepError(f"--storage: {url!r} is not a database URL; use e.g. "
                         "sqlite:///sweeps.db or postgresql://user:pass@host/db")
    return url


def make_sampler(name: str, spaces: list[Space], seed: int | None):
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return optuna.samplers.GridSampler({s.key: s.grid() for s in spaces}, seed=seed)
    raise SweepError(f"--sampler: must be one of {', '.join(SAMPLERS)}; got {name!r}")


def make_pruner(name: str, epochs: int):
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=max(1, epochs // 5))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise SweepError(f"--pruner: must be one of {', '.join(PRUNERS)}; got {name!r}")


class _Pruning:
    """Reports the metric after every epoch; asks the trainer to stop when Optuna prunes.
    Without a pruner nothing is reported during the trial: each report is a write to the
    study's storage and each prune check reads every trial back (some 10 ms an epoch on
    SQLite), and the run history keeps the curve anyway."""

    def __init__(self, trial, metric: str):
        import optuna

        self.trial, self.metric, self.pruned = trial, metric, False
        self.values: list[float] = []
        study = getattr(trial, "study", None)
        self.reporting = not isinstance(getattr(study, "pruner", None),
                                        optuna.pruners.NopPruner)

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        value = logs.get(self.metric)
        if value is None:
            raise SweepError(f"--metric: the runs report no {self.metric!r} (they report "
                             f"{', '.join(k for k in logs if k not in ('epoch', 'lr'))})")
        if not math.isfinite(value):
            return
        self.values.append(value)
        if not self.reporting:
            return
        self.trial.report(value, epoch)
        if self.trial.should_prune():
            self.pruned = True
            trainer.stop()


def _as_callback(obj):
    from .training.callbacks import Callback

    class Wrapped(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            obj.on_epoch_end(trainer, epoch, logs)

    return Wrapped()


@dataclass
class SweepSettings:
    spaces: list
    trials: int = 20
    metric: str = "val_loss"
    direction: str = "minimize"
    sampler: str = "tpe"
    pruner: str = "median"
    epochs: int | None = None
    timeout: float | None = None
    storage: str | None = None
    study: str | None = None
    seed: int | None = None
    device: str = "auto"
    threads: int | None = None


def check_spaces(project, spaces) -> None:
    """Refuse, before any trial, a searched key that names nothing in the project (a node, a
    parameter, a training setting): each space's first value is applied to a copy."""
    from .project import project_to_dict

    values = {space.key: space.choices[0] if space.kind == "choice" else (
        int(space.low) if space.kind == "int" else space.low) for space in spaces}
    apply_values(project_to_dict(project), values)  # all at once, as a trial applies them


def open_study(project, settings: SweepSettings):
    import optuna

    check_spaces(project, settings.spaces)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = check_storage(settings.storage or default_storage(project))
    epochs = settings.epochs or project.training.get("epochs") or 10
    last: Exception | None = None
    for attempt in range(STORAGE_ATTEMPTS):
        try:
            return optuna.create_study(
                storage=storage, study_name=settings.study, load_if_exists=True,
                direction=settings.direction,
                sampler=make_sampler(settings.sampler, settings.spaces, settings.seed),
                pruner=make_pruner(settings.pruner, int(epochs)))
        except (ImportError, ModuleNotFoundError) as exc:
            raise SweepError(f"--storage: {storage} needs a database driver that is not "
                             f"installed ({exc})") from None
        except optuna.exceptions.DuplicatedStudyError as exc:
            last = exc
            time.sleep(0.2 * (attempt + 1))  # another worker created it a moment ago
        except ValueError as exc:  # e.g. a study that exists with the other direction
            raise SweepError(f"--study {settings.study}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the database's own errors (sqlalchemy)
            # two workers creating the tables of a new database at once: one of them loses
            # the race ("already exists"); the tables are there on the next try
            last = exc
            if not _storage_race(exc) or attempt == STORAGE_ATTEMPTS - 1:
                raise SweepError(f"--storage: {_safe_url(storage)}: {first_line(exc)}") \
                    from None
            time.sleep(0.2 * (attempt + 1))
    raise SweepError(f"--study {settings.study}: could not be opened on "
                     f"{_safe_url(storage)} ({last})")


STORAGE_ATTEMPTS = 6


def _storage_race(exc: Exception) -> bool:
    text = str(exc).lower()
    return type(exc).__name__ in ("IntegrityError", "ProgrammingError", "OperationalError") \
        and ("already exists" in text or "duplicate" in text or "locked" in text)


def _safe_url(url: str) -> str:
    """The storage URL without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def objective_for(project, settings: SweepSettings, emit, trainer_callbacks=()):
    """The Optuna objective: one Trainer run of the project with the trial's values
    (``trainer_callbacks`` are added to each trial's Trainer)."""
    import optuna

    from .project import parse_project, project_to_dict
    from .runs import RunRecorder
    from .training import Trainer

    base = project_to_dict(project)

    def objective(trial):
        values = {s.key: s.suggest(trial) for s in settings.spaces}
        start = time.perf_counter()
        row = {"event": "trial", "trial": trial.number, "params": values, "worker": os.getpid()}
        try:
            data = apply_values(base, values)
            candidate = parse_project(data, source=str(project.path or "<project>"))
            candidate.path = project.path
            pruning = _Pruning(trial, settings.metric)
            recorder = RunRecorder(candidate, source="sweep", name=f"{settings.study} "
                                   f"#{trial.number}", tags=[settings.study],
                                   extra={"study": settings.study, "trial": trial.number,
                                          "sweep_params": values})
            trainer = Trainer(candidate, device=settings.device, epochs=settings.epochs,
                              callbacks=[_as_callback(pruning), recorder,
                                         *trainer_callbacks])
            if settings.threads:
                import torch

                torch.set_num_threads(settings.threads)
            trainer.fit()
        except LayerlabError as exc:
            emit({**row, "state": "failed", "message": str(exc).splitlines()[0],
                  "seconds": round(time.perf_counter() - start, 3)})
            trial.set_user_attr("message", str(exc).splitlines()[0])
            return float("nan")  # Optuna records a failed trial
        if not pruning.values:
            emit({**row, "state": "failed", "message": f"no finite {settings.metric}",
                  "seconds": round(time.perf_counter() - start, 3)})
            return float("nan")
        best = max(pruning.values) if settings.direction == "maximize" else min(pruning.values)
        trial.set_user_attr("run", str(recorder.run_dir))
        trial.set_user_attr("epochs", trainer.epoch)
        emit({**row, "state": "pruned" if pruning.pruned else "complete", "value": best,
              "epochs": trainer.epoch, "seconds": round(time.perf_counter() - start, 3),
              "run": str(recorder.run_dir)})
        if pruning.pruned:
            raise optuna.TrialPruned()
        return best

    return objective


def run_worker(project, settings: SweepSettings, emit, callbacks=(),
               trainer_callbacks=()) -> None:
    """Run trials against the shared study until it holds ``settings.trials`` trials (every
    state counted, running ones too, so that workers started together stop together).
    ``callbacks`` are Optuna's ``callback(study, frozen_trial)``, called after each trial is
    recorded (the window's calls ``study.stop()`` there when Stop was pressed);
    ``trainer_callbacks`` go to every trial's Trainer (the window's stops a trial when it
    closes)."""
    from optuna.study import MaxTrialsCallback

    study = open_study(project, settings)
    if len(study.trials) >= settings.trials:
        return
    _warm_up(project, settings)
    study.optimize(objective_for(project, settings, emit, trainer_callbacks),
                   n_trials=settings.trials, timeout=settings.timeout, gc_after_trial=False,
                   callbacks=[MaxTrialsCallback(settings.trials, states=None), *callbacks],
                   catch=())


def _warm_up(project, settings: SweepSettings) -> None:
    """Build the project's trainer once before the first trial: imports, the first
    allocations and the data generator's start belong to the worker, not to its first trial."""
    from .training import Trainer

    try:
        Trainer(project, device=settings.device, epochs=1).close()
    except LayerlabError:
        pass  # the trials will say what is wrong with their variants


def best_of(project, settings: SweepSettings) -> dict | None:
    """The best complete trial: its number, value, params, run folder and a project file with
    its settings (written beside the sweep database)."""
    import optuna

    from .project import project_to_dict
    from .runs import runs_root

    study = open_study(project, settings)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        return None
    best = study.best_trial
    data = apply_values(project_to_dict(project), best.params)
    _absolute_paths(data, project)
    folder = runs_root(project) / "sweeps" / re.sub(r"[^\w.-]", "_", settings.study)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "best.layerlab.json"
    from .project import atomic_write, dumps_project, parse_project

    candidate = parse_project(data)
    atomic_write(path, dumps_project(candidate).encode("utf-8"))
    run = best.user_attrs.get("run")
    counts = {s.name.lower(): sum(t.state == s for t in study.trials)
              for s in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                        optuna.trial.TrialState.FAIL)}
    return {"event": "best", "study": settings.study, "trial": best.number, "value": best.value,
            "params": best.params, "run": run,
            "weights": str(Path(run) / "best.pt") if run else None, "project": str(path),
            "trials": len(study.trials), **counts}


def _absolute_paths(data: dict, project) -> None:
    """Dataset paths relative to the project's folder, made absolute for a project file that
    lives elsewhere."""
    params = (data.get("dataset") or {}).get("params") or {}
    for key, value in params.items():
        if isinstance(value, str) and not os.path.isabs(value):
            candidate = Path(project.base_dir) / value
            if candidate.exists():
                params[key] = str(candidate.resolve())


def importances(project, settings: SweepSettings) -> dict:
    """Optuna's parameter importances (fANOVA) of the study; {} with fewer than 2 trials."""
    import optuna

    study = open_study(project, settings)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 2 or not settings.spaces:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError):
        return {}
