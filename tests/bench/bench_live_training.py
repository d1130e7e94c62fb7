"""Live training in the window against the headless trainer: event-loop latency and throughput.

    python tests/bench/bench_live_training.py [--project PATH] [--epochs N] [--rounds R]

Trains the digits CNN example (by default) in the real main window, with the Training and Live
views docks shown. Three window runs per round:

- throughput: the views' tabs are cycled once a second, so every view draws during the run;
- latency: a 5 ms timer measures how late the event loop serves it (the ``--train
  --quit-after`` figure) while the window shows the default views, as someone watching would;
- latency while switching: the same with the tabs cycled (each switch draws a view that was
  hidden, a heavier frame).

In the same process and interleaved with them, the engine's ``Trainer`` trains the same project
headless, as ``main.py train`` does. Prints per round and the medians:

    latency p50 / p99 / max (ms)      targets: p99 <= 16, max <= 100
    steps/s headless, in the window, and their ratio (headless / window)   target <= 1.10

The ratio compares like with like: the headless trainer runs with the torch thread count the
window gives its training thread (all cores but one, so the window keeps a core). The headless
figure with torch's default thread count is printed beside it: on a small machine it depends on
what else runs (two OpenMP threads on two busy cores can be many times slower than one).
Throughput counts the steps of ``fit()`` over its own wall time (FitResult.seconds), so building
the model and loading the data are left out on both sides.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TAB_PERIOD_MS = int(os.environ.get("BENCH_TAB_MS", "1000"))


def headless(project, epochs: int, threads: int) -> float:
    """Steps per second of the engine's Trainer alone (what ``main.py train`` runs)."""
    import torch

    from engine.training import Trainer

    torch.set_num_threads(threads)
    result = Trainer(project, device="cpu", epochs=epochs).fit()
    return result.steps / result.seconds


def in_window(app, path: Path, epochs: int, measure: bool, cycle_tabs: bool
              ) -> tuple[float, dict, int]:
    """Steps per second and the latency summary of training in the main window. The 5 ms
    latency timer is an instrument, not part of the window: throughput is measured in runs
    without it (``measure=False``), latency in runs with it."""
    from PySide6.QtCore import QEventLoop, QTimer

    from gui.document import Document
    from gui.main_window import MainWindow
    from gui.settings import Settings

    window = MainWindow(Settings(), theme="light", interactive=False)
    window.set_document(Document.open(path))
    window.show()
    ui = window.training
    if os.environ.get("BENCH_THREADS"):  # try another thread count in the window
        ui.controller.threads = int(os.environ["BENCH_THREADS"])
    ui.controller.measure_latency = measure
    tabs = ui.views.tabs
    cycle = QTimer()
    cycle.timeout.connect(lambda: _next_tab(tabs))
    done, loop = [], QEventLoop()
    ui.controller.run_finished.connect(lambda r: (done.append(r), loop.quit()))
    ui.controller.run_failed.connect(lambda m, n, d: (done.append(m), loop.quit()))
    QTimer.singleShot(200, lambda: (ui.start(epochs=epochs),
                                    cycle.start(TAB_PERIOD_MS) if cycle_tabs else None))
    loop.exec()  # the window's own event loop, as in the application
    cycle.stop()
    result = done[0]
    if isinstance(result, str):
        raise SystemExit(f"training failed in the window: {result}")
    summary = ui.controller.latency.summary()
    ticks = len(ui.controller.latency.delays)
    window.close()
    window.deleteLater()
    app.processEvents()
    return result.steps / result.seconds, summary, ticks


def _next_tab(tabs) -> None:
    visible = [i for i in range(tabs.count()) if tabs.isTabVisible(i)]
    if visible:
        here = visible.index(tabs.currentIndex()) if tabs.currentIndex() in visible else -1
        tabs.setCurrentIndex(visible[(here + 1) % len(visible)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", default=str(ROOT / "resources/examples/cnn_digits.layerlab.json"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("LAYERLAB_SETTINGS_DIR", str(Path("/tmp") / "layerlab-bench-settings"))

    import torch

    from engine.project import load_project
    from gui.app import make_app
    from gui.training.worker import cpu_threads

    app = make_app()
    path = Path(args.project)
    project = load_project(path)
    default_threads = torch.get_num_threads()
    threads = int(os.environ.get("BENCH_THREADS") or cpu_threads())
    headless(project, 1, default_threads)  # warm-up: imports, first allocations
    rows = []
    for i in range(args.rounds):
        default = headless(project, args.epochs, default_threads)
        base = headless(project, args.epochs, threads)
        live, _, _ = in_window(app, path, args.epochs, measure=False, cycle_tabs=True)
        _, lat, ticks = in_window(app, path, args.epochs, measure=True, cycle_tabs=False)
        _, busy, _ = in_window(app, path, args.epochs, measure=True, cycle_tabs=True)
        rows.append((base, live, lat, default, busy))
        print(f"round {i + 1}: headless {base:6.1f} steps/s ({default:6.1f} with "
              f"{default_threads} threads)   window {live:6.1f} steps/s   ratio "
              f"{base / live:.3f}   latency p50 {lat['p50']:.1f}  p99 {lat['p99']:.1f}  "
              f"max {lat['max']:.1f} ms ({ticks} timer firings)   switching tabs: p99 "
              f"{busy['p99']:.1f}  max {busy['max']:.1f} ms", flush=True)
    med = statistics.median
    ratio = med(r[0] / r[1] for r in rows)
    print(f"\n{path.name}, {args.epochs} epochs, {args.rounds} rounds, {os.cpu_count()} cores, "
          f"torch threads {threads} (default {default_threads})")
    print(f"median latency  p50 {med(r[2]['p50'] for r in rows):.1f} ms   p99 "
          f"{med(r[2]['p99'] for r in rows):.1f} ms (target <= 16)   max "
          f"{med(r[2]['max'] for r in rows):.1f} ms (target <= 100)")
    print(f"median latency while switching tabs  p99 {med(r[4]['p99'] for r in rows):.1f} ms   "
          f"max {med(r[4]['max'] for r in rows):.1f} ms")
    print(f"median throughput  headless {med(r[0] for r in rows):.1f} steps/s   window "
          f"{med(r[1] for r in rows):.1f} steps/s   ratio {ratio:.3f} (target <= 1.10)   "
          f"headless with {default_threads} threads {med(r[3] for r in rows):.1f} steps/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
