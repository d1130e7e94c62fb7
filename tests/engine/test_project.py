"""Project files: the format, unknown keys, byte-stable round trips, atomic saves, and a loader
that answers every malformed file with a ProjectError (fuzzed with hypothesis)."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.analysis import analyze
from engine.examples import example_paths
from engine.graph import Edge
from engine.layers import get_spec
from engine.project import (Project, ProjectError, atomic_write, dumps_project, load_project,
                            loads_project, parse_project, project_to_dict, save_project)

EXAMPLES = example_paths()
MLP = next(p for p in EXAMPLES if p.name.startswith("mlp_spirals"))


def example_data(path: Path = MLP) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def with_unknown_keys() -> dict:
    data = example_data()
    data["author"] = {"name": "Ada", "tags": ["a", 1]}
    data["dataset"]["cache"] = True
    data["training"]["scheduler"] = {"type": "cosine"}
    model = data["models"]["model"]
    model["comment"] = "two hidden layers"
    model["nodes"][1]["color"] = "#ff0000"
    model["nodes"][1]["params"]["out_features"] = 48
    model["edges"][2]["label"] = "hidden"
    return data


# -- loading -------------------------------------------------------------------------------
def test_load_builds_graphs_and_blocks():
    project = load_project(MLP)
    assert project.name == "MLP on spirals" and project.path == MLP
    graph = project.models["model"]
    assert graph.node_ids() == ["x", "fc1", "a1", "fc2", "a2", "fc3", "y"]
    assert graph.node("fc1").params == {"out_features": 64}
    assert graph.node("fc1").pos == (200, 0)
    assert project.dataset["name"] == "spirals" and project.training["epochs"] == 60
    assert project.input_shapes()["x"] == (2,)
    assert project.base_dir == MLP.parent


def test_ports_and_multi_input_order_come_from_the_file():
    data = example_data()
    model = data["models"]["model"]
    model["nodes"].insert(1, {"id": "rnn", "type": "LSTM", "params": {"hidden_size": 4}})
    model["nodes"].append({"id": "y2", "type": "Output"})
    model["edges"].append({"from": "rnn", "from_port": "last", "to": "y2", "to_port": "in"})
    model["edges"].append({"from": "x", "to": "rnn"})
    graph = parse_project(data).models["model"]
    assert Edge("rnn", "y2", "last", "in") in graph.edges()
    assert graph.edges()[-1] == Edge("x", "rnn")


def test_unknown_keys_survive_a_round_trip_at_every_level():
    data = with_unknown_keys()
    again = json.loads(dumps_project(parse_project(copy.deepcopy(data))))
    assert again == data
    project = parse_project(again)
    known = ("format", "version", "name", "models", "dataset", "training")
    assert project.extra == {k: v for k, v in data.items() if k not in known}
    assert project.extra["author"] == {"name": "Ada", "tags": ["a", 1]}
    assert project.models["model"].extra == {"comment": "two hidden layers"}
    assert project.models["model"].node("fc1").extra == {"color": "#ff0000"}
    assert project.models["model"].edge_extra(Edge("a1", "fc2")) == {"label": "hidden"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_save_load_save_is_byte_stable(path, tmp_path):
    first, second = tmp_path / "a.layerlab.json", tmp_path / "b.layerlab.json"
    save_project(load_project(path), first)
    save_project(load_project(first), second)
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(first.read_text()) == json.loads(path.read_text())


def test_save_of_an_edited_project_round_trips(tmp_path):
    project = load_project(MLP)
    graph = project.models["model"]
    graph.rename_node("fc2", "hidden")
    graph.set_param("hidden", "bias", False)
    graph.set_pos("hidden", (1.5, -2))
    path = save_project(project, tmp_path / "edited.layerlab.json")
    assert project.path == path
    again = load_project(path)
    assert again.models["model"].node_ids() == graph.node_ids()
    assert again.models["model"].edges() == graph.edges()
    assert again.models["model"].node("hidden").params == {"out_features": 64, "bias": False}
    assert project_to_dict(again) == project_to_dict(project)


def test_the_file_is_readable_one_node_per_line():
    text = dumps_project(load_project(MLP))
    assert '        {"id": "fc1", "type": "Linear", "params": {"out_features": 64}, "pos": [200, 0]},' \
        in text.splitlines()
    assert text.endswith("}\n")


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "p.layerlab.json"
    save_project(load_project(MLP), path)
    before = path.read_bytes()
    project = load_project(path)
    project.name = "changed"

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(ProjectError, match="cannot be written \\(No space left on device\\)"):
        save_project(project, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["p.layerlab.json"]
    monkeypatch.undo()
    save_project(project, path)
    assert load_project(path).name == "changed" and os.listdir(tmp_path) == ["p.layerlab.json"]


def test_atomic_write_into_a_missing_folder_is_a_project_error(tmp_path):
    with pytest.raises(ProjectError, match="cannot be written"):
        atomic_write(tmp_path / "nope" / "p.json", b"{}")
    with pytest.raises(ValueError):
        save_project(Project())


# -- malformed files -----------------------------------------------------------------------
def problems_of(data) -> list[tuple[str, str]]:
    with pytest.raises(ProjectError) as exc:
        parse_project(data, "p.json")
    return exc.value.problems


def mutated(change) -> dict:
    data = example_data()
    change(data, data["models"]["model"])
    return data


def test_unreadable_files(tmp_path):
    cases = {"": "the file is empty", "  \n": "the file is empty",
             '{"format": ': "not valid JSON: Expecting value at line 1, column 12",
             "[1, 2]": "a project is a JSON object; got a list",
             '{"format": "other"}': 'must be "layerlab-project"; got "other"',
             '{"models": {}}': 'must be "layerlab-project"; got null',
             '{"format": "layerlab-project", "version": 9, "models": {}}': "newer Layerlab",
             '{"format": "layerlab-project", "version": "1"}': "must be a whole number"}
    for text, message in cases.items():
        with pytest.raises(ProjectError) as exc:
            loads_project(text, "p.json")
        assert exc.value.unreadable and message in str(exc.value), text
        assert str(exc.value).startswith("p.json: ")
    with pytest.raises(ProjectError, match="no such file") as exc:
        load_project(tmp_path / "missing.layerlab.json")
    assert exc.value.unreadable
    with pytest.raises(ProjectError, match="is a folder"):
        load_project(tmp_path)
    (tmp_path / "latin1.json").write_bytes(b'{"name": "\xe9"}')
    with pytest.raises(ProjectError, match="cannot be read"):
        load_project(tmp_path / "latin1.json")


def test_structural_problems_name_the_field_or_node():
    assert problems_of(mutated(lambda d, m: d.update(models={}))) == [
        ("models", "must be an object with at least one model")]
    assert problems_of(mutated(lambda d, m: d.update(name=3, training=[]))) == [
        ("name", "must be a text; got a number"), ("training", "must be an object; got a list")]
    assert problems_of(mutated(lambda d, m: m.update(nodes={}))) == [
        ("models.model.nodes", "must be a list; got an object")]
    assert problems_of(mutated(lambda d, m: m["nodes"].append(7)))[0] == (
        "models.model.nodes[7]", "a node must be an object; got a number")
    assert problems_of(mutated(lambda d, m: m["nodes"][2].pop("id")))[0] == (
        "models.model.nodes[2]", 'a node needs an "id" text; got null')
    assert problems_of(mutated(lambda d, m: m["nodes"][2].update(type=None)))[0] == (
        "a1", 'needs a "type" text; got null')
    assert problems_of(mutated(lambda d, m: m["nodes"][1].update(params=[1]))) == [
        ("fc1", '"params" must be an object; got a list')]
    assert problems_of(mutated(lambda d, m: m["nodes"][1].update(pos=[1]))) == [
        ("fc1", '"pos" must be two numbers [x, y]; got [1]')]
    assert problems_of(mutated(lambda d, m: m["edges"].append({"from": 1}))) == [
        ("models.model.edges[6]", 'an edge needs "from" and "to" node ids (and text ports); '
         'got {"from": 1}')]


def test_graph_problems_name_the_node():
    assert problems_of(mutated(lambda d, m: m["nodes"][1].update(type="Linaer"))) == [
        ("fc1", "unknown layer type 'Linaer'; did you mean 'Linear'?")]
    assert problems_of(mutated(lambda d, m: m["nodes"][2].update(id="fc1"))) == [
        ("fc1", "there is already a node 'fc1'"),
        ("a1", "models.model.edges[1] (fc1 -> a1) refers to 'a1', which is not a node of "
               "model 'model'")]
    assert problems_of(mutated(lambda d, m: m["edges"].append({"from": "a2", "to": "ghost"}))) \
        == [("ghost", "models.model.edges[6] (a2 -> ghost) refers to 'ghost', which is not a "
                      "node of model 'model'")]
    assert problems_of(mutated(lambda d, m: m["edges"].append({"from": "a2", "to": "fc2"}))) \
        == [("fc2", "connecting a2 -> fc2 would make a cycle (fc2 -> a2 -> fc2)")]
    assert problems_of(mutated(lambda d, m: m["edges"].append({"from": "fc1", "to": "a1"}))) \
        == [("a1", "fc1 is already connected to a1")]
    assert problems_of(mutated(lambda d, m: m["edges"].append(
        {"from": "fc1", "from_port": "last", "to": "fc3"}))) == [
        ("fc3", "fc1 (Linear) has no output port 'last' (its outputs: out)")]


def test_bad_parameters_load_and_are_reported_by_analysis():
    project = parse_project(mutated(lambda d, m: m["nodes"][1]["params"].update(
        out_features=-3)))
    _, problems = analyze(project)
    assert problems == [("fc1", "out_features must be at least 1; got -3")]


def test_several_models_are_named_in_analysis():
    gan = next(p for p in EXAMPLES if p.name.startswith("gan"))
    data = example_data(gan)
    data["models"]["generator"]["nodes"][1]["params"] = {}
    _, problems = analyze(parse_project(data))
    assert problems == [("fc1", "Linear needs out_features (number of output units); it is "
                                "not set (model generator)")]


def test_dataset_problems_are_reported_once():
    project = parse_project(mutated(lambda d, m: d["dataset"].update(name="nope")))
    _, problems = analyze(project)
    assert len(problems) == 1 and problems[0][0] == "dataset"
    assert "unknown dataset 'nope'" in problems[0][1]


# -- fuzzing -------------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([10**400, -10**400, 1e308]) |
    st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) |
    st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def load_and_analyze(data) -> None:
    """Only ProjectError may come out of loading; nothing at all out of analysis."""
    try:
        project = parse_project(data, "fuzz.json")
    except ProjectError as exc:
        assert exc.problems and all(isinstance(m, str) and m for _, m in exc.problems)
        return
    analyze(project)
    dumps_project(project)


@FUZZ
@given(JSON)
def test_random_json_only_raises_project_error(data):
    load_and_analyze(data)


@FUZZ
@given(st.dictionaries(st.sampled_from(["format", "version", "name", "models", "dataset",
                                        "training"]), JSON))
def test_random_top_level_fields_only_raise_project_error(data):
    data.setdefault("format", "layerlab-project")
    load_and_analyze(data)


@FUZZ
@given(JSON)
def test_random_text_only_raises_project_error(data):
    for text in (json.dumps(data), json.dumps(data)[:-1], repr(data)):
        try:
            loads_project(text)
        except ProjectError:
            pass


def paths(value, prefix=()):
    """Every path into a JSON value (keys and list indices)."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, prefix + (i,))


