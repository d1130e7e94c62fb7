"""Convolution, pooling and normalization layers."""
from __future__ import annotations

from .rules import need_rank, no_stats, one, pair, same_shape
from .spec import (BOOL, CHOICE, FLOAT, INT, PADDING, SIZE, LayerSpec, ModuleCall, Param,
                   ShapeError, Stats, fmt_shape, prod)

_IMG = "an image shaped (channels, height, width)"
_SEQ = "a signal shaped (channels, length)"
_RESHAPE = "Add a Reshape before it to give the data channels"


def _conv_params(transposed=False, dims=2):
    ps = [
        Param("out_channels", INT, doc="Number of filters (output channels).", min=1, starter=16),
        Param("kernel_size", SIZE, doc="Filter size.", min=1, starter=3, dims=dims),
        Param("stride", SIZE, 1, "Step between filter positions.", min=1, dims=dims),
        Param("padding", SIZE if transposed else PADDING, 0,
              "Zeros added on each side" + ("." if transposed else "; 'same' keeps the size."),
              min=0, dims=dims),
    ]
    if transposed:
        ps.append(Param("output_padding", SIZE, 0, "Extra rows/columns added to one side of "
                        "the output.", min=0, dims=dims))
    ps += [
        Param("dilation", SIZE, 1, "Spacing between filter taps.", min=1, dims=dims),
        Param("groups", INT, 1, "Split channels into independent groups.", min=1),
        Param("bias", BOOL, True, "Learn an additive bias per filter."),
    ]
    return tuple(ps)


def _conv_out(layer, size, p, dims):
    k, s, d = pair(p["kernel_size"], dims), pair(p["stride"], dims), pair(p["dilation"], dims)
    if p["padding"] == "same":
        if any(x != 1 for x in s):
            raise ShapeError(f"{layer} padding 'same' needs stride 1; got stride {p['stride']}")
        return tuple(size)
    pad = pair(0 if p["padding"] == "valid" else p["padding"], dims)
    out = tuple((n + 2 * q - e * (kk - 1) - 1) // ss + 1
                for n, q, e, kk, ss in zip(size, pad, d, k, s))
    if any(o < 1 for o in out):
        raise ShapeError(f"{layer} kernel {fmt_shape(k)} does not fit input size "
                         f"{fmt_shape(tuple(size))}; use a smaller kernel or more padding")
    return out


def _check_groups(layer, c, p):
    if c % p["groups"] or p["out_channels"] % p["groups"]:
        raise ShapeError(f"{layer} groups {p['groups']} must divide both input channels {c} "
                         f"and out_channels {p['out_channels']}")


def _conv_infer(layer, dims):
    def infer(p, ins):
        s = one(ins)
        need_rank(layer, s, (dims + 1,), _IMG if dims == 2 else _SEQ, _RESHAPE)
        _check_groups(layer, s[0], p)
        return {"out": (p["out_channels"],) + _conv_out(layer, s[1:], p, dims)}
    return infer


