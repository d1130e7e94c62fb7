"""Layerlab, a desktop visual builder for neural networks.

``layerlab [PROJECT]`` (or ``python -m layerlab``, or ``python main.py`` in a checkout) opens the
window; ``layerlab COMMAND ...`` runs the command line (``layerlab --help`` lists the commands).

The application is three packages, ``engine`` (no Qt), ``gui`` and ``widgets``, and the folder
``resources``. In a checkout they sit beside this package. An installed wheel keeps them inside
it (``site-packages/layerlab/engine`` ...), so that site-packages holds nothing but ``layerlab``
and no other distribution's ``engine`` or ``gui`` is overwritten; importing ``layerlab`` puts
that folder first on ``sys.path`` for the packages' own absolute imports.
"""
from __future__ import annotations

import sys
from pathlib import Path

__version__ = "0.2.0"



def _app_root() -> Path:
    here = Path(__file__).resolve().parent
    return here if (here / "engine" / "__init__.py").is_file() else here.parent


APP_ROOT = _app_root()
if str(APP_ROOT) not in sys.path:
    sys.path.insert(0, str(APP_ROOT))

from engine.cli import COMMANDS as _COMMANDS  # noqa: E402 - needs the path above

CLI_COMMANDS = tuple(_COMMANDS)


def _foreign_engine() -> str | None:
    """A message when a module named ``engine`` from another distribution was imported first."""
    module = sys.modules.get("engine")
    origin = getattr(module, "__file__", None)
    if module is None or origin is None:
        return None
    if Path(origin).resolve().parent.parent == APP_ROOT:
        return None
    return (f"layerlab: another package named 'engine' ({origin}) was imported before "
            f"Layerlab's own ({APP_ROOT / 'engine'}); start Layerlab in its own process")


def _unknown_command(word: str) -> bool:
    """A bare word that names no file and no example: a misspelt command, not a project."""
    if word.startswith("-") or "." in word or "/" in word or "\\" in word:
        return False
    if Path(word).exists():
        return False
    from engine.examples import find_example

    return find_example(word) is None


def main(argv: list[str] | None = None) -> int:
    """The ``layerlab`` command: the window, a command-line command, or ``--version``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["--version"], ["-V"]):
        print(f"layerlab {__version__}")
        return 0
    problem = _foreign_engine()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if argv and argv[0] in CLI_COMMANDS:
        from engine.cli import main as cli_main

        return cli_main(argv)
    if argv and _unknown_command(argv[0]):
        print(f"layerlab: {argv[0]!r} is neither a command ({', '.join(CLI_COMMANDS)}) nor a "
              f"project file nor a bundled example (layerlab examples)", file=sys.stderr)
        return 2
    from gui.app import main as gui_main

    return gui_main(argv)
