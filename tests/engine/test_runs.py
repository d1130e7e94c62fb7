"""Run history and sweeps: every run recorded, statuses, comparing runs, Optuna searches."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.project import load_project
from engine.runs import (RunRecorder, diff_runs, differing_settings, list_runs, read_jsonl,
                         read_run, update_run)
from engine.sweep import SweepError, apply_values, parse_space
from engine.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"


@pytest.fixture
def spirals(tmp_path, monkeypatch):
    """The spirals MLP example copied into a scratch folder, its runs recorded beside it."""
    monkeypatch.delenv("LAYERLAB_RUNS_DIR", raising=False)
    path = tmp_path / "mlp_spirals.layerlab.json"
    data = json.loads((EXAMPLES / "mlp_spirals.layerlab.json").read_text())
    data["training"]["epochs"] = 4
    data["dataset"].setdefault("params", {})["n_samples"] = 300
    path.write_text(json.dumps(data))
    return path


def cli(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def clean_env():
    import os

    env = dict(os.environ)
    env.pop("LAYERLAB_RUNS_DIR", None)
    return env


def test_a_cli_run_is_recorded_beside_the_project(spirals, tmp_path):
    done = cli("train", str(spirals), "--out", str(tmp_path / "out"), "--seed", "3",
               env=clean_env())
    assert done.returncode == 0, done.stderr
    (run,) = list_runs(load_project(spirals))
    folder = Path(run["dir"])
    assert folder.parent == tmp_path / "runs" / "mlp_spirals"
    assert run["status"] == "finished" and run["source"] == "cli" and run["seed"] == 3
    assert run["project"]["training"]["seed"] == 3  # the snapshot is what it trained
    assert run["project"]["models"]["model"]["nodes"][1]["id"] == "fc1"
    epochs = read_jsonl(folder / "epochs.jsonl")
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4]
    assert run["final"]["val_loss"] == pytest.approx(epochs[-1]["val_loss"])
    assert run["best"]["val_loss"] == pytest.approx(min(e["val_loss"] for e in epochs))
    assert read_jsonl(folder / "steps.jsonl")[0]["step"] >= 1
    import torch

    assert set(torch.load(folder / "best.pt", weights_only=True)) == {"model"}
    assert set(torch.load(folder / "weights.pt", weights_only=True)) == {"model"}
    listed = cli("runs", str(spirals), "--json", env=clean_env())
    assert json.loads(listed.stdout.splitlines()[0])["id"] == run["id"]
    table = cli("runs", str(spirals), env=clean_env()).stdout
    assert run["id"] in table and "finished" in table


def test_stopped_and_failed_runs_keep_their_status(spirals, tmp_path):
    project = load_project(spirals)

    from engine.training.callbacks import Callback

    class Stopper(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            trainer.stop()  # as the window's Stop button does

    recorder = RunRecorder(project, source="window")
    Trainer(project, callbacks=[Stopper(), recorder]).fit()
    assert read_run(recorder.run_dir)["status"] == "stopped"

    class Boom(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if epoch == 2:
                raise RuntimeError("the disk is full")

    failing = RunRecorder(project)
    with pytest.raises(RuntimeError):
        Trainer(project, callbacks=[failing, Boom()]).fit()
    run = read_run(failing.run_dir)
    assert run["status"] == "failed" and run["message"] == "the disk is full"
    assert [e["epoch"] for e in read_jsonl(failing.run_dir / "epochs.jsonl")] == [1, 2]


def test_a_crashed_run_reads_as_interrupted_and_a_torn_line_is_skipped(spirals):
    project = load_project(spirals)
    recorder = RunRecorder(project)
    Trainer(project, callbacks=[recorder]).fit()
    info = json.loads((recorder.run_dir / "run.json").read_text())
    info.update(status="running", pid=2**22 + 12345)  # a process that does not exist
    (recorder.run_dir / "run.json").write_text(json.dumps(info))
    with open(recorder.run_dir / "epochs.jsonl", "a") as f:
        f.write('{"epoch": 5, "val_lo')  # the crash came in the middle of a line
    assert read_run(recorder.run_dir)["status"] == "interrupted"
    assert len(read_jsonl(recorder.run_dir / "epochs.jsonl")) == 4


def test_runs_compare_in_words(spirals):
    project = load_project(spirals)
    first = RunRecorder(project)
    Trainer(project, callbacks=[first]).fit()
    data = json.loads(spirals.read_text())
    data = apply_values(data, {"fc1.out_features": 32, "training.optimizer.lr": 0.001})
    graph = data["models"]["model"]
    graph["nodes"].append({"id": "drop", "type": "Dropout", "params": {"p": 0.2}})
    graph["edges"] = [e for e in graph["edges"] if not (e["from"] == "a1")]
    graph["edges"] += [{"from": "a1", "to": "drop"}, {"from": "drop", "to": "fc2"}]
    from engine.project import parse_project

    changed = parse_project(data)
    changed.path = spirals
    second = RunRecorder(changed)
    Trainer(changed, callbacks=[second]).fit()
    a, b = read_run(first.run_dir), read_run(second.run_dir)
    words = diff_runs(a, b)
    assert "fc1.out_features 64 → 32" in words
    assert "training.optimizer.lr 0.01 → 0.001" in words
    assert "drop (Dropout) added after a1" in words
    assert "wire a1 → fc2 removed" in words
    assert {"fc1.out_features", "training.optimizer.lr"} <= set(differing_settings([a, b]))
    renamed = update_run(a, name="baseline", tags=["small"])
    assert renamed["name"] == "baseline" and read_run(first.run_dir)["tags"] == ["small"]


# -- sweeps ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("lr", "write KEY=SPEC"),
    ("training.optimizer.lr=float:1", "float needs a range"),
    ("training.optimizer.lr=float:0:1:log", "a log scale needs a range above 0"),
    ("fc1.out_features=int:8:x", "'x' is not a number"),
    ("fc1.out_features=int:9:8", "is empty"),
    ("a1.type=choice:", "choice needs values"),
    ("a1.type=normal:1:2", "unknown kind 'normal'"),
])
def test_bad_search_spaces_get_a_sentence(text, message):
    with pytest.raises(SweepError, match=message):
        parse_space(text)


def test_structure_choices_change_the_graph():
    data = json.loads((EXAMPLES / "mlp_spirals.layerlab.json").read_text())
    three = apply_values(data, {"fc2..a2.repeat": 3, "a2.type": "Tanh"})
    ids = [n["id"] for n in three["models"]["model"]["nodes"]]
    assert {"fc2_2", "a2_2", "fc2_3", "a2_3"} <= set(ids)
    types = {n["id"]: n["type"] for n in three["models"]["model"]["nodes"]}
    assert types["a2_3"] == "Tanh"  # the copies have the searched type too
    skipped = apply_values(data, {"a1.include": False})
    edges = skipped["models"]["model"]["edges"]
    assert {"from": "fc1", "to": "fc2"} in edges and "a1" not in json.dumps(edges)
    from engine.project import parse_project
    from engine.shapes import infer_shapes

    for variant in (three, skipped):
        graph = parse_project(variant).models["model"]
        assert infer_shapes(graph, {"x": (2,), "y": ()}).errors() == {}
    with pytest.raises(SweepError, match="no node 'fc9'"):
        apply_values(data, {"fc9.out_features": 3})
    with pytest.raises(SweepError, match="feeds 0 nodes"):
        apply_values(data, {"fc3..fc1.repeat": 2})


def sweep(spirals, *extra, trials=8, jobs=1, study="s"):
    storage = f"sqlite:///{spirals.parent / 'sweep.db'}"
    done = cli("sweep", str(spirals), "--param", "training.optimizer.lr=float:1e-3:5e-2:log",
               "--param", "fc1.out_features=int:8:96", "--trials", str(trials), "--jobs",
               str(jobs), "--storage", storage, "--study", study, "--seed", "0", *extra,
               env=clean_env())
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return done, rows, storage


def test_a_sweep_beats_the_project_settings_and_exports_its_best(spirals, tmp_path):
    data = json.loads(spirals.read_text())
    data["training"]["optimizer"]["lr"] = 0.0005  # a poor setting for the sweep to beat
    spirals.write_text(json.dumps(data))
    own = Trainer(load_project(spirals))
    own.fit()
    baseline = min(h["val_loss"] for h in own.history)
    done, rows, _ = sweep(spirals, "--pruner", "none")
    assert done.returncode == 0, done.stderr
    trials, best = rows[:-1], rows[-1]
    assert len(trials) == 8 and best["event"] == "best"
    assert best["value"] < baseline
    assert best["value"] == min(t["value"] for t in trials if t["state"] == "complete")
    out = tmp_path / "best.onnx"
    exported = cli("export", best["project"], "--weights", best["weights"], "--format", "onnx",
                   "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    runs = list_runs(load_project(spirals))
    assert sum(r["source"] == "sweep" for r in runs) == 8


def test_two_workers_share_one_study_without_repeating_a_trial(spirals):
    import optuna

    done, rows, storage = sweep(spirals, trials=10, jobs=2, study="pair")
    assert done.returncode == 0, done.stderr
    trials = [r for r in rows if r["event"] == "trial"]
    assert len({r["worker"] for r in trials}) == 2  # both processes trained
    numbers = [r["trial"] for r in trials]
    assert len(numbers) == len(set(numbers))  # no trial twice
    study = optuna.load_study(study_name="pair", storage=storage)
    assert 10 <= len(study.trials) <= 11  # two workers may each start the 10th
    runs = [r["run"] for r in trials]
    assert len(set(runs)) == len(runs)


def test_pruned_trials_stop_early(spirals):
    data = json.loads(spirals.read_text())
    data["training"]["epochs"] = 12
    spirals.write_text(json.dumps(data))
    done, rows, _ = sweep(spirals, "--param", "training.optimizer.lr=float:1e-5:5e-2:log",
                          "--pruner", "median", trials=14, study="prune")
    assert done.returncode == 0, done.stderr
    pruned = [r for r in rows if r.get("state") == "pruned"]
    assert pruned and all(r["epochs"] < 12 for r in pruned)
    assert rows[-1]["pruned"] == len(pruned)
