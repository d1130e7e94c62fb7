"""Torch modules for the layers torch.nn lacks.

This file imports nothing but torch (``GIN`` imports torch_geometric when it is built): the Python
exporter copies these classes verbatim into the ``model.py`` it writes, so an exported model
stands alone.
"""
from typing import Optional

import torch
import torch.nn as nn


class Step(nn.Module):
    """Heaviside step (the perceptron's threshold) with a straight-through gradient."""

    def forward(self, x):
        hard = (x > 0).to(x.dtype)
        # x - x.detach() is exactly zero, so the value is exactly 0 or 1 even for large x
        # (x + (hard - x).detach() rounds to 0 for x = 1e8), while the gradient is the identity
        return hard + (x - x.detach())


class Reshape(nn.Module):
    """Reshape each sample to ``shape`` (the batch dimension is kept)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self):
        return f"shape={self.shape}"


class SequencePool(nn.Module):
    """Reduce a sequence (B, T, F) to (B, F) by mean, max, first or last step."""

    def __init__(self, mode="mean"):
        super().__init__()
        self.mode = mode

    def forward(self, x):
        if self.mode == "mean":
            return x.mean(dim=1)
        if self.mode == "max":
            return x.amax(dim=1)
        if self.mode == "first":
            return x[:, 0]
        return x[:, -1]

    def extra_repr(self):
        return f"mode={self.mode!r}"


class PositionalEncoding(nn.Module):
    """Add the sinusoidal position code of "Attention Is All You Need" to (B, T, D) inputs."""

    def __init__(self, d_model, max_len=5000):
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32)
                         * (-torch.log(torch.tensor(10000.0)) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * freq)
        pe[:, 1::2] = torch.cos(position * freq[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x):
        return x + self.pe[: x.shape[1]]


class Reservoir(nn.Module):
    """Echo state network reservoir: fixed random recurrent weights, leaky tanh units.

    The recurrent matrix is sparse (``density``) and scaled to ``spectral_radius``; the weights are
    frozen (``requires_grad=False``) and seeded, so only the layers after it learn.
    Returns ``(states (B, T, H), last state (B, H))``.
    """

    def __init__(self, input_size, hidden_size, spectral_radius=0.9, leak_rate=0.5,
                 density=0.1, input_scaling=1.0, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        w_in = (torch.rand(hidden_size, input_size, generator=g) * 2 - 1) * input_scaling
        w = torch.rand(hidden_size, hidden_size, generator=g) * 2 - 1
        w = w * (torch.rand(hidden_size, hidden_size, generator=g) < density)
        radius = torch.linalg.eigvals(w).abs().max()
        if radius > 0:
            w = w * (spectral_radius / radius)
        self.weight_ih = nn.Parameter(w_in, requires_grad=False)
        self.weight_hh = nn.Parameter(w, requires_grad=False)
        self.leak_rate = leak_rate

    def forward(self, x):
        drive = x @ self.weight_ih.t()
        h = drive.new_zeros(drive.shape[0], drive.shape[2])
        a = self.leak_rate
        states = []
        for t in range(drive.shape[1]):
            h = (1 - a) * h + a * torch.tanh(drive[:, t] + h @ self.weight_hh.t())
            states.append(h)
        return torch.stack(states, dim=1), h


class KeepLSTM(nn.LSTM):
    """An ``nn.LSTM`` whose forget gates start with bias ``keep_bias`` in every layer and
    direction (PyTorch starts them near 0, so half the memory leaks away at each step)."""

    def __init__(self, *args, keep_bias: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep_bias = keep_bias
        h = self.hidden_size
        with torch.no_grad():  # gates (input, forget, cell, output): forget is the 2nd block
            for name, p in self.named_parameters():
                if name.startswith("bias_"):
                    p[h:2 * h] = keep_bias if name.startswith("bias_ih") else 0.0


class KeepGRU(nn.GRU):
    """An ``nn.GRU`` whose update gates start with bias ``keep_bias`` in every layer and
    direction, so that each step keeps most of the previous state from the first batch."""

    def __init__(self, *args, keep_bias: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.keep_bias = keep_bias
        h = self.hidden_size
        with torch.no_grad():  # gates (reset, update, new): update is the 2nd block
            for name, p in self.named_parameters():
                if name.startswith("bias_"):
                    p[h:2 * h] = keep_bias if name.startswith("bias_ih") else 0.0


class Reparameterize(nn.Module):
    """VAE sampling: ``mu + eps * exp(logvar / 2)`` while training, ``mu`` in eval mode."""

    def forward(self, mu, logvar):
        if self.training:
            return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return mu


class FoldFrames(nn.Module):
    """Start of a per-frame chain: (B, T, ...) -> (B*T, ...), so that the layers after it run
    on every frame of every sequence as one batch."""

    def forward(self, x):
        return x.flatten(0, 1)


class UnfoldFrames(nn.Module):
    """End of a per-frame chain: (B*T, ...) -> (B, T, ...) with T = ``frames``."""

    def __init__(self, frames):
        super().__init__()
        self.frames = int(frames)

    def forward(self, x):
        # reshape, not unflatten: the ONNX exporter keeps the batch of a reshape dynamic
        return x.reshape(-1, self.frames, *x.shape[1:])

    def extra_repr(self):
        return f"frames={self.frames}"


class GIN(nn.Module):
    """A graph isomorphism layer: PyG's ``GINConv`` around a Linear-ReLU-Linear MLP,
    ``mlp((1 + eps) * x_i + sum of x_j over the neighbours j)``."""

    def __init__(self, in_channels, out_channels, hidden, train_eps=False, eps=0.0):
        super().__init__()
        from torch_geometric.nn import GINConv

        mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(),
                            nn.Linear(hidden, out_channels))
        self.conv = GINConv(mlp, eps=eps, train_eps=train_eps)

    def forward(self, x, edge_index):
        return self.conv(x, edge_index)


class GraphPool(nn.Module):
    """One vector per graph: the mean, max or sum of the features of its nodes.

    ``batch`` holds the graph of every node (0, 0, 1, 1, 1, 2, ...), as PyG batches graphs;
    without it all nodes form one graph. Written with ``scatter_add`` / ``scatter_reduce`` (what
    PyG's ``global_*_pool`` runs) so that the module needs only torch and exports to TorchScript and
    ONNX with a graph count that varies from call to call.
    """

    def __init__(self, mode="mean"):
        super().__init__()
        self.mode = mode

    def forward(self, x, batch: Optional[torch.Tensor] = None):
        if batch is None:
            if self.mode == "max":
                return x.amax(dim=0, keepdim=True)
            if self.mode == "sum":
                return x.sum(dim=0, keepdim=True)
            return x.mean(dim=0, keepdim=True)
        index = batch.unsqueeze(1).expand(x.shape[0], x.shape[1])
        # N rows (there are never more graphs than nodes), then the first max(batch) + 1
        rows = torch.zeros_like(x)
        if self.mode == "max":
            out = rows.scatter_reduce(0, index, x, "amax", include_self=False)
        else:
            out = rows.scatter_add(0, index, x)
            if self.mode == "mean":
                ones = torch.ones_like(x[:, :1])
                count = torch.zeros_like(ones).scatter_add(0, batch.unsqueeze(1), ones)
                out = out / count.clamp(min=1.0)
        return out[: batch.max() + 1]

    def extra_repr(self):
        return f"mode={self.mode!r}"
