"""Run history: every training run recorded beside its project, readable after a crash.

A run lives in ``RUNS/<project stem>/<run id>/`` where ``RUNS`` is the ``runs`` folder beside
the project file (``LAYERLAB_RUNS_DIR`` overrides it; a project folder that cannot be written,
such as an installed package's examples, falls back to ``~/.layerlab/runs``). The run id is the
start time and a random tail, ``20261207-041500-3f2a``, so ids sort by date. A run folder holds:

``run.json``       what the run was: ``id``, ``name``, ``project`` (the exact project snapshot
                   it trained: graph and settings, as the project file stores them), ``source``
                   ("cli", "window" or "sweep"), ``tags``, ``created``, ``device``, ``seed``,
                   ``epochs``, ``status`` ("running", "finished", "stopped", "failed"), its
                   ``message`` when failed, ``seconds``, ``final`` and ``best`` metrics, the
                   ``monitor`` the best is chosen by, ``pid`` and ``heartbeat`` (a run still
                   "running" whose process has gone reads as "interrupted")
``epochs.jsonl``   one JSON object per finished epoch (the ``train`` command's epoch lines)
``steps.jsonl``    one JSON object per logged step (losses and learning rate)
``weights.pt``     the final weights, ``{model name: state_dict}``
``best.pt``        the weights of the best epoch by ``monitor``

``run.json`` and the weights are written atomically (a temporary file, then a rename; while
training at most every 2 s, so that short epochs do not wait for the disk); the JSON
lines are appended and flushed line by line, so a crash loses at most the line being written
(readers skip an unfinished last line). :func:`list_runs` reads them back; ``main.py runs
PROJECT [--json]`` prints them. This module imports no Qt; torch only to save weights.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import time
from datetime import datetime
from pathlib import Path

from .project import atomic_write as _atomic_write
from .project import project_to_dict

RUNS_ENV = "LAYERLAB_RUNS_DIR"
SUFFIX = ".layerlab.json"
RUN_FILE = "run.json"
HEARTBEAT_S = 30.0  # how often a running run rewrites run.json at the latest
SAVE_EVERY_S = 2.0  # run.json and best.pt are rewritten at most this often while training


def project_stem(project) -> str:
    shared = getattr(project, "runs_stem", None)  # a lesson's projects share one history
    if shared:
        return shared
    name = project.path.name if getattr(project, "path", None) else f"{project.name}{SUFFIX}"
    stem = name[:-len(SUFFIX)] if name.endswith(SUFFIX) else Path(name).stem
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "project"


def runs_base(project) -> Path:
    """The ``runs`` folder a project's runs go in (not created): ``LAYERLAB_RUNS_DIR``, else
    ``~/.layerlab/runs`` for a bundled example, else beside the project file, else in the
    current folder."""
    env = os.environ.get(RUNS_ENV)
    if env:
        return Path(env)
    if getattr(project, "runs_stem", None) or (getattr(project, "path", None) and
                                               _bundled(project.path)):
        return fallback_root(project).parent  # the shipped examples' folder stays untouched
    if getattr(project, "path", None):
        return Path(project.path).resolve().parent / "runs"
    return Path.cwd() / "runs"


def _bundled(path) -> bool:
    from .examples import is_bundled

    return is_bundled(path)


def fallback_root(project) -> Path:
    """Where runs go when the project's folder cannot be written."""
    return Path.home() / ".layerlab" / "runs" / project_stem(project)


def existing_root(project) -> Path | None:
    """The project's runs folder if it exists; None otherwise (nothing is created)."""
    for folder in (runs_base(project) / project_stem(project), fallback_root(project)):
        if folder.is_dir():
            return folder
    return None


def runs_root(project) -> Path:
    """The folder that holds this project's runs (created on demand)."""
    folder = runs_base(project) / project_stem(project)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError:
        folder = fallback_root(project)
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def new_run_id() -> str:
    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _clean(value):
    """JSON-safe metrics: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def atomic_write(path: Path, data: bytes) -> None:
    """Atomic, without fsync: a run's files guard against a crashed process, not a lost disk,
    and a sweep's short trials must not wait for the disk."""
    _atomic_write(path, data, fsync=False)


