"""The example projects shipped in ``resources/examples``."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
EXAMPLES_DIR = RESOURCES / "examples"
DEFAULT_EXAMPLE = EXAMPLES_DIR / "cnn_digits.layerlab.json"


SUFFIX = ".layerlab.json"


def example_paths() -> list[Path]:
    return sorted(EXAMPLES_DIR.glob("*" + SUFFIX))


def example_name(path: Path) -> str:
    """``mlp_spirals`` for ``.../mlp_spirals.layerlab.json``."""
    return path.name[:-len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem


def find_example(name: str) -> Path | None:
    """The bundled example called ``name`` (``mlp_spirals`` or ``mlp_spirals.layerlab.json``),
    or None."""
    for path in example_paths():
        if name in (path.name, example_name(path)):
            return path
    return None


def is_bundled(path) -> bool:
    """Whether ``path`` is one of the shipped examples (read-only in an installed package: runs
    and outputs of such a project go to the user's folders, not beside it)."""
    try:
        return Path(path).resolve().parent == EXAMPLES_DIR.resolve()
    except (OSError, TypeError, ValueError):
        return False


@dataclass
class Example:
    path: Path
    name: str  # the project's own name ("MLP on spirals")
    description: str
    task: str = ""

    @property
    def slug(self) -> str:
        """The name every command takes in place of the file (``mlp_spirals``)."""
        return example_name(self.path)


def list_examples() -> list[Example]:
    """The readable bundled examples with their names, descriptions and tasks."""
    items = []
    for path in example_paths():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        items.append(Example(path, str(data.get("name", path.stem)),
                             str(data.get("description", "")),
                             str((data.get("training") or {}).get("task", ""))))
    return items

