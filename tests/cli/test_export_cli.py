"""``python main.py export`` and ``python main.py import``: exit codes and messages."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from engine.cli import main as cli_main
from engine.compiler import compile_model
from engine.examples import example_paths
from engine.project import load_project

ROOT = Path(__file__).resolve().parents[2]


def example(prefix: str) -> Path:
    return next(p for p in example_paths() if p.name.startswith(prefix))


@pytest.fixture
def trained(tmp_path):
    """(project path, weights.pt as `train` writes it) for the spirals MLP."""
    path = example("mlp_spirals")
    project = load_project(path)
    torch.manual_seed(0)
    model = compile_model(project.models["model"], input_shapes=project.input_shapes())
    torch.save({"model": model.state_dict()}, tmp_path / "weights.pt")
    return path, tmp_path / "weights.pt"


def test_export_command_in_a_subprocess(trained, tmp_path):
    project, weights = trained
    out = tmp_path / "spirals.onnx"
    proc = subprocess.run([sys.executable, "main.py", "export", str(project), "--weights",
                           str(weights), "--format", "onnx", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"exported model 'model' as onnx to {out} (outputs ")
    assert proc.stdout.count("\n") == 1 and proc.stderr == ""
    assert out.stat().st_size > 1000


def test_no_weights_is_a_usage_error(capsys):
    assert cli_main(["export", str(example("mlp")), "--format", "onnx", "--out", "x.onnx"]) == 2
    assert capsys.readouterr().err == ("no weights given: train first (layerlab train "
                                       "PROJECT) and pass --weights OUT/weights.pt, or pass "
                                       "--untrained\n")


def test_missing_weights_file_is_unreadable(tmp_path, capsys):
    code = cli_main(["export", str(example("mlp")), "--weights", str(tmp_path / "nope.pt"),
                     "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    assert code == 2
    assert capsys.readouterr().err == f"{tmp_path / 'nope.pt'}: no such file\n"


def test_mismatched_weights_exit_1_naming_the_parameter(trained, tmp_path, capsys):
    project, weights = trained
    state = torch.load(weights, weights_only=True)
    state["model"]["fc2.weight"] = torch.zeros(3, 64)
    torch.save(state, weights)
    code = cli_main(["export", str(project), "--weights", str(weights), "--format",
                     "torchscript", "--out", str(tmp_path / "m.pt")])
    assert code == 1
    err = capsys.readouterr().err
    assert err == (f"{weights}: the weights do not match model 'model': fc2.weight: file has "
                   "(3, 64), model needs (64, 64)\n")
    assert not (tmp_path / "m.pt").exists()


def test_gan_default_model_is_announced(tmp_path, capsys):
    code = cli_main(["export", str(example("gan")), "--untrained", "--format", "state_dict",
                     "--out", str(tmp_path / "g.pt")])
    assert code == 0
    captured = capsys.readouterr()
    assert "note: the project has models generator, discriminator; exporting 'generator' " \
           "(the first); choose another with --model NAME" in captured.err
    assert captured.out.startswith("exported model 'generator' as state_dict")
    assert cli_main(["export", str(example("gan")), "--untrained", "--format", "state_dict",
                     "--model", "critic", "--out", str(tmp_path / "c.pt")]) == 1
    assert "the project has no model 'critic'" in capsys.readouterr().err


def test_unreadable_project_and_bad_format(tmp_path, capsys):
    assert cli_main(["export", str(tmp_path / "none.layerlab.json"), "--untrained",
                     "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli_main(["export", str(example("mlp")), "--untrained", "--format", "keras",
                  "--out", "m"])
    assert exc.value.code == 2


def test_import_command_writes_a_project_and_its_weights(tmp_path, capsys):
    source = tmp_path / "net.py"
    source.write_text(textwrap.dedent("""
        import torch
        import torch.nn as nn

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.conv = nn.Conv2d(1, 4, 3, padding=1)
                self.fc = nn.Linear(4 * 8 * 8, 10)

            def forward(self, x):
                x = torch.relu(self.conv(x))
                return self.fc(torch.flatten(x, 1))
    """))
    out = tmp_path / "net.layerlab.json"
    assert cli_main(["import", f"{source}:Net", "--out", str(out), "--input-shape",
                     "1,8,8"]) == 0
    captured = capsys.readouterr()
    assert captured.out == (f"imported Net: 6 nodes (0 Opaque) -> {out}; weights -> "
                            f"{tmp_path / 'net.weights.pt'}\n")
    assert cli_main(["check", str(out)]) == 0
    capsys.readouterr()
    assert cli_main(["export", str(out), "--weights", str(tmp_path / "net.weights.pt"),
                     "--format", "onnx", "--out", str(tmp_path / "net.onnx")]) == 0


def test_import_command_reports_an_untraceable_model(tmp_path, capsys):
    source = tmp_path / "branchy.py"
    source.write_text(textwrap.dedent("""
        import torch.nn as nn

        class Branchy(nn.Module):
            def forward(self, x):
                return x if x.sum() > 0 else -x
    """))
    assert cli_main(["import", f"{source}:Branchy", "--out", str(tmp_path / "b.json")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{source}:Branchy: torch.fx cannot trace this model")
    assert err.count("\n") == 1 and not (tmp_path / "b.json").exists()
    assert cli_main(["import", f"{source}:Branchy", "--out", "b.json", "--input-shape",
                     "1,x"]) == 2
