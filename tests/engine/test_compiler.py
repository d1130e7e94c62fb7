"""The compiler: graphs to torch.fx GraphModules with submodules named by node id."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from engine.compiler import CompileError, attr_name, compile_model
from engine.errors import LayerlabError
from engine.examples import example_paths
from engine.graph import Graph
from engine.project import load_project
from engine.analysis import analyze


def graph_of(nodes, edges) -> Graph:
    g = Graph("test model")
    for node_id, type_, params in nodes:
        g.add_node(type_, node_id, params)
    for src, dst, *ports in edges:
        g.connect(src, dst, *ports)
    return g


def two_in_two_out() -> Graph:
    """a, b -> concat (b first) -> fc -> y1 ; a -> relu -> y2."""
    return graph_of(
        [("a", "Input", {"shape": [3]}), ("b", "Input", {"shape": [2]}),
         ("cat", "Concat", {}), ("fc", "Linear", {"out_features": 4}), ("y1", "Output", {}),
         ("act", "ReLU", {}), ("y2", "Output", {})],
        [("b", "cat"), ("a", "cat"), ("cat", "fc"), ("fc", "y1"), ("a", "act"), ("act", "y2")])


def test_several_inputs_and_outputs_in_order():
    model = compile_model(two_in_two_out())
    assert model.input_names == ["a", "b"] and model.output_names == ["y1", "y2"]
    a, b = torch.randn(5, 3), torch.randn(5, 2)
    y1, y2 = model(a, b)
    assert torch.allclose(y1, model.fc(torch.cat([b, a], dim=1)))
    assert torch.equal(y2, torch.relu(a))


def test_submodules_are_named_by_node_id_and_code_is_readable():
    model = compile_model(two_in_two_out())
    assert isinstance(model.fc, nn.Linear) and model.fc.in_features == 5
    assert dict(model.named_children()).keys() == {"fc", "act"}
    assert model.node_attrs == {"fc": "fc", "act": "act"}
    assert type(model).__name__ == "TestModel"
    code = model.code
    assert "def forward(self, a, b):" in code
    assert "cat = torch.cat([b, a], dim = 1)" in code
    assert "fc = self.fc(cat)" in code and "act = self.act(a)" in code
    assert "return (fc, act)" in code


def test_merge_layers_fold_their_inputs_in_edge_order():
    g = graph_of([("a", "Input", {"shape": [2]}), ("b", "Input", {"shape": [2]}),
                  ("c", "Input", {"shape": [2]}), ("sum", "Add", {}), ("prod", "Multiply", {}),
                  ("y", "Output", {}), ("y2", "Output", {})],
                 [("c", "sum"), ("a", "sum"), ("b", "sum"), ("sum", "y"), ("a", "prod"),
                  ("b", "prod"), ("prod", "y2")])
    model = compile_model(g)
    a, b, c = (torch.randn(4, 2) for _ in range(3))
    total, prod = model(a, b, c)
    assert torch.equal(total, (c + a) + b) and torch.equal(prod, a * b)
    assert "add = c + a" in model.code and "sum_1 = add + b" in model.code


def test_node_ids_that_are_not_python_names():
    assert attr_name("conv-1") == "conv_1" and attr_name("1st") == "n_1st"
    assert attr_name("class") == "n_class" and attr_name("") == "n_"
    g = graph_of([("self", "Input", {"shape": [4]}), ("torch", "Linear", {"out_features": 3}),
                  ("code", "Reshape", {"shape": [1, 3]}),
                  ("forward", "GRU", {"hidden_size": 2, "bidirectional": True}),
                  ("slice", "Output", {})],
                 [("self", "torch"), ("torch", "code"), ("code", "forward"),
                  ("forward", "slice", "last")])
    model = compile_model(g)
    x = torch.randn(2, 4)
    out = model(x)
    assert out.shape == (2, 4)
    assert model.node_attrs["forward"] != "forward" and callable(model.forward)
    gru = model.get_submodule(model.node_attrs["forward"])
    _, h = gru(model.get_submodule(model.node_attrs["torch"])(x).reshape(2, 1, 3))
    assert torch.allclose(out, torch.cat([h[0], h[1]], dim=-1), atol=1e-6)
    other = graph_of([("torch", "Input", {"shape": [1, 2]}), ("g", "GRU", {"hidden_size": 1,
                                                                            "bidirectional": True}),
                      ("y", "Output", {})], [("torch", "g"), ("g", "y", "last")])
    assert compile_model(other)(torch.randn(3, 1, 2)).shape == (3, 2)


def test_unused_ports_are_not_computed():
    g = graph_of([("x", "Input", {"shape": [5, 3]}), ("rnn", "LSTM", {"hidden_size": 4}),
                  ("y", "Output", {})], [("x", "rnn"), ("rnn", "y", "last")])
    model = compile_model(g)
    assert "rnn_last" in model.code and "rnn_out" in model.code
    x = torch.randn(2, 5, 3)
    out, _ = model.rnn(x)
    assert torch.equal(model(x), out[:, -1])


def test_a_broken_graph_is_a_compile_error_naming_the_nodes():
    g = two_in_two_out()
    g.set_param("fc", "out_features", 0)
    g.add_node("ReLU", "loose")
    with pytest.raises(CompileError) as exc:
        compile_model(g)
    assert exc.value.problems == [("fc", "out_features must be at least 1; got 0"),
                                  ("loose", "needs an input; nothing is connected to it")]
    assert isinstance(exc.value, LayerlabError) and "fc: out_features" in str(exc.value)
    with pytest.raises(CompileError, match="the model has no Output node"):
        compile_model(graph_of([("x", "Input", {"shape": [1]})], []))


def test_compile_from_a_chosen_node_feeds_the_decoder_from_the_prior():
    path = next(p for p in example_paths() if p.name.startswith("vae"))
    project = load_project(path)
    results, _ = analyze(project)
    graph = project.models["model"]
    full = compile_model(graph, results["model"]).eval()
    decoder = compile_model(graph, results["model"], start="z").eval()
    assert decoder.input_names == ["z"] and decoder.output_names == ["y"]
    assert set(decoder.node_attrs) == {"dec1", "dec_act", "dec2", "sig", "image"}
    decoder.load_state_dict({k: v for k, v in full.state_dict().items()
                             if k.split(".")[0] in decoder.node_attrs.values()})
    z = torch.randn(6, 8)
    with torch.no_grad():
        image = decoder(z)
        expected = full.image(full.sig(full.dec2(full.dec_act(full.dec1(z)))))
    assert image.shape == (6, 1, 8, 8) and torch.equal(image, expected)


def test_compile_from_a_node_refuses_inputs_from_elsewhere():
    g = two_in_two_out()
    with pytest.raises(CompileError, match="fc: takes input from|cat: takes input from"):
        compile_model(g, start="a")
    rnn = graph_of([("x", "Input", {"shape": [5, 3]}), ("rnn", "LSTM", {"hidden_size": 4}),
                    ("pool", "SequencePool", {}), ("y", "Output", {})],
                   [("x", "rnn"), ("rnn", "pool"), ("pool", "y")])
    with pytest.raises(CompileError, match="pool: takes rnn's output 'out'; the compiled part "
                                           "starts from 'last'"):
        compile_model(rnn, start="rnn", start_port="last")
    assert compile_model(rnn, start="rnn")(torch.randn(2, 5, 4)).shape == (2, 4)


def test_compiled_model_has_real_parameters_that_train():
    torch.manual_seed(0)
    model = compile_model(two_in_two_out())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    a, b = torch.randn(32, 3), torch.randn(32, 2)
    target = torch.randn(32, 4)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((model(a, b)[0] - target) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8


def test_generated_forward_calls_only_modules_and_tensor_ops():
    """Nothing is interpreted per step: every fx node is a module call or a plain torch op."""
    for path in example_paths():
        project = load_project(path)
        results, _ = analyze(project)
        for name, graph in project.models.items():
            model = compile_model(graph, results[name])
            ops = {n.op for n in model.graph.nodes}
            assert ops <= {"placeholder", "call_module", "call_function", "output"}
            for n in model.graph.nodes:
                if n.op == "call_function":
                    assert getattr(n.target, "__module__", "") in ("_operator", "torch") or \
                        n.target is torch.cat, n.target
