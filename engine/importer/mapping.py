"""Which torch modules and operations are which catalog layers, and with what parameters.

A mapper looks at one traced call and returns a :class:`Mapped` (the layer type, its parameters,
which traced values feed which input port, what kind of result it gives) or None when the call
does not fit a catalog layer exactly; the importer then keeps the call as an Opaque node.
Parameters are written only where they differ from the catalog's defaults.
"""
from __future__ import annotations

import functools
import inspect
import operator
from dataclasses import dataclass, field

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from ..layers import get_spec
from ..layers import modules as own


@dataclass
class Mapped:
    """A traced call as a catalog layer."""

    type: str
    params: dict = field(default_factory=dict)
    inputs: list = field(default_factory=list)  # [(traced value, input port)]
    result: str = "tensor"  # 'tensor' | 'recurrent' (tuple: out, hidden) | 'attention' | 'pair'


def clean_params(type_: str, params: dict) -> dict:
    """Only the parameters that differ from the spec's defaults (required ones always)."""
    spec = get_spec(type_)
    out = {}
    for name, value in params.items():
        p = spec.param(name)
        if p.required or _normal(p, value) != _normal(p, p.default):
            out[name] = list(value) if isinstance(value, tuple) else value
    return out


def _normal(p, value):
    try:
        return p.check(value) if value is not None else None
    except ValueError:
        return value


def _size(value):
    """A torch size tuple as the catalog writes it: 3 for (3, 3), [3, 2] otherwise."""
    if isinstance(value, (tuple, list)):
        return value[0] if len(set(value)) == 1 else list(value)
    return value


def _bias(module) -> bool:
    return getattr(module, "bias", None) is not None


# -- modules ------------------------------------------------------------------------------------
def map_module(module, args: tuple, kwargs: dict) -> Mapped | None:
    """The catalog layer for calling ``module(*args, **kwargs)``, or None."""
    mapper = MODULES.get(type(module)) or _own_mapper(module)
    if mapper is None:
        return None
    return mapper(module, args, kwargs)


def _simple(fn):
    """A mapper for a module called on one tensor: fn(module) -> (type, params) or None."""
    def mapper(module, args, kwargs):
        if len(args) != 1 or kwargs:
            return None
        found = fn(module)
        if found is None:
            return None
        type_, params = found
        return Mapped(type_, clean_params(type_, params), [(args[0], "in")])
    return mapper


def _linear(m):
    return "Linear", {"out_features": m.out_features, "bias": _bias(m)}


def _conv(type_):
    def fn(m):
        if m.padding_mode != "zeros":
            return None
        params = {"out_channels": m.out_channels, "kernel_size": _size(m.kernel_size),
                  "stride": _size(m.stride), "dilation": _size(m.dilation), "groups": m.groups,
                  "bias": _bias(m),
                  "padding": m.padding if isinstance(m.padding, str) else _size(m.padding)}
        if type_ == "ConvTranspose2d":
            params["output_padding"] = _size(m.output_padding)
        return type_, params
    return fn


def _max_pool(m):
    if _size(m.dilation) != 1 or m.ceil_mode or m.return_indices:
        return None
    return "MaxPool2d", _pool_params(m)


def _avg_pool(m):
    if m.ceil_mode or not m.count_include_pad or m.divisor_override is not None:
        return None
    return "AvgPool2d", _pool_params(m)


def _pool_params(m) -> dict:
    stride = None if m.stride is None or m.stride == m.kernel_size else _size(m.stride)
    return {"kernel_size": _size(m.kernel_size), "stride": stride, "padding": _size(m.padding)}


def _adaptive(m):
    size = m.output_size
    if size is None or (isinstance(size, tuple) and None in size):
        return None
    return "AdaptiveAvgPool2d", {"output_size": _size(size)}


def _upsample(m):
    scale = _size(m.scale_factor)
    if m.size is not None or isinstance(scale, list) or scale is None or m.align_corners or \
            m.mode not in ("nearest", "bilinear", "linear") or m.recompute_scale_factor:
        return None
    return "Upsample", {"scale_factor": float(scale), "mode": m.mode}


def _batch_norm(type_):
    def fn(m):
        if not (m.affine and m.track_running_stats):
            return None
        return type_, {"eps": m.eps, "momentum": m.momentum}
    return fn


