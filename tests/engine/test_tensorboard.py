"""TensorBoard event files: written by a callback during training, read back with TensorBoard."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from engine.cli import main as cli_main  # noqa: E402
from engine.errors import TrainingError  # noqa: E402
from engine.examples import EXAMPLES_DIR  # noqa: E402
from engine.project import load_project  # noqa: E402
from engine.training import ConfigError, Trainer, parse_training  # noqa: E402
from engine.training.tensorboard import TensorBoardLogger, log_dir_for  # noqa: E402

torch.set_num_threads(1)
ALL = {"scalars": 0, "histograms": 0, "images": 0}  # 0: keep every event


def small_copy(tmp_path: Path, example: str, dataset_params=None, **training) -> Path:
    data = json.loads((EXAMPLES_DIR / f"{example}.layerlab.json").read_text())
    data["dataset"]["params"] = {**data["dataset"].get("params", {}), **(dataset_params or {})}
    data["training"].update(training)
    path = tmp_path / f"{example}.layerlab.json"
    path.write_text(json.dumps(data))
    return path


def events(log_dir: Path) -> EventAccumulator:
    assert list(log_dir.glob("events.out.tfevents.*")), f"no event file in {log_dir}"
    return EventAccumulator(str(log_dir), size_guidance=ALL).Reload()


def train(project: Path, log_dir: Path, epochs: int = 2) -> Trainer:
    trainer = Trainer(load_project(project), device="cpu", epochs=epochs,
                      callbacks=[TensorBoardLogger(log_dir)])
    trainer.fit()
    return trainer


def test_a_vae_run_writes_scalars_histograms_and_images(tmp_path):
    trainer = train(EXAMPLES_DIR / "vae_digits.layerlab.json", tmp_path / "tb")
    acc = events(tmp_path / "tb")
    tags = acc.Tags()
    for key in ("train_loss", "val_loss", "val_kl", "lr"):
        points = acc.Scalars(f"epoch/{key}")
        assert [p.step for p in points] == [1, 2]
        assert [p.value for p in points] == pytest.approx([h[key] for h in trainer.history])
    steps = [p.step for p in acc.Scalars("step/loss")]
    assert steps[-1] == trainer.step and len(steps) >= 2
    assert "step/lr" in tags["scalars"]
    for kind in ("weights", "grads"):
        named = [t for t in tags["histograms"] if t.startswith(f"{kind}/model/")]
        assert len(named) == len(list(trainer.models["model"].parameters()))
        assert [h.step for h in acc.Histograms(named[0])] == [1, 2]
    for tag in ("images/samples", "images/reconstructions"):
        shots = acc.Images(tag)
        assert [s.step for s in shots] == [1, 2]
        assert shots[0].width > 0 and shots[0].height > 0


def test_a_gan_gets_histograms_of_both_models_and_no_images_for_points(tmp_path):
    project = small_copy(tmp_path, "gan_ring", {"n_samples": 256})
    train(project, tmp_path / "tb")
    acc = events(tmp_path / "tb")
    tags = acc.Tags()
    assert [p.step for p in acc.Scalars("epoch/d_loss")] == [1, 2]
    assert [p.step for p in acc.Scalars("epoch/g_loss")] == [1, 2]
    for model in ("generator", "discriminator"):
        assert any(t.startswith(f"grads/{model}/") for t in tags["histograms"])
        assert any(t.startswith(f"weights/{model}/") for t in tags["histograms"])
    assert tags["images"] == []  # ring samples are 2-D points, not images


def test_the_command_line_flag_writes_under_out_by_default(tmp_path, capsys):
    project = small_copy(tmp_path, "perceptron")
    out = tmp_path / "run"
    assert cli_main(["train", str(project), "--epochs", "2", "--out", str(out),
                     "--tensorboard"]) == 0
    capsys.readouterr()
    acc = events(out / "tensorboard")
    assert [p.step for p in acc.Scalars("epoch/val_accuracy")] == [1, 2]


def test_the_training_block_key_names_a_folder_beside_the_project(tmp_path, capsys):
    project = small_copy(tmp_path, "perceptron", tensorboard="tb_logs")
    assert cli_main(["train", str(project), "--epochs", "1", "--out", str(tmp_path / "o")]) == 0
    capsys.readouterr()
    assert [p.step for p in events(tmp_path / "tb_logs").Scalars("epoch/train_loss")] == [1]
    assert not (tmp_path / "o" / "tensorboard").exists()


def test_log_dir_for_each_setting(tmp_path):
    assert log_dir_for(None, tmp_path) is None
    assert log_dir_for(False, tmp_path) is None
    assert log_dir_for(True, tmp_path) == tmp_path / "tensorboard"
    assert log_dir_for("tb", tmp_path, base_dir="/projects") == Path("/projects/tb")
    assert log_dir_for("tb", tmp_path) == Path("tb")
    assert log_dir_for(str(tmp_path / "abs"), "x", base_dir="/projects") == tmp_path / "abs"


@pytest.mark.parametrize("value", [3, "", ["tb"]])
def test_a_wrong_setting_is_named(value):
    with pytest.raises(ConfigError) as info:
        parse_training({"tensorboard": value})
    assert str(info.value).startswith("training.tensorboard: must be true, false or a folder")


def test_a_missing_package_is_named_with_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import raises
    with pytest.raises(TrainingError, match="pip install tensorboard"):
        TensorBoardLogger(tmp_path / "tb")
    project = small_copy(tmp_path, "perceptron")
    assert cli_main(["train", str(project), "--tensorboard", "--out", str(tmp_path / "o")]) == 1
    assert "needs the 'tensorboard' package" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
