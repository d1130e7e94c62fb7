"""Tests of the library readers behind the importers: pandas CSV (categorical columns, missing
values, a named bad cell), NumPy files memory-mapped, image folders read lazily, and the same
samples whichever way (in memory or streamed) a set is held."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.data import dataset_shapes, load_dataset
from engine.data.dataset import load_source, parse_config
from engine.data.dataset import open_table as dataset_table
from engine.training.runtime import SingleProcess
from engine.errors import DataError

MIXED = ("size,colour,weight,label\n"
         "1,red,2.5,a\n"
         "2,blue,3.5,b\n"
         "3,red,,a\n"
         "4,green,1.5,b\n")


def open_table(name, params):
    """The table the trainer reads from, for importer ``name`` and the user's ``params``."""
    name, checked, _ = parse_config({"name": name, "params": params, "val_split": 0.0})
    return dataset_table(name, checked, 0, None)


def csv_config(path, **params):
    return {"name": "csv", "params": {"path": str(path), **params}, "val_split": 0.0}


def rows(ds):
    return sorted(zip(ds.x_train.tolist(), ds.y_train.tolist()))


# ---- CSV through pandas ---------------------------------------------------------------------

def test_csv_missing_value_is_named_by_default(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(MIXED, encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_dataset(csv_config(path))
    message = str(info.value)
    assert "mixed.csv, line 4" in message and "'weight'" in message and "missing" in message


def test_csv_categorical_one_hot_and_dropped_rows(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(MIXED, encoding="utf-8")
    config = csv_config(path, missing="drop")
    ds = load_dataset(config)
    assert ds.feature_names == ["size", "colour=blue", "colour=green", "colour=red", "weight"]
    assert dataset_shapes(config) == ds.shapes == {"x": (5,), "y": ()}
    assert rows(ds) == [([1.0, 0.0, 0.0, 1.0, 2.5], 0), ([2.0, 1.0, 0.0, 0.0, 3.5], 1),
                        ([4.0, 0.0, 1.0, 0.0, 1.5], 1)]


def test_csv_missing_filled_with_the_mean_and_codes_for_an_embedding(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(MIXED, encoding="utf-8")
    filled = load_dataset(csv_config(path, missing="mean"))
    assert len(filled) == 4
    third = [x for x, _ in rows(filled) if x[0] == 3.0][0]
    assert third[-1] == pytest.approx((2.5 + 3.5 + 1.5) / 3)
    codes = load_dataset(csv_config(path, missing="mean", categorical="codes"))
    assert codes.feature_names == ["size", "colour", "weight"]
    # sorted distinct values numbered from 0: blue 0, green 1, red 2
    assert [x[1] for x, _ in rows(codes)] == [2.0, 0.0, 2.0, 1.0]


def test_csv_missing_text_cell_takes_the_most_frequent_value(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("colour,size,label\nred,1,0\nred,2,1\nNA,3,0\nblue,4,1\n", encoding="utf-8")
    ds = load_dataset(csv_config(path, missing="mean"))
    third = [x for x, _ in rows(ds) if x[-1] == 3.0][0]
    assert ds.feature_names == ["colour=blue", "colour=red", "size"]
    assert third == [0.0, 1.0, 3.0]


def test_csv_text_cell_in_a_number_column_is_named(tmp_path):
    path = tmp_path / "weights.csv"
    lines = ["size,weight,label"] + [f"{i},{i * 0.5},{i % 2}" for i in range(40)]
    lines[31] = "30,heavy,0"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_dataset(csv_config(path))
    assert str(info.value).endswith("weights.csv, line 32: column 'weight' is not a number ('heavy')")


@pytest.mark.parametrize("params, message", [
    ({"categorical": "bogus"}, "dataset.params.categorical: must be one of"),
    ({"missing": "guess"}, "dataset.params.missing: must be one of"),
])
def test_csv_bad_reader_params_are_named(tmp_path, params, message):
    path = tmp_path / "mixed.csv"
    path.write_text(MIXED, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_dataset(csv_config(path, **params))


# ---- NumPy files, memory-mapped -------------------------------------------------------------

def test_npy_inputs_are_memory_mapped_and_read_a_batch_at_a_time(tmp_path):
    x = np.arange(200 * 12, dtype=np.float64).reshape(200, 3, 4)
    y = (np.arange(200) % 5).astype(np.int64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    params = {"path": str(tmp_path / "x.npy"), "labels": str(tmp_path / "y.npy")}
    table = open_table("npy", params)
    assert not table.in_memory and len(table) == 200 and table.shapes == {"x": (3, 4), "y": ()}
    restored = pickle.loads(pickle.dumps(table))  # what a DataLoader worker receives
    assert restored.__dict__.get("_x") is None  # the map is opened where it is read
    assert isinstance(restored.array(), np.memmap)
    batch_x, batch_y = restored.get(np.array([7, 3, 199]))
    assert batch_x.dtype == np.float32 and batch_x.shape == (3, 3, 4)
    np.testing.assert_array_equal(batch_x, x[[7, 3, 199]].astype(np.float32))
    np.testing.assert_array_equal(batch_y, y[[7, 3, 199]])


def test_npz_maps_stored_members_and_loads_compressed_ones(tmp_path):
    x = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    y = np.arange(50) % 2
    np.savez(tmp_path / "plain.npz", x=x, y=y)
    np.savez_compressed(tmp_path / "packed.npz", x=x, y=y)
    plain = open_table("npz", {"path": str(tmp_path / "plain.npz")})
    packed = open_table("npz", {"path": str(tmp_path / "packed.npz")})
    assert not plain.in_memory and isinstance(plain.array(), np.memmap)
    assert packed.in_memory
    index = np.arange(50)
    np.testing.assert_array_equal(plain.get(index)[0], packed.get(index)[0])
    np.testing.assert_array_equal(plain.get(index)[0], x)


def test_npy_nan_is_named_with_its_sample(tmp_path):
    x = np.zeros((30, 2), dtype=np.float32)
    x[17, 1] = np.nan
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(DataError, match=r"x.npy.* holds NaN or infinite values \(sample 17\)"):
        load_dataset({"name": "npy", "params": {"path": str(tmp_path / "x.npy")},
                      "val_split": 0.0})


# ---- image folders, in memory and streamed --------------------------------------------------

def write_folder(root: Path, per_class: int = 6) -> None:
    rng = np.random.default_rng(1)
    for name in ("circle", "square"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")


def batches(source, seed=1, size=4):
    return source.train_batches(size, torch.Generator().manual_seed(seed), "cpu",
                                SingleProcess())


def test_image_folder_gives_the_same_samples_in_memory_and_streamed(tmp_path):
    write_folder(tmp_path)
    base = {"name": "image_folder", "val_split": 0.25}
    params = {"path": str(tmp_path), "size": [16, 16], "grayscale": False}
    kept = load_source({**base, "params": {**params, "in_memory": True}}, seed=2)
    streamed = load_source({**base, "params": {**params, "in_memory": False, "workers": 0}},
                           seed=2)
    assert kept.shapes == streamed.shapes == {"x": (3, 16, 16), "y": ()}
    assert type(kept).__name__ == "Dataset" and type(streamed).__name__ == "StreamedSource"
    assert "streamed" in streamed.describe() and "in memory" in kept.describe()
    a, b = batches(kept), batches(streamed)
    assert len(a) == len(b) == 3
    for idx, got in zip(a, b):
        want = kept.take(idx)
        assert torch.equal(want["x"], got["x"]) and torch.equal(want["y"], got["y"])
    val = torch.cat([s["x"] for s in streamed.val_batches(2)])
    assert torch.equal(val, kept.x_val)
    streamed.close()


def test_image_folder_indexes_without_decoding(tmp_path, monkeypatch):
    write_folder(tmp_path, per_class=3)
    from engine.data.readers import images

    opened = []
    real = images.decode
    monkeypatch.setattr(images, "decode", lambda *a: opened.append(a[0]) or real(*a))
    table = open_table("image_folder", {"path": str(tmp_path), "size": [8, 8],
                                        "grayscale": True})
    assert len(table) == 6 and table.class_names == ["circle", "square"] and opened == []
    x, y = table.get(np.array([4]))
    assert x.shape == (1, 1, 8, 8) and y.tolist() == [1] and len(opened) == 1