def at(value, path):
    for key in path:
        value = value[key]
    return value


def mutate(data, draw) -> None:
    """One random change: drop a key, change a type, insert garbage, or swap two node ids."""
    all_paths = [p for p in paths(data) if p]
    path = draw(st.sampled_from(all_paths))
    parent, key = at(data, path[:-1]), path[-1]
    kind = draw(st.sampled_from(["drop", "garbage", "retype", "swap", "duplicate"]))
    if kind == "drop":
        del parent[key]
    elif kind == "garbage":
        parent[key] = draw(JSON)
    elif kind == "retype":
        old = parent[key]
        parent[key] = draw(st.sampled_from([str(old), [old], {"v": old}, None, -1, 0, 1.5]))
    elif kind == "swap":
        ids = [(p, at(data, p)) for p in all_paths if p[-1] in ("id", "from", "to")]
        if ids:
            (p1, v1), (p2, v2) = draw(st.sampled_from(ids)), draw(st.sampled_from(ids))
            at(data, p1[:-1])[p1[-1]], at(data, p2[:-1])[p2[-1]] = v2, v1
    elif isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))


@FUZZ
@given(st.sampled_from(EXAMPLES), st.integers(1, 4), st.data())
def test_mutated_examples_only_raise_project_error(path, n_mutations, data):
    doc = example_data(path)
    for _ in range(n_mutations):
        mutate(doc, data.draw)
        if not isinstance(doc, dict) or not doc:
            break
    load_and_analyze(doc)