def _write_json(path: Path, data: dict) -> None:
    atomic_write(path, (json.dumps(_clean(data), indent=1) + "\n").encode("utf-8"))


def _callback_base():
    from .training.callbacks import Callback

    return Callback


class RunRecorder(_callback_base()):
    """A trainer callback that records the run (see the module docstring).

    ``source`` says who started it; ``name`` and ``tags`` label it (a sweep names its trials).
    ``run_dir`` is known after the run starts."""

    def __init__(self, project, *, source: str = "cli", name: str | None = None,
                 tags=(), root: Path | None = None, extra: dict | None = None):
        self.project = project
        self.source = source
        self.name = name
        self.tags = list(tags)
        self.root = root
        self.extra = dict(extra or {})
        self.run_dir: Path | None = None
        self.info: dict = {}
        self._epochs = self._steps = None
        self._best_value = None
        self._best_state = None  # the best epoch's weights, kept until they are written
        self._saved = 0.0
        self._beat = 0.0

    # -- hooks -------------------------------------------------------------------------------
    def on_train_start(self, trainer) -> None:
        if self.run_dir is not None:  # fit() again (the window's "continue"): same run
            self.info["status"] = "running"
            self._save_info()
            return
        root = self.root or runs_root(self.project)
        run_id = new_run_id()
        self.run_dir = root / run_id
        self.run_dir.mkdir(parents=True)
        snapshot = project_to_dict(self.project)
        # what it trained with, command-line overrides included (reopening it repeats the run)
        snapshot.setdefault("training", {}).update(seed=trainer.seed, epochs=trainer.epochs)
        self.info = {
            "id": run_id, "name": self.name or run_id, "source": self.source,
            "tags": self.tags, "created": datetime.now().isoformat(timespec="seconds"),
            "project_file": str(self.project.path) if self.project.path else None,
            "project": snapshot, "device": str(trainer.device),
            "seed": trainer.seed, "epochs": trainer.epochs, "task": trainer.task_name,
            "monitor": trainer.monitor, "status": "running", "message": None,
            "seconds": 0.0, "epochs_done": 0, "final": {}, "best": {}, "pid": os.getpid(),
            "heartbeat": time.time(), **self.extra}
        self._start = time.perf_counter()
        self._save_info()
        self._epochs = open(self.run_dir / "epochs.jsonl", "a", encoding="utf-8")
        self._steps = open(self.run_dir / "steps.jsonl", "a", encoding="utf-8")

    def on_batch_end(self, trainer, step: int, logs: dict) -> None:
        keys = [k for k in trainer.task.step_losses if k in logs]
        if keys and self._steps is not None:
            row = {"step": step, "epoch": logs.get("epoch"),
                   **{k: logs[k] for k in keys}, "lr": logs.get("lr")}
            self._steps.write(json.dumps(_clean(row)) + "\n")
            self._steps.flush()
        if time.time() - self._beat > HEARTBEAT_S:
            self._save_info()

    def on_epoch_end(self, trainer, epoch: int, logs: dict) -> None:
        row = {k: v for k, v in logs.items() if k != "probes"}
        self._epochs.write(json.dumps(_clean(row)) + "\n")
        self._epochs.flush()
        self.info["final"] = _clean(row)
        self.info["epochs_done"] = epoch
        value = row.get(trainer.monitor)
        if isinstance(value, (int, float)) and math.isfinite(value):
            better = self._best_value is None or (
                value > self._best_value if maximize(trainer.monitor) else
                value < self._best_value)
            if better:
                self._best_value = value
                self.info["best"] = {**_clean(row), "epoch": epoch}
                self._best_state = _weights(trainer)
        self.info["seconds"] = round(time.perf_counter() - self._start, 3)
        # a short epoch must not wait for the disk: run.json and best.pt at most every
        # SAVE_EVERY_S (the epoch lines are always written), and both at the end
        if time.monotonic() - self._saved >= SAVE_EVERY_S:
            self._flush_best()
            self._save_info()
            self._saved = time.monotonic()

    def on_train_end(self, trainer, logs: dict) -> None:
        self._flush_best()
        self._save_weights(trainer, "weights.pt")
        stopped = logs.get("stopped")
        self.info["status"] = "stopped" if stopped == "stopped" else "finished"
        self.info["stopped"] = stopped
        self.info["seconds"] = round(time.perf_counter() - self._start, 3)
        self._save_info()
        self._close()

    def on_error(self, trainer, error: BaseException) -> None:
        if self.run_dir is None:
            return
        self.fail(error)

    # -- outside the hooks ---------------------------------------------------------------------
    def fail(self, error: BaseException | str) -> None:
        """Mark the run failed with its message (the first line of the error)."""
        if self.run_dir is None:
            return
        text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if isinstance(error, KeyboardInterrupt):
            self.info["status"], text = "stopped", "interrupted (Ctrl+C)"
        else:
            self.info["status"] = "failed"
        self.info["message"] = text[:500]
        self.info["seconds"] = round(time.perf_counter() - self._start, 3)
        self._flush_best()
        self._save_info()
        self._close()

    def _save_weights(self, trainer, name: str) -> None:
        _save(self.run_dir / name, _weights(trainer))

    def _flush_best(self) -> None:
        if self._best_state is not None:
            _save(self.run_dir / "best.pt", self._best_state)
            self._best_state = None

    def _save_info(self) -> None:
        self.info["heartbeat"] = time.time()
        self._beat = self.info["heartbeat"]
        _write_json(self.run_dir / RUN_FILE, self.info)

    def _close(self) -> None:
        for f in (self._epochs, self._steps):
            if f is not None:
                f.close()
        self._epochs = self._steps = None


