"""``python main.py train``: JSON lines per epoch, weights.pt, clear errors, exit codes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine import training_cli
from engine.cli import main as cli_main
from engine.examples import EXAMPLES_DIR

ROOT = Path(__file__).resolve().parents[2]
torch.set_num_threads(1)


def small_copy(tmp_path: Path, example: str, dataset_params=None, **training) -> Path:
    data = json.loads((EXAMPLES_DIR / f"{example}.layerlab.json").read_text())
    if dataset_params:
        data["dataset"]["params"] = {**data["dataset"].get("params", {}), **dataset_params}
    data["training"].update(training)
    path = tmp_path / f"{example}.layerlab.json"
    path.write_text(json.dumps(data))
    return path


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_train_prints_json_lines_and_writes_loadable_weights(tmp_path):
    project = small_copy(tmp_path, "mlp_spirals", {"n_samples": 300})
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "main.py", "train", str(project), "--epochs", "2",
                           "--out", str(out), "--seed", "3", "--device", "cpu"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # no progress bar (stderr is not a terminal): only the line on how the data is held
    assert proc.stderr.splitlines() == [
        "data: spirals: in memory (<0.1 MB fits the memory budget of 2048 MB)"]
    lines = json_lines(proc.stdout)
    assert [line["event"] for line in lines] == ["epoch", "epoch", "done"]
    assert [line["epoch"] for line in lines[:2]] == [1, 2]
    for line in lines[:2]:
        assert {"train_loss", "val_loss", "val_accuracy"} <= set(line)
        assert all(isinstance(line[k], float) for k in ("train_loss", "val_loss",
                                                        "val_accuracy"))
    assert lines[-1] == {"event": "done", "out": str(out)}
    weights = torch.load(out / "weights.pt", weights_only=True)
    assert list(weights) == ["model"]
    assert weights["model"]["fc1.weight"].shape == (64, 2)
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 2


def test_gan_lines_carry_both_losses(tmp_path, capsys):
    project = small_copy(tmp_path, "gan_ring", {"n_samples": 256})
    assert cli_main(["train", str(project), "--epochs", "1", "--out", str(tmp_path / "o")]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert set(lines[0]) >= {"event", "epoch", "d_loss", "g_loss"}
    assert "train_loss" not in lines[0]
    assert set(torch.load(tmp_path / "o" / "weights.pt", weights_only=True)) == {
        "generator", "discriminator"}


def test_default_out_is_runs_slash_the_project_stem(tmp_path, capsys, monkeypatch):
    project = small_copy(tmp_path, "perceptron")
    monkeypatch.chdir(tmp_path)
    assert cli_main(["train", str(project), "--epochs", "1"]) == 0
    done = json_lines(capsys.readouterr().out)[-1]
    assert done["out"] == str(Path("runs") / "perceptron")
    assert (tmp_path / "runs" / "perceptron" / "weights.pt").exists()


def test_resume_continues_from_the_checkpoint(tmp_path, capsys):
    project = small_copy(tmp_path, "perceptron")
    out = tmp_path / "run"
    assert cli_main(["train", str(project), "--epochs", "2", "--out", str(out)]) == 0
    first = json_lines(capsys.readouterr().out)
    assert cli_main(["train", str(project), "--epochs", "3", "--out", str(out),
                     "--resume", str(out / "checkpoint.pt")]) == 0
    lines = json_lines(capsys.readouterr().out)
    assert [line.get("epoch") for line in lines] == [3, None]
    assert first[0]["epoch"] == 1


@pytest.mark.parametrize("change,args,code,message", [
    ({"training": {"optimizer": {"type": "SGD", "lr": -1}}}, [], 1,
     "training.optimizer.lr: must be a positive number; got -1"),
    ({"training": {"batch_size": 0, "epochs": "many"}}, [], 1,
     "training.batch_size: must be a whole number of at least 1; got 0"),
    ({}, ["--epochs", "0"], 1, "--epochs: must be at least 1; got 0"),
    ({"dataset": {"name": "spiralz"}}, [], 1, "dataset.name: unknown dataset 'spiralz'"),
])
def test_mistakes_exit_1_with_a_line_and_no_traceback(tmp_path, capsys, change, args, code,
                                                       message):
    data = json.loads((EXAMPLES_DIR / "perceptron.layerlab.json").read_text())
    for key, value in change.items():
        data[key] = {**data[key], **value} if key == "training" else value
    path = tmp_path / "p.layerlab.json"
    path.write_text(json.dumps(data))
    assert cli_main(["train", str(path), "--out", str(tmp_path / "o"), *args]) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err and "Traceback" not in captured.err


def test_a_missing_project_exits_2(tmp_path, capsys):
    assert cli_main(["train", str(tmp_path / "nope.layerlab.json")]) == 2
    assert "no such file" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_a_message(tmp_path, capsys):
    project = small_copy(tmp_path, "perceptron")
    assert cli_main(["train", str(project), "--device", "cuda"]) == 1
    assert "device: CUDA is not available here" in capsys.readouterr().err


def test_a_terminal_gets_a_progress_bar_on_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training_cli, "_is_tty", lambda stream: True)
    project = small_copy(tmp_path, "perceptron")
    assert cli_main(["train", str(project), "--epochs", "1", "--out", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert "epoch 1/1 [" in captured.err and "\r" in captured.err
    assert all(line.startswith("{") for line in captured.out.splitlines())


def test_distributed_without_torchrun_trains_in_one_process_with_a_note(tmp_path, capsys,
                                                                       monkeypatch):
    project = small_copy(tmp_path, "perceptron")
    assert cli_main(["train", str(project), "--epochs", "1", "--distributed",
                     "--out", str(tmp_path / "o")]) == 0
    assert "training in one process" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")  # half a torchrun environment: refused, not guessed
    assert cli_main(["train", str(project), "--distributed"]) == 2


def test_a_misspelled_setting_is_trained_around_with_a_warning(tmp_path, capsys):
    project = small_copy(tmp_path, "perceptron", epoch=5)
    assert cli_main(["train", str(project), "--epochs", "1", "--out", str(tmp_path / "o")]) == 0
    assert "warning: training.epoch: unknown setting (did you mean 'epochs'?); it is ignored" \
        in capsys.readouterr().err
