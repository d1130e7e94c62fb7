"""The live plot views on synthetic data: each view's pyqtgraph items hold what it was fed."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PySide6.QtGui import QColor

from widgets.plots import (ActivationsView, BoundaryView, ConfusionView, CurvesView,
                           DatasetPreview, GradientsView, HistogramsView, ProgressView,
                           SamplesView, gradient_verdict)
from widgets.plots.boundary import boundary_rgb, class_color, confidence
from widgets.plots.curves import ema
from widgets.plots.gradients import EXPLODING, FLOOR, VANISHING
from widgets.plots.histograms import ROWS, rebin
from widgets.plots.preview import preview_kind
from widgets.plots.progress import format_duration, format_rate
from widgets.plots.style import PLOT_DARK, PLOT_LIGHT, grid_columns, tile

RNG = np.random.default_rng(0)


@pytest.fixture
def show(qtbot):
    def shown(view):
        qtbot.addWidget(view)
        view.resize(420, 320)
        view.show()
        qtbot.waitExposed(view)
        return view
    return shown


# -- helpers ---------------------------------------------------------------------------------
def test_ema_matches_the_recurrence():
    x = RNG.random(50)
    s = ema(x, 0.8)
    expected, acc = [], x[0]
    for v in x:
        acc = 0.8 * acc + 0.2 * v
        expected.append(acc)
    assert np.allclose(s, expected)
    assert np.allclose(ema(x[10:], 0.8, start=s[9]), s[10:])  # incremental = all at once
    assert np.allclose(ema(x, 0.0), x)


def test_tile_puts_images_in_a_grid_with_gaps():
    images = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    grid = tile(images, gap=1)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2)  # 2 rows, 3 columns of 2x3 tiles
    assert np.array_equal(grid[0:2, 4:7], images[1])
    assert np.isnan(grid[2, 0])  # the gap


def test_rebin_keeps_every_column_shape_on_a_common_axis():
    a = (np.array([0, 10, 0, 0]), 0.0, 4.0)  # all mass in [1, 2)
    b = (np.array([5, 5]), -4.0, 0.0)
    image, lo, hi = rebin([a, b], rows=8)
    assert (lo, hi) == (-4.0, 4.0)
    assert image.shape == (8, 2)
    assert image[:, 0].argmax() == 5  # [1, 2) is the sixth of eight rows over [-4, 4]
    assert image[4:, 1].max() == 0 and image[:4, 1].min() > 0
    assert image.max() == pytest.approx(1.0)


def test_gradient_verdicts():
    assert gradient_verdict(VANISHING / 10) == "vanishing"
    assert gradient_verdict(EXPLODING * 10) == "exploding"
    assert gradient_verdict(float("nan")) == "exploding"
    assert gradient_verdict(0.1) is None


def test_confidence_and_boundary_colours():
    assert confidence(np.array([0.5, 1.0, 0.0]), 2).tolist() == [0.0, 1.0, 1.0]
    assert confidence(np.array([1 / 3, 1.0]), 3).tolist() == pytest.approx([0.0, 1.0])
    rgb = boundary_rgb(np.array([[0, 1]]), np.array([[1.0, 0.5]]), 2, "#ffffff")
    assert rgb.shape == (1, 2, 3) and rgb.dtype == np.uint8
    sure = np.array(QColor(class_color(0)).getRgb()[:3])
    assert np.abs(rgb[0, 0].astype(int) - sure).sum() < np.abs(rgb[0, 1].astype(int) - sure).sum()


def test_formats():
    assert format_duration(7) == "0:07"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(None) == "–"
    assert format_rate(2310.4) == "2.3k samples/s"
    assert format_rate(310.4) == "310 samples/s"
    assert format_rate(45_000) == "45k samples/s"


# -- views -----------------------------------------------------------------------------------
def test_curves_per_step_per_epoch_smoothing_log_and_earlier_runs(show, qtbot):
    view = show(CurvesView())
    view.begin_run(steps_per_epoch=10, epochs=5)
    steps = np.arange(2, 42, 2)
    loss = np.linspace(2.0, 0.5, len(steps))
    view.add_steps(steps, {"loss": loss})
    x, y = view.data("loss")
    assert np.allclose(x, steps / 10)
    assert np.allclose(y, ema(loss, view.alpha))
    raw_x, raw_y = view.series["loss"].raw_item.getData()
    assert np.allclose(raw_y, loss)
    view.add_epoch({"epoch": 1, "train_loss": 1.5, "val_loss": 1.6, "val_accuracy": 0.7,
                    "lr": 0.01})
    view.add_epoch({"epoch": 2, "train_loss": 1.0, "val_loss": 1.1, "val_accuracy": 0.8})
    assert view.data("val_loss", per_step=False)[1].tolist() == [1.6, 1.1]
    assert view.series["epoch:val_accuracy"].plot is view.metrics_plot
    assert view.metrics_plot.isVisible()
    assert "epoch:lr" not in view.series
    view.smoothing.setValue(0)
    assert np.allclose(view.data("loss")[1], loss)
    view.log_y.setChecked(True)
    assert view.loss_plot.ctrl.logYCheck.isChecked()
    view.per_step.setChecked(False)
    assert not view.series["loss"].item.isVisible()
    assert view.series["epoch:train_loss"].item.isVisible()
    view.begin_run(steps_per_epoch=10)
    assert len(view.ghosts) == 1 and len(view.ghosts[0]) == 4  # loss, train, val, accuracy
    ghost_y = view.ghosts[0][0].getData()[1]
    assert ghost_y is not None and len(ghost_y) > 0
    assert view.series == {}
    view.add_steps([1], {"loss": [2.0]})
    assert "earlier runs" in view.loss_plot.titleLabel.text  # the faint curves are named


def test_curves_deferred_drawing(show):
    view = show(CurvesView())
    view.begin_run(steps_per_epoch=1)
    view.add_steps([1, 2], {"d_loss": [1.0, 0.9], "g_loss": [0.7, 0.8]}, draw=False)
    assert view.dirty
    assert view.series["d_loss"].item.getData()[0] is None
    view.redraw()
    assert not view.dirty
    assert view.data("g_loss")[0].tolist() == [1.0, 2.0]


def test_gradients_log_scale_thresholds_and_floor(show):
    view = show(GradientsView())
    values = np.array([[1e-3, 0.0], [2e-3, 1e3]])
    view.append([10, 20], ["conv1", "fc"], values)
    curve = view.curves["fc"]
    assert curve.xData.tolist() == [10, 20]
    assert curve.yData.tolist() == [FLOOR, 1e3]  # drawn as log10: -12 and 3
    assert view.plot.ctrl.logYCheck.isChecked()
    positions = sorted(line.value() for line in view._lines)
    assert positions == pytest.approx([math.log10(VANISHING), math.log10(EXPLODING)])
    view.append([30], ["conv1", "fc"], np.array([[5e-3, 1.0]]), draw=False)
    assert len(view.curves["conv1"].xData) == 2
    view.redraw()
    assert len(view.curves["conv1"].xData) == 3
    assert view.latest("fc") == 1.0


def test_histograms_image_over_steps(show):
    view = show(HistogramsView())
    view.set_layer("conv1")
    for step in (10, 20, 30):
        counts, edges = np.histogram(RNG.normal(size=500), 30)
        view.add(step, (counts, edges[0], edges[-1]), (counts, -0.01, 0.01))
    assert view.weights.image.image.shape == (ROWS, 3)
    assert view.grads.image.image.shape == (ROWS, 3)
    rect = view.weights.image.mapRectToParent(view.weights.image.boundingRect())
    assert rect.left() == pytest.approx(10)
    assert rect.width() == pytest.approx(30)  # three columns, ten steps apart
    view.set_layer("fc")
    assert view.weights.columns == [] and not view.has_data


def test_activations_maps_units_sequences_attention(show):
    view = show(ActivationsView())
    view.show_activation("conv1", RNG.random((4, 9, 5, 5)))
    assert view.kind == "maps"
    assert view.image.image.shape == (3 * 5 + 2, 3 * 5 + 2)
    view.show_activation("fc1", RNG.normal(size=(16, 32)))
    assert view.kind == "units" and view.image.image.shape == (16, 32)
    assert view.image.levels[0] < 0  # signed values: a diverging, symmetric scale
    view.show_activation("lstm", RNG.normal(size=(4, 20, 8)), "LSTM")
    assert view.kind == "sequence"
    assert view.curve_plot in view.plots and view.image_plot not in view.plots
    visible = [c for c in view.curves if c.isVisible()]
    assert len(visible) == 8 and len(visible[0].getData()[0]) == 20
    weights = RNG.random((4, 6, 6))
    view.show_activation("attn", weights, kind="attention")
    assert view.image_plot in view.plots and view.image_plot.getAxis("left").labelText == "query"
    assert np.allclose(view.image.image, weights[0])
    assert view.received == 4


def grid_shape(n: int, cols: int, h: int, w: int, gap: int = 1) -> tuple[int, int]:
    rows = -(-n // cols)
    return rows * (h + gap) - gap, cols * (w + gap) - gap


def test_grid_columns_fit_the_area():
    assert grid_columns(64, 8, 8, 200, 200) == 8  # square tiles, square area: 8 × 8
    assert grid_columns(32, 8, 8, 270, 480) == 4  # a tall panel: 4 columns, 8 rows
    assert grid_columns(16, 8, 8, 800, 100) == 8  # a wide strip: 2 rows
    assert grid_columns(10, 17, 8, 240, 250) == 5  # input-over-output pairs: 5 × 2
    assert grid_columns(1, 8, 8, 100, 100) == 1 and grid_columns(9, 8, 8, 0, 0) == 3


def test_samples_side_by_side_pairs_and_points(show, qtbot):
    view = show(SamplesView())
    view.show_probe(samples=RNG.random((16, 1, 8, 8)),
                    reconstructions={"inputs": RNG.random((12, 1, 8, 8)),
                                     "outputs": RNG.random((12, 1, 8, 8))})
    assert view.plots == [view.samples_plot, view.pairs_plot]
    layout = view.graphics.ci.items
    assert layout[view.samples_plot] == [(0, 0)] and layout[view.pairs_plot] == [(0, 1)]
    qtbot.waitUntil(lambda: view.samples_plot.width() > 0)
    assert view.samples_plot.width() == pytest.approx(view.pairs_plot.width(), rel=0.05)
    cols = view.sample_grid.cols
    assert view.samples_image.image.shape == grid_shape(16, cols, 8, 8)
    pairs = view.pair_grid  # 10 pairs at most, each input above its output
    assert pairs.images.shape == (10, 17, 8) and np.isnan(pairs.images[:, 8]).all()
    assert view.pairs_image.image.shape == grid_shape(10, pairs.cols, 17, 8, gap=2)
    real, fake = RNG.normal(size=(50, 2)), RNG.normal(size=(40, 2))
    view.show_probe(samples=fake, real=real)
    assert view.plots == [view.points_plot]
    assert len(view.real.data) == 50 and len(view.fake.data) == 40


def test_boundary_image_and_points(show):
    view = show(BoundaryView())
    x = RNG.normal(size=(200, 2))
    labels = (x[:, 0] > 0).astype(int)
    view.set_points(x, labels, 2)
    xs, ys = np.linspace(-3, 3, 40), np.linspace(-2, 2, 30)
    gx, _ = np.meshgrid(xs, ys)
    view.show_boundary(xs, ys, (gx > 0).astype(int), 1 / (1 + np.exp(-gx)))
    assert view.image.image.shape == (30, 40, 3)
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert rect.left() < -3 < 3 < rect.right() and rect.top() < -2
    assert len(view.points.data) == 200
    view.set_dark(True)  # redrawn on the dark background
    corner = view.image.image[0, 0].astype(int)
    assert corner.sum() < 3 * 200


def test_confusion_matrix_counts_and_shares(show):
    view = show(ConfusionView())
    counts = np.array([[8, 2, 0], [1, 9, 0], [0, 0, 5]])
    view.set_class_names(["circle", "square", "triangle"])
    view.show_matrix(counts)
    assert np.allclose(view.image.image[0], [0.8, 0.2, 0.0])
    assert view.labels.texts() == [str(v) for v in counts.ravel()]
    ticks = view.plot.getAxis("bottom")._tickLevels[0]
    assert [name for _, name in ticks] == ["circle", "square", "triangle"]
    view.show_matrix(np.eye(2, dtype=int) * 3)
    assert view.labels.texts() == ["3", "0", "0", "3"]
    assert view.plot.getViewBox().viewRange()[1] == pytest.approx([-0.04, 2.04])  # framed


def test_progress_text_fits_the_bar(qtbot):
    view = ProgressView()
    qtbot.addWidget(view)
    view.resize(600, 60)
    view.show()
    qtbot.waitExposed(view)
    view.set_progress(3, 15, 60, 345, 2310.0, 12.4)
    assert view.bar.value() == round(1000 * 60 / 345)
    full = "Epoch 3 / 15  ·  step 60 / 345  ·  2.3k samples/s  ·  0:12 left"
    assert view.bar.format() == full and view.bar.toolTip() == full
    view.resize(270, 60)  # the Training dock: shorter, and never wrapped
    qtbot.waitUntil(lambda: view.bar.format() == "Epoch 3/15 · 2.3k samples/s · 0:12 left")
    view.resize(150, 60)
    qtbot.waitUntil(lambda: "samples/s" not in view.bar.format())
    metrics = view.bar.fontMetrics()
    assert metrics.horizontalAdvance(view.bar.format()) < view.bar.width()
    assert "0:12 left" in view.bar.format() and view.bar.toolTip() == full
    view.set_message("Stopped early (no progress)", "Stopped early (no progress)  ·  epoch 9")
    view.resize(130, 60)
    qtbot.waitUntil(lambda: view.bar.format() == "Stopped early (no progress)")


def test_dataset_preview_kinds(show):
    assert preview_kind(np.zeros((5, 2))) == "points"
    assert preview_kind(np.zeros((5, 1, 8, 8))) == "images"
    assert preview_kind(np.zeros((5, 20, 1))) == "sequences"
    assert preview_kind(np.zeros((5, 1))) == "xy"
    view = show(DatasetPreview())
    view.show_data(RNG.normal(size=(100, 2)), RNG.integers(0, 3, 100))
    assert view.plots == [view.xy_plot] and len(view.scatter.data) == 100
    view.show_data(RNG.random((40, 1, 8, 8)), RNG.integers(0, 10, 40))
    assert view.plots == [view.image_plot]
    assert view.image.image.shape == grid_shape(32, view.grid.cols, 8, 8)  # 32 of 40 images
    view.show_data(RNG.random((10, 20, 1)), RNG.random((10, 1)))
    assert sum(line.isVisible() for line in view.lines) == 6


def test_image_grids_take_the_shape_of_their_room(show, qtbot):
    view = show(DatasetPreview())
    view.resize(260, 700)
    view.show_data(RNG.random((40, 1, 8, 8)))
    qtbot.waitUntil(lambda: view.grid.cols == 4)  # tall: 4 columns, 8 rows
    view.resize(900, 220)
    qtbot.waitUntil(lambda: view.grid.cols >= 8)  # wide: 4 rows or fewer
    assert view.image.image.shape == grid_shape(32, view.grid.cols, 8, 8)


def test_dark_theme_restyles_in_place(show):
    view = show(CurvesView())
    view.begin_run(5)
    view.add_steps([1, 2], {"loss": [1.0, 0.5]})
    item = view.series["loss"].item
    view.set_dark(True)
    assert view.theme is PLOT_DARK
    assert view.graphics.backgroundBrush().color() == QColor(PLOT_DARK.background)
    assert view.series["loss"].item is item  # restyled, not re-created
    view.set_dark(False)
    assert view.graphics.backgroundBrush().color() == QColor(PLOT_LIGHT.background)
