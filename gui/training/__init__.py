"""Training in the window: the training thread, the controller and its coalescing timer, the
live views and the CPU budget that paces their drawing, the canvas overlays, the data and
settings panel's undo command, and the hook-up.

``install_training(window)`` adds the Training and Live views docks to a ``MainWindow`` and
returns the :class:`~gui.training.install.TrainingUi`; ``start_cli_training(window, args)``
serves ``--train``. (Imported on call: ``gui.training_panel`` imports this package's modules.)
"""
from __future__ import annotations


def install_training(window):
    from gui.training.install import install_training as install

    return install(window)


def start_cli_training(window, args=None):
    from gui.training.install import start_cli_training as start

    return start(window, args)


__all__ = ["install_training", "start_cli_training"]