def _weights(trainer) -> dict:
    """``{model name: state_dict}`` copied to the CPU (a snapshot, not a view)."""
    return {n: {k: v.detach().to("cpu", copy=True) for k, v in m.state_dict().items()}
            for n, m in trainer.models.items()}


def _save(path: Path, state: dict) -> None:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())


def maximize(metric: str) -> bool:
    """Whether a larger value of the metric is better (accuracy, return)."""
    return "accuracy" in metric or "return" in metric


# -- reading -------------------------------------------------------------------------------------
def read_jsonl(path: Path) -> list[dict]:
    """The complete lines of a JSON-lines file (an unfinished last line is skipped)."""
    rows = []
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return rows
    for line in text.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_run(run_dir: Path) -> dict | None:
    """A run's ``run.json`` (with ``dir``), None when it is missing or unreadable; a run marked
    running whose process is gone reads as "interrupted"."""
    try:
        info = json.loads((Path(run_dir) / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    info["dir"] = str(run_dir)
    if info.get("status") == "running" and not _alive(info.get("pid")):
        info["status"] = "interrupted"
    return info


def list_runs(project) -> list[dict]:
    """Every run of a project, oldest first."""
    root = runs_root(project)
    runs = [read_run(d) for d in sorted(root.iterdir()) if (d / RUN_FILE).is_file()]
    return [r for r in runs if r is not None]


def run_metrics(run: dict) -> list[dict]:
    return read_jsonl(Path(run["dir"]) / "epochs.jsonl")


def update_run(run: dict, **changes) -> dict:
    """Rename or tag a run: ``update_run(run, name="wide", tags=["baseline"])``."""
    path = Path(run["dir"]) / RUN_FILE
    info = json.loads(path.read_text(encoding="utf-8"))
    info.update(changes)
    _write_json(path, info)
    return read_run(path.parent)


def delete_run(run: dict, trash: Path | None = None) -> Path | None:
    """Remove a run's folder; with ``trash``, move it there instead (an undo puts it back)."""
    folder = Path(run["dir"])
    if trash is not None:
        trash.mkdir(parents=True, exist_ok=True)
        target = trash / folder.name
        shutil.move(str(folder), str(target))
        return target
    shutil.rmtree(folder)
    return None


# -- comparing -----------------------------------------------------------------------------------
def flat_settings(project_dict: dict) -> dict:
    """``{key: value}`` of what a run's settings are: ``training.optimizer.lr``, ``dataset.
    params.noise``, and per node ``fc1.out_features`` / ``fc1.type`` (``model:fc1.`` when the
    project has several models)."""
    out = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            out[prefix] = value

    walk("training", project_dict.get("training", {}))
    walk("dataset", project_dict.get("dataset", {}))
    models = project_dict.get("models", {})
    for model, graph in models.items():
        lead = "" if len(models) == 1 else f"{model}:"
        for node in graph.get("nodes", []):
            out[f"{lead}{node['id']}.type"] = node["type"]
            for k, v in (node.get("params") or {}).items():
                out[f"{lead}{node['id']}.{k}"] = v
    return {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in out.items()}


def differing_settings(runs: list[dict]) -> list[str]:
    """The settings keys whose values are not the same in every run."""
    flats = [flat_settings(r.get("project", {})) for r in runs]
    keys = sorted(set().union(*flats)) if flats else []
    return [k for k in keys if len({repr(f.get(k)) for f in flats}) > 1]


def diff_runs(a: dict, b: dict) -> list[str]:
    """Two runs' settings and graphs in words: ``fc1.out_features 32 → 64``, ``dropout added
    after a1``, ``training.optimizer.lr 0.01 → 0.001``."""
    pa, pb = a.get("project", {}), b.get("project", {})
    lines = []
    fa, fb = flat_settings(pa), flat_settings(pb)
    nodes_a, nodes_b = _nodes(pa), _nodes(pb)
    for key in sorted(set(fa) | set(fb)):
        node = key.rsplit(".", 1)[0]
        if node in nodes_a and node not in nodes_b or node in nodes_b and node not in nodes_a:
            continue  # said once below, as an added or removed node
        if fa.get(key) != fb.get(key):
            lines.append(f"{key} {_word(fa.get(key))} → {_word(fb.get(key))}")
    for node in nodes_b:
        if node not in nodes_a:
            after = ", ".join(nodes_b[node]["from"]) or "nothing"
            lines.append(f"{node} ({nodes_b[node]['type']}) added after {after}")
    for node in nodes_a:
        if node not in nodes_b:
            lines.append(f"{node} ({nodes_a[node]['type']}) removed")
    wires_a, wires_b = _wires(pa), _wires(pb)
    shared = set(nodes_a) & set(nodes_b)
    for src, dst in sorted(wires_b - wires_a):
        if src in shared and dst in shared:
            lines.append(f"wire {src} → {dst} added")
    for src, dst in sorted(wires_a - wires_b):
        if src in shared and dst in shared:
            lines.append(f"wire {src} → {dst} removed")
    return lines


def _word(value) -> str:
    return "(none)" if value is None else str(value)


def _nodes(project_dict: dict) -> dict:
    models = project_dict.get("models", {})
    nodes = {}
    for model, graph in models.items():
        lead = "" if len(models) == 1 else f"{model}:"
        for node in graph.get("nodes", []):
            sources = [f"{lead}{e['from']}" for e in graph.get("edges", [])
                       if e["to"] == node["id"]]
            nodes[f"{lead}{node['id']}"] = {"type": node["type"], "from": sources}
    return nodes


def _wires(project_dict: dict) -> set:
    models = project_dict.get("models", {})
    wires = set()
    for model, graph in models.items():
        lead = "" if len(models) == 1 else f"{model}:"
        for e in graph.get("edges", []):
            wires.add((f"{lead}{e['from']}", f"{lead}{e['to']}"))
    return wires
