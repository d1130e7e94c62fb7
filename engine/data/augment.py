"""Image augmentation: the ``dataset.augment`` list of a project, applied to batches on the device.

Each entry names a transform after torchvision's ``transforms.v2`` and takes the same arguments::

    "augment": [{"type": "RandomCrop", "padding": 2},
                {"type": "RandomHorizontalFlip", "p": 0.5},
                {"type": "RandomRotation", "degrees": 10},
                {"type": "ColorJitter", "brightness": 0.2, "contrast": 0.2},
                {"type": "GaussianNoise", "sigma": 0.05},
                {"type": "Normalize", "mean": "auto", "std": "auto"}]

The random transforms run on training batches only, batched on the training device, with one draw
per sample from torch's generator (so a seeded run repeats). ``Normalize`` is not random: it runs
first, wherever it stands in the list, on every split (training, validation, the probes' samples),
and ``"auto"`` takes the per-channel mean and standard deviation of the training split. torchvision itself is not used: its wheels do
not import beside every torch build, and its v2 transforms draw one set of parameters per call,
not per sample of a batch; these are the same operations written for a batch ``(B, C, H, W)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from engine.errors import DataError

# type -> {argument: default}; REQUIRED arguments have no default
REQUIRED = object()
TRANSFORMS: dict[str, dict[str, Any]] = {
    "RandomCrop": {"padding": 2, "padding_mode": "constant"},
    "RandomHorizontalFlip": {"p": 0.5},
    "RandomVerticalFlip": {"p": 0.5},
    "RandomRotation": {"degrees": 10.0},
    "ColorJitter": {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0},
    "GaussianNoise": {"sigma": 0.1},
    "Normalize": {"mean": "auto", "std": "auto"},
}
DOCS = {
    "RandomCrop": "pad every side by `padding` pixels, then crop back to the size at a random "
                  "offset (a shift of up to `padding` pixels); padding_mode constant or reflect",
    "RandomHorizontalFlip": "mirror left-right with probability p",
    "RandomVerticalFlip": "mirror top-bottom with probability p",
    "RandomRotation": "rotate by a random angle in [-degrees, degrees]",
    "ColorJitter": "scale brightness, contrast and saturation by random factors in [1-v, 1+v]",
    "GaussianNoise": "add noise of standard deviation sigma",
    "Normalize": "(x - mean) / std per channel, on every split; 'auto' computes them from the "
                 "training split",
}
STATS_SAMPLES = 20_000  # samples read to compute 'auto' statistics of a streamed set


def _number(where: str, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(f"{where}: must be a number; got {value!r}")
    if not lo <= value <= hi:
        raise DataError(f"{where}: must be between {lo:g} and {hi:g}; got {value!r}")
    return float(value)


def _stat(where: str, value):
    """'auto', a number, or a list of per-channel numbers."""
    if value == "auto":
        return "auto"
    if isinstance(value, (list, tuple)) and value:
        return [_number(f"{where}[{i}]", v, -1e6, 1e6) for i, v in enumerate(value)]
    return [_number(where, value, -1e6, 1e6)]


def _pixels(where: str, value) -> int:
    number = _number(where, value, 0, 64)
    if not number.is_integer():
        raise DataError(f"{where}: must be a whole number of pixels; got {value!r}")
    return int(number)


def _mode(where: str, value) -> str:
    if value not in ("constant", "reflect"):
        raise DataError(f"{where}: must be 'constant' or 'reflect'; got {value!r}")
    return value


def _unit(where: str, value) -> float:
    return _number(where, value, 0.0, 1.0)


_CHECKS = {"padding": _pixels, "padding_mode": _mode, "p": _unit, "brightness": _unit,
           "contrast": _unit, "saturation": _unit, "mean": _stat, "std": _stat,
           "degrees": lambda w, v: _number(w, v, 0.0, 180.0),
           "sigma": lambda w, v: _number(w, v, 0.0, 10.0)}


@dataclass
class Step:
    type: str
    args: dict


@dataclass
class Augment:
    """The parsed ``dataset.augment`` list; :meth:`train` and :meth:`always` apply it."""

    steps: list[Step] = field(default_factory=list)
    stats: tuple | None = None  # (mean, std) tensors of Normalize, shaped (1, C, 1, 1)

    @property
    def random_steps(self) -> list[Step]:
        return [s for s in self.steps if s.type != "Normalize"]

    @property
    def normalize(self) -> Step | None:
        return next((s for s in self.steps if s.type == "Normalize"), None)

    def __bool__(self) -> bool:
        return bool(self.steps)

    def describe(self) -> str:
        return ", ".join(s.type for s in self.steps) or "none"

    # -- applying -------------------------------------------------------------------------
    def train_random(self, x):
        """The random transforms of a training batch (already normalized)."""
        for step in self.random_steps:
            x = APPLY[step.type](x, **step.args)
        return x

    def always(self, x):
        """Normalize, on every split; the identity without a Normalize step."""
        if self.stats is None:
            return x
        mean, std = self.stats
        return (x - mean.to(x.device, x.dtype)) / std.to(x.device, x.dtype)

    def fit_stats(self, sample) -> None:
        """Resolve Normalize's 'auto' mean/std from ``sample``, a (N, C, ...) float tensor of
        training inputs."""
        import torch

        step = self.normalize
        if step is None:
            return
        channels = int(sample.shape[1])
        dims = [0, *range(2, sample.dim())]
        values = []
        for key in ("mean", "std"):
            given = step.args[key]
            if given == "auto":
                stat = sample.float().mean(dim=dims) if key == "mean" else \
                    sample.float().std(dim=dims).clamp_min(1e-6)
            else:
                if len(given) not in (1, channels):
                    raise DataError(f"dataset.augment: Normalize.{key} has {len(given)} values "
                                    f"for {channels} channel(s)")
                stat = torch.tensor(given, dtype=torch.float32).expand(channels).clone()
                if key == "std" and bool((stat <= 0).any()):
                    raise DataError("dataset.augment: Normalize.std must be above 0")
            values.append(stat.reshape(1, channels, *([1] * (sample.dim() - 2))).cpu())
        self.stats = tuple(values)

    def summary(self) -> list[dict]:
        """The steps with resolved statistics, for the Data tab and the run's log."""
        rows = []
        for step in self.steps:
            args = dict(step.args)
            if step.type == "Normalize" and self.stats is not None:
                args = {"mean": [round(v, 4) for v in self.stats[0].flatten().tolist()],
                        "std": [round(v, 4) for v in self.stats[1].flatten().tolist()]}
            rows.append({"type": step.type, **args})
        return rows


