"""Recurrent layers (RNN, LSTM, GRU), the echo state reservoir, and sequence pooling."""
from __future__ import annotations

import operator

from .rules import need_rank, no_stats, one
from .spec import BOOL, CHOICE, FLOAT, INT, LayerSpec, ModuleCall, Param, ShapeError, Stats

_SEQ = "a sequence shaped (steps, features)"
_GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def _rnn_infer(layer):
    def infer(p, ins):
        s = one(ins)
        need_rank(layer, s, (2,), _SEQ, "Add a Reshape to (steps, 1) for a 1-D series")
        if p.get("keep_bias") and not p["bias"]:
            raise ShapeError(f"keep_bias {p['keep_bias']:g} needs bias on; turn bias on or "
                             "set keep_bias to 0")
        h = p["hidden_size"] * (2 if p.get("bidirectional") else 1)
        return {"out": (s[0], h), "last": (h,)}
    return infer


def _rnn_stats(layer):
    def stats(p, ins, outs):
        g, h, dirs = _GATES[layer], p["hidden_size"], 2 if p["bidirectional"] else 1
        steps, size, n, macs = one(ins)[0], one(ins)[1], 0, 0
        for _ in range(p["num_layers"]):
            per = g * h * (size + h)
            n += dirs * (per + (2 * g * h if p["bias"] else 0))
            macs += dirs * per * steps
            size = h * dirs
        return Stats(n, n, macs)
    return stats


def _rnn_module(layer):
    def module(p, ins):
        kw = {"input_size": one(ins)[1], "hidden_size": p["hidden_size"],
              "num_layers": p["num_layers"], "bias": p["bias"], "batch_first": True,
              "dropout": p["dropout"], "bidirectional": p["bidirectional"]}
        if layer == "RNN":
            kw["nonlinearity"] = p["nonlinearity"]
        elif p["keep_bias"]:
            return ModuleCall(f"Keep{layer}", {**kw, "keep_bias": p["keep_bias"]})
        return ModuleCall(f"nn.{layer}", kw)
    return module


def _emit_recurrent(g, name, args, p):
    """Call the module; ``out`` is its first result, ``last`` the final step of each direction."""
    import torch

    res = g.call_module(name, (args["in"][0],))
    out = g.call_function(operator.getitem, (res, 0))
    if p.get("bidirectional"):
        h = p["hidden_size"]
        fwd = g.call_function(operator.getitem, (out, (slice(None), -1, slice(None, h))))
        bwd = g.call_function(operator.getitem, (out, (slice(None), 0, slice(h, None))))
        last = g.call_function(torch.cat, ([fwd, bwd],), {"dim": -1})
    elif p.get("_reservoir"):
        last = g.call_function(operator.getitem, (res, 1))
    else:
        last = g.call_function(operator.getitem, (out, (slice(None), -1)))
    return {"out": out, "last": last}


def _rnn(layer, doc):
    params = [
        Param("hidden_size", INT, doc="Units in the hidden state.", min=1, starter=32),
        Param("num_layers", INT, 1, "Stacked recurrent layers.", min=1, max=100),
        Param("bidirectional", BOOL, False, "Also read the sequence backwards."),
        Param("dropout", FLOAT, 0.0, "Dropout between stacked layers.", min=0.0, max=0.99),
        Param("bias", BOOL, True, "Learn bias terms."),
    ]
    if layer == "RNN":
        params.append(Param("nonlinearity", CHOICE, "tanh", "Activation of the hidden state.",
                            choices=("tanh", "relu")))
    else:
        gate = "forget" if layer == "LSTM" else "update"
        params.append(Param("keep_bias", FLOAT, 0.0, f"Starting bias of the {gate} gate, the "
                            "gate that keeps the memory: 0 is PyTorch's start, where half the "
                            "memory leaks away each step; 1 to 3 lets the first batches learn "
                            "dependencies tens of steps long.", min=-10.0, max=10.0))
    return LayerSpec(layer, "Recurrent", doc, params=tuple(params), outputs=("out", "last"),
                     infer=_rnn_infer(layer), stats=_rnn_stats(layer),
                     shape_doc="T×input → out: T×H, the top layer's output at every step, "
                               "and last: H, its output at the last step (bidirectional: the "
                               "forward direction's last step joined with the backward one's "
                               "first), where H = hidden_size, ×2 if bidirectional; num_layers "
                               "does not change the shapes.",
                     module=_rnn_module(layer), emit=_emit_recurrent,
                     key_params=("hidden_size", "num_layers"))


def _reservoir_stats(p, ins, outs):
    steps, f = one(ins)
    h = p["hidden_size"]
    return Stats(h * f + h * h, 0, steps * h * (f + h))


def _emit_reservoir(g, name, args, p):
    return _emit_recurrent(g, name, args, {**p, "_reservoir": True, "bidirectional": False})


def _pool_infer(p, ins):
    s = one(ins)
    need_rank("SequencePool", s, (2,), _SEQ)
    return {"out": (s[1],)}


SPECS = [
    _rnn("RNN", "Elman recurrent layer: a hidden state updated at every step."),
    _rnn("LSTM", "Long short-term memory: gated memory cells that keep information over long "
         "sequences."),
    _rnn("GRU", "Gated recurrent unit: a lighter LSTM with two gates."),
    LayerSpec(
        "Reservoir", "Recurrent", "Echo state reservoir: a fixed random recurrent network; "
        "only the layers after it learn.",
        params=(
            Param("hidden_size", INT, doc="Reservoir units.", min=1, starter=100),
            Param("spectral_radius", FLOAT, 0.9, "Largest eigenvalue of the recurrent weights "
                  "(below 1 for fading memory).", min=0.0),
            Param("leak_rate", FLOAT, 0.5, "How much of the new state replaces the old.",
                  min=0.0, max=1.0),
            Param("density", FLOAT, 0.1, "Fraction of non-zero recurrent weights.", min=0.001,
                  max=1.0),
            Param("input_scaling", FLOAT, 1.0, "Scale of the random input weights.", min=0.0),
            Param("seed", INT, 0, "Seed of the random weights.", min=0),
        ),
        outputs=("out", "last"), infer=_rnn_infer("Reservoir"), stats=_reservoir_stats,
        emit=_emit_reservoir, key_params=("hidden_size", "spectral_radius"),
        shape_doc="T×input → out: T×hidden_size, the state after every step; last: "
                  "hidden_size, the final state.",
        module=lambda p, ins: ModuleCall("Reservoir", {"input_size": one(ins)[1], **p})),
    LayerSpec(
        "SequencePool", "Recurrent", "Reduces a sequence (steps, features) to one vector.",
        params=(Param("mode", CHOICE, "mean", "How steps are combined.",
                      choices=("mean", "max", "first", "last")),),
        infer=_pool_infer, stats=no_stats, key_params=("mode",),
        shape_doc="T×F → F: the steps are reduced (mean, max, first or last).",
        module=lambda p, ins: ModuleCall("SequencePool", {"mode": p["mode"]})),
]
