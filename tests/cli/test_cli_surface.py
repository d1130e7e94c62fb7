"""The command line's edges found by running the docs as written: check sees the training
block, a misspelt command is named (not taken for a project), a sweep refuses a key that names
nothing before any trial, early stopping on a return keeps the highest."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.examples import find_example

ROOT = Path(__file__).resolve().parents[2]


def test_check_reports_the_training_block(tmp_path, capsys):
    data = json.loads(find_example("mlp_spirals").read_text("utf-8"))
    data["training"]["optimizer"]["lr"] = -1
    data["training"]["task"] = "clasification"
    path = tmp_path / "bad.layerlab.json"
    path.write_text(json.dumps(data), "utf-8")
    assert main(["check", str(path)]) == 1
    err = capsys.readouterr().err
    assert "training.optimizer.lr: must be a positive number; got -1" in err
    assert "training.task" in err


def test_a_misspelt_command_is_named_not_opened(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "trian", "mlp_spirals"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "'trian' is neither a command" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("param, message", [
    ("nosuch.out_features=int:1:4", "no node 'nosuch'"),
    ("fc1.widht=int:8:64", "fc1 (Linear) has no parameter 'widht' (it has out_features, bias)"),
])
def test_a_sweep_key_that_names_nothing_is_refused_before_any_trial(tmp_path, capsys, param,
                                                                      message, monkeypatch):
    monkeypatch.setenv("LAYERLAB_RUNS_DIR", str(tmp_path))
    assert main(["sweep", "mlp_spirals", "--param", param, "--trials", "2"]) == 1
    out = capsys.readouterr()
    assert message in out.err and out.out == ""  # no trial line
    assert not list(tmp_path.rglob("run.json"))


def test_early_stopping_on_a_return_keeps_the_highest():
    from engine.training.runtime import EarlyStopper

    class Es:
        monitor, patience, min_delta, restore_best = "mean_return", 2, 0.0, True

    stopper = EarlyStopper(Es(), "mean_return")
    for epoch, value in enumerate([10.0, 50.0, 30.0], 1):
        stopper.update({"mean_return": value}, epoch, {})
    assert stopper.best_epoch == 2 and stopper.best == pytest.approx(50.0)
    losses = EarlyStopper(Es(), "val_loss")
    for epoch, value in enumerate([1.0, 0.5, 0.7], 1):
        losses.update({"val_loss": value}, epoch, {})
    assert losses.best_epoch == 2


def test_a_parameter_of_the_type_a_sweep_switches_to_is_known(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LAYERLAB_RUNS_DIR", str(tmp_path))
    assert main(["sweep", "mlp_spirals", "--param", "a1.negative_slope=float:0.01:0.2",
                 "--param", "a1.type=choice:LeakyReLU", "--trials", "1", "--epochs", "1"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["state"] == "complete" and rows[0]["params"]["a1.type"] == "LeakyReLU"
