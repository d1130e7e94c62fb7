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


def test_the_optimizer_step_compiles_and_a_trial_picks_the_faster_forward():
    trainer = Trainer(spirals(True, n=320, epochs=6), device="cpu")
    trainer.fit()
    assert trainer.compiled_steps["model"].is_compiled and trainer.compile_fallback is None
    reports = [h["compile_forward"] for h in trainer.history if "compile_forward" in h]
    assert len(reports) == 1  # on the epoch the trial decided, once
    report = reports[0]
    assert report["choice"] in ("compiled", "eager")
    assert report["compiled_ms"] > 0 and report["eager_ms"] > 0
    net = trainer.train_models["model"]
    assert net.is_compiled == (report["choice"] == "compiled")
    trainer.close()


@pytest.mark.parametrize("compiled_s, eager_s, kept", [(1.0, 2.0, "compiled"),
                                                       (2.0, 1.0, "eager"),
                                                       (1.0, 0.99, "compiled")])
def test_the_trial_keeps_compiled_unless_eager_is_clearly_faster(monkeypatch, compiled_s,
                                                                  eager_s, kept):
    now = [0.0]
    monkeypatch.setattr(compiling.time, "perf_counter", lambda: now[0])
    trial = compiling.ForwardTrial(warm=2, block=3, blocks=4)
    modes = []
    while (mode := trial.next()) is not None:
        modes.append(mode)
        now[0] += compiled_s if mode else eager_s  # one step of that forward
    assert modes == [True, True] + ([False] * 3 + [True] * 3) * 2
    assert trial.result == {"choice": kept, "compiled_ms": compiled_s * 1e3,
                            "eager_ms": eager_s * 1e3}


def test_compiled_code_of_ended_runs_is_forgotten_but_never_during_a_run(monkeypatch):
    resets = []
    monkeypatch.setattr(compiling.torch._dynamo, "reset", lambda: resets.append(1))
    compiling.fit_started()
    compiling.fresh_start()  # another compiled run is training: keep its code
    assert resets == []
    compiling.fit_ended()
    compiling.fresh_start()
    assert resets == [1]


def test_many_compiled_runs_in_one_process_keep_compiling():
    """dynamo stops compiling a function after 8 cached versions; each run's new optimizer is
    one more without fresh_start."""
    for _ in range(10):
        trainer = Trainer(spirals(True, n=64, epochs=1), device="cpu")
        trainer.fit()
        assert trainer.compiled_steps["model"].is_compiled
        trainer.close()
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    code = trainer.optimizers["model"].step.__func__.__code__  # torch's step wrapper
    assert 1 <= len(_debug_get_cache_entry_list(code)) <= 2


def test_the_window_says_what_compiling_did_in_words():
    assert compiling.describe({"epoch": 2}) == []
    assert compiling.describe({"compile_seconds": 3.21}) == ["torch.compile: compiled in 3.2 s"]
    assert compiling.describe({"compile_fallback": "Unsupported: x"}) == [
        "torch.compile: training eager (Unsupported: x)"]
    one = {"choice": "eager", "compiled_ms": 1.173, "eager_ms": 0.984}
    assert compiling.describe({"compile_forward": one}) == [
        "torch.compile: the eager forward trains faster here (1.17 ms a step compiled, "
        "0.98 ms eager); the optimizer step stays compiled"]
    two = compiling.describe({"compile_forward": {"generator": one, "discriminator": one}})
    assert two[0].startswith("torch.compile: generator: the eager forward") and len(two) == 2


def test_a_backward_that_fails_to_compile_falls_back_to_eager(monkeypatch):
    """AOTAutograd compiles the backward at the first backward(): its error comes out of the
    step, after the compiled forward ran."""
    from torch._dynamo.exc import Unsupported

    class FailingBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x.clone()

        @staticmethod
        def backward(ctx, grad):
            raise Unsupported("the backward of aten.spiral_op is not supported by inductor")

    real_compile = compiling.torch.compile

    def compile_with_a_failing_backward(target, mode=None, **kwargs):
        if not isinstance(target, torch.nn.Module):
            return real_compile(target, mode=mode, **kwargs)  # the optimizer step

        def call(*args, **kw):
            return FailingBackward.apply(target(*args, **kw))
        return call

    monkeypatch.setattr(compiling.torch, "compile", compile_with_a_failing_backward)
    eager = Trainer(spirals(False), device="cpu")
    eager.fit()
    trainer = Trainer(spirals(True), device="cpu")
    trainer.fit()
    assert not trainer.train_models["model"].is_compiled
    assert trainer.compile_fallback == ("Unsupported: the backward of aten.spiral_op is not "
                                        "supported by inductor")
    assert trainer.history[0]["compile_fallback"] == trainer.compile_fallback
    for a, b in zip(history(eager), history(trainer)):
        for key in a:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
    eager.close()
    trainer.close()
