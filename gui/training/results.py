"""After training: save the weights beside the project file, and try the model on a sample.

``<stem>.weights.pt`` holds ``{model name: state_dict}``, as ``main.py train`` writes
``DIR/weights.pt``. A trial picks a validation sample and shows the model's answer: an image and
the predicted class, a point and its class, a value against the truth, an input beside its
reconstruction, or a freshly generated sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

SUFFIX = ".layerlab.json"


def weights_path(project_path: Path) -> Path:
    """``digits.layerlab.json`` -> ``digits.weights.pt`` in the same folder."""
    name = project_path.name
    stem = name[:-len(SUFFIX)] if name.endswith(SUFFIX) else project_path.stem
    return project_path.with_name(f"{stem}.weights.pt")


@dataclass
class Trial:
    """One sample and what the model made of it."""

    text: str
    images: np.ndarray | None = None  # (n, h, w) to show side by side


def try_sample(trainer, rng: np.random.Generator) -> Trial:
    """Run the trained model on a random validation sample (see the module doc)."""
    import torch

    task = trainer.task
    if task.name == "gan":
        sample = task.sample(1, torch.Generator().manual_seed(int(rng.integers(1 << 31))))
        return _shown(sample.float().cpu().numpy(), "A new sample from the generator")
    split = "validation" if task.has_val else "training"
    i = int(rng.integers(task.val_size if task.has_val else task.train_size))
    fields = trainer.dataset.item(i, "val" if task.has_val else "train")
    inputs = tuple(fields[k] for k in task.keys)
    with torch.no_grad():
        out = trainer.predict(*inputs).float()
    x = inputs[0].float().cpu().numpy()
    if task.name == "classification":
        return _classified(task, out, x, trainer.dataset.class_names, int(fields["y"][0]),
                           split, i)
    if task.name in ("reconstruction", "vae"):
        both = np.concatenate([x, out.cpu().numpy()])
        return _shown(both, f"{split} sample {i}: input (left) and reconstruction (right)")
    truth = task.make_target(fields[task.target_key])[0]
    predicted = ", ".join(f"{v:.4g}" for v in out[0].flatten().tolist()[:6])
    actual = ", ".join(f"{v:.4g}" for v in truth.flatten().tolist()[:6])
    where = f" at x = {_point(x[0])}" if x[0].size <= 3 else ""
    return Trial(f"{split} sample {i}{where}: predicted {predicted}; true {actual}")


def _classified(task, out, x, names, truth: int, split: str, i: int) -> Trial:
    import torch

    predicted = int(task.predict(out)[0])
    if task.binary:
        p1 = torch.sigmoid(out[0, 0]) if task.threshold == 0.0 else out[0, 0]
        confidence = float(p1 if predicted == 1 else 1 - p1)
    else:
        confidence = float(out.softmax(dim=1).max())
    name = (lambda k: names[k] if names and k < len(names) else str(k))
    verdict = "✓" if predicted == truth else "✗"
    text = (f"{verdict} predicted {name(predicted)} ({min(max(confidence, 0.0), 1.0):.0%}); "
            f"true {name(truth)}  —  {split} sample {i}")
    if x[0].size <= 3:
        return Trial(f"point {_point(x[0])}: {text}")
    return _shown(x, text)


def _shown(batch: np.ndarray, text: str) -> Trial:
    from widgets.plots.samples import as_images

    images = as_images(batch)
    return Trial(text, images)


def _point(x: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.3g}" for v in np.ravel(x)) + ")"


class TrialCard(QWidget):
    """A sample's picture (if it is an image) and the model's answer."""

    def __init__(self, parent: QWidget | None = None):
        import pyqtgraph as pg

        from widgets.plots.style import image_plot

        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.plot, self.image = image_plot()
        self.graphics.addItem(self.plot)
        self.graphics.setFixedHeight(120)
        self.graphics.hide()
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.graphics)
        box.addWidget(self.label)
        self.trial: Trial | None = None
        self.set_dark(False)

    def show_trial(self, trial: Trial) -> None:
        from widgets.plots.samples import image_levels
        from widgets.plots.style import set_image, tile

        self.trial = trial
        self.label.setText(trial.text)
        if trial.images is None:
            self.graphics.hide()
            return
        self.graphics.show()
        set_image(self.plot, self.image, tile(trial.images, cols=len(trial.images), gap=1),
                  autoLevels=False, levels=image_levels(trial.images))
        h, w = trial.images.shape[1:3]
        self.plot.getViewBox().setRange(xRange=(0, len(trial.images) * (w + 1)),
                                        yRange=(0, h), padding=0.02)

    def set_dark(self, dark: bool) -> None:
        import pyqtgraph as pg

        from widgets.plots.style import plot_theme, style_plot

        theme = plot_theme(dark)
        self.graphics.setBackground(theme.background)
        style_plot(self.plot, theme)
        self.image.setColorMap(pg.colormap.get("CET-L1"))
