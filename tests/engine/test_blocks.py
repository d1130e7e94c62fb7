"""Composite blocks: instances share one definition, editing it changes all, blocks nest, a
block graph computes what the flat graph computes with the same weights, files stay
byte-stable, the Python export writes a class per block and runs alone."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from engine.blocks import (BlockError, add_bundled, bundled_blocks, expand_block, make_block,
                           repeat_block)
from engine.compiler import compile_model
from engine.export import export_model
from engine.project import dumps_project, loads_project, parse_project
from engine.shapes import infer_shapes

RESIDUAL = {
    "description": "two 3×3 convolutions with a skip",
    "params": {"channels": 8},
    "nodes": [
        {"id": "x", "type": "Input"},
        {"id": "conv1", "type": "Conv2d",
         "params": {"out_channels": "$channels", "kernel_size": 3, "padding": 1}},
        {"id": "relu1", "type": "ReLU"},
        {"id": "conv2", "type": "Conv2d",
         "params": {"out_channels": "$channels", "kernel_size": 3, "padding": 1}},
        {"id": "add", "type": "Add"},
        {"id": "y", "type": "Output"},
    ],
    "edges": [{"from": "x", "to": "conv1"}, {"from": "conv1", "to": "relu1"},
              {"from": "relu1", "to": "conv2"}, {"from": "conv2", "to": "add"},
              {"from": "x", "to": "add"}, {"from": "add", "to": "y"}],
}


def project_with(blocks: dict, nodes: list, edges: list, shape=(8, 6, 6)) -> dict:
    return {"format": "layerlab-project", "version": 1, "name": "Blocks", "blocks": blocks,
            "models": {"model": {
                "nodes": [{"id": "x", "type": "Input", "params": {"shape": list(shape)}}] +
                nodes + [{"id": "y", "type": "Output"}],
                "edges": edges}}}


def chain(*ids) -> list:
    return [{"from": a, "to": b} for a, b in zip(ids, ids[1:])]


def two_residuals() -> dict:
    return project_with({"residual": RESIDUAL},
                        [{"id": "b1", "type": "Block", "params": {"block": "residual"}},
                         {"id": "b2", "type": "Block", "params": {"block": "residual"}},
                         {"id": "flat", "type": "Flatten"},
                         {"id": "fc", "type": "Linear", "params": {"out_features": 3}}],
                        chain("x", "b1", "b2", "flat", "fc", "y"))


def test_instances_share_the_definition_and_an_edit_changes_every_one():
    project = parse_project(two_residuals())
    graph = project.models["model"]
    shapes = infer_shapes(graph)
    assert shapes.errors() == {}
    per_block = 2 * (8 * 8 * 9 + 8)
    assert [shapes.info[b].stats.params for b in ("b1", "b2")] == [per_block, per_block]
    assert shapes.info["b2"].out_shape == (8, 6, 6)
    project.blocks["residual"].graph.set_param("conv1", "kernel_size", 1)
    project.blocks["residual"].graph.set_param("conv1", "padding", 0)
    shapes = infer_shapes(graph)
    assert [shapes.info[b].stats.params for b in ("b1", "b2")] == \
        [8 * 8 + 8 + 8 * 8 * 9 + 8] * 2
    model = compile_model(graph, shapes)
    assert tuple(model.b1.conv1.weight.shape) == (8, 8, 1, 1) == tuple(model.b2.conv1.weight.shape)


def test_exposed_parameters_and_errors_name_the_block_and_the_layer():
    data = two_residuals()
    data["models"]["model"]["nodes"][1]["params"]["channels"] = 4
    shapes = infer_shapes(parse_project(data).models["model"])
    assert "inside block residual: add: Add needs inputs of one shape" in shapes.errors()["b1"]
    data["models"]["model"]["nodes"][1]["params"] = {"block": "residual", "chanels": 8}
    shapes = infer_shapes(parse_project(data).models["model"])
    assert shapes.errors()["b1"] == ("block residual has no parameter 'chanels' (it has "
                                     "channels)")
    data["models"]["model"]["nodes"][1]["params"] = {"block": "resnet"}
    shapes = infer_shapes(parse_project(data).models["model"])
    assert shapes.errors()["b1"] == ("there is no block named 'resnet'; the project defines "
                                     "residual")


def test_blocks_nest_and_a_block_inside_itself_is_refused():
    double = {"nodes": [{"id": "x", "type": "Input"},
                        {"id": "r1", "type": "Block", "params": {"block": "residual"}},
                        {"id": "r2", "type": "Block", "params": {"block": "residual"}},
                        {"id": "y", "type": "Output"}],
              "edges": chain("x", "r1", "r2", "y")}
    data = project_with({"residual": RESIDUAL, "double": double},
                        [{"id": "d", "type": "Block", "params": {"block": "double"}}],
                        chain("x", "d", "y"))
    project = parse_project(data)
    shapes = infer_shapes(project.models["model"])
    assert shapes.errors() == {} and shapes.info["d"].stats.params == 4 * (8 * 8 * 9 + 8)
    model = compile_model(project.models["model"], shapes)
    assert tuple(model.d.r2.conv2.weight.shape) == (8, 8, 3, 3)
    text = dumps_project(project)
    assert dumps_project(loads_project(text)) == text
    double["nodes"][1]["params"]["block"] = "double"
    shapes = infer_shapes(parse_project(data).models["model"])
    assert "block double contains itself (double → double)" in shapes.errors()["d"]


def test_save_load_save_is_byte_stable():
    text = dumps_project(parse_project(two_residuals()))
    again = dumps_project(loads_project(text))
    assert again == text and '"blocks": {' in text and '"ports": {"in": ["x"], "out": ["y"]}' \
        in text


def test_make_block_then_expand_computes_the_same_with_the_same_weights():
    flat = project_with({}, [
        {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 3,
                                                     "padding": 1}},
        {"id": "relu1", "type": "ReLU"},
        {"id": "conv2", "type": "Conv2d", "params": {"out_channels": 8, "kernel_size": 3,
                                                     "padding": 1}},
        {"id": "add", "type": "Add"},
        {"id": "flat", "type": "Flatten"}],
        chain("x", "conv1", "relu1", "conv2", "add", "flat", "y") + [{"from": "x", "to": "add"}])
    project = parse_project(flat)
    graph = project.models["model"]
    reference = compile_model(graph).eval()
    block, block_id = make_block(graph, ["conv1", "relu1", "conv2", "add"], "res",
                                 project.blocks)
    assert [n.type for n in graph.nodes()] == ["Input", "Flatten", "Output", "Block"]
    assert block.inputs == ["x"] and block.outputs == ["y"]
    blocked = compile_model(graph).eval()
    blocked.load_state_dict({f"{block_id}.{k}": v for k, v in reference.state_dict().items()})
    x = torch.randn(3, 8, 6, 6)
    with torch.no_grad():
        assert torch.allclose(blocked(x), reference(x))
    expand_block(graph, block_id)
    assert sorted(n.type for n in graph.nodes()) == sorted(
        ["Input", "Output", "Flatten", "Conv2d", "ReLU", "Conv2d", "Add"])
    expanded = compile_model(graph).eval()
    expanded.load_state_dict({k.replace(f"{block_id}.", f"{block_id}_"): v
                              for k, v in blocked.state_dict().items()})
    with torch.no_grad():
        assert torch.allclose(expanded(x), reference(x))


def test_make_block_and_expand_keep_the_order_a_concat_reads_its_inputs_in():
    # cat reads x (from outside the selection) before relu (inside); cat2 reads the selection's
    # result before tanh, a wire made later: both orders must survive the block and its expansion
    project = parse_project(project_with({}, [
        {"id": "relu", "type": "ReLU"}, {"id": "cat", "type": "Concat"},
        {"id": "tanh", "type": "Tanh"}, {"id": "cat2", "type": "Concat"}],
        chain("x", "relu") + [{"from": "x", "to": "cat"}, {"from": "relu", "to": "cat"},
                              {"from": "cat", "to": "cat2"}] + chain("x", "tanh", "cat2", "y"),
        shape=(4,)))
    graph = project.models["model"]
    x = torch.randn(3, 4)
    expected = torch.cat([x, x.relu(), x.tanh()], 1)
    with torch.no_grad():
        assert torch.equal(compile_model(graph)(x), expected)
        _, block_id = make_block(graph, ["relu", "cat"], "dense", project.blocks)
        assert torch.equal(compile_model(graph)(x), expected)
        expand_block(graph, block_id)
        assert torch.equal(compile_model(graph)(x), expected)
        assert torch.equal(compile_model(loads_project(dumps_project(project))
                                         .models["model"])(x), expected)


def test_a_selection_with_two_results_becomes_a_block_with_two_output_ports(tmp_path):
    project = parse_project(project_with({}, [
        {"id": "fc", "type": "Linear", "params": {"out_features": 4}},
        {"id": "a", "type": "ReLU"}, {"id": "b", "type": "Tanh"}, {"id": "cat", "type": "Concat"}],
        chain("x", "fc", "a", "cat", "y") + chain("fc", "b", "cat"), shape=(3,)))
    graph = project.models["model"]
    reference = compile_model(graph).eval()
    x = torch.randn(5, 3)
    with torch.no_grad():
        expected = reference(x)
    block, block_id = make_block(graph, ["fc", "a", "b"], "pair", project.blocks)
    assert block.outputs == ["y1", "y2"] and graph.output_ports(block_id) == ("y1", "y2")
    # the Concat reads a first, b second: from the block's two ports, in that order
    assert [(e.src_port, e.dst) for e in graph.in_edges("cat")] == [("y1", "cat"), ("y2", "cat")]
    shapes = infer_shapes(graph)
    assert shapes.info[block_id].out_shapes == {"y1": (4,), "y2": (4,)}
    assert shapes.totals()[0] == 3 * 4 + 4
    blocked = compile_model(graph, shapes).eval()
    blocked.load_state_dict({f"{block_id}.{k}": v for k, v in reference.state_dict().items()})
    with torch.no_grad():
        assert torch.allclose(blocked(x), expected)
    text = dumps_project(project)
    assert '"from_port": "y2"' in text
    reopened = loads_project(text)
    assert dumps_project(reopened) == text
    with torch.no_grad():
        again = compile_model(reopened.models["model"]).eval()
        again.load_state_dict(blocked.state_dict())
        assert torch.allclose(again(x), expected)
    torch.save({"model": blocked.state_dict()}, tmp_path / "w.pt")
    for fmt in ("python", "onnx"):
        assert export_model(reopened, fmt, tmp_path / fmt, weights=tmp_path / "w.pt").checks
    expand_block(graph, block_id)
    with torch.no_grad():
        flat = compile_model(graph).eval()
        flat.load_state_dict({k.replace(f"{block_id}.", f"{block_id}_"): v
                              for k, v in blocked.state_dict().items()})
        assert torch.allclose(flat(x), expected)


def test_a_wire_from_a_port_a_block_does_not_have_is_named_and_kept():
    data = project_with({"pair": {
        "nodes": [{"id": "x", "type": "Input"}, {"id": "a", "type": "ReLU"},
                  {"id": "b", "type": "Tanh"}, {"id": "h", "type": "Output"},
                  {"id": "c", "type": "Output"}],
        "edges": chain("x", "a", "h") + chain("x", "b", "c")}},
        [{"id": "p", "type": "Block", "params": {"block": "pair"}}, {"id": "add", "type": "Add"}],
        chain("x", "p") + [{"from": "p", "from_port": "h", "to": "add"},
                           {"from": "p", "from_port": "cc", "to": "add"}] + chain("add", "y"),
        shape=(3,))
    project = parse_project(data)  # opens: the wire is kept for the user to mend
    graph = project.models["model"]
    assert graph.output_ports("p") == ("h", "c")
    assert infer_shapes(graph).errors()["add"] == (
        "reads p's output 'cc', which it does not have (its outputs: h, c); wire one of them")
    assert '"from_port": "cc"' in dumps_project(project)
    data["models"]["model"]["edges"][2]["from_port"] = "c"
    graph = parse_project(data).models["model"]
    assert infer_shapes(graph).errors() == {}
    x = torch.randn(2, 3)
    with torch.no_grad():
        assert torch.allclose(compile_model(graph)(x), x.relu() + x.tanh())
    # an Output renamed in the definition: its wires say so, none reads another Output
    project.blocks["pair"].graph.rename_node("h", "main")
    graph = project.models["model"]
    assert graph.output_ports("p") == ("main", "c")
    assert "reads p's output 'h'" in infer_shapes(graph).errors()["add"]
    with pytest.raises(BlockError, match="reads port 'h', which block pair does not have"):
        expand_block(graph, "p")
    assert "p" in graph  # nothing changed


def test_expand_refuses_what_the_graph_cannot_hold_and_changes_nothing():
    both = {"nodes": [{"id": "x", "type": "Input"}, {"id": "r", "type": "ReLU"},
                      {"id": "h", "type": "Output"}, {"id": "c", "type": "Output"}],
            "edges": chain("x", "r", "h") + chain("r", "c")}
    data = project_with({"both": both}, [
        {"id": "p", "type": "Block", "params": {"block": "both"}}, {"id": "add", "type": "Add"}],
        chain("x", "p") + [{"from": "p", "from_port": "h", "to": "add"},
                           {"from": "p", "from_port": "c", "to": "add"}] + chain("add", "y"),
        shape=(3,))
    project = parse_project(data)
    graph = project.models["model"]
    before = dumps_project(project)
    with pytest.raises(BlockError, match="would wire p_r to add twice"):
        expand_block(graph, "p")
    assert dumps_project(project) == before
    # an Output just added to the definition, nothing wired to it yet, and read outside
    project.blocks["both"].graph.add_node("Output", "z")
    graph.disconnect(next(e for e in graph.in_edges("add") if e.src_port == "c"))
    graph.connect("p", "add", "z", "in")
    before = dumps_project(project)
    with pytest.raises(BlockError, match=r"nothing is wired to the block's Output \(z\)"):
        expand_block(graph, "p")
    assert dumps_project(project) == before


def test_a_block_node_naming_no_block_by_text_still_opens():
    data = project_with({}, [{"id": "p", "type": "Block", "params": {"block": ["a"]}}],
                        chain("x", "p", "y"), shape=(3,))
    graph = parse_project(data).models["model"]
    assert "p" in infer_shapes(graph).errors()

def test_repeat_stacks_a_block():
    project = parse_project(project_with({"residual": RESIDUAL}, [
        {"id": "b1", "type": "Block", "params": {"block": "residual"}}], chain("x", "b1", "y")))
    graph = project.models["model"]
    added = repeat_block(graph, "b1", 4)
    assert len(added) == 3
    order = graph.topological_order()
    assert [n for n in order if graph.node(n).type == "Block"] == ["b1", *added]
    assert infer_shapes(graph).totals()[0] == 4 * (2 * (8 * 8 * 9 + 8))


def test_bundled_blocks_check_and_copy_into_a_project():
    bundled = bundled_blocks()
    assert set(bundled) >= {"residual_basic", "bottleneck", "transformer_encoder_layer",
                            "vgg_stage", "unet_up"}
    cases = {"residual_basic": ([(16, 8, 8)], (16, 8, 8)), "bottleneck": ([(64, 8, 8)], (64, 8, 8)),
             "transformer_encoder_layer": ([(10, 32)], (10, 32)),
             "vgg_stage": ([(3, 8, 8)], (64, 4, 4)), "unet_up": ([(64, 4, 4), (32, 8, 8)],
                                                                (32, 8, 8))}
    from engine.blocks import inner

    for name, (ins, out) in cases.items():
        found = inner({"block": name, "_library": bundled}, {"in": ins})
        assert found.out_shape == out, name
        model = compile_model(found.graph, found.shapes).eval()
        with torch.no_grad():
            assert tuple(model(*[torch.randn(2, *s) for s in ins]).shape) == (2, *out)
    library: dict = {}
    add_bundled(library, "unet_up")
    assert list(library) == ["unet_up"] and library["unet_up"] is not bundled["unet_up"]


def test_the_python_export_writes_a_class_per_block_and_runs_alone(tmp_path):
    data = two_residuals()
    data["models"]["model"]["nodes"][2]["params"]["channels"] = 8
    project = parse_project(data)
    result = export_model(project, "python", tmp_path / "py", untrained=True)
    assert result.checks["max_abs_diff"] < 1e-6
    source = (tmp_path / "py" / "model.py").read_text()
    assert source.count("class Residual(nn.Module):") == 1
    assert "self.b1 = Residual()" in source and "self.b2 = Residual()" in source
    script = ("import torch, sys; sys.path.insert(0, sys.argv[1]); from model import Model; "
              "m = Model(); m.load_state_dict(torch.load(sys.argv[1] + '/weights.pt', "
              "weights_only=True)); print(tuple(m(torch.randn(2, 8, 6, 6)).shape))")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "py")],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == "(2, 3)"
    for fmt in ("onnx", "torchscript"):
        assert export_model(project, fmt, tmp_path / f"m.{fmt}", untrained=True).checks


def test_a_malformed_block_is_named_in_the_file():
    from engine.project import ProjectError

    data = two_residuals()
    data["blocks"]["residual"] = dict(RESIDUAL, nodes=RESIDUAL["nodes"][:-1],
                                      edges=RESIDUAL["edges"][:-1])
    with pytest.raises(ProjectError, match="blocks.residual: a block needs at least one Output "
                                           "node"):
        loads_project(json.dumps(data))


def test_editing_an_inner_block_changes_the_block_around_it():
    double = {"nodes": [{"id": "x", "type": "Input"},
                        {"id": "r1", "type": "Block", "params": {"block": "residual"}},
                        {"id": "y", "type": "Output"}],
              "edges": chain("x", "r1", "y")}
    project = parse_project(project_with({"residual": RESIDUAL, "double": double},
                                         [{"id": "d", "type": "Block",
                                           "params": {"block": "double"}}], chain("x", "d", "y")))
    graph = project.models["model"]
    assert infer_shapes(graph).info["d"].stats.params == 2 * (8 * 8 * 9 + 8)
    inner = project.blocks["residual"].graph
    inner.set_param("conv1", "kernel_size", 1)
    inner.set_param("conv1", "padding", 0)
    assert infer_shapes(graph).info["d"].stats.params == 8 * 8 + 8 + 8 * 8 * 9 + 8


def test_a_block_takes_its_inputs_in_port_order_whatever_order_its_inputs_were_added():
    """ports.in says b then a; the Input nodes were added a then b. Compiled, expanded and
    inferred, the first wire feeds b."""
    block = {"nodes": [{"id": "a", "type": "Input"}, {"id": "b", "type": "Input"},
                       {"id": "cat", "type": "Concat", "params": {"dim": 1}},
                       {"id": "y", "type": "Output"}],
             "edges": [{"from": "b", "to": "cat"}, {"from": "a", "to": "cat"},
                       {"from": "cat", "to": "y"}],
             "ports": {"in": ["b", "a"], "out": ["y"]}}
    data = {"format": "layerlab-project", "version": 1, "name": "order",
            "blocks": {"join": block}, "models": {"model": {
                "nodes": [{"id": "x1", "type": "Input", "params": {"shape": [2]}},
                          {"id": "x2", "type": "Input", "params": {"shape": [3]}},
                          {"id": "j", "type": "Block", "params": {"block": "join"}},
                          {"id": "y", "type": "Output"}],
                "edges": [{"from": "x1", "to": "j"}, {"from": "x2", "to": "j"},
                          {"from": "j", "to": "y"}]}}}
    project = parse_project(data)
    graph = project.models["model"]
    shapes = infer_shapes(graph)
    assert shapes.info["j"].out_shape == (5,)
    x1, x2 = torch.arange(2.0).unsqueeze(0), 10 + torch.arange(3.0).unsqueeze(0)
    blocked = compile_model(graph, shapes)(x1, x2)
    assert blocked.tolist() == [[0.0, 1.0, 10.0, 11.0, 12.0]]  # b (fed by x1) first
    expand_block(graph, "j")
    assert compile_model(graph)(x1, x2).tolist() == blocked.tolist()


def test_make_block_refuses_a_selection_a_path_leaves_and_reenters():
    # b reads a and feeds both the Output and c; c (a dead end) is selected with a
    data = project_with({}, [{"id": "a", "type": "ReLU"}, {"id": "b", "type": "Tanh"},
                             {"id": "c", "type": "Sigmoid"}],
                        chain("x", "a", "b", "y") + [{"from": "b", "to": "c"}])
    project = parse_project(data)
    graph = project.models["model"]
    before = dumps_project(project)
    library: dict = {}
    with pytest.raises(BlockError, match="not one piece: a → b leaves it and comes back into c"):
        make_block(graph, ["a", "c"], "gap", library)
    assert not library and dumps_project(project) == before


def test_a_block_used_alone_and_inside_another_is_exported_as_one_class(tmp_path):
    outer = {"nodes": [{"id": "x", "type": "Input"},
                       {"id": "inner", "type": "Block", "params": {"block": "residual"}},
                       {"id": "act", "type": "ReLU"}, {"id": "y", "type": "Output"}],
             "edges": chain("x", "inner", "act", "y")}
    data = project_with({"residual": RESIDUAL, "outer": outer},
                        [{"id": "b1", "type": "Block", "params": {"block": "residual"}},
                         {"id": "b2", "type": "Block", "params": {"block": "outer"}},
                         {"id": "flat", "type": "Flatten"}], chain("x", "b1", "b2", "flat", "y"))
    result = export_model(parse_project(data), "python", tmp_path / "py", untrained=True)
    assert result.checks["max_abs_diff"] < 1e-6
    source = (tmp_path / "py" / "model.py").read_text()
    assert source.count("class Residual(") == 1 and "class Residual2(" not in source
    assert "self.inner = Residual()" in source and "self.b1 = Residual()" in source
