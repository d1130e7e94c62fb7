"""`check` and `summary` as the design's command-line contract says: exit codes 0/1/2,
`node_id: message` lines on stderr, the JSON shape, and never a traceback."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main as cli_main
from engine.examples import example_paths

ROOT = Path(__file__).resolve().parents[2]
MLP = next(p for p in example_paths() if p.name.startswith("mlp_spirals"))
GAN = next(p for p in example_paths() if p.name.startswith("gan"))


def base() -> dict:
    return json.loads(MLP.read_text(encoding="utf-8"))


def model(d: dict) -> dict:
    return d["models"]["model"]


def with_add(d: dict, sources: list[str]) -> None:
    """Insert an Add fed by ``sources`` in front of fc3."""
    m = model(d)
    m["nodes"].insert(5, {"id": "add", "type": "Add"})
    m["edges"] = [e for e in m["edges"] if e["to"] != "fc3"]
    m["edges"] += [{"from": s, "to": "add"} for s in sources] + [{"from": "add", "to": "fc3"}]


def mismatch(d):
    m = model(d)
    m["nodes"][1]["params"]["out_features"] = 16
    m["nodes"][3]["params"]["out_features"] = 32
    with_add(d, ["fc1", "fc2"])


# name -> (change to the MLP example, node that must be named, words of the message)
BROKEN = {
    "cycle": (lambda d: model(d)["edges"].append({"from": "a2", "to": "fc2"}), "fc2",
              "connecting a2 -> fc2 would make a cycle (fc2 -> a2 -> fc2)"),
    "unknown_type": (lambda d: model(d)["nodes"][1].update(type="Linaer"), "fc1",
                     "unknown layer type 'Linaer'; did you mean 'Linear'?"),
    "negative_size": (lambda d: model(d)["nodes"][1]["params"].update(out_features=-3), "fc1",
                      "out_features must be at least 1; got -3"),
    "dangling_input": (lambda d: model(d).update(
        edges=[e for e in model(d)["edges"] if e["from"] != "a1"]), "fc2",
        "needs an input; nothing is connected to it"),
    "missing_node": (lambda d: model(d)["edges"].append({"from": "a2", "to": "ghost"}), "ghost",
                     "refers to 'ghost', which is not a node of model 'model'"),
    "shape_mismatch": (mismatch, "add",
                       "Add needs inputs of one shape; got (16,) from fc1 and (32,) from fc2"),
    "missing_param": (lambda d: model(d)["nodes"][3].pop("params"), "fc2",
                      "Linear needs out_features (number of output units); it is not set"),
    "input_count": (lambda d: with_add(d, ["a2"]), "add", "Add needs two or more inputs; got 1"),
    "unknown_port": (lambda d: model(d)["edges"].append(
        {"from": "fc1", "from_port": "last", "to": "fc3"}), "fc3",
        "fc1 (Linear) has no output port 'last' (its outputs: out)"),
    "duplicate_link": (lambda d: model(d)["edges"].append({"from": "fc1", "to": "a1"}), "a1",
                       "fc1 is already connected to a1"),
    "bad_param_name": (lambda d: model(d)["nodes"][1]["params"].update(out_feature=3), "fc1",
                       "Linear has no parameter 'out_feature'; did you mean 'out_features'?"),
    "wrong_type": (lambda d: model(d)["nodes"][1].update(params=[64]), "fc1",
                   '"params" must be an object; got a list'),
    "opaque_failure": (lambda d: model(d)["nodes"][3].update(
        type="Opaque", params={"module": "torch.nn.ReLU", "output_index": 3}), "fc2",
        "torch.nn.ReLU fails on input (64,): index 3 is out of bounds"),
    "bad_dataset": (lambda d: d["dataset"].update(name="spiralz"), "dataset",
                    "unknown dataset 'spiralz'"),
}

UNREADABLE = {
    "bad_json": ('{"format": "layerlab-project", "models": {', "not valid JSON"),
    "wrong_format": (json.dumps({"format": "keras", "models": {}}),
                     'format: must be "layerlab-project"; got "keras"'),
    "empty": ("", "the file is empty"),
    "not_an_object": ("[]", "a project is a JSON object; got a list"),
    "newer_version": (json.dumps({"format": "layerlab-project", "version": 2}),
                      "made by a newer Layerlab"),
}


def write_broken(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.layerlab.json"
    if name in UNREADABLE:
        path.write_text(UNREADABLE[name][0], encoding="utf-8")
    else:
        data = copy.deepcopy(base())
        BROKEN[name][0](data)
        path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run_main(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def assert_node_lines(stderr: str, node: str, words: str) -> None:
    lines = stderr.splitlines()
    assert lines and all(": " in line for line in lines), stderr
    assert any(line.startswith(f"{node}: ") and words in line for line in lines), stderr
    assert "Traceback" not in stderr


# -- through main.py, as a person runs it --------------------------------------------------
@pytest.mark.parametrize("name", ["cycle", "shape_mismatch", "missing_node", "unknown_type"])
def test_broken_project_exits_1_naming_the_node(tmp_path, name):
    proc = run_main("check", str(write_broken(tmp_path, name)))
    assert proc.returncode == 1
    assert_node_lines(proc.stderr, *BROKEN[name][1:])
    assert proc.stdout == ""


@pytest.mark.parametrize("name, command", [("bad_json", "check"), ("empty", "summary")])
def test_unreadable_file_exits_2_with_one_line(tmp_path, name, command):
    path = write_broken(tmp_path, name)
    proc = run_main(command, str(path))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"{path}: ")
    assert UNREADABLE[name][1] in proc.stderr and "Traceback" not in proc.stderr


def test_valid_example_through_main(tmp_path):
    proc = run_main("summary", str(GAN), "--json")
    assert proc.returncode == 0 and proc.stderr == ""
    report = json.loads(proc.stdout)
    assert set(report["models"]) == {"generator", "discriminator"}
    assert report["models"]["generator"]["trainable_params"] == 8 * 64 + 64 + 64 * 64 + 64 + \
        64 * 2 + 2


# -- in-process for the rest ---------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_every_problem_is_one_line_naming_the_node(tmp_path, capsys, name):
    path = write_broken(tmp_path, name)
    assert cli_main(["check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert_node_lines(err, *BROKEN[name][1:])


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_every_unreadable_file_is_one_line(tmp_path, capsys, name):
    path = write_broken(tmp_path, name)
    assert cli_main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and UNREADABLE[name][1] in err


def test_missing_file_and_folder_exit_2(tmp_path, capsys):
    assert cli_main(["check", str(tmp_path / "nope.layerlab.json")]) == 2
    assert capsys.readouterr().err == f"{tmp_path / 'nope.layerlab.json'}: no such file\n"
    assert cli_main(["summary", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_several_problems_each_get_their_line(tmp_path, capsys):
    data = base()
    model(data)["nodes"][1]["params"]["out_features"] = 0
    model(data)["nodes"][5]["params"] = {}
    path = tmp_path / "two.layerlab.json"
    path.write_text(json.dumps(data))
    assert cli_main(["check", str(path)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "fc1: out_features must be at least 1; got 0",
        "fc3: Linear needs out_features (number of output units); it is not set"]


def test_a_problem_in_one_of_several_models_names_the_model(tmp_path, capsys):
    data = json.loads(GAN.read_text())
    data["models"]["discriminator"]["nodes"][1]["params"]["out_features"] = -1
    path = tmp_path / "gan.layerlab.json"
    path.write_text(json.dumps(data))
    assert cli_main(["check", str(path)]) == 1
    assert capsys.readouterr().err == ("fc1: out_features must be at least 1; got -1 "
                                       "(model discriminator)\n")


def test_check_of_a_valid_project(capsys):
    assert cli_main(["check", str(MLP)]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out == f"{MLP}: OK (1 model(s), 7 nodes)\n"


def test_summary_json_has_the_design_shape(capsys):
    assert cli_main(["summary", str(MLP), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    m = report["models"]["model"]
    assert [layer["id"] for layer in m["layers"]] == ["x", "fc1", "a1", "fc2", "a2", "fc3", "y"]
    assert m["layers"][1] == {**m["layers"][1], "id": "fc1", "type": "Linear",
                              "output_shape": [64], "params": 2 * 64 + 64}
    assert all({"id", "type", "output_shape", "params"} <= set(layer) for layer in m["layers"])
    assert m["layers"][0]["output_shape"] == [2] and m["layers"][-1]["output_shape"] == [2]
    assert m["total_params"] == m["trainable_params"] == 192 + 4160 + 130


def test_summary_table(capsys):
    assert cli_main(["summary", str(MLP)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "model 'model'"
    assert lines[2].split() == ["x", "Input", "(2,)", "0", "0"]
    assert lines[3].split()[:4] == ["fc1", "Linear", "(64,)", "192"]
    assert "total 4,482 parameters, 4,482 trainable" in out


def test_summary_of_a_broken_project_still_reports_and_exits_1(tmp_path, capsys):
    path = write_broken(tmp_path, "negative_size")
    assert cli_main(["summary", str(path), "--json"]) == 1
    out, err = capsys.readouterr()
    fc1 = json.loads(out)["models"]["model"]["layers"][1]
    assert fc1["output_shape"] is None and fc1["error"].startswith("out_features must be")
    assert err == "fc1: out_features must be at least 1; got -3\n"


def test_misuse_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["check"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        cli_main(["frobnicate", "x"])
    assert exc.value.code == 2