def parse_augment(value, sample_shape: tuple | None = None) -> Augment:
    """Check a ``dataset.augment`` list; ``sample_shape`` (C, H, W) checks that it is an image."""
    if value is None:
        return Augment()
    if not isinstance(value, list):
        raise DataError(f"dataset.augment: must be a list of transforms; got {value!r}")
    steps = []
    for i, entry in enumerate(value):
        where = f"dataset.augment[{i}]"
        if not isinstance(entry, dict) or "type" not in entry:
            raise DataError(f"{where}: must be an object with a 'type'; got {entry!r}")
        kind = entry["type"]
        if kind not in TRANSFORMS:
            raise DataError(f"{where}.type: unknown transform {kind!r}; known: "
                            f"{', '.join(TRANSFORMS)}")
        defaults = TRANSFORMS[kind]
        unknown = [k for k in entry if k != "type" and k not in defaults]
        if unknown:
            raise DataError(f"{where}.{unknown[0]}: not an argument of {kind} (it takes "
                            f"{', '.join(defaults)})")
        args = {k: _CHECKS[k](f"{where}.{k}", entry.get(k, d)) for k, d in defaults.items()}
        steps.append(Step(kind, args))
    if sum(s.type == "Normalize" for s in steps) > 1:
        raise DataError("dataset.augment: Normalize may appear once")
    if steps and sample_shape is not None and len(sample_shape) != 3:
        shown = "×".join(map(str, sample_shape)) or "a scalar"
        needs_image = [s.type for s in steps if s.type not in ("GaussianNoise", "Normalize")]
        if needs_image:
            raise DataError(f"dataset.augment: {needs_image[0]} works on images (channels × "
                            f"height × width); this dataset's samples are {shown}")
    return Augment(steps)


# -- the batched transforms: x is (B, C, H, W) float on any device ----------------------------

def _per_sample(x, p: float):
    import torch

    return torch.rand(x.shape[0], device=x.device) < p


def random_crop(x, padding: int, padding_mode: str):
    import torch
    import torch.nn.functional as F

    if padding == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4, mode=padding_mode)
    dy = torch.randint(0, 2 * padding + 1, (b,), device=x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]  # (B, H, 1)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def horizontal_flip(x, p: float):
    import torch

    return torch.where(_per_sample(x, p)[:, None, None, None], x.flip(-1), x)


def vertical_flip(x, p: float):
    import torch

    return torch.where(_per_sample(x, p)[:, None, None, None], x.flip(-2), x)


def rotation(x, degrees: float):
    import torch
    import torch.nn.functional as F

    if degrees == 0:
        return x
    b = x.shape[0]
    angle = (torch.rand(b, device=x.device) * 2 - 1) * math.radians(degrees)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _factor(x, v: float):
    import torch

    return (1 + (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 2 - 1) * v)


def color_jitter(x, brightness: float, contrast: float, saturation: float):
    if brightness:
        x = x * _factor(x, brightness)
    if contrast:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = mean + (x - mean) * _factor(x, contrast)
    if saturation and x.shape[1] == 3:
        gray = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]).expand_as(x)
        x = gray + (x - gray) * _factor(x, saturation)
    return x


def gaussian_noise(x, sigma: float):
    import torch

    return x + sigma * torch.randn_like(x)


APPLY = {"RandomCrop": random_crop, "RandomHorizontalFlip": horizontal_flip,
         "RandomVerticalFlip": vertical_flip, "RandomRotation": rotation,
         "ColorJitter": color_jitter, "GaussianNoise": gaussian_noise}
