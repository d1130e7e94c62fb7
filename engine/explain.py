"""Explain a prediction: attributions from Captum for one input of a trained model.

:func:`attribute` runs one of Captum's methods on the compiled model and returns the raw
attribution (same shape as the input, batch dimension dropped) with the model's output:

``saliency``    ``captum.attr.Saliency`` (absolute gradients)
``ig``          ``IntegratedGradients`` from a baseline: ``zeros``, ``mean`` (of the training
                inputs) or ``blurred`` (images: the input blurred)
``smoothgrad``  ``NoiseTunnel(Saliency)``, SmoothGrad (noise 10 % of the input's range)
``occlusion``   ``Occlusion``: a patch (images 3×3, sequences 3 steps, tabular one feature)
``gradcam``     ``LayerGradCam`` on a convolutional node (``node``; default the last Conv2d
                or Conv1d), upsampled to the input with ``LayerAttribution.interpolate``
``shap``        ``GradientShap`` with the baselines zeros and training inputs

Nothing is computed by hand: the numbers are Captum's. :func:`render` draws the picture the
window shows (a heat map over an image, a bar per feature, a strip per time step) as an RGB
array; ``main.py explain`` saves it as PNG (Pillow) or the raw array as JSON. No Qt here.
"""
from __future__ import annotations

import numpy as np

from .errors import LayerlabError

METHODS = ("saliency", "ig", "smoothgrad", "occlusion", "gradcam", "shap")
BASELINES = ("zeros", "mean", "blurred")


class ExplainError(LayerlabError):
    """A request that cannot be explained; the message names the option at fault."""


def _captum():
    try:
        import captum.attr as attr
    except ImportError:
        raise ExplainError("explain: attributions need captum (pip install captum)") from None
    return attr


def conv_nodes(model, graph) -> list[str]:
    """Convolutional nodes of a model (Grad-CAM's candidates), in graph order."""
    return [n for n in graph.topological_order() if n in model.node_attrs
            and graph.node(n).type in ("Conv2d", "Conv1d")]


def _forward(model):
    """The model as Captum calls it: the first Output, scores as (batch, outputs)."""
    def forward(x):
        out = model(x)
        out = out[0] if isinstance(out, tuple) else out
        return out.reshape(out.shape[0], -1)
    return forward


def _baseline(kind: str, x, train_inputs):
    import torch

    if kind == "zeros":
        return torch.zeros_like(x)
    if kind == "mean":
        if train_inputs is None:
            raise ExplainError("--baseline mean: needs the training inputs")
        return train_inputs.float().mean(dim=0, keepdim=True).expand_as(x).contiguous()
    if kind == "blurred":
        if x.dim() != 4:
            raise ExplainError("--baseline blurred: is for images (C, H, W)")
        return torch.nn.functional.avg_pool2d(x, 5, stride=1, padding=2,
                                              count_include_pad=False)
    raise ExplainError(f"--baseline: must be one of {', '.join(BASELINES)}; got {kind!r}")


def attribute(model, graph, x, method: str, *, target: int | None = None,
              node: str | None = None, baseline: str = "zeros", train_inputs=None,
              seed: int = 0) -> dict:
    """Attribution of ``x`` (one sample with its batch dimension, (1, ...)) for ``target``
    (default: the predicted class, or output 0 for one output). Returns ``{"attribution":
    array shaped like the sample, "output": scores, "target": t, "method": m, "node": id}``."""
    import torch

    attr = _captum()
    if method not in METHODS:
        raise ExplainError(f"--method: must be one of {', '.join(METHODS)}; got {method!r}")
    model = model.eval()
    forward = _forward(model)
    x = x.detach().float()
    base = _baseline(baseline, x, train_inputs) if method == "ig" else None
    with torch.no_grad():
        out = forward(x)
    if target is None:
        target = int(out[0].argmax()) if out.shape[1] > 1 else 0
    if not 0 <= target < out.shape[1]:
        raise ExplainError(f"--target: the model has {out.shape[1]} outputs (0..{out.shape[1] - 1});"
                           f" got {target}")
    used_node = None
    torch.manual_seed(seed)
    if method == "saliency":
        result = attr.Saliency(forward).attribute(x, target=target)
    elif method == "ig":
        result = attr.IntegratedGradients(forward).attribute(
            x, baselines=base, target=target, n_steps=64)
    elif method == "smoothgrad":
        stdev = float((x.max() - x.min()).clamp(min=1e-6)) * 0.1
        result = attr.NoiseTunnel(attr.Saliency(forward)).attribute(
            x, nt_type="smoothgrad", nt_samples=25, stdevs=stdev, target=target)
    elif method == "occlusion":
        window, strides = _occlusion_window(x)
        result = attr.Occlusion(forward).attribute(
            x, sliding_window_shapes=window, strides=strides, target=target, baselines=0.0)
    elif method == "gradcam":
        candidates = conv_nodes(model, graph)
        if node is None:
            if not candidates:
                raise ExplainError("--method gradcam: the model has no convolutional node "
                                   "(Conv2d or Conv1d); use ig, saliency or occlusion")
            node = candidates[-1]
        if node not in model.node_attrs:
            raise ExplainError(f"--node: no node {node!r} in the model"
                               + (f" (convolutional nodes: {', '.join(candidates)})"
                                  if candidates else ""))
        layer = model.get_submodule(model.node_attrs[node])
        cam = attr.LayerGradCam(forward, layer).attribute(x, target=target, relu_attributions=True)
        size = tuple(x.shape[2:])
        result = attr.LayerAttribution.interpolate(cam, size, interpolate_mode="bilinear") \
            if len(size) == 2 else attr.LayerAttribution.interpolate(cam, size)
        used_node = node
    else:  # shap
        rand = train_inputs[torch.randperm(len(train_inputs))[:20]].float() \
            if train_inputs is not None else torch.randn((20, *x.shape[1:]))
        baselines = torch.cat([torch.zeros_like(x), rand.to(x.device)])
        result = attr.GradientShap(forward).attribute(x, baselines=baselines, target=target,
                                                      n_samples=32, stdevs=0.0)
    values = result.detach().cpu().numpy()[0]
    return {"method": method, "target": target, "node": used_node,
            "output": out[0].cpu().numpy(), "attribution": values,
            "baseline": baseline if method == "ig" else None}