@settings(FUZZ, max_examples=100)
@given(st.sampled_from(EXAMPLES), st.data())
def test_garbage_parameters_and_dataset_values_reach_analysis_without_crashing(path, data):
    """Files that load fine but carry nonsense values: analysis reports, never raises."""
    doc = example_data(path)
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(sorted(doc["models"])))
        nodes = doc["models"][name]["nodes"]
        node = data.draw(st.sampled_from(nodes))
        keys = list(get_spec(node["type"]).param_names) + ["bogus"]
        if data.draw(st.booleans()):
            node.setdefault("params", {})[data.draw(st.sampled_from(keys))] = data.draw(JSON)
        else:
            block = "dataset" if "dataset" in doc else "environment"
            where = data.draw(st.sampled_from([block, "params", "val_split", "name"]))
            target = doc[block].setdefault("params", {}) if where == "params" else doc[block]
            keys = ["n_samples", "noise", "length", "classes"] if block == "dataset" else \
                ["max_episode_steps", "n_envs", "render_mode", "gravity"]
            key = data.draw(st.sampled_from(keys)) if where == "params" else where
            target[key] = data.draw(JSON)
    project = parse_project(doc, "fuzz.json")
    _, problems = analyze(project)
    assert all(isinstance(w, str) and isinstance(m, str) for w, m in problems)
