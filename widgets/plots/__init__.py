"""Live plot views built on pyqtgraph; they take small numpy arrays and know nothing of training.

``CurvesView`` (loss and metrics), ``ActivationsView``, ``GradientsView``, ``HistogramsView``,
``SamplesView``, ``BoundaryView``, ``ConfusionView``, ``ProgressView`` and ``DatasetPreview``.
Every view keeps its pyqtgraph items and updates them in place; ``set_dark(bool)`` restyles it.

Names are imported on first use, so that importing one light module (``progress``,
``verdicts``) does not load pyqtgraph while the window starts.
"""
from __future__ import annotations

import importlib

_WHERE = {
    "ActivationsView": "activations", "BoundaryView": "boundary", "ConfusionView": "confusion",
    "CurvesView": "curves", "GradientsView": "gradients", "HistogramsView": "histograms",
    "DatasetPreview": "preview", "ProgressView": "progress", "SamplesView": "samples",
    "EXPLODING": "verdicts", "VANISHING": "verdicts", "gradient_verdict": "verdicts",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"widgets.plots.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'widgets.plots' has no attribute {name!r}")
