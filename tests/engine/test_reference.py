"""The layer reference (docs/layers) against the catalog it is generated from."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine import reference
from engine.graph import Graph
from engine.layers import CATALOG, REQUIRED
from engine.layers.spec import frames_of, resolve_class
from engine.shapes import infer_shapes

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "layers"
PALETTE = [t for t, s in CATALOG.items() if s.in_palette]
REGENERATE = "run `python -m engine.reference` to regenerate the layer reference"

# Worked out by hand from the layers' formulas (not by the engine), with the starter values.
BY_HAND = {
    "Linear": "64 → 32",
    "Flatten": "16×7×7 → 784",
    "Reshape": "1×28×28 → 784",
    "Embedding": "20 → 20×32",
    "Conv1d": "1×100 → 16×98",
    "Conv2d": "1×28×28 → 16×26×26",  # (28 + 0 − 2 − 1)/1 + 1
    "ConvTranspose2d": "16×7×7 → 16×9×9",  # (7 − 1)·1 + 2 + 0 + 1
    "MaxPool2d": "16×28×28 → 16×14×14",
    "AdaptiveAvgPool2d": "64×7×7 → 64×1×1",
    "Upsample": "16×14×14 → 16×28×28",
    "LSTM": "50×8 → out 50×32, last 32",
    "Reservoir": "200×1 → out 200×100, last 100",
    "SequencePool": "50×32 → 32",
    "PerFrame": "8×1×28×28 → 1×28×28 per frame (8 frames)",
    "MergeFrames": "16 per frame (8 frames) → 8×16",
    "MultiheadAttention": "query 10×64 → 10×64",
    "Concat": "32, 16 → 48",
    "Reparameterize": "mu 16, logvar 16 → 16",
    "GATConv": "x 34×34, edge_index 2×156 → 34×16",
    "GraphPool": "x 34×16 → 16",
}


def entries() -> dict[str, tuple[str, str]]:
    """Layer type -> (page file, its entry's text), read from the generated category pages."""
    found: dict[str, tuple[str, str]] = {}
    for name, text in reference.category_pages().items():
        for part in re.split(r"^## ", text, flags=re.M)[1:]:
            heading = part.split("\n", 1)[0]
            assert heading not in found, f"{heading} has an entry on two pages"
            found[heading] = (reference.page_name(name), "## " + part)
    return found


def example_line(entry: str) -> str:
    return next(line for line in entry.splitlines() if line.startswith("- **Example**"))


def test_committed_pages_equal_what_the_generator_writes():
    generated = reference.pages()
    for name, text in generated.items():
        path = DOCS / name
        assert path.is_file(), f"docs/layers/{name} is missing; {REGENERATE}"
        assert path.read_text(encoding="utf-8") == text, \
            f"docs/layers/{name} differs from the catalog; {REGENERATE}"
    stale = sorted({p.name for p in DOCS.glob("*.md")} - set(generated))
    assert stale == [], f"docs/layers has pages no category generates: {stale}; {REGENERATE}"
    assert reference.check(DOCS) == []


def test_the_pages_are_the_same_in_every_process():
    """No hash order, path or date may leak in: two interpreters with different hash seeds
    generate the same bytes."""
    code = ("import hashlib, json; from engine import reference; "
            "print(json.dumps({n: hashlib.sha256(t.encode()).hexdigest() "
            "for n, t in reference.pages().items()}))")
    runs = [subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, env={**os.environ, "PYTHONHASHSEED": seed})
            for seed in ("1", "2")]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    assert first == second
    assert str(ROOT) not in "".join(reference.pages().values())


@pytest.mark.parametrize("type_", list(CATALOG))
def test_every_layer_type_has_a_shape_rule_in_words(type_):
    doc = CATALOG[type_].shape_doc
    assert len(doc.strip()) > 10 and "→" in doc, f"{type_} needs a shape_doc: the rule in words"


def test_every_palette_type_is_on_exactly_one_page_under_its_anchor():
    found = entries()
    assert sorted(found) == sorted(PALETTE)
    index = reference.index_page()
    for type_ in PALETTE:
        spec = CATALOG[type_]
        page, entry = found[type_]
        assert page == reference.page_name(spec.category)
        assert reference.anchor(type_) == type_.lower()
        assert entry.startswith(f"## {type_}\n")
        assert f"]({page}#{type_.lower()})" in index, f"the index does not link {type_}"
        assert f"](#{type_.lower()})" in reference.pages()[page]
        assert f"- **Shape:** {spec.shape_doc}" in entry
    # a type only tools make is noted in the index, but has no entry
    for type_ in (t for t, s in CATALOG.items() if not s.in_palette):
        assert type_ not in found and f"**{type_}**" in index


def test_headings_give_unique_anchors_on_each_page():
    """GitHub suffixes a repeated anchor (-1), which would break the links."""
    for text in reference.pages().values():
        anchors = [reference.anchor(line.lstrip("#").strip())
                   for line in text.splitlines() if line.startswith("#")]
        assert len(anchors) == len(set(anchors)), anchors


def test_anchor_and_page_name_follow_githubs_rules():
    assert reference.anchor("Conv2d") == "conv2d"
    assert reference.anchor("Layer reference: I/O") == "layer-reference-io"
    assert reference.anchor("Tool-made types") == "tool-made-types"
    assert reference.page_name("I/O") == "io.md"
    assert reference.page_name("Convolution") == "convolution.md"


