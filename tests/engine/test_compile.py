"""training.compile: the trained forward through torch.compile (inductor on the CPU here), the
same numbers as eager, the compile time apart, a one-line reason and an eager run where it
cannot compile — never a traceback."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import engine.training.compiling as compiling
from engine.examples import find_example
from engine.project import load_project
from engine.training import Trainer
from engine.training.config import parse_training
from engine.training.probes import Probes

ROOT = Path(__file__).resolve().parents[2]


def spirals(compile_setting, n=256, epochs=2):
    project = load_project(find_example("mlp_spirals"))
    project.training["compile"] = compile_setting
    project.training["epochs"] = epochs
    project.dataset["params"]["n_samples"] = n
    return project


def history(trainer) -> list[dict]:
    return [{k: v for k, v in h.items() if k not in ("seconds", "compile_seconds")}
            for h in trainer.history]


@pytest.mark.parametrize("value", [True, False, "default", "max-autotune", "reduce-overhead"])
def test_the_setting_takes_a_flag_or_a_mode(value):
    assert parse_training({"compile": value}).compile == value


def test_a_bad_setting_is_named():
    with pytest.raises(Exception, match="training.compile: must be true, false or a "
                                        "torch.compile mode"):
        parse_training({"compile": "fast"})


def test_compiled_training_gives_the_eager_numbers_and_reports_the_compile_time():
    eager = Trainer(spirals(False), device="cpu")
    eager.fit()
    probes = Probes(every=1, interval=0.0, nodes=("fc1",), histograms=("fc1",))
    compiled = Trainer(spirals(True), device="cpu", callbacks=[probes])
    compiled.fit()  # the live views' probes, on a compiled model
    assert isinstance(compiled.train_models["model"], compiling.CompiledNet)
    assert compiled.train_models["model"].is_compiled and compiled.compile_fallback is None
    for a, b in zip(history(eager), history(compiled)):
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    latest = probes.latest
    assert "error" not in latest and latest["epoch"] == 2
    assert "fc1" in latest["activations"]["model"] and "fc1" in str(latest["histograms"])
    assert latest["grad_norms"]
    first = compiled.history[0]
    assert first["compile_seconds"] > 0 and first["compile_seconds"] <= first["seconds"]
    assert "compile_seconds" not in compiled.history[1]
    for p, q in zip(eager.models["model"].parameters(), compiled.models["model"].parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    eager.close()
    compiled.close()


def test_no_cxx_compiler_means_eager_with_one_line(monkeypatch):
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(compiling.shutil, "which", lambda name: None)
    trainer = Trainer(spirals(True), device="cpu")
    assert any(w.startswith("training.compile: inductor needs a C++ compiler") and
               w.endswith("training without compile") for w in trainer.warnings)
    assert not isinstance(trainer.train_models["model"], compiling.CompiledNet)
    trainer.fit()
    assert "C++ compiler" in trainer.history[0]["compile_fallback"]
    trainer.close()


def test_a_compile_error_falls_back_to_eager_with_the_same_numbers(monkeypatch):
    from torch._dynamo.exc import Unsupported

    def refusing(module, mode=None):
        def call(*args, **kwargs):
            raise Unsupported("aten.spiral_op is not supported by inductor")
        return call

    eager = Trainer(spirals(False), device="cpu")
    eager.fit()
    monkeypatch.setattr(compiling.torch, "compile", refusing)
    trainer = Trainer(spirals(True), device="cpu")
    trainer.fit()
    net = trainer.train_models["model"]
    assert not net.is_compiled
    assert trainer.compile_fallback == "Unsupported: aten.spiral_op is not supported by inductor"
    assert trainer.history[0]["compile_fallback"] == trainer.compile_fallback
    assert history(eager) == [{k: v for k, v in h.items() if k != "compile_fallback"}
                              for h in history(trainer)]
    eager.close()
    trainer.close()


def test_the_command_line_flag(tmp_path, monkeypatch):
    env = {"PATH": "/nonexistent", "HOME": str(tmp_path), "LAYERLAB_RUNS_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "train", "mlp_spirals",
                           "--epochs", "1", "--compile", "--out", str(tmp_path / "out")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "warning: training.compile: inductor needs a C++ compiler" in done.stderr
    assert "Traceback" not in done.stderr
    first = json.loads(done.stdout.splitlines()[0])
    assert first["event"] == "epoch" and "C++ compiler" in first["compile_fallback"]
    bad = subprocess.run([sys.executable, str(ROOT / "main.py"), "train", "mlp_spirals",
                          "--compile", "fastest"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=env)
    assert bad.returncode == 1 and "--compile: the mode must be one of" in bad.stderr


def test_fused_optimizers_on_cuda_only_and_never_against_the_project():
    from engine.training.optim import fast_path

    class FakeCuda:
        is_cuda = True

        def is_floating_point(self):
            return True

    cuda, cpu = [FakeCuda()], [torch.zeros(2, requires_grad=True)]
    assert fast_path("Adam", {"lr": 0.1}, cuda) == {"lr": 0.1, "fused": True}
    assert fast_path("AdamW", {}, cuda)["fused"] is True
    assert fast_path("SGD", {"lr": 0.1}, cuda)["fused"] is True
    assert fast_path("Adam", {"lr": 0.1}, cpu) == {"lr": 0.1}  # the CPU keeps foreach
    assert fast_path("RMSprop", {}, cuda) == {}  # no fused kernel in torch
    assert fast_path("Adam", {"foreach": False}, cuda) == {"foreach": False}  # the project's
    assert fast_path("Adam", {"fused": False}, cuda) == {"fused": False}
