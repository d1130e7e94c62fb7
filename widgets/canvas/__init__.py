"""The node-graph canvas: a scene that mirrors an engine graph and a view to navigate it."""
from .scene import CanvasScene
from .view import CanvasView

__all__ = ["CanvasScene", "CanvasView"]