def _conv_stats(p, ins, outs):
    c, o = one(ins)[0], p["out_channels"]
    w = o * (c // p["groups"]) * prod(pair(p["kernel_size"], len(one(ins)) - 1))
    n = w + (o if p["bias"] else 0)
    return Stats(n, n, w * prod(outs["out"][1:]))


def _conv_module(cls):
    def module(p, ins):
        kw = {"in_channels": one(ins)[0]}
        kw.update({k: v for k, v in p.items()})
        return ModuleCall(cls, kw)
    return module


def _convt_infer(p, ins):
    s = one(ins)
    need_rank("ConvTranspose2d", s, (3,), _IMG, _RESHAPE)
    _check_groups("ConvTranspose2d", s[0], p)
    k, st, pad, op, d = (pair(p[n]) for n in
                         ("kernel_size", "stride", "padding", "output_padding", "dilation"))
    if any(o >= max(a, b) for o, a, b in zip(op, st, d)):
        raise ShapeError("ConvTranspose2d output_padding must be smaller than stride or dilation")
    out = tuple((n - 1) * a - 2 * q + e * (kk - 1) + o + 1
                for n, a, q, e, kk, o in zip(s[1:], st, pad, d, k, op))
    if any(o < 1 for o in out):
        raise ShapeError(f"ConvTranspose2d output would be empty for input {fmt_shape(s)}; "
                         "use less padding")
    return {"out": (p["out_channels"],) + out}


def _convt_stats(p, ins, outs):
    s, o = one(ins), p["out_channels"]
    w = s[0] * (o // p["groups"]) * prod(pair(p["kernel_size"]))
    n = w + (o if p["bias"] else 0)
    return Stats(n, n, w * prod(s[1:]))


def _pool_infer(layer):
    def infer(p, ins):
        s = one(ins)
        need_rank(layer, s, (3,), _IMG, _RESHAPE)
        k = pair(p["kernel_size"])
        st = pair(p["stride"] if p["stride"] is not None else p["kernel_size"])
        pad = pair(p["padding"])
        if any(q * 2 > kk for q, kk in zip(pad, k)):
            raise ShapeError(f"{layer} padding {p['padding']} must be at most half the kernel "
                             f"size {p['kernel_size']}")
        out = tuple((n + 2 * q - kk) // a + 1 for n, q, kk, a in zip(s[1:], pad, k, st))
        if any(o < 1 for o in out):
            raise ShapeError(f"{layer} kernel {fmt_shape(k)} is larger than the input "
                             f"{s[1]}×{s[2]} from {getattr(s, 'src', '?')}")
        return {"out": (s[0],) + out}
    return infer


_POOL_SHAPE = ("C×H×W → C×H'×W' with H' = ⌊(H + 2·padding − kernel_size)/stride⌋ + 1 (W' "
               "alike, per axis); stride defaults to kernel_size, padding is at most half the "
               "kernel.")


def _pool(layer, doc):
    return LayerSpec(
        layer, "Pooling", doc, shape_doc=_POOL_SHAPE,
        params=(
            Param("kernel_size", SIZE, doc="Window size.", min=1, starter=2),
            Param("stride", SIZE, None, "Step between windows (default: the window size).",
                  min=1, optional=True),
            Param("padding", SIZE, 0, "Implicit padding on each side.", min=0),
        ),
        infer=_pool_infer(layer), key_params=("kernel_size",),
        stats=lambda p, ins, outs: Stats(macs=prod(outs["out"]) * prod(pair(p["kernel_size"]))),
        module=lambda p, ins: ModuleCall(f"nn.{layer}", dict(p)))


def _adaptive_infer(p, ins):
    s = one(ins)
    need_rank("AdaptiveAvgPool2d", s, (3,), _IMG, _RESHAPE)
    return {"out": (s[0],) + pair(p["output_size"])}


def _upsample_infer(p, ins):
    s = one(ins)
    need_rank("Upsample", s, (2, 3), "an image (channels, height, width) or a signal "
              "(channels, length)")
    if p["mode"] == "bilinear" and len(s) != 3:
        raise ShapeError("Upsample mode 'bilinear' needs an image (channels, height, width)")
    if p["mode"] == "linear" and len(s) != 2:
        raise ShapeError("Upsample mode 'linear' needs a signal (channels, length)")
    return {"out": (s[0],) + tuple(int(n * p["scale_factor"]) for n in s[1:])}


def _norm_infer(layer, ranks, what):
    def infer(p, ins):
        need_rank(layer, one(ins), ranks, what)
        return same_shape(p, ins)
    return infer


def _bn(layer, ranks, what, doc, shape_doc):
    return LayerSpec(
        layer, "Normalization", doc, shape_doc=shape_doc,
        params=(
            Param("eps", FLOAT, 1e-5, "Added to the variance for numerical stability.", min=0.0),
            Param("momentum", FLOAT, 0.1, "Weight of the newest batch in the running "
                  "statistics.", min=0.0, max=1.0, optional=True),
        ),
        infer=_norm_infer(layer, ranks, what),
        stats=lambda p, ins, outs: Stats(2 * one(ins)[0], 2 * one(ins)[0], 2 * prod(one(ins))),
        module=lambda p, ins: ModuleCall(f"nn.{layer}", {"num_features": one(ins)[0], **p}))


def _ln_stats(p, ins, outs):
    n = 2 * one(ins)[-1] if p["elementwise_affine"] else 0
    return Stats(n, n, 2 * prod(one(ins)))


SPECS = [
    LayerSpec("Conv1d", "Convolution", "Slides learned filters along a signal (channels, length).",
              params=_conv_params(dims=1), infer=_conv_infer("Conv1d", 1), stats=_conv_stats,
              module=_conv_module("nn.Conv1d"), key_params=("out_channels", "kernel_size"),
              shape_doc="C×L → out_channels×L' with L' = ⌊(L + 2·padding − dilation·"
                        "(kernel_size − 1) − 1)/stride⌋ + 1; padding 'same' (stride 1 only) "
                        "keeps L, 'valid' means 0; groups must divide C and out_channels."),
    LayerSpec("Conv2d", "Convolution", "Slides learned filters over an image (channels, height, "
              "width).", params=_conv_params(), infer=_conv_infer("Conv2d", 2),
              stats=_conv_stats, module=_conv_module("nn.Conv2d"),
              key_params=("out_channels", "kernel_size", "stride"),
              shape_doc="C×H×W → out_channels×H'×W' with H' = ⌊(H + 2·padding − dilation·"
                        "(kernel_size − 1) − 1)/stride⌋ + 1 (W' alike, per axis); padding "
                        "'same' (stride 1 only) keeps H×W, 'valid' means 0; groups must divide "
                        "C and out_channels."),
    LayerSpec("ConvTranspose2d", "Convolution", "Learned upsampling: the transpose of a "
              "convolution, used by decoders and generators.",
              params=_conv_params(transposed=True), infer=_convt_infer, stats=_convt_stats,
              module=_conv_module("nn.ConvTranspose2d"),
              key_params=("out_channels", "kernel_size", "stride"),
              shape_doc="C×H×W → out_channels×H'×W' with H' = (H − 1)·stride − 2·padding + "
                        "dilation·(kernel_size − 1) + output_padding + 1 (W' alike, per axis); "
                        "output_padding must be smaller than stride or dilation; groups must "
                        "divide C and out_channels."),
    _pool("MaxPool2d", "Keeps the largest value in each window; halves the size with 2×2."),
    _pool("AvgPool2d", "Averages each window."),
    LayerSpec("AdaptiveAvgPool2d", "Pooling", "Averages to a fixed output size whatever the "
              "input size (1 = global average pooling).",
              params=(Param("output_size", SIZE, doc="Output height and width.", min=1,
                            starter=1),),
              infer=_adaptive_infer, key_params=("output_size",),
              shape_doc="C×H×W → C×output_size×output_size (or C×h×w for a pair [h, w]), "
                        "whatever H and W are.",
              stats=lambda p, ins, outs: Stats(macs=prod(one(ins))),
              module=lambda p, ins: ModuleCall("nn.AdaptiveAvgPool2d", dict(p))),
    LayerSpec("Upsample", "Pooling", "Enlarges an image or signal by scale_factor.",
              params=(Param("scale_factor", FLOAT, 2.0, "Size multiplier.", min=0.01,
                            max=1000.0),
                      Param("mode", CHOICE, "nearest", "How new values are filled in.",
                            choices=("nearest", "bilinear", "linear"))),
              infer=_upsample_infer, stats=no_stats, key_params=("scale_factor",),
              shape_doc="C×H×W → C×⌊H·scale_factor⌋×⌊W·scale_factor⌋, or C×L → "
                        "C×⌊L·scale_factor⌋; mode 'bilinear' needs an image, 'linear' a signal.",
              module=lambda p, ins: ModuleCall("nn.Upsample", dict(p))),
    _bn("BatchNorm1d", (1, 2), "features (F,) or a signal (channels, length)",
        "Normalizes each feature over the batch; speeds up training of MLPs.",
        "F or C×L → the same shape; num_features is the first axis (F or C)."),
    _bn("BatchNorm2d", (3,), _IMG, "Normalizes each channel over the batch and image.",
        "C×H×W → the same shape; num_features is C."),
    LayerSpec("LayerNorm", "Normalization", "Normalizes each sample over its last dimension "
              "(Transformers' normalization).",
              params=(Param("eps", FLOAT, 1e-5, "Added to the variance for numerical "
                            "stability.", min=0.0),
                      Param("elementwise_affine", BOOL, True, "Learn a scale and shift.")),
              infer=same_shape, stats=_ln_stats,
              shape_doc="… × F → the same shape; normalizes over the last axis "
                        "(normalized_shape = F).",
              module=lambda p, ins: ModuleCall("nn.LayerNorm", {
                  "normalized_shape": one(ins)[-1], **p})),
]
