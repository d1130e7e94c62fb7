"""Forecasting: a sequence in, its next value out (regression on windows of a series)."""
from __future__ import annotations

from engine.training.tasks.regression import RegressionTask


class ForecastingTask(RegressionTask):
    """Predict the value that follows each input window."""

    name = "forecasting"
