"""Contract: the engine never imports Qt, and its light modules do not import torch."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "engine"
QT = ("PySide6", "PySide2", "PyQt5", "PyQt6", "shiboken6", "shiboken2", "pyqtgraph", "qtpy")
LIGHT = ("engine.graph", "engine.layers", "engine.shapes", "engine.project", "engine.data",
         "engine.cli", "engine.analysis", "engine.examples")


def imported_names(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", "")) in ("import_module", "__import__") and node.args and \
                isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            yield node.args[0].value


def test_no_engine_file_imports_qt():
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) > 10
    offenders = [f"{path.relative_to(ROOT)}: {name}"
                 for path in files
                 for name in imported_names(ast.parse(path.read_text(encoding="utf-8")))
                 if name.split(".")[0] in QT]
    assert offenders == []


def test_the_scan_sees_qt_imports():
    tree = ast.parse("import PySide6.QtCore\nfrom pyqtgraph import PlotWidget\n"
                     "import importlib\nimportlib.import_module('PyQt6')\n")
    assert [n.split(".")[0] for n in imported_names(tree)] == ["PySide6", "pyqtgraph",
                                                                 "importlib", "PyQt6"]


def run_python(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_every_engine_module_loads_no_qt():
    result = run_python(f"""
import importlib, json, pkgutil, sys
import engine
names = [m.name for m in pkgutil.walk_packages(engine.__path__, "engine.")]
for name in names:
    importlib.import_module(name)
qt = sorted(m for m in sys.modules if m.split(".")[0] in {QT!r})
print(json.dumps({{"modules": names, "qt": qt}}))
""")
    assert "engine.compiler" in result["modules"] and "engine.layers.modules" in result["modules"]
    assert result["qt"] == []


def test_light_engine_modules_do_not_import_torch():
    result = run_python(f"""
import json, sys
for name in {LIGHT!r}:
    __import__(name)
print(json.dumps({{"heavy": sorted(m for m in ("torch", "sklearn", "PySide6")
                                   if m in sys.modules)}}))
""")
    assert result["heavy"] == []