def _layer_norm(m):
    if len(m.normalized_shape) != 1 or (m.elementwise_affine and m.bias is None):
        return None
    return "LayerNorm", {"eps": m.eps, "elementwise_affine": m.elementwise_affine}


def _flatten(m):
    return None if m.start_dim == 0 else ("Flatten", {"start_dim": m.start_dim,
                                                      "end_dim": m.end_dim})


def _embedding(m):
    if m.padding_idx is not None or m.max_norm is not None or m.scale_grad_by_freq or m.sparse:
        return None
    return "Embedding", {"num_embeddings": m.num_embeddings, "embedding_dim": m.embedding_dim}


def _softmax(m):
    return None if m.dim is None else ("Softmax", {"dim": m.dim})


def _plain(type_, **attrs):
    return lambda m: (type_, {k: getattr(m, a) for k, a in attrs.items()})


def _recurrent(type_):
    def mapper(m, args, kwargs):
        if not m.batch_first or getattr(m, "proj_size", 0) or kwargs or len(args) != 1:
            return None
        params = {"hidden_size": m.hidden_size, "num_layers": m.num_layers,
                  "bidirectional": m.bidirectional, "dropout": float(m.dropout), "bias": m.bias}
        if type_ == "RNN":
            params["nonlinearity"] = m.nonlinearity
        return Mapped(type_, clean_params(type_, params), [(args[0], "in")], "recurrent")
    return mapper


_MHA_KWARGS = {"need_weights": None, "attn_mask": None, "key_padding_mask": None,
               "average_attn_weights": None, "is_causal": False}


def _attention(m, args, kwargs):
    if not m.batch_first or m.bias_k is not None or m.add_zero_attn or len(args) != 3:
        return None
    if any(k not in _MHA_KWARGS or (_MHA_KWARGS[k] is not None and v != _MHA_KWARGS[k])
           or (k in ("attn_mask", "key_padding_mask") and v is not None)
           for k, v in kwargs.items()):
        return None
    q, k, v = args
    inputs = [(q, "query")] + ([(k, "key")] if k is not q else []) + \
        ([(v, "value")] if v is not k else [])
    params = {"num_heads": m.num_heads, "dropout": float(m.dropout),
              "bias": m.in_proj_bias is not None}
    return Mapped("MultiheadAttention", clean_params("MultiheadAttention", params), inputs,
                  "attention")


def _encoder_layer(m, args, kwargs):
    if len(args) != 1 or any(v not in (None, False) for v in kwargs.values()):
        return None
    if not m.self_attn.batch_first or m.norm1.eps != 1e-5 or m.activation_relu_or_gelu not in \
            (1, 2) or m.linear1.bias is None or m.self_attn.in_proj_bias is None:
        return None
    if m.activation_relu_or_gelu == 2 and getattr(m.activation, "approximate", "none") != "none":
        return None
    params = {"nhead": m.self_attn.num_heads, "dim_feedforward": m.linear1.out_features,
              "dropout": float(m.dropout.p), "norm_first": m.norm_first,
              "activation": "relu" if m.activation_relu_or_gelu == 1 else "gelu"}
    return Mapped("TransformerEncoderLayer", clean_params("TransformerEncoderLayer", params),
                  [(args[0], "in")])


MODULES = {
    nn.Linear: _simple(_linear),
    nn.Conv1d: _simple(_conv("Conv1d")), nn.Conv2d: _simple(_conv("Conv2d")),
    nn.ConvTranspose2d: _simple(_conv("ConvTranspose2d")),
    nn.MaxPool2d: _simple(_max_pool), nn.AvgPool2d: _simple(_avg_pool),
    nn.AdaptiveAvgPool2d: _simple(_adaptive), nn.Upsample: _simple(_upsample),
    nn.BatchNorm1d: _simple(_batch_norm("BatchNorm1d")),
    nn.BatchNorm2d: _simple(_batch_norm("BatchNorm2d")), nn.LayerNorm: _simple(_layer_norm),
    nn.Dropout: _simple(_plain("Dropout", p="p")), nn.Flatten: _simple(_flatten),
    nn.Embedding: _simple(_embedding),
    nn.ReLU: _simple(_plain("ReLU")), nn.Sigmoid: _simple(_plain("Sigmoid")),
    nn.Tanh: _simple(_plain("Tanh")), nn.SiLU: _simple(_plain("SiLU")),
    nn.GELU: _simple(_plain("GELU", approximate="approximate")),
    nn.LeakyReLU: _simple(_plain("LeakyReLU", negative_slope="negative_slope")),
    nn.ELU: _simple(_plain("ELU", alpha="alpha")), nn.Softmax: _simple(_softmax),
    nn.RNN: _recurrent("RNN"), nn.LSTM: _recurrent("LSTM"), nn.GRU: _recurrent("GRU"),
    nn.MultiheadAttention: _attention, nn.TransformerEncoderLayer: _encoder_layer,
}


