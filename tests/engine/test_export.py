"""Export: every example in every format, checked here independently of the exporters' own
checks; the generated train.py; and the bad inputs (untrained, invalid, mismatched weights,
unwritable targets) that must leave nothing behind."""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file

from engine.compiler import CompileError, compile_model
from engine.errors import ExportError
from engine.examples import example_paths
from engine.export.formats import graph_example_inputs, is_graph_model
from engine.export import FORMATS, export_model, pick_model
from engine.export import formats as formats_module
from engine.export import pycode as pycode_module
from engine.graph import Graph
from engine.layers.opaque import register_module
from engine.project import Project, load_project
from engine.shapes import infer_shapes

BATCHES = (1, 5)
CASES = [(p, name) for p in example_paths() for name in load_project(p).models]


def case_id(case) -> str:
    path, name = case
    return path.name.split(".")[0] + ("" if name == "model" else f"-{name}")


def seeded_weights(project, path: Path, seed: int = 7) -> Path:
    """A weights.pt as training writes it, from freshly compiled seeded models (BatchNorm
    statistics moved off their defaults so that they are really carried)."""
    torch.manual_seed(seed)
    weights = {}
    for name, graph in project.models.items():
        model = compile_model(graph, input_shapes=project.input_shapes())
        for key, value in model.state_dict().items():
            if "running_var" in key:
                value.uniform_(0.5, 2.0)
            elif "running_mean" in key:
                value.normal_()
        weights[name] = model.state_dict()
    torch.save(weights, path)
    return path


def engine_model(project, name: str, weights: Path):
    model = compile_model(project.models[name], input_shapes=project.input_shapes())
    model.load_state_dict(torch.load(weights, weights_only=True)[name])
    return model.eval()


def random_inputs(project, name: str, model, batch: int) -> tuple:
    shapes = infer_shapes(project.models[name], project.input_shapes())
    gen = torch.Generator().manual_seed(100 + batch)
    if is_graph_model(model, shapes):  # `batch` random graphs, batched as PyG does
        return graph_example_inputs(model, shapes, batch, gen)
    return tuple(torch.randn(batch, *shapes.info[n].out_shapes["out"], generator=gen)
                 for n in model.input_names)


def outputs(result) -> list:
    return [t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)
            for t in (result if isinstance(result, (tuple, list)) else [result])]


def max_abs_diff(a, b) -> float:
    a, b = outputs(a), outputs(b)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


