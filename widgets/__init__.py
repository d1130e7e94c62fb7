"""Reusable Qt views with no knowledge of training: canvas, palette, inspector, plots."""