def _occlusion_window(x) -> tuple[tuple, tuple]:
    """(window, strides): images a 3×3 patch of every channel moved a pixel at a time,
    sequences 3 steps of every feature moved a step at a time, tabular data one feature."""
    shape = tuple(int(s) for s in x.shape[1:])
    if len(shape) == 3:
        return (shape[0], min(3, shape[1]), min(3, shape[2])), (shape[0], 1, 1)
    if len(shape) == 2:
        return (min(3, shape[0]), shape[1]), (1, shape[1])
    return (1,) * len(shape), (1,) * len(shape)


# -- the picture --------------------------------------------------------------------------------
def _colormap(v: np.ndarray) -> np.ndarray:
    """Diverging blue-white-red for values in -1..1, as (..., 3) uint8."""
    v = np.clip(v, -1, 1)[..., None]
    white = np.array([255, 255, 255], dtype=np.float64)
    red, blue = np.array([214, 39, 40.0]), np.array([31, 119, 180.0])
    rgb = np.where(v >= 0, white + (red - white) * v, white + (blue - white) * -v)
    return rgb.astype(np.uint8)


def _scaled(a: np.ndarray) -> np.ndarray:
    peak = float(np.abs(a).max())
    return a / peak if peak > 0 else a


def render(sample: np.ndarray, attribution: np.ndarray, scale: int = 16) -> np.ndarray:
    """The picture of an attribution as an RGB uint8 array: for an image (C, H, W) the input
    in grey beside its heat map (red: for the target, blue: against); for a sequence (T, F)
    one strip per feature, a cell per step; for tabular data (F,) one bar per feature."""
    a = np.asarray(attribution, dtype=np.float64)
    if a.ndim == 3:
        heat = _colormap(_scaled(a.sum(axis=0)))
        img = np.asarray(sample, dtype=np.float64).mean(axis=0)
        span = img.max() - img.min()
        grey = ((img - img.min()) / span if span > 0 else img * 0) * 255
        grey = np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)
        gap = np.full((img.shape[0], 1, 3), 255, dtype=np.uint8)
        pic = np.concatenate([grey, gap, heat], axis=1)
        return np.kron(pic, np.ones((scale, scale, 1), dtype=np.uint8))
    if a.ndim == 2:  # (T, F): rows are features, columns steps
        pic = _colormap(_scaled(a.T))
        return np.kron(pic, np.ones((scale, scale, 1), dtype=np.uint8))
    values = _scaled(a.reshape(-1))
    width, bar, height = 24, 16, 2 * 64 + 1
    pic = np.full((height, width * len(values), 3), 255, dtype=np.uint8)
    pic[64, :] = 180  # the zero line
    for i, v in enumerate(values):
        top = int(round(64 - 64 * max(v, 0)))
        bottom = int(round(64 - 64 * min(v, 0)))
        color = _colormap(np.array(1.0 if v >= 0 else -1.0))
        pic[top:bottom + 1, i * width + 4:i * width + 4 + bar] = color
    return pic


def save_png(path, picture: np.ndarray) -> None:
    import io

    from PIL import Image

    from .project import atomic_write

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    atomic_write(path, buffer.getvalue())


ATTENTION_TYPES = ("MultiheadAttention", "TransformerEncoderLayer")


def attention_module(module):
    """The ``nn.MultiheadAttention`` of an attention node's module (itself, or a
    TransformerEncoderLayer's ``self_attn``); None for other modules."""
    from torch import nn

    attn = module if isinstance(module, nn.MultiheadAttention) else \
        getattr(module, "self_attn", None)
    return attn if isinstance(attn, nn.MultiheadAttention) else None


def attention_maps(model, inputs: tuple, nodes) -> dict:
    """The attention weights of ``nodes`` (attention layers of the compiled ``model``) for one
    forward pass on ``inputs``: ``{node: (batch, heads, queries, keys)}`` as numpy arrays, each
    row summing to 1. The layers are asked for their weights through hooks on the model's own
    call (which skips computing them); gradients stay on for that call, so that a
    TransformerEncoderLayer takes its plain path through ``self_attn`` and not its fused
    inference kernel. The model's mode is the caller's to set."""
    import torch

    maps: dict = {}
    handles = []

    def ask_for_weights(_module, args, kwargs):
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def keeper(node):
        def keep(_module, _args, _kwargs, out):
            if isinstance(out, tuple) and len(out) > 1 and out[1] is not None:
                maps[node] = out[1].detach().float().cpu().numpy()
        return keep

    for node in nodes:
        attn = attention_module(model.get_submodule(model.node_attrs[node]))
        if attn is None:
            continue
        handles.append(attn.register_forward_pre_hook(ask_for_weights, with_kwargs=True))
        handles.append(attn.register_forward_hook(keeper(node), with_kwargs=True))
    try:
        with torch.enable_grad():
            model(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return maps

