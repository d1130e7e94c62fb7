"""Benchmark: a 5,000-node graph in the window, and importing a ResNet-50.

    python tests/bench/bench_large_graph.py [--nodes 5000] [--frames 120]
    python -m pytest tests/bench/bench_large_graph.py -s

- open: a generated 5,000-node project (residual MLP blocks, laid out) opened in a shown window,
  up to the canvas, summary and status bar drawn. Target <= 2 s.
- pan and zoom: frames of the canvas scrolled by 40 px (alternately right/down and back) and
  zoomed in and out by the view's own steps, each followed by the event loop running until
  idle (Qt repaints what changed, as on screen); per-frame times, p99. Target <= 16 ms. Before
  each series the view is moved there and drawn (the step to zoom to fit is timed and printed
  on its own). Measured at the zoom a person works at (100 %), where a few dozen nodes are on
  screen, and at zoom to fit, for 5,000 nodes the smallest zoom (20 %), with about 350 cards
  and 540 wires on screen.
- drag: a node with 10 wires (a Concat fed by 10 layers) dragged with real mouse events on the
  viewport, each move followed by the event loop until idle; per-move times, p99.
  Target <= 16 ms.
- import: a ResNet-50 written out as torchvision's (torchvision does not install beside this
  machine's torch build: `torchvision::nms` does not exist), traced, mapped, grouped into
  nested blocks and checked against the module, from ``import_module`` to the returned project.
  Target <= 5 s.

There is no PyTorch reference for a window; the figures are printed against their targets.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench_gui import big_project, isolated_env  # noqa: E402

TARGET_OPEN_S, TARGET_FRAME_MS, TARGET_IMPORT_S = 2.0, 16.0, 5.0


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[-1] if len(values) > 1 else values[0]


def with_fan_in(path: Path, n_nodes: int) -> Path:
    """The big project plus a Concat fed by ten Linear layers off its Input."""
    from engine.project import load_project, save_project

    big_project(path, n_nodes - 12)
    project = load_project(path)
    g = project.models["model"]
    g.add_node("Concat", "fan", None, (0.0, -400.0))
    for i in range(10):
        g.add_node("Linear", f"spoke{i}", {"out_features": 4}, (-300.0 + 60 * i, -700.0))
        g.connect("x", f"spoke{i}")
        g.connect(f"spoke{i}", "fan")
    g.add_node("Output", "fan_out", None, (300.0, -400.0))
    g.connect("fan", "fan_out")
    save_project(project, path)
    return path


def window_figures(path: Path, frames: int) -> dict:
    from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from gui.app import make_app
    from gui.main_window import MainWindow
    from gui.settings import Settings

    app = make_app()
    window = MainWindow(Settings(), theme="light", interactive=False)
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    t = time.perf_counter()
    assert window.open_path(path)
    app.processEvents()
    canvas = window.current_canvas()
    view = canvas.view
    view.viewport().repaint()
    open_s = time.perf_counter() - t
    n = len(canvas.graph)

    def frame(action) -> float:
        """The event, then the event loop until it is idle: Qt repaints what changed (the
        moved node and its wires; the strip a scroll uncovers; everything after a zoom)."""
        start = time.perf_counter()
        action()
        app.processEvents()
        return (time.perf_counter() - start) * 1000

    def pan_zoom() -> list[float]:
        times = []
        bar_x, bar_y = view.horizontalScrollBar(), view.verticalScrollBar()
        for k in range(frames):
            step = 40 if (k // 10) % 2 == 0 else -40
            if k % 20 == 19:
                times.append(frame(view.zoom_in if (k // 20) % 2 == 0 else view.zoom_out))
            elif k % 2:
                times.append(frame(lambda: bar_x.setValue(bar_x.value() + step)))
            else:
                times.append(frame(lambda: bar_y.setValue(bar_y.value() + step)))
        return times

    def settled(action) -> float:
        """The action, then the event loop and the repaint it asked for (the update it posts
        is drawn only at the next pass of the loop, which would be the next frame's)."""
        start = time.perf_counter()
        action()
        app.processEvents()
        viewport.repaint()
        app.processEvents()
        return (time.perf_counter() - start) * 1000

    viewport = view.viewport()
    settled(lambda: (view.resetTransform(),  # 100 %: what a person edits at
                     view.centerOn(canvas.scene.node_item("fan").sceneBoundingRect().center())))
    near = pan_zoom()
    fit_ms = settled(window.zoom_to_fit)  # drawing the far faces of hundreds of cards at once
    whole = pan_zoom()

    # drag the Concat (10 wires in, 1 out) by its header with real mouse events
    item = canvas.scene.node_item("fan")
    settled(lambda: (view.resetTransform(), view.centerOn(item.sceneBoundingRect().center())))
    grip = view.mapFromScene(item.sceneBoundingRect().topLeft() + QPointF(60, 12))
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton

    def send(kind, pos: QPoint, button, buttons) -> None:
        QApplication.sendEvent(viewport, QMouseEvent(kind, QPointF(pos), QPointF(
            viewport.mapToGlobal(pos)), button, buttons, Qt.KeyboardModifier.NoModifier))

    send(QEvent.Type.MouseButtonPress, grip, left, left)
    drags = []
    for k in range(1, frames + 1):
        offset = QPoint(3 * (k % 40) - 60, 2 * (k % 30) - 30)
        drags.append(frame(lambda: send(QEvent.Type.MouseMove, grip + offset, none, left)))
    send(QEvent.Type.MouseButtonRelease, grip, left, none)
    app.processEvents()
    moved = canvas.graph.node("fan").pos
    window.close()
    return {"nodes": n, "open_s": open_s, "near": near, "whole": whole, "drag": drags,
            "moved_to": moved, "fit_ms": fit_ms}


def resnet50():
    """torchvision's resnet50 architecture (Bottleneck blocks 3-4-6-3), written out."""
    import torch.nn as nn

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, inplanes, planes, stride=1, downsample=None):
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(planes * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            identity = x
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            if self.downsample is not None:
                identity = self.downsample(x)
            out += identity
            return self.relu(out)

    class ResNet(nn.Module):
        def __init__(self, layers=(3, 4, 6, 3), num_classes=1000):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(64, layers[0])
            self.layer2 = self._make_layer(128, layers[1], 2)
            self.layer3 = self._make_layer(256, layers[2], 2)
            self.layer4 = self._make_layer(512, layers[3], 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512 * 4, num_classes)

        def _make_layer(self, planes, blocks, stride=1):
            downsample = None
            if stride != 1 or self.inplanes != planes * 4:
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * 4, 1, stride,
                                                     bias=False), nn.BatchNorm2d(planes * 4))
            layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes * 4
            layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(__import__("torch").flatten(self.avgpool(x), 1))

    return ResNet()