# -- Layerlab's own modules (as in an exported model.py) -------------------------------------------
def _own_mapper(module):
    """A mapper for Layerlab's own layer classes, also when copied into an exported model.py."""
    name = type(module).__name__
    ours = getattr(own, name, None)
    if name not in _OWN or not isinstance(ours, type):
        return None
    if type(module) is not ours and not _same_source(type(module), ours):
        return None
    return _OWN[name]


def is_own_module(module) -> bool:
    """One of Layerlab's own layer classes (or a verbatim copy of one)."""
    return _own_mapper(module) is not None


@functools.lru_cache(maxsize=None)
def _same_source(a, b) -> bool:
    try:
        return inspect.getsource(a) == inspect.getsource(b)
    except (OSError, TypeError):
        return False


def _reservoir(m, args, kwargs):
    if len(args) != 1 or kwargs:
        return None
    params = {"hidden_size": m.weight_hh.shape[0], "leak_rate": float(m.leak_rate)}
    return Mapped("Reservoir", clean_params("Reservoir", params), [(args[0], "in")], "pair")


def _reparameterize(m, args, kwargs):
    if len(args) != 2 or kwargs:
        return None
    return Mapped("Reparameterize", {}, [(args[0], "mu"), (args[1], "logvar")])


_OWN = {
    "Step": _simple(_plain("Step")),
    "Reshape": _simple(lambda m: ("Reshape", {"shape": list(m.shape)})),
    "SequencePool": _simple(_plain("SequencePool", mode="mode")),
    "PositionalEncoding": _simple(lambda m: ("PositionalEncoding",
                                             {"max_len": m.pe.shape[0]})),
    "Reservoir": _reservoir, "Reparameterize": _reparameterize,
}


# -- functions and methods ------------------------------------------------------------------------
def map_call(node: fx.Node, is_batch) -> Mapped | None:
    """The catalog layer for a call_function / call_method node, or None.

    ``is_batch(value)`` tells whether a traced value is the batch size (``x.size(0)``).
    """
    table = FUNCTIONS if node.op == "call_function" else METHODS
    stub = table.get(node.target)
    if stub is None:
        return None
    try:
        return stub(is_batch, *node.args, **node.kwargs)
    except TypeError:  # called with arguments the stub does not know: keep it opaque
        return None


def _tensor(x) -> bool:
    return isinstance(x, fx.Node)


def _act(type_, *order):
    """An activation function; ``order`` names its arguments after the input, in order."""
    def stub(is_batch, input, *args, **kwargs):
        if not _tensor(input) or len(args) > len(order) or set(kwargs) & set(order[:len(args)]):
            return None
        given = {**dict(zip(order, args)), **kwargs}
        if set(given) - set(order) - {"_stacklevel"} or any(map(_tensor, given.values())):
            return None
        params = {k: v for k, v in given.items() if k not in ("inplace", "_stacklevel")}
        return Mapped(type_, clean_params(type_, params), [(input, "in")])
    return stub


def _act_dim(type_):
    def stub(is_batch, input, dim=None, _stacklevel=3, dtype=None):
        if not _tensor(input) or dim is None or dtype is not None or _tensor(dim):
            return None
        return Mapped(type_, clean_params(type_, {"dim": dim}), [(input, "in")])
    return stub


def _merge(type_):
    def stub(is_batch, input, other, *, alpha=1):
        if not (_tensor(input) and _tensor(other)) or alpha != 1:
            return None
        return Mapped(type_, {}, [(input, "in"), (other, "in")])
    return stub


