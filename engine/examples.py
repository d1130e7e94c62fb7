"""The example projects shipped in ``resources/examples``."""
from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
EXAMPLES_DIR = RESOURCES / "examples"
DEFAULT_EXAMPLE = EXAMPLES_DIR / "cnn_digits.layerlab.json"


def example_paths() -> list[Path]:
    return sorted(EXAMPLES_DIR.glob("*.layerlab.json"))