def import_seconds() -> tuple[float, dict]:
    from engine.importer import import_module

    model = resnet50().eval()
    t = time.perf_counter()
    project, _ = import_module(model, (3, 64, 64))
    seconds = time.perf_counter() - t
    graph = project.models["model"]
    flat = sum(len(b.graph) for b in project.blocks.values())
    return seconds, {"top_nodes": len(graph), "definitions": len(project.blocks),
                     "params": sum(p.numel() for p in model.parameters()), "inner_nodes": flat}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--only", default="window,import")
    args = parser.parse_args(argv)
    result: dict = {}
    if "window" in args.only:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            os.environ.update(isolated_env(tmp))
            path = with_fan_in(tmp / "large.layerlab.json", args.nodes)
            fig = window_figures(path, args.frames)
        print(f"\na {fig['nodes']}-node graph in the window:")
        print(f"  open                         {fig['open_s']:7.3f} s   (target <= "
              f"{TARGET_OPEN_S} s)")
        print(f"  zoom to fit, the step itself {fig['fit_ms']:6.1f} ms (from 100 %; no target)")
        for key, what in (("near", "pan/zoom at 100 %"), ("whole", "pan/zoom at zoom to fit"),
                          ("drag", "drag a node with 10 wires")):
            values = fig[key]
            print(f"  {what:28s} p99 {p99(values):6.1f} ms, median "
                  f"{statistics.median(values):5.1f} ms, max {max(values):6.1f} ms "
                  f"(target p99 <= {TARGET_FRAME_MS:.0f} ms)")
        result.update(open_s=fig["open_s"], near_p99=p99(fig["near"]),
                      whole_p99=p99(fig["whole"]), drag_p99=p99(fig["drag"]))
    if "import" in args.only:
        seconds, info = import_seconds()
        print(f"  import a ResNet-50 ({info['params']:,} parameters) {seconds:6.2f} s   (target "
              f"<= {TARGET_IMPORT_S} s): {info['top_nodes']} nodes on top, "
              f"{info['definitions']} block definitions")
        result["import_s"] = seconds
    return result


def test_bench_large_graph():
    result = main(["--frames", "60"])
    assert result["open_s"] <= TARGET_OPEN_S
    assert result["near_p99"] <= TARGET_FRAME_MS and result["drag_p99"] <= TARGET_FRAME_MS
    assert result["import_s"] <= TARGET_IMPORT_S


if __name__ == "__main__":
    main()