def _cat(is_batch, tensors, dim=0, *, out=None):
    if not isinstance(tensors, (list, tuple)) or len(tensors) < 2 or dim == 0 or out is not None \
            or not all(_tensor(t) for t in tensors) or _tensor(dim):
        return None
    return Mapped("Concat", clean_params("Concat", {"dim": dim}), [(t, "in") for t in tensors])


def _flatten_call(is_batch, input, start_dim=0, end_dim=-1):
    if not _tensor(input) or start_dim == 0 or _tensor(start_dim) or _tensor(end_dim):
        return None
    return Mapped("Flatten", clean_params("Flatten", {"start_dim": start_dim,
                                                      "end_dim": end_dim}), [(input, "in")])


def _view(is_batch, input, *shape):
    """``x.view(x.size(0), -1)`` is a Flatten; ``x.view(x.size(0), 4, 4)`` a Reshape."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if not _tensor(input) or len(shape) < 2:
        return None
    first, rest = shape[0], list(shape[1:])
    if any(not isinstance(s, int) or isinstance(s, bool) for s in rest) or rest.count(-1) > 1:
        return None
    if not (is_batch(first) or (first == -1 and -1 not in rest)):
        return None
    if rest == [-1]:
        return Mapped("Flatten", {}, [(input, "in")])
    return Mapped("Reshape", {"shape": rest}, [(input, "in")])


def _reshape_fn(is_batch, input, shape):
    return _view(is_batch, input, shape)


def _dropout(is_batch, input, p=0.5, training=True, inplace=False):
    if not _tensor(input) or _tensor(p):
        return None
    return Mapped("Dropout", clean_params("Dropout", {"p": p}), [(input, "in")])


def _max_pool_fn(is_batch, input, kernel_size, stride=None, padding=0, dilation=1,
                 ceil_mode=False, return_indices=False):
    if not _tensor(input) or _size(dilation) != 1 or ceil_mode or return_indices:
        return None
    return _pool_call("MaxPool2d", input, kernel_size, stride, padding)


def _avg_pool_fn(is_batch, input, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
    if not _tensor(input) or ceil_mode or not count_include_pad or divisor_override is not None:
        return None
    return _pool_call("AvgPool2d", input, kernel_size, stride, padding)


def _pool_call(type_, input, kernel_size, stride, padding):
    if any(_tensor(v) for v in (kernel_size, stride, padding)):
        return None
    stride = None if stride in (None, [], ()) or _size(stride) == _size(kernel_size) \
        else _size(stride)
    params = {"kernel_size": _size(kernel_size), "stride": stride, "padding": _size(padding)}
    return Mapped(type_, clean_params(type_, params), [(input, "in")])


def _adaptive_fn(is_batch, input, output_size):
    if not _tensor(input) or output_size is None or _tensor(output_size) or (
            isinstance(output_size, (tuple, list)) and None in output_size):
        return None
    return Mapped("AdaptiveAvgPool2d", {"output_size": _size(output_size)}, [(input, "in")])


_RELU, _SIGMOID, _TANH = _act("ReLU", "inplace"), _act("Sigmoid"), _act("Tanh")
FUNCTIONS = {
    operator.add: _merge("Add"), torch.add: _merge("Add"),
    operator.mul: _merge("Multiply"), torch.mul: _merge("Multiply"),
    torch.cat: _cat, torch.concat: _cat, torch.flatten: _flatten_call, torch.reshape: _reshape_fn,
    F.relu: _RELU, torch.relu: _RELU, torch.sigmoid: _SIGMOID, F.sigmoid: _SIGMOID,
    torch.tanh: _TANH, F.tanh: _TANH, F.silu: _act("SiLU", "inplace"),
    F.gelu: _act("GELU", "approximate"), F.leaky_relu: _act("LeakyReLU", "negative_slope",
                                                             "inplace"),
    F.elu: _act("ELU", "alpha", "inplace"), F.softmax: _act_dim("Softmax"),
    torch.softmax: _act_dim("Softmax"), F.dropout: _dropout, F.max_pool2d: _max_pool_fn,
    F.avg_pool2d: _avg_pool_fn, F.adaptive_avg_pool2d: _adaptive_fn,
}
METHODS = {
    "add": _merge("Add"), "mul": _merge("Multiply"), "relu": _RELU, "sigmoid": _SIGMOID,
    "tanh": _TANH, "softmax": _act_dim("Softmax"), "flatten": _flatten_call, "view": _view,
    "reshape": _view,
}
