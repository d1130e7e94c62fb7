"""Layerlab's engine: graph, layer catalog, shapes, compiler, data, training, export.

Nothing in this package imports Qt; it is fully usable headless.
"""
