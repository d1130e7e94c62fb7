"""Every example project against the same network written by hand in PyTorch.

The hand-written modules below are what a person would type from the example's description; the
engine's parameter counts and compiled outputs must match them exactly.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from engine.analysis import analyze
from engine.cli import main as cli_main
from engine.compiler import compile_model
from engine.examples import DEFAULT_EXAMPLE, example_paths
from engine.export.formats import graph_example_inputs, is_graph_model
from engine.project import load_project

ROOT = Path(__file__).resolve().parents[2]


# -- the hand-written networks -------------------------------------------------------------
class Perceptron(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, x):
        return (self.fc(x) > 0).float()


class MLP(nn.Module):
    """Linear/activation stack: sizes (2, 64, 64, 2) with ReLU is the spirals MLP."""

    def __init__(self, sizes, act=nn.ReLU):
        super().__init__()
        layers = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(act())
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 2 * 2, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


class Forecaster(nn.Module):
    """RNN/LSTM/GRU over (B, 20, 1), the last step into Linear(32, 1)."""

    def __init__(self, cell):
        super().__init__()
        self.rnn = cell(1, 32, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])


class Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1, self.code = nn.Linear(64, 32), nn.Linear(32, 8)
        self.dec1, self.dec2 = nn.Linear(8, 32), nn.Linear(32, 64)

    def forward(self, x):
        h = torch.relu(self.code(torch.relu(self.enc1(x.flatten(1)))))
        h = torch.sigmoid(self.dec2(torch.relu(self.dec1(h))))
        return h.view(-1, 1, 8, 8)


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Linear(64, 64)
        self.mu, self.logvar = nn.Linear(64, 8), nn.Linear(64, 8)
        self.dec1, self.dec2 = nn.Linear(8, 64), nn.Linear(64, 64)

    def forward(self, x):
        h = torch.relu(self.enc(x.flatten(1)))
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return torch.sigmoid(self.dec2(torch.relu(self.dec1(z)))).view(-1, 1, 8, 8)


class ResNetBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.stem_bn = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv_a, self.bn_a = nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.conv_b, self.bn_b = nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        s = torch.relu(self.stem_bn(self.stem(x)))
        h = self.bn_b(self.conv_b(torch.relu(self.bn_a(self.conv_a(s)))))
        h = torch.relu(h + s)
        return self.fc(h.mean(dim=(2, 3)))


class EchoStateNetwork(nn.Module):
    """A 200-unit leaky tanh reservoir (frozen) and a trained linear readout of its last state."""

    def __init__(self, hidden=200, leak=0.5):
        super().__init__()
        self.w_in = nn.Parameter(torch.zeros(hidden, 1), requires_grad=False)
        self.w = nn.Parameter(torch.zeros(hidden, hidden), requires_grad=False)
        self.leak = leak
        self.readout = nn.Linear(hidden, 1)

    def forward(self, x):
        h = x.new_zeros(x.shape[0], self.w.shape[0])
        for t in range(x.shape[1]):
            pre = x[:, t] @ self.w_in.T + h @ self.w.T
            h = (1 - self.leak) * h + self.leak * torch.tanh(pre)
        return self.readout(h)


def sinusoid_table(steps: int, d: int) -> torch.Tensor:
    pe = torch.zeros(steps, d)
    for pos in range(steps):
        for i in range(0, d, 2):
            angle = pos / 10000 ** (i / d)
            pe[pos, i], pe[pos, i + 1] = math.sin(angle), math.cos(angle)
    return pe


class TransformerForecaster(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(1, 32)
        self.register_buffer("pe", sinusoid_table(20, 32), persistent=False)
        self.encoder = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        h = self.encoder(self.embed(x) + self.pe[: x.shape[1]])
        return self.head(h[:, -1])


class BranchingConcat(nn.Module):
    def __init__(self):
        super().__init__()
        self.wide, self.smooth = nn.Linear(2, 32), nn.Linear(2, 32)
        self.head = nn.Linear(64, 2)

    def forward(self, x):
        return self.head(torch.cat([torch.relu(self.wide(x)), torch.tanh(self.smooth(x))], 1))


class CNNLSTM(nn.Module):
    """A CNN on every frame of a (T, 1, 16, 16) video, then an LSTM over the frames' features."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, padding=1), nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = nn.Linear(256, 32)
        self.lstm = nn.LSTM(32, 32, batch_first=True)
        self.head = nn.Linear(32, 4)

    def forward(self, video):
        b, t = video.shape[:2]
        x = video.reshape(b * t, *video.shape[2:])
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(x.flatten(1))).reshape(b, t, -1)
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])


class GCN(nn.Module):
    """Two graph convolutions (Kipf & Welling, Â = A + 2I) with ReLU and dropout between."""

    def __init__(self, features, hidden, classes):
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.gcn1 = GCNConv(features, hidden, improved=True)
        self.gcn2 = GCNConv(hidden, classes, improved=True)

    def forward(self, x, edge_index):
        h = nn.functional.dropout(torch.relu(self.gcn1(x, edge_index)), 0.5, self.training)
        return self.gcn2(h, edge_index)


class GIN(nn.Module):
    """Two GIN layers (Linear-ReLU-Linear MLPs), a sum per graph, a two-layer head."""

    def __init__(self, features=1, width=32, classes=3):
        super().__init__()
        from torch_geometric.nn import GINConv, global_add_pool

        def mlp(a):
            return nn.Sequential(nn.Linear(a, width), nn.ReLU(), nn.Linear(width, width))

        self.convs = nn.ModuleList([GINConv(mlp(features)), GINConv(mlp(width))])
        self.pool = global_add_pool
        self.fc, self.head = nn.Linear(width, width), nn.Linear(width, classes)

    def forward(self, x, edge_index, batch):
        for conv in self.convs:
            x = torch.relu(conv(x, edge_index))
        return self.head(torch.relu(self.fc(self.pool(x, batch))))