def import_file(path: Path, name: str):
    """Import a generated file under a name of its own (not left in sys.modules)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- every example, every format ---------------------------------------------------------------
@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("weights")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_example_exports_and_agrees(case, fmt, tmp_path, weights_dir):
    path, name = case
    project = load_project(path)
    weights = weights_dir / f"{path.name}.pt"
    if not weights.exists():
        seeded_weights(project, weights)
    out = tmp_path / ("exported" + {"python": ""}.get(fmt, "." + fmt))
    result = export_model(project, fmt, out, weights=weights, model=name)
    assert result.path == out and out.exists()
    model = engine_model(project, name, weights)
    if fmt in ("state_dict", "safetensors"):
        saved = torch.load(out, weights_only=True) if fmt == "state_dict" else load_file(out)
        expected = model.state_dict()
        assert saved.keys() == expected.keys()
        assert all(torch.equal(saved[k], expected[k]) for k in saved)
        return
    runner = {"onnx": _onnx_runner, "torchscript": _torchscript_runner,
              "python": _python_runner}[fmt]
    run, tolerance = runner(out, project, name)
    for batch in BATCHES:
        xs = random_inputs(project, name, model, batch)
        with torch.no_grad():
            assert max_abs_diff(run(*xs), model(*xs)) <= tolerance, batch
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporaries left


def _onnx_runner(out, project, name):
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    # a dynamic batch axis (a graph's edge_index: its edge count)
    assert all(isinstance(i.shape[0], str) or isinstance(i.shape[1], str) for i in inputs)
    return (lambda *xs: session.run(None, {i.name: x.numpy() for i, x in zip(inputs, xs)})), 1e-4


def _torchscript_runner(out, project, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load's notice
        return torch.jit.load(str(out)).eval(), 1e-5


def _python_runner(out, project, name):
    if project.environment:  # reinforcement learning: play.py runs the policy
        assert sorted(p.name for p in out.iterdir()) == \
            ["README.md", "model.py", "play.py", "weights.pt"]
        assert _imported_modules(out / "play.py") <= {
            "argparse", "json", "gymnasium", "numpy", "torch", "model"}
    elif project.training.get("task") in ("node_classification", "graph_classification"):
        # a graph network: model.py (torch + torch_geometric), weights, a README; no train.py
        assert sorted(p.name for p in out.iterdir()) == ["README.md", "model.py", "weights.pt"]
        assert _imported_modules(out / "model.py") <= {
            "torch", "torch.nn", "torch_geometric.nn", "typing", "math"}
        module = import_file(out / "model.py", f"layerlab_test_model_{uuid.uuid4().hex}")
        model = module.Model()
        model.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
        return model.eval(), 1e-5
    else:
        assert sorted(p.name for p in out.iterdir()) == sorted(
            ["model.py", "weights.pt", "train.py", "data.pt", "README.md"]
            + ([f"{n}_weights.pt" for n in project.models if n != name]
               if len(project.models) > 1 else []))
    assert _imported_modules(out / "model.py") <= {"torch", "torch.nn", "math"}
    if not project.environment:
        assert _imported_modules(out / "train.py") <= {
            "argparse", "json", "os", "pathlib", "torch", "torch.distributed", "torch.nn",
            "torch.nn.functional", "torch.nn.parallel", "torch.utils.data", "model"}
    module = import_file(out / "model.py", f"layerlab_test_model_{uuid.uuid4().hex}")
    model = module.Model()
    model.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
    return model.eval(), 1e-5


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    return names | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}


# -- the generated train.py ----------------------------------------------------------------------
# one per task block of train.py; cross-entropy classification runs under torchrun below
TRAIN_CASES = ["perceptron", "denoising_autoencoder_digits", "vae_digits", "gan_ring",
               "rnn_sine"]


def _export_python(example: str, tmp_path: Path) -> tuple[Path, Project]:
    project = load_project(next(p for p in example_paths() if p.name.startswith(example)))
    weights = seeded_weights(project, tmp_path / "weights.pt")
    out = tmp_path / "pytorch"
    export_model(project, "python", out, weights=weights)
    return out, project


def _standalone_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.mark.parametrize("example", TRAIN_CASES)
def test_generated_train_py_runs_alone(example, tmp_path):
    out, project = _export_python(example, tmp_path)
    trained = tmp_path / "trained.pt"
    proc = subprocess.run([sys.executable, "train.py", "--epochs", "1", "--out", str(trained)],
                          cwd=out, env=_standalone_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["event"] for r in rows] == ["epoch", "done"]
    keys = ("d_loss", "g_loss") if example == "gan_ring" else ("train_loss", "val_loss")
    assert all(np.isfinite(rows[0][k]) for k in keys)
    state = torch.load(trained, weights_only=True)
    before = torch.load(out / "weights.pt", weights_only=True)
    after = state["generator"] if example == "gan_ring" else state
    assert after.keys() == before.keys()
    assert any(not torch.equal(after[k], before[k]) for k in before)  # it learned something


def test_generated_train_py_runs_under_torchrun(tmp_path):
    out, _ = _export_python("mlp_spirals", tmp_path)
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "train.py", "--epochs", "2",
           "--out", str(tmp_path / "trained.pt"), "--device", "cpu"]
    proc = subprocess.run(cmd, cwd=out, env=_standalone_env(), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [r["event"] for r in rows] == ["epoch", "epoch", "done"]  # rank 0 only
    assert (tmp_path / "trained.pt").exists()


# -- bad input -----------------------------------------------------------------------------------
@pytest.fixture
def spirals(tmp_path):
    project = load_project(next(p for p in example_paths() if p.name.startswith("mlp_spirals")))
    return project, seeded_weights(project, tmp_path / "weights.pt")


def test_export_without_weights_asks_to_train_first(spirals, tmp_path):
    project, _ = spirals
    with pytest.raises(ExportError, match="no weights given: train first.*--untrained"):
        export_model(project, "onnx", tmp_path / "m.onnx")
    assert export_model(project, "onnx", tmp_path / "m.onnx", untrained=True).path.exists()


def test_export_of_an_invalid_project_names_the_node(spirals, tmp_path):
    project, weights = spirals
    project.models["model"].set_param("fc2", "out_features", 0)
    with pytest.raises(CompileError, match="^fc2: out_features must be at least 1"):
        export_model(project, "onnx", tmp_path / "m.onnx", weights=weights)
    assert list(tmp_path.iterdir()) == [weights]


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.update({"fc1.weight": torch.zeros(32, 2)}),
     r"fc1.weight: file has \(32, 2\), model needs \(64, 2\)"),
    (lambda sd: sd.pop("fc3.bias"), r"fc3.bias: missing from the file \(the model needs \(2,\)\)"),
    (lambda sd: sd.update({"fc9.weight": torch.zeros(1)}),
     "fc9.weight: in the file, but the model has no such parameter"),
])
def test_mismatched_weights_name_the_first_parameter(spirals, tmp_path, change, message):
    project, weights = spirals
    data = torch.load(weights, weights_only=True)
    change(data["model"])
    bad = tmp_path / "bad.pt"
    torch.save(data, bad)
    with pytest.raises(ExportError, match=f"bad.pt: the weights do not match model 'model': "
                                          f"{message}"):
        export_model(project, "safetensors", tmp_path / "m.safetensors", weights=bad)
    assert not (tmp_path / "m.safetensors").exists()


def test_weights_for_another_model_are_named(spirals, tmp_path):
    project, weights = spirals
    torch.save({"generator": {}}, tmp_path / "gan.pt")
    with pytest.raises(ExportError, match="has no weights for model 'model' \\(it has: generator"):
        export_model(project, "onnx", tmp_path / "m.onnx", weights=tmp_path / "gan.pt")


def test_gan_exports_the_first_model_and_says_so():
    project = load_project(next(p for p in example_paths() if p.name.startswith("gan")))
    name, note = pick_model(project)
    assert name == "generator" and "exporting 'generator' (the first)" in note
    assert pick_model(project, "discriminator") == ("discriminator", None)
    with pytest.raises(ExportError, match="no model 'critic' \\(it has: generator, discrim"):
        pick_model(project, "critic")


@pytest.fixture
def unwritable_dir(tmp_path):
    """A folder this process cannot write into (a read-only one; /sys when running as root)."""
    ro = tmp_path / "read-only"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        for candidate in (ro, Path("/sys")):
            probe = candidate / f".probe-{uuid.uuid4().hex}"
            try:
                probe.touch()
            except OSError:
                yield candidate
                return
            probe.unlink()
        pytest.skip("no unwritable folder on this machine")
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("fmt", ["onnx", "python"])
def test_unwritable_target_gives_a_clear_message(spirals, tmp_path, unwritable_dir, fmt):
    project, weights = spirals
    folder = unwritable_dir
    before = sorted(os.listdir(folder))
    target = folder / ("m.onnx" if fmt == "onnx" else "pytorch")
    with pytest.raises(ExportError, match=f"{target}: cannot be written \\("):
        export_model(project, fmt, target, weights=weights)
    assert sorted(os.listdir(folder)) == before
    with pytest.raises(ExportError, match="the folder .*missing.* does not exist"):
        export_model(project, fmt, tmp_path / "missing" / "m.onnx", weights=weights)


def test_a_failed_check_leaves_the_old_file_and_no_temporary(spirals, tmp_path, monkeypatch):
    project, weights = spirals
    target = tmp_path / "m.onnx"
    target.write_bytes(b"the previous export")
    monkeypatch.setattr(formats_module, "_onnxruntime_difference", lambda job, path: 0.5)
    with pytest.raises(ExportError, match="onnx: onnxruntime running the exported file does "
                                          "not reproduce the model's outputs"):
        export_model(project, "onnx", target, weights=weights)
    assert target.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "weights.pt"]


def test_a_failed_python_export_leaves_no_folder(spirals, tmp_path, monkeypatch):
    project, weights = spirals

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pycode_module, "plain_state_dict", broken)  # after model.py is written
    with pytest.raises(ExportError, match="pytorch: cannot be written \\(No space left"):
        export_model(project, "python", tmp_path / "pytorch", weights=weights)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.pt"]


def test_python_export_replaces_only_an_earlier_export(spirals, tmp_path):
    project, weights = spirals
    out = tmp_path / "pytorch"
    export_model(project, "python", out, weights=weights)
    (out / "notes.txt").write_text("mine")
    export_model(project, "python", out, weights=weights)  # an earlier export: replaced
    assert not (out / "notes.txt").exists() and (out / "model.py").exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    with pytest.raises(ExportError, match="the folder exists and is not empty"):
        export_model(project, "python", other, weights=weights)
    assert [p.name for p in other.iterdir()] == ["thesis.tex"]


# -- layers ONNX or TorchScript cannot express ---------------------------------------------------
class Eigen(nn.Module):
    def forward(self, x):
        return torch.linalg.eigvals(x.reshape(x.shape[0], 4, 4)).abs()


class Doubled(nn.Module):
    """Not scriptable (varargs), but traceable whatever the batch size."""

    def forward(self, *xs):
        return xs[0] * 2


class FixedBatch(nn.Module):
    """Not scriptable, and its trace keeps the batch size it saw."""

    def forward(self, *xs):
        return xs[0] + torch.zeros(int(xs[0].shape[0]), 1)


def one_opaque_project(module) -> Project:
    g = Graph("model")
    g.add_node("Input", "x", {"shape": [16]})
    g.add_node("Linear", "fc", {"out_features": 16})
    g.add_node("Opaque", "odd", {"module": f"tests:{type(module).__name__}",
                                 "ref": register_module(module)})
    g.add_node("Output", "y")
    g.connect("x", "fc")
    g.connect("fc", "odd")
    g.connect("odd", "y")
    return Project("odd", {"model": g})


def test_onnx_names_the_node_it_cannot_express(tmp_path, capfd):
    project = one_opaque_project(Eigen())
    with pytest.raises(ExportError, match="^odd: ONNX cannot express this layer \\(.*"
                                          "linalg_eigvals"):
        export_model(project, "onnx", tmp_path / "m.onnx", untrained=True)
    assert list(tmp_path.iterdir()) == []
    assert capfd.readouterr().out == ""  # the exporters' own dumps stay off the terminal


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_falls_back_to_a_checked_trace(tmp_path):
    result = export_model(one_opaque_project(Doubled()), "torchscript", tmp_path / "m.pt",
                          untrained=True)
    assert result.checks["method"] == "trace"
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    for batch in BATCHES:
        assert loaded(torch.randn(batch, 16)).shape == (batch, 16)
    with pytest.raises(ExportError, match="cannot be scripted .* its trace does not work for "
                                          "batch sizes 1 and 7"):
        export_model(one_opaque_project(FixedBatch()), "torchscript", tmp_path / "f.pt",
                     untrained=True)
    assert not (tmp_path / "f.pt").exists()


def test_the_output_check_is_relative_where_outputs_are_large():
    from engine.export.formats import max_difference

    reference = torch.tensor([[300.0, -2.0, 0.5]])

    def inputs(batch):
        return (torch.zeros(batch),)

    def off_by(delta):
        return max_difference(lambda x: reference + delta, lambda x: reference, inputs, (1,))

    # float rounding of outputs in the hundreds: 3e-4 absolute is 1e-6 of the largest output
    assert off_by(torch.tensor([[3e-4, 0.0, 0.0]])) == pytest.approx(1e-6, rel=0.05)
    assert off_by(torch.tensor([[0.0, 0.0, 0.3]])) == pytest.approx(1e-3, rel=0.05)  # still counted
    small = torch.tensor([[0.2, -0.1]])
    assert max_difference(lambda x: small + 3e-4, lambda x: small, inputs, (1,)) == \
        pytest.approx(3e-4, rel=0.05)  # outputs below 1: absolute


def test_the_output_check_fails_an_inf_or_nan_out_of_place():
    from engine.export.formats import max_difference

    def check(got, expected):
        return max_difference(lambda x: torch.tensor(got), lambda x: torch.tensor(expected),
                              lambda batch: (torch.zeros(batch),), (1,))

    assert check([0.0, 5.0, -7.0], [float("-inf"), 1.0, 2.0]) == float("inf")
    assert check([float("nan"), 1.0], [0.0, 1.0]) == float("inf")
    assert check([float("-inf"), 1.0, 2.0], [float("-inf"), 1.0, 2.0]) == 0.0  # masked logits
    assert check([float("nan"), 300.0], [float("nan"), 300.0003]) == pytest.approx(1e-6, rel=0.1)
