"""The data-source contract: in-memory and streamed sources, the memory choice, augmentation."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.data.augment import parse_augment
from engine.data.dataset import Dataset, load_source
from engine.data.source import StreamedSource, choose_in_memory
from engine.errors import DataError
from engine.project import load_project
from engine.training import Trainer
from engine.training.runtime import SingleProcess

ROOT = Path(__file__).resolve().parents[2]
CNN = ROOT / "resources" / "examples" / "cnn_digits.layerlab.json"


def digits(**params):
    return {"name": "digits", "params": params, "val_split": 0.2}


def batches(source, seed=1, size=64):
    return source.train_batches(size, torch.Generator().manual_seed(seed), "cpu",
                                SingleProcess())


@pytest.mark.parametrize("workers", [0, 2])
def test_streamed_and_in_memory_give_the_same_batches(workers):
    memory = load_source(digits(), seed=3)
    streamed = load_source(digits(in_memory=False, workers=workers), seed=3)
    assert isinstance(memory, Dataset) and isinstance(streamed, StreamedSource)
    assert (memory.train_size, memory.val_size) == (streamed.train_size, streamed.val_size)
    a, b = batches(memory), batches(streamed)
    assert len(a) == len(b) == 23
    for idx, got in zip(a, b):
        want = memory.take(idx)
        assert torch.equal(want["x"], got["x"]) and torch.equal(want["y"], got["y"])
    assert torch.equal(b[4]["x"], memory.take(a[4])["x"])  # a replayed batch reads the same
    val = [s["x"] for s in streamed.val_batches(100)]
    assert torch.equal(torch.cat(val), memory.x_val)
    streamed.close()


def project_file(tmp_path, **dataset) -> Path:
    data = json.loads(CNN.read_text())
    data["dataset"].update(dataset)
    path = tmp_path / "p.layerlab.json"
    path.write_text(json.dumps(data))
    return path


def test_training_streamed_repeats_the_in_memory_run(tmp_path):
    augment = [{"type": "RandomCrop", "padding": 1}, {"type": "RandomHorizontalFlip"},
               {"type": "Normalize"}]
    runs = []
    for in_memory in (True, False):
        path = project_file(tmp_path, augment=augment,
                            params={"in_memory": in_memory, "workers": 1})
        trainer = Trainer(load_project(path), device="cpu", epochs=2)
        runs.append(trainer.fit().history)
        assert trainer.dataset.in_memory is in_memory
    for a, b in zip(*runs):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=1e-6)


def test_a_set_over_the_budget_is_streamed_and_says_why():
    source = load_source(digits(memory_budget_mb=0.1), seed=0)
    assert not source.in_memory
    assert "would pass the memory budget of 0.1 MB" in source.describe()
    assert load_source(digits(), seed=0).in_memory
    assert choose_in_memory(3 * 2**30, {"in_memory": "auto", "memory_budget_mb": None})[1] == \
        "3.0 GB would pass the memory budget of 2048 MB"


def test_the_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LAYERLAB_MEMORY_BUDGET_MB", "0.1")
    assert not load_source(digits(), seed=0).in_memory
    monkeypatch.setenv("LAYERLAB_MEMORY_BUDGET_MB", "lots")
    with pytest.raises(DataError, match="LAYERLAB_MEMORY_BUDGET_MB: must be a number"):
        load_source(digits(), seed=0)


def test_memory_params_are_checked():
    with pytest.raises(DataError, match="dataset.params.in_memory: must be one of"):
        load_source(digits(in_memory="sometimes"), seed=0)
    with pytest.raises(DataError, match="dataset.params.workers: must be at least 0"):
        load_source(digits(workers=-1), seed=0)


def test_augmentation_touches_training_batches_only():
    block = {**digits(), "augment": [{"type": "RandomHorizontalFlip", "p": 1.0}]}
    source = load_source(block, seed=0)
    plain = load_source(digits(), seed=0)
    idx = torch.arange(8)
    assert torch.equal(source.take(idx)["x"], plain.take(idx)["x"].flip(-1))
    part = slice(0, 8)
    assert torch.equal(source.take(part, "val")["x"], plain.take(part, "val")["x"])
    assert torch.equal(source.head("x", 8), plain.head("x", 8))


def test_normalize_auto_uses_the_training_split_on_every_split():
    source = load_source({**digits(), "augment": [{"type": "Normalize"}]}, seed=0)
    assert float(source.x_train.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(source.x_train.std()) == pytest.approx(1.0, abs=1e-3)
    assert abs(float(source.x_val.mean())) < 0.1  # the same statistics, not its own
    streamed = load_source({**digits(in_memory=False, workers=0),
                            "augment": [{"type": "Normalize"}]}, seed=0)
    assert torch.allclose(streamed.head("x", 50), source.head("x", 50), atol=1e-6)


def test_batched_transforms_keep_shapes_and_draw_per_sample():
    x = torch.rand(64, 3, 12, 12)
    torch.manual_seed(0)
    for entry in ({"type": "RandomCrop", "padding": 2}, {"type": "RandomRotation"},
                  {"type": "ColorJitter", "brightness": 0.3, "contrast": 0.3,
                   "saturation": 0.3}, {"type": "GaussianNoise", "sigma": 0.1},
                  {"type": "RandomCrop", "padding": 2, "padding_mode": "reflect"}):
        out = parse_augment([entry]).train_random(x)
        assert out.shape == x.shape, entry
        changed = (out - x).flatten(1).abs().sum(1) > 1e-6
        assert 0 < int(changed.sum()) <= 64, entry
    flip = parse_augment([{"type": "RandomHorizontalFlip", "p": 0.5}]).train_random(x)
    flipped = [torch.equal(f, s.flip(-1)) for f, s in zip(flip, x)]
    assert 10 < sum(flipped) < 54  # one draw per sample, not one per batch


@pytest.mark.parametrize("augment, message", [
    ("flip", "dataset.augment: must be a list"),
    ([{"p": 1}], r"dataset.augment\[0\]: must be an object with a 'type'"),
    ([{"type": "Blur"}], r"dataset.augment\[0\].type: unknown transform 'Blur'"),
    ([{"type": "RandomHorizontalFlip", "q": 1}], r"augment\[0\].q: not an argument"),
    ([{"type": "RandomHorizontalFlip", "p": 2}], r"augment\[0\].p: must be between 0 and 1"),
    ([{"type": "RandomCrop", "padding": 1.5}], "whole number of pixels"),
    ([{"type": "Normalize", "std": [0]}], "Normalize.std must be above 0"),
])
def test_bad_augment_lists_are_named(augment, message):
    with pytest.raises(DataError, match=message):
        load_source({**digits(), "augment": augment}, seed=0)


def test_image_transforms_need_images():
    with pytest.raises(DataError, match="RandomCrop works on images.*samples are 2"):
        load_source({"name": "spirals", "augment": [{"type": "RandomCrop"}]}, seed=0)
    load_source({"name": "spirals", "augment": [{"type": "GaussianNoise", "sigma": 0.1}]})


def test_train_names_the_choice_on_its_first_stderr_line(tmp_path):
    path = project_file(tmp_path, params={"in_memory": False, "workers": 0})
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "train", str(path),
                           "--epochs", "1", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == \
        "data: digits: streamed (0.4 MB, in_memory: false; 0 reader process(es))"
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["event"] == "epoch" and lines[-1]["event"] == "done"
    assert np.isfinite(lines[0]["val_loss"])


def test_val_chunk_caps_the_input_bytes_but_not_below_the_batch():
    from engine.data.source import VAL_BATCH_BYTES, val_chunk

    image = 3 * 96 * 96 * 4  # one 96x96 RGB image as float32
    assert val_chunk(1024, 32, image) == VAL_BATCH_BYTES // image == 151
    assert val_chunk(1024, 256, image) == 256  # the training batch is held anyway
    assert val_chunk(1024, 32, 2 * 4) == 1024  # small samples: the whole chunk
    assert val_chunk(1024, 32, 10**12) == 32


@pytest.mark.parametrize("in_memory", [True, False])
def test_validation_chunks_hold_the_byte_cap_and_give_the_same_metrics(tmp_path, monkeypatch,
                                                                         in_memory):
    """cnn_digits' 8x8 images with the cap at 40 images: every validation forward pass takes at
    most max(40, batch) samples, and the validation loss and accuracy equal the uncapped run's."""
    import engine.data.source as source

    path = project_file(tmp_path, params={"in_memory": in_memory, "workers": 0})
    results, sizes = [], []
    for cap in (source.VAL_BATCH_BYTES, 40 * 64 * 4):
        monkeypatch.setattr(source, "VAL_BATCH_BYTES", cap)
        trainer = Trainer(load_project(path), device="cpu", epochs=1)
        trainer.fit()
        sizes.append([len(target) for _, target, _ in trainer.task.val_parts()])
        results.append(trainer.history[-1])
        trainer.close()
    batch = load_project(path).training["batch_size"]
    assert sizes[0] == [sum(sizes[0])]  # 360 validation images in one pass without the cap
    assert max(sizes[1]) == max(40, batch) and sum(sizes[1]) == sum(sizes[0])
    assert results[0]["val_loss"] == pytest.approx(results[1]["val_loss"], rel=1e-5)
    assert results[0]["val_accuracy"] == pytest.approx(results[1]["val_accuracy"], abs=1e-9)