HAND_WRITTEN = {
    "perceptron": {"model": Perceptron},
    "mlp_spirals": {"model": lambda: MLP((2, 64, 64, 2))},
    "cnn_digits": {"model": DigitsCNN},
    "rnn_sine": {"model": lambda: Forecaster(nn.RNN)},
    "lstm_sine": {"model": lambda: Forecaster(nn.LSTM)},
    "gru_sine": {"model": lambda: Forecaster(nn.GRU)},
    "autoencoder_digits": {"model": Autoencoder},
    "denoising_autoencoder_digits": {"model": Autoencoder},
    "vae_digits": {"model": VAE},
    "gan_ring": {"generator": lambda: MLP((8, 64, 64, 2)),
                 "discriminator": lambda: MLP((2, 64, 64, 1), lambda: nn.LeakyReLU(0.2))},
    "resnet_block_digits": {"model": ResNetBlock},
    "esn_sine": {"model": EchoStateNetwork},
    "transformer_sine": {"model": TransformerForecaster},
    "branching_concat_moons": {"model": BranchingConcat},
    # reinforcement learning: CartPole-v1 observes 4 numbers and has 2 actions
    "dqn_cartpole": {"model": lambda: MLP((4, 256, 256, 2))},
    "policy_gradient_cartpole": {"model": lambda: MLP((4, 64, 64, 2), nn.Tanh)},
    "cnn_lstm_moving_shapes": {"model": CNNLSTM},
    # graph networks: karate has 34 one-hot features and 4 communities, sbm 16 features
    "gcn_karate": {"model": lambda: GCN(34, 16, 4)},
    "gcn_sbm": {"model": lambda: GCN(16, 16, 4)},
    "gin_graph_classes": {"model": GIN},
}


def stem(path: Path) -> str:
    return path.name.removesuffix(".layerlab.json")


EXAMPLES = example_paths()


def test_there_is_one_example_per_family():
    assert sorted(map(stem, EXAMPLES)) == sorted(HAND_WRITTEN)
    assert DEFAULT_EXAMPLE in EXAMPLES


def test_check_exits_zero_for_every_example():
    """`python main.py check` per example, run side by side to use every core."""
    procs = {stem(p): subprocess.Popen([sys.executable, "main.py", "check", str(p)], cwd=ROOT,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for p in EXAMPLES}
    outputs = {name: proc.communicate(timeout=300) for name, proc in procs.items()}
    failed = {name: err for name, (out, err) in outputs.items()
              if procs[name].returncode != 0 or err or ": OK (" not in out}
    assert failed == {}


def summary_json(path: Path, capsys) -> dict:
    assert cli_main(["summary", str(path), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("path", EXAMPLES, ids=stem)
def test_parameter_counts_equal_the_hand_written_network(path, capsys):
    report = summary_json(path, capsys)["models"]
    hand = HAND_WRITTEN[stem(path)]
    assert set(report) == set(hand)
    for name, make in hand.items():
        module = make()
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        assert report[name]["trainable_params"] == trainable, name
        assert report[name]["total_params"] == sum(p.numel() for p in module.parameters())
        assert sum(layer["params"] for layer in report[name]["layers"]) == \
            report[name]["total_params"]


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy parameters and buffers across in registration order, checking every shape."""
    a, b = list(src.state_dict().values()), list(dst.state_dict().values())
    assert [t.shape for t in a] == [t.shape for t in b]
    with torch.no_grad():
        for s, d in zip(a, b):
            d.copy_(s)


def sample_input(shape: tuple, batch: int = 16) -> torch.Tensor:
    return torch.randn(batch, *shape)


@pytest.mark.parametrize("path", EXAMPLES, ids=stem)
def test_compiled_outputs_equal_the_hand_written_network(path):
    project = load_project(path)
    results, problems = analyze(project)
    assert problems == []
    torch.manual_seed(0)
    for name, make in HAND_WRITTEN[stem(path)].items():
        compiled = compile_model(project.models[name], results[name]).eval()
        hand = make().eval()
        copy_weights(compiled, hand)
        if is_graph_model(compiled, results[name]):  # 5 random graphs, PyG-style batched
            xs = graph_example_inputs(compiled, results[name], 5, torch.Generator())
        else:
            (input_id,) = compiled.input_names
            xs = (sample_input(results[name].info[input_id].out_shape),)
        with torch.no_grad():
            expected, got = hand(*xs), compiled(*xs)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-6, rtol=0), (name, (got - expected).abs().max())


def test_compiled_cnn_trains_like_the_hand_written_one():
    """One optimizer step from the same weights lands on the same weights."""
    project = load_project(DEFAULT_EXAMPLE)
    results, _ = analyze(project)
    compiled = compile_model(project.models["model"], results["model"])
    hand = DigitsCNN()
    copy_weights(compiled, hand)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    for model in (compiled, hand):
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    for a, b in zip(compiled.parameters(), hand.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_compiled_code_names_the_nodes():
    project = load_project(DEFAULT_EXAMPLE)
    model = compile_model(project.models["model"], analyze(project)[0]["model"])
    assert "self.conv1(x)" in model.code and "self.fc2(" in model.code
    assert isinstance(model.conv1, nn.Conv2d) and model.node_attrs["fc2"] == "fc2"
