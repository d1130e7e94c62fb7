"""Layerlab: ``python main.py [PROJECT]`` opens the window; ``python main.py COMMAND ...`` runs
the command line (check, summary, train, export, import, runs, sweep,
explain)."""
import sys

CLI_COMMANDS = ("check", "summary", "train", "export", "import", "runs", "sweep",
                "explain")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in CLI_COMMANDS:
        from engine.cli import main as cli_main

        return cli_main(argv)
    from gui.app import main as gui_main

    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main())
