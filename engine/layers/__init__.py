"""The layer catalog: every layer type Layerlab offers, one :class:`LayerSpec` each."""
from __future__ import annotations

from ..errors import UnknownLayerError
from . import (activations, attention, block, conv, core, frames, graph, merge, opaque,
               recurrent)
from .spec import REQUIRED, InPort, LayerSpec, ModuleCall, Param, ShapeError, Stats, fmt_shape

CATEGORIES = ("I/O", "Core", "Activations", "Convolution", "Pooling", "Normalization",
              "Recurrent", "Attention", "Merge", "Generative", "Graph")

CATALOG: dict[str, LayerSpec] = {
    spec.type: spec
    for module in (core, activations, conv, recurrent, frames, attention, merge, graph, opaque,
                   block)
    for spec in module.SPECS
}


def get_spec(type_name: str) -> LayerSpec:
    """The spec of ``type_name``; :class:`UnknownLayerError` with a suggestion otherwise."""
    try:
        return CATALOG[type_name]
    except (KeyError, TypeError):
        import difflib

        close = difflib.get_close_matches(str(type_name), CATALOG, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UnknownLayerError(f"unknown layer type '{type_name}'{hint}") from None


def by_category() -> dict[str, list[LayerSpec]]:
    groups: dict[str, list[LayerSpec]] = {c: [] for c in CATEGORIES}
    for spec in CATALOG.values():
        groups[spec.category].append(spec)
    return groups


__all__ = ["CATALOG", "CATEGORIES", "get_spec", "by_category", "LayerSpec", "Param", "InPort",
           "ModuleCall", "ShapeError", "Stats", "REQUIRED", "fmt_shape"]
