"""The installable package: what the wheel puts into site-packages (one ``layerlab`` folder with
the application's packages and resources), the package list kept in step with the source tree,
``--version`` and every command's ``--help`` examples. The wheel's real install in a fresh
environment, started from another folder, is a step of ``.ci/run``."""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import layerlab
from engine.cli import COMMANDS, EXAMPLES
from engine.examples import EXAMPLES_DIR, find_example, is_bundled

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def source_packages() -> set[str]:
    found = {"layerlab", "layerlab.resources"}
    for top in ("engine", "gui", "widgets"):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add("layerlab." + ".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_the_package_list_matches_the_source_tree():
    assert set(PYPROJECT["tool"]["setuptools"]["packages"]) == source_packages()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (path,) = out.glob("layerlab-*.whl")
    return path


def test_the_wheel_holds_only_what_the_project_owns(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"layerlab", f"layerlab-{layerlab.__version__}.dist-info"}, tops
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if "/tests/" in n]
    for folder, pattern in (("examples", "*.layerlab.json"), ("icons", "*.svg"),
                            ("style", "*.qss"), ("lessons", "*.json"),
                            ("blocks", "*.block.json")):
        shipped = {p.name for p in (ROOT / "resources" / folder).glob(pattern)}
        assert shipped, folder
        packed = {n.rsplit("/", 1)[1] for n in names
                  if n.startswith(f"layerlab/resources/{folder}/")}
        assert packed == shipped, folder
    for module in ("layerlab/__init__.py", "layerlab/__main__.py", "layerlab/engine/cli.py",
                   "layerlab/gui/app.py", "layerlab/widgets/__init__.py"):
        assert module in names
    entry = zipfile.ZipFile(wheel).read(
        f"layerlab-{layerlab.__version__}.dist-info/entry_points.txt").decode()
    assert "layerlab = layerlab:main" in entry


def test_version_and_python_dash_m(tmp_path):
    done = subprocess.run([sys.executable, "-m", "layerlab", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"layerlab {layerlab.__version__}"
    version = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert version["dynamic"] == ["version"]  # the one version is layerlab.__version__


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_help_shows_examples(command, capsys):
    from engine.cli import main

    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "examples:" in text
    for line in EXAMPLES[command]:
        assert line in text
        assert line.startswith(("layerlab " + command, "torchrun "))


def test_a_bundled_example_by_name(tmp_path, capsys):
    from engine.cli import main

    assert find_example("mlp_spirals") == EXAMPLES_DIR / "mlp_spirals.layerlab.json"
    assert find_example("mlp_spirals.layerlab.json") == find_example("mlp_spirals")
    assert find_example("no_such_example") is None
    assert main(["check", "mlp_spirals"]) == 0
    assert "mlp_spirals.layerlab.json: OK" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "missing.layerlab.json")]) == 2
    assert "missing.layerlab.json" in capsys.readouterr().err
    assert main(["examples"]) == 0
    listed = capsys.readouterr().out
    assert "mlp_spirals" in listed and "cnn_digits" in listed


def test_runs_of_a_bundled_example_go_to_the_users_folder(monkeypatch, tmp_path):
    from engine.project import load_project
    from engine.runs import runs_base

    monkeypatch.delenv("LAYERLAB_RUNS_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    project = load_project(find_example("mlp_spirals"))
    assert is_bundled(project.path)
    assert runs_base(project) == tmp_path / ".layerlab" / "runs"
    copy = tmp_path / "mine.layerlab.json"
    copy.write_bytes(Path(project.path).read_bytes())
    assert not is_bundled(copy)
    assert runs_base(load_project(copy)) == tmp_path / "runs"
