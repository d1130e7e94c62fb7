"""The window's command line: ``python main.py [PROJECT] [--screenshot PNG] [--quit-after S]
[--theme light|dark] [--train]``.

PyTorch is not imported here: the editor needs only shapes and counts, which are pure Python, so
the window opens fast. ``LAYERLAB_STARTUP_T0`` (a ``time.time()`` value set by whoever starts the
process) makes the window print ``shown_after_s=...`` once it is on screen (the start-up
benchmark).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from engine.cli import COMMANDS as CLI_COMMANDS
from engine.examples import DEFAULT_EXAMPLE, find_example
from engine.project import ProjectError
from gui import dialogs
from gui.document import Document
from gui.main_window import MainWindow
from gui.settings import APPLICATION, ORGANIZATION, Settings

SCREENSHOT_DELAY_S = 1.5  # with --screenshot alone: time for the first layout and paint


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="layerlab", description="Open the Layerlab window.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands (layerlab COMMAND --help for each):\n  "
               + ", ".join(CLI_COMMANDS) + "\n\nexamples:\n"
               "  layerlab                          the window with the CNN digits example\n"
               "  layerlab my_net.layerlab.json     open a project\n"
               "  layerlab mlp_spirals --train      a bundled example, training at once\n"
               "  layerlab check my_net.layerlab.json\n"
               "  layerlab --version")
    parser.add_argument("project", nargs="?", help="a .layerlab.json project, or the name of "
                        "a bundled example (layerlab examples), to open")
    parser.add_argument("--screenshot", metavar="PNG", help="save a picture of the window")
    parser.add_argument("--quit-after", type=float, metavar="SECONDS",
                        help="close the window after this many seconds (the screenshot is "
                             "taken just before)")
    parser.add_argument("--theme", choices=("light", "dark"), help="the window's theme")
    parser.add_argument("--train", action="store_true", help="start training at once")
    return parser.parse_args(argv)


def make_app() -> QApplication:
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Layerlab")
    return app


def initial_document(path: str | None) -> tuple[Document, str | None]:
    """The document to show first, and the loader's message if ``path`` could not be opened."""
    if path:
        example = None if Path(path).exists() else find_example(path)
        try:
            if example is not None:  # a bundled example by name, opened as a copy
                document = Document.open(example)
                document.project.path = None
                return document, None
            return Document.open(path), None
        except ProjectError as exc:
            error = str(exc)
    else:
        error = None
    try:
        document = Document.open(DEFAULT_EXAMPLE)
        document.project.path = None  # a copy: saving must not overwrite the shipped example
    except ProjectError:
        document = Document.new()
    return document, error


def create_window(args: argparse.Namespace, settings: Settings | None = None) -> MainWindow:
    interactive = args.screenshot is None and args.quit_after is None
    settings = settings or Settings()
    window = MainWindow(settings, theme=args.theme or settings.theme(), interactive=interactive)
    document, error = initial_document(args.project)
    window.set_document(document)
    if args.project and error is None:
        settings.add_recent_file(args.project)
    if interactive:
        window.restore_layout()
    if error is not None:
        if interactive:
            QTimer.singleShot(0, lambda: dialogs.show_error(window, "Cannot open project", error))
        else:
            print(error, file=sys.stderr)
    return window


def start_training(window: MainWindow, args: argparse.Namespace):
    """``--train``: train in the window as soon as it shows (see ``gui.training``)."""
    from gui.training import start_cli_training

    return start_cli_training(window, args)


def _save_screenshot(window: MainWindow, path: str) -> bool:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if window.grab().save(str(target)):
        return True
    print(f"layerlab: cannot write the screenshot {target}", file=sys.stderr)
    return False


def _schedule(app: QApplication, window: MainWindow, args: argparse.Namespace) -> list:
    """Timers for --screenshot and --quit-after; the exit code is written into the list."""
    status = [0]

    def finish() -> None:
        if args.screenshot and not _save_screenshot(window, args.screenshot):
            status[0] = 1
        window.close()
        app.quit()

    if args.quit_after is not None:
        QTimer.singleShot(max(0, int(args.quit_after * 1000)), finish)
    elif args.screenshot:
        QTimer.singleShot(int(SCREENSHOT_DELAY_S * 1000),
                          lambda: _save_screenshot(window, args.screenshot))
    return status


def _report_startup() -> None:
    t0 = os.environ.get("LAYERLAB_STARTUP_T0")
    if t0:
        print(f"shown_after_s={time.time() - float(t0):.3f}", flush=True)


def _delete_now(window: MainWindow) -> None:
    """Destroy the window's C++ side while Python is whole: left to the interpreter's exit, Qt
    tears the widgets down after Python's modules are gone, and a pyqtgraph item's resize
    handler running then crashes the process."""
    import shiboken6

    window.hide()
    if shiboken6.isValid(window):
        shiboken6.delete(window)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    app = make_app()
    window = create_window(args)
    window.show()
    QTimer.singleShot(0, _report_startup)
    if window.interactive:
        QTimer.singleShot(0, window.offer_recovery)
    run = start_training(window, args) if args.train else None
    status = _schedule(app, window, args)
    code = app.exec()
    from gui.training.data_form import finish_previews

    finish_previews()  # no pool thread may outlive the window
    app.clipboard().clear()  # Qt frees a Python-made clipboard object after Python is gone
    if run is not None:
        run.print_report()  # last on stdout: {"steps": N, "ui_latency_ms": {...}}
    _delete_now(window)
    return status[0] or code