@pytest.mark.parametrize("type_", PALETTE)
def test_every_parameter_is_in_its_table(type_):
    spec = CATALOG[type_]
    entry = entries()[type_][1]
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `(\w+)` \|.*$", entry, re.M)}
    assert list(rows) == list(spec.param_names)
    if not spec.params:
        assert "No parameters." in entry
    for p in spec.params:
        cells = [c.strip() for c in rows[p.name].strip("|").split(" | ")]
        assert cells[1] == p.kind
        assert cells[2].startswith("required") == (p.default is REQUIRED), cells
        if p.default is not REQUIRED:
            assert cells[2] == f"`{reference._value(p.default)}`"
        for choice in p.choices:
            assert f"`{choice!r}`" in cells[3]
        for bound in (p.min, p.max):
            if bound is not None:
                assert reference._number(bound) in cells[3]
        assert ("`None`" in cells[3]) == p.optional
        assert cells[4] == p.doc


def _infer_alone(spec, inputs: dict):
    """The test's own wiring of an example: an Input per shape (a PerFrame behind it for one
    frame of a chain), run through the engine's shape inference."""
    g, fields = Graph("check"), {}
    g.add_node(spec.type, "node", spec.initial_params())
    if spec.type == "Input":
        fields[reference.INPUT_FIELD[0]] = reference.INPUT_FIELD[1]
    n = 0
    for port, shapes in inputs.items():
        for shape in shapes:
            n += 1
            src, frames = f"i{n}", frames_of(shape)
            fields[src] = (frames, *shape) if frames else shape
            g.add_node("Input", src, {"key": src})
            if frames:
                g.add_node("PerFrame", f"f{n}")
                g.connect(src, f"f{n}")
                src = f"f{n}"
            g.connect(src, "node", "out", port)
    info = infer_shapes(g, fields).info["node"]
    assert info.error is None, info.error
    return dict(info.out_shapes) if spec.outputs else {"model output": info.out_shape}


def _marks(shape) -> tuple:
    return (tuple(shape), frames_of(shape), getattr(shape, "nodes", None))


@pytest.mark.parametrize("type_", PALETTE)
def test_worked_example_is_what_shape_inference_computes(type_):
    spec = CATALOG[type_]
    ex = reference.example(spec)
    assert ex is not None, f"{type_} has no worked example; add a typical input to EXAMPLE_INPUTS"
    assert ex.params == spec.initial_params()
    expected = _infer_alone(spec, ex.inputs)
    assert {k: _marks(v) for k, v in ex.outputs.items()} == \
        {k: _marks(v) for k, v in expected.items()}
    line = example_line(entries()[type_][1])
    got = " → " + ", ".join(
        reference.shape_text(s) if list(expected) == ["out"] else
        f"{port} {reference.shape_text(s)}" for port, s in expected.items())
    assert got in line, line
    for name, value in ex.params.items():
        assert f"{name} = " in line


@pytest.mark.parametrize("type_", sorted(BY_HAND))
def test_worked_example_agrees_with_the_formula_by_hand(type_):
    assert f": {BY_HAND[type_]}" in example_line(entries()[type_][1])


@pytest.mark.parametrize("type_", PALETTE)
def test_the_module_named_is_the_class_the_spec_builds(type_):
    spec = CATALOG[type_]
    line = next(x for x in entries()[type_][1].splitlines() if x.startswith("- **Module:**"))
    if spec.module is None:
        assert type_ in reference.MODULELESS and reference.MODULELESS[type_] in line
        return
    cls = reference.example(spec).module.cls
    name = cls.split(".", 1)[-1]
    full = {"nn": "torch.nn.", "pyg": "torch_geometric.nn."}.get(cls.split(".")[0],
                                                                  "engine.layers.modules.")
    assert f"`{full}{name}`" in line
    if not cls.startswith("pyg."):  # torch_geometric is imported by the graph tests
        assert resolve_class(cls).__name__ == name


def test_check_names_each_page_that_differs(tmp_path, capsys):
    written = reference.write(tmp_path)
    assert sorted(p.name for p in written) == sorted(reference.pages())
    assert reference.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "convolution.md").write_text("# edited by hand\n", encoding="utf-8")
    (tmp_path / "graph.md").unlink()
    (tmp_path / "old.md").write_text("", encoding="utf-8")
    capsys.readouterr()
    assert reference.main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "convolution.md differs" in err and "graph.md is missing" in err
    assert "old.md is no longer generated" in err and "python -m engine.reference" in err
    assert "pooling.md" not in err
    assert reference.main(["--out", str(tmp_path)]) == 0
    assert reference.check(tmp_path) == ["old.md is no longer generated (no such category)"]


def test_generating_the_pages_loads_neither_torch_nor_qt():
    code = ("import json, sys; from engine import reference; reference.pages(); "
            "print(json.dumps(sorted(m for m in ('torch', 'PySide6', 'torch_geometric') "
            "if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_every_palette_layer_has_a_concept_note_naming_a_real_parameter():
    from engine.layers import CATALOG
    from engine.layers.notes import NOTES, concept_note

    for type_, spec in CATALOG.items():
        if not spec.in_palette:
            continue
        assert type_ in NOTES, f"{type_} has no concept note (engine/layers/notes.py)"
        when, param, effect = NOTES[type_]
        assert when.strip() and effect.strip(), type_
        assert param is None or param in spec.param_names, (type_, param)
        assert concept_note(type_) in reference.layer_entry(spec)  # the reference prints it
