"""Import: an existing PyTorch model becomes a Layerlab graph.

Public API (File -> Import model in the window calls the same function)::

    import_module(source, example_input_shape=None, weights=None) -> (Project, state_dict)
    reopen_warnings(project) -> [str]   what a saved copy needs (importable classes) or loses

``source`` is ``"path/to/file.py:ClassName"``, ``"package.module:ClassName"``, an
``nn.Module`` or ``"path/to/model.onnx"`` (converted by :mod:`engine.importer.onnx_convert`);
see :mod:`engine.importer.fx_import` for what maps to which catalog layer.
"""
from __future__ import annotations

from .fx_import import import_module, load_source, reopen_warnings

__all__ = ["import_module", "load_source", "reopen_warnings"]
