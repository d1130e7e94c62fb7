"""Layerlab from a checkout: ``python main.py [PROJECT]`` opens the window; ``python main.py
COMMAND ...`` runs the command line (check, summary, train, export, import, runs, sweep,
explain, examples). Installed, the same is the ``layerlab`` command or ``python -m layerlab``."""
import sys

from layerlab import CLI_COMMANDS, main  # noqa: F401 - CLI_COMMANDS is part of this module's API

if __name__ == "__main__":
    sys.exit(main())
