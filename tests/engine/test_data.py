"""Tests of engine.data: the built-in datasets, the importers, splitting and errors."""
from __future__ import annotations

import gzip
import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.data import (BUILTIN_DATASETS, IMPORTER_PARAMS, IMPORTERS, Dataset, dataset_shapes,
                         load_dataset, split_indices)
from engine.errors import DataError, LayerlabError

ROOT = Path(__file__).resolve().parents[2]

# Small sizes keep the suite fast; digits has no parameters.
SMALL = {name: ({"n_samples": 120} if "n_samples" in spec.params else {})
         for name, spec in BUILTIN_DATASETS.items()}


def builtin(name: str, val_split: float = 0.2, **params) -> dict:
    return {"name": name, "params": {**SMALL[name], **params}, "val_split": val_split}


def total(ds: Dataset) -> int:
    return len(ds.x_train) + len(ds.x_val)


# ---- import cost -----------------------------------------------------------------------------

def test_import_does_not_pull_torch_or_sklearn():
    code = ("import engine.data, sys; "
            "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules; "
            "engine.data.dataset_shapes({'name': 'digits'}); "
            "engine.data.dataset_shapes({'name': 'shapes'}); "
            "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---- built-ins -------------------------------------------------------------------------------

def test_registry_lists_every_builtin():
    assert set(BUILTIN_DATASETS) == {"spirals", "moons", "circles", "xor", "blobs", "sine",
                                     "sine_sequence", "parity", "digits", "shapes", "moving_shapes",
                                     "ring", "first_input", "marker_copy"}
    assert IMPORTERS == ("csv", "npz", "npy", "idx", "image_folder")
    assert set(IMPORTER_PARAMS) == set(IMPORTERS)
    for name, spec in BUILTIN_DATASETS.items():
        assert spec.name == name
        assert spec.doc.endswith(".") and spec.doc.count(". ") == 0
        assert spec.task_hint in ("classification", "regression", "forecasting", "unlabeled")
        assert isinstance(spec.params, dict)


@pytest.mark.parametrize("name", sorted(BUILTIN_DATASETS))
def test_builtin_shapes_dtypes_and_split(name):
    config = builtin(name)
    ds = load_dataset(config, seed=3)
    shapes = dataset_shapes(config)
    assert ds.shapes == shapes
    assert tuple(ds.x_train.shape[1:]) == shapes["x"] == tuple(ds.x_val.shape[1:])
    assert ds.x_train.dtype == torch.float32 and ds.x_train.device.type == "cpu"
    assert torch.isfinite(ds.x_train).all()
    spec = BUILTIN_DATASETS[name]
    assert ds.num_classes == spec.num_classes(config["params"])
    n = 1797 if name == "digits" else 120
    assert total(ds) == n and len(ds) == len(ds.x_train)
    assert len(ds.x_val) == round(0.2 * n)
    if name == "ring":
        assert ds.y_train is None and ds.y_val is None and "y" not in shapes
        assert ds.kind == "unlabeled"
        return
    assert tuple(ds.y_train.shape[1:]) == shapes["y"] == tuple(ds.y_val.shape[1:])
    assert len(ds.y_train) == len(ds.x_train) and len(ds.y_val) == len(ds.x_val)
    if spec.num_classes() is None:
        assert ds.kind == "regression" and ds.y_train.dtype == torch.float32
        assert ds.y_train.ndim == 2
    else:
        assert ds.kind == "classification" and ds.y_train.dtype == torch.int64
        assert ds.y_train.ndim == 1 and shapes["y"] == ()
        labels = torch.cat([ds.y_train, ds.y_val])
        counts = torch.bincount(labels, minlength=ds.num_classes)
        assert len(counts) == ds.num_classes
        assert counts.min() >= n / ds.num_classes / 2  # every class well represented


@pytest.mark.parametrize("name", sorted(BUILTIN_DATASETS))
def test_builtin_is_deterministic_per_seed(name):
    a = load_dataset(builtin(name), seed=1)
    b = load_dataset(builtin(name), seed=1)
    c = load_dataset(builtin(name), seed=2)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_val, b.x_val)
    if a.y_train is not None:
        assert torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_train, c.x_train)


@pytest.mark.parametrize("val_split", [0.0, 0.1, 0.5, 0.75])
def test_val_split_is_respected(val_split):
    ds = load_dataset(builtin("moons", val_split=val_split, n_samples=101))
    assert len(ds.x_val) == round(val_split * 101)
    assert len(ds) == 101 - round(val_split * 101)


def test_default_val_split_and_default_params():
    ds = load_dataset({"name": "spirals"})
    assert len(ds) == 800 and len(ds.x_val) == 200
    assert BUILTIN_DATASETS["spirals"].params == {"n_samples": 1000, "noise": 0.1}


def test_split_keeps_every_sample_once():
    ds = load_dataset(builtin("sine", noise=0.0, n_samples=50), seed=4)
    x = torch.cat([ds.x_train, ds.x_val]).flatten().sort().values
    again = load_dataset(builtin("sine", noise=0.0, n_samples=50, val_split=0.0), seed=4)
    assert torch.equal(x, again.x_train.flatten().sort().values)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 500), val_split=st.floats(0, 0.95), seed=st.integers(-2**40, 2**40))
def test_split_indices_partition(n, val_split, seed):
    n_val = round(val_split * n)
    if n - n_val < 1:
        with pytest.raises(DataError):
            split_indices(n, val_split, seed)
        return
    train, val = split_indices(n, val_split, seed)
    assert len(val) == n_val
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(n))


def test_two_d_sets_are_in_a_sensible_range():
    for name in ("spirals", "moons", "circles", "xor", "blobs"):
        ds = load_dataset(builtin(name, n_samples=400, noise=0.0))
        assert ds.x_train.abs().max() <= 1.6, name


def test_xor_labels_follow_the_sign_product():
    ds = load_dataset(builtin("xor", noise=0.0))
    x, y = ds.x_train, ds.y_train
    assert torch.equal(y, (x[:, 0] * x[:, 1] < 0).long())


def test_blobs_classes_param():
    ds = load_dataset(builtin("blobs", classes=5), seed=0)
    assert ds.num_classes == 5
    assert set(torch.cat([ds.y_train, ds.y_val]).tolist()) == set(range(5))
    assert BUILTIN_DATASETS["blobs"].num_classes({"classes": 5}) == 5
    with pytest.raises(DataError, match="n_samples"):
        load_dataset(builtin("blobs", classes=10, n_samples=5))


def test_sine_targets():
    ds = load_dataset(builtin("sine", noise=0.0))
    assert torch.allclose(ds.y_train, torch.sin(ds.x_train), atol=1e-6)
    assert ds.x_train.abs().max() <= math.pi


def test_sine_sequence_length_and_next_value():
    ds = load_dataset(builtin("sine_sequence", length=7, noise=0.0))
    assert ds.shapes == {"x": (7, 1), "y": (1,)} == dataset_shapes(builtin("sine_sequence",
                                                                            length=7))
    assert ds.task_hint == "forecasting" and BUILTIN_DATASETS["sine_sequence"].task_hint == \
        "forecasting"
    assert ds.x_train.abs().max() <= 1.0
    assert ds.x_train[:, :, 0].std(dim=0).min() > 0.1  # windows differ (random phases)


def test_parity_labels():
    ds = load_dataset(builtin("parity", length=5))
    assert ds.shapes == {"x": (5, 1), "y": ()}
    assert set(ds.x_train.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(ds.y_train, ds.x_train.sum(dim=(1, 2)).long() % 2)


def test_digits_match_scikit_learn():
    from sklearn.datasets import load_digits

    ds = load_dataset({"name": "digits", "val_split": 0.0})
    assert ds.class_names == [str(d) for d in range(10)]
    ref = load_digits()
    x = np.sort((ref.images / 16.0).reshape(len(ref.images), -1), axis=0)
    ours = np.sort(ds.x_train.reshape(len(ds), -1).numpy(), axis=0)
    assert np.allclose(x, ours, atol=1e-6)
    assert np.array_equal(np.bincount(ref.target), torch.bincount(ds.y_train).numpy())
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0


def test_shapes_images():
    ds = load_dataset(builtin("shapes", noise=0.0))
    assert ds.class_names == ["circle", "square", "triangle"]
    assert float(ds.x_train.min()) >= 0.0 and float(ds.x_train.max()) <= 1.0
    lit = (ds.x_train > 0).float().sum(dim=(1, 2, 3))
    assert lit.min() > 20  # every image shows a shape
    noisy = load_dataset(builtin("shapes", noise=0.2))
    assert (noisy.x_train > 0).float().mean() > (ds.x_train > 0).float().mean()


def test_ring_lies_on_radius_two():
    ds = load_dataset(builtin("ring", noise=0.0))
    assert torch.allclose(ds.x_train.norm(dim=1), torch.full((len(ds),), 2.0), atol=1e-5)
    angles = torch.atan2(ds.x_train[:, 1], ds.x_train[:, 0])
    assert len(torch.unique(torch.round(angles * 1000))) == 8


def test_dataset_to_and_bad_device():
    ds = load_dataset(builtin("moons"), device=torch.device("cpu"))
    assert ds.to("cpu") is ds and ds.device.type == "cpu"
    with pytest.raises(DataError, match="device"):
        load_dataset(builtin("moons"), device="not-a-device")


# ---- config errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("config, message", [
    ({"name": "spiralz"}, "dataset.name: unknown dataset 'spiralz'; known: spirals"),
    ({"params": {}}, "dataset.name: missing"),
    ("spirals", "dataset: must be an object"),
    ({"name": "spirals", "params": {"noise": -1}},
     "dataset.params.noise: must be at least 0; got -1"),
    ({"name": "spirals", "params": {"n_samples": 2}}, "dataset.params.n_samples: must be at "
                                                      "least 4; got 2"),
    ({"name": "spirals", "params": {"n_samples": "many"}},
     "dataset.params.n_samples: must be an integer; got 'many'"),
    ({"name": "spirals", "params": {"n_samples": 10.5}}, "must be an integer; got 10.5"),
    ({"name": "spirals", "params": {"n_samples": True}}, "must be an integer; got True"),
    ({"name": "spirals", "params": {"noise": float("nan")}}, "must be a finite number"),
    ({"name": "spirals", "params": {"nosie": 0.1}},
     "dataset.params.nosie: unknown parameter for 'spirals'; allowed: n_samples, noise"),
    ({"name": "digits", "params": {"n_samples": 10}}, "allowed: none"),
    ({"name": "spirals", "params": [1, 2]}, "dataset.params: must be an object"),
    ({"name": "spirals", "val_split": 1}, "dataset.val_split: must be at least 0 and below 1"),
    ({"name": "spirals", "val_split": -0.1}, "dataset.val_split"),
    ({"name": "spirals", "val_split": "half"}, "dataset.val_split: must be a number"),
    ({"name": "parity", "params": {"length": 1}}, "dataset.params.length: must be at least 2"),
    ({"name": "blobs", "params": {"classes": 1}}, "dataset.params.classes: must be at least 2"),
    ({"name": "csv", "params": {}}, "dataset.params.path: is required"),
    ({"name": "csv", "params": {"path": "a.csv", "task": "clustering"}},
     "dataset.params.task: must be one of"),
    ({"name": "image_folder", "params": {"path": "x", "size": [0, 4]}},
     "dataset.params.size[0]: must be at least 1"),
    ({"name": "image_folder", "params": {"path": "x", "grayscale": "yes"}},
     "dataset.params.grayscale: must be true or false"),
])
def test_bad_configs_raise_data_error(config, message):
    for call in (dataset_shapes, load_dataset):
        with pytest.raises(DataError) as info:
            call(config)
        assert message in str(info.value)
        assert isinstance(info.value, LayerlabError)


def test_unknown_name_lists_every_known_dataset():
    with pytest.raises(DataError) as info:
        dataset_shapes({"name": "nope"})
    for known in (*BUILTIN_DATASETS, *IMPORTERS):
        assert known in str(info.value)


def test_bad_seed():
    with pytest.raises(DataError, match="seed"):
        load_dataset(builtin("moons"), seed="zero")


def test_val_split_leaving_nothing_to_train(tmp_path):
    (tmp_path / "one.csv").write_text("1,2\n", encoding="utf-8")
    config = {"name": "csv", "params": {"path": "one.csv"}, "val_split": 0.9}
    with pytest.raises(DataError, match="val_split: 0.9 of 1 samples leaves none to train on"):
        load_dataset(config, base_dir=tmp_path)


# ---- CSV -------------------------------------------------------------------------------------

def csv_config(path, val_split=0.0, **params):
    return {"name": "csv", "params": {"path": str(path), **params}, "val_split": val_split}


def test_csv_with_header_and_text_labels(tmp_path):
    path = tmp_path / "flowers.csv"
    path.write_text("length,width,species\n1.0,2.0,rose\n3,4.5,tulip\n\n5,6,rose\n"
                    "7,8,daisy\n", encoding="utf-8")
    config = csv_config(path)
    ds = load_dataset(config)
    assert ds.kind == "classification" and ds.num_classes == 3
    assert ds.class_names == ["daisy", "rose", "tulip"]
    assert ds.feature_names == ["length", "width"]
    assert dataset_shapes(config) == ds.shapes == {"x": (2,), "y": ()}
    rows = sorted(zip(ds.x_train[:, 0].tolist(), ds.y_train.tolist()))
    assert rows == [(1.0, 1), (3.0, 2), (5.0, 1), (7.0, 0)]


def test_csv_without_header_integer_labels(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("0.5,1,0\n0.1,2,1\n0.3,3,2\n0.7,4,1\n", encoding="utf-8")
    ds = load_dataset(csv_config(path))
    assert ds.feature_names is None and ds.num_classes == 3
    assert ds.x_train.shape == (4, 2) and ds.y_train.dtype == torch.int64
    assert sorted(ds.y_train.tolist()) == [0, 1, 1, 2]


def test_csv_regression_and_target_choice(tmp_path):
    path = tmp_path / "houses.csv"
    path.write_text("price,rooms,area\n100.5,3,50\n200.25,4,80\n150.0,2,60\n",
                    encoding="utf-8")
    by_name = load_dataset(csv_config(path, target="price"))
    assert by_name.kind == "regression" and by_name.y_train.shape == (3, 1)
    assert by_name.y_train.dtype == torch.float32
    assert by_name.feature_names == ["rooms", "area"]
    assert dataset_shapes(csv_config(path, target="price")) == {"x": (2,), "y": (1,)}
    by_index = load_dataset(csv_config(path, target=0))
    assert torch.equal(by_index.y_train.sort(0).values, by_name.y_train.sort(0).values)
    # the last column holds integers: classification unless told otherwise
    assert load_dataset(csv_config(path)).kind == "classification"
    forced = load_dataset(csv_config(path, task="regression"))
    assert forced.kind == "regression"
    assert dataset_shapes(csv_config(path, task="regression")) == {"x": (2,), "y": (1,)}


def test_csv_semicolons_quotes_and_bom(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_bytes('\ufeff"a";"b";"label"\n1;2;"x y"\n3;4;z\n'.encode("utf-8"))
    ds = load_dataset(csv_config(path, delimiter=";"))
    assert ds.feature_names == ["a", "b"] and ds.class_names == ["x y", "z"]


@pytest.mark.parametrize("text, params, expected", [
    ("age,score,label\n1,2,0\n3,4,1\n5,abc,0\n", {}, "line 4: column 'score' is not a number "
                                                     "('abc')"),
    ("1,2,0\n\n3,x,1\n", {}, "line 3: column 2 is not a number ('x')"),
    ("a,b,y\n1,2,0\n3,,1\n", {}, "line 3: column 'b' is empty"),
    ("a,b,y\n1,2,0\n3,4\n", {}, "line 3: expected 3 columns, found 2"),
    ("a,b,y\n1,nan,0\n", {}, "line 2: column 'b' is not a finite number ('nan')"),
    ("a,b,y\n1,2,0.5\n3,4,oops\n", {}, "line 3: column 'y' is not a number ('oops')"),
    ("a,b,y\n1,2,cat\n3,4,\n", {}, "line 3: column 'y' is empty"),
    ("a,b,y\n1,2,cat\n", {"task": "regression"}, "line 2: column 'y' is not a number ('cat')"),
    ("a,b,y\n", {}, "has a header row but no data rows"),
    ("", {}, "is empty"),
    ("1;2;3\n4;5;6\n", {}, "needs at least two columns"),
    ("a,b,y\n1,2,0\n", {"target": "c"}, "has no column 'c'; columns: a, b, y"),
    ("a,b,y\n1,2,0\n", {"target": 5}, "column index 5 is out of range"),
    ("1,2,0\n3,4,1\n", {"target": "y"}, "has no header row"),
])
def test_csv_errors_name_file_and_line(tmp_path, text, params, expected):
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_dataset(csv_config(path, **params))
    assert expected in str(info.value)
    if "line" in expected or "empty" in expected or "header" in expected:
        assert "data.csv" in str(info.value)


def test_csv_many_text_targets_are_refused(tmp_path):
    path = tmp_path / "names.csv"
    path.write_text("a,name\n" + "".join(f"{i},n{i}\n" for i in range(40)), encoding="utf-8")
    with pytest.raises(DataError, match="distinct text values"):
        load_dataset(csv_config(path))
    assert load_dataset(csv_config(path, task="classification")).num_classes == 40


def test_csv_not_found_and_not_text(tmp_path):
    with pytest.raises(DataError, match="missing.csv: file not found"):
        dataset_shapes(csv_config(tmp_path / "missing.csv"))
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(DataError, match="binary.csv: is not UTF-8 text"):
        load_dataset(csv_config(path))


def test_relative_paths_use_base_dir(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.csv").write_text("1,2,0\n3,4,1\n", encoding="utf-8")
    config = {"name": "csv", "params": {"path": "sub/d.csv"}, "val_split": 0.5}
    assert dataset_shapes(config, base_dir=tmp_path) == {"x": (2,), "y": ()}
    ds = load_dataset(config, base_dir=str(tmp_path))
    assert len(ds) == 1 and len(ds.x_val) == 1 and ds.source.endswith("d.csv")


# ---- NPZ -------------------------------------------------------------------------------------

def npz_config(path, **params):
    return {"name": "npz", "params": {"path": str(path), **params}, "val_split": 0.25}


def test_npz_classification_regression_unlabeled(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3, 4))
    np.savez(tmp_path / "cls.npz", x=x, y=np.arange(20) % 4)
    np.savez_compressed(tmp_path / "reg.npz", x=x[:, 0, 0], y=x[:, 0, 1])
    np.savez(tmp_path / "free.npz", x=x.astype(np.float32))
    cls = load_dataset(npz_config(tmp_path / "cls.npz"))
    assert cls.kind == "classification" and cls.num_classes == 4
    assert cls.shapes == dataset_shapes(npz_config(tmp_path / "cls.npz")) == \
        {"x": (3, 4), "y": ()}
    assert cls.x_train.dtype == torch.float32 and len(cls.x_val) == 5
    reg = load_dataset(npz_config(tmp_path / "reg.npz"))
    assert reg.kind == "regression" and reg.y_train.shape == (15, 1)
    assert reg.shapes == dataset_shapes(npz_config(tmp_path / "reg.npz")) == \
        {"x": (1,), "y": (1,)}
    free = load_dataset(npz_config(tmp_path / "free.npz"))
    assert free.y_train is None and free.kind == "unlabeled"
    assert dataset_shapes(npz_config(tmp_path / "free.npz")) == {"x": (3, 4)}
    forced = load_dataset(npz_config(tmp_path / "cls.npz", task="regression"))
    assert forced.kind == "regression" and forced.y_train.dtype == torch.float32


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "nox.npz", inputs=np.zeros((3, 2)), labels=np.zeros(3))
    for call in (dataset_shapes, load_dataset):
        with pytest.raises(DataError) as info:
            call(npz_config(tmp_path / "nox.npz"))
        assert "nox.npz: has no array 'x' (arrays: inputs, labels)" in str(info.value)
    np.savez(tmp_path / "short.npz", x=np.zeros((3, 2)), y=np.zeros(4, dtype=int))
    with pytest.raises(DataError, match="short.npz: 'x' has 3 samples"):
        load_dataset(npz_config(tmp_path / "short.npz"))
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 this is not a zip file")
    for call in (dataset_shapes, load_dataset):
        with pytest.raises(DataError, match="junk.npz"):
            call(npz_config(tmp_path / "junk.npz"))
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(DataError, match="single.npy: is a single array"):
        load_dataset(npz_config(tmp_path / "single.npy"))
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="objects.npz"):
        load_dataset(npz_config(tmp_path / "objects.npz"))
    np.savez(tmp_path / "text.npz", x=np.array(["a", "b"]))
    with pytest.raises(DataError, match="text.npz: array 'x' must hold numbers"):
        dataset_shapes(npz_config(tmp_path / "text.npz"))


# ---- IDX -------------------------------------------------------------------------------------

def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I",
                                                                     *array.shape)
    return header + array.astype(">u1").tobytes()


def write_mnist(folder: Path, prefix: str, n: int, compress: bool = False) -> None:
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, (n, 6, 5))
    labels = rng.integers(0, 10, n)
    opener = gzip.open if compress else open
    suffix = ".gz" if compress else ""
    with opener(folder / f"{prefix}-images-idx3-ubyte{suffix}", "wb") as fh:
        fh.write(idx_bytes(images))
    with opener(folder / f"{prefix}-labels-idx1-ubyte{suffix}", "wb") as fh:
        fh.write(idx_bytes(labels))


def idx_config(folder):
    return {"name": "idx", "params": {"path": str(folder)}, "val_split": 0.1}


@pytest.mark.parametrize("compress", [False, True])
def test_idx_picks_the_train_pair(tmp_path, compress):
    write_mnist(tmp_path, "train", 30, compress)
    write_mnist(tmp_path, "t10k", 7, compress)
    ds = load_dataset(idx_config(tmp_path))
    assert total(ds) == 30 and ds.shapes == {"x": (1, 6, 5), "y": ()}
    assert dataset_shapes(idx_config(tmp_path)) == ds.shapes
    assert 0.0 <= float(ds.x_train.min()) and float(ds.x_train.max()) <= 1.0
    assert ds.y_train.dtype == torch.int64 and ds.num_classes <= 10


def test_idx_only_pair_without_train_in_name(tmp_path):
    write_mnist(tmp_path, "t10k", 12)
    assert total(load_dataset(idx_config(tmp_path))) == 12


def test_idx_bad_magic_and_truncated(tmp_path):
    write_mnist(tmp_path, "train", 10)
    images = tmp_path / "train-images-idx3-ubyte"
    good = images.read_bytes()
    images.write_bytes(b"\x12\x34" + good[2:])
    for call in (dataset_shapes, load_dataset):
        with pytest.raises(DataError) as info:
            call(idx_config(tmp_path))
        assert "train-images-idx3-ubyte: not an IDX file (bad magic number" in str(info.value)
    images.write_bytes(good[:-7])
    with pytest.raises(DataError) as info:
        load_dataset(idx_config(tmp_path))
    assert "train-images-idx3-ubyte: truncated IDX file" in str(info.value)
    images.write_bytes(good[:6])
    with pytest.raises(DataError, match="train-images-idx3-ubyte: truncated"):
        dataset_shapes(idx_config(tmp_path))
    images.write_bytes(good)
    labels = tmp_path / "train-labels-idx1-ubyte"
    labels.write_bytes(idx_bytes(np.zeros(9)))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: expected 10 integer labels"):
        load_dataset(idx_config(tmp_path))


def test_idx_folder_problems(tmp_path):
    with pytest.raises(DataError, match="holds no MNIST-format files"):
        load_dataset(idx_config(tmp_path))
    with pytest.raises(DataError, match="folder not found"):
        load_dataset(idx_config(tmp_path / "nowhere"))
    write_mnist(tmp_path, "train", 5)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="train-images-idx3-ubyte: no matching labels file"):
        dataset_shapes(idx_config(tmp_path))
    (tmp_path / "bad.gz-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    (tmp_path / "bad.gz-labels-idx1-ubyte.gz").write_bytes(b"not gzip")
    (tmp_path / "train-images-idx3-ubyte").unlink()
    with pytest.raises(DataError, match="bad.gz-images-idx3-ubyte.gz: cannot be read"):
        load_dataset(idx_config(tmp_path))


# ---- image folder ----------------------------------------------------------------------------

def write_images(root: Path) -> None:
    for name, colour in (("dog", (250, 10, 10)), ("cat", (10, 10, 250)), ("ant", (0, 0, 0))):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (20 + i * 7, 15 + i), colour).save(root / name / f"{i}.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()


def image_config(root, **params):
    return {"name": "image_folder", "params": {"path": str(root), **params}, "val_split": 0.0}


def test_image_folder_grayscale_and_colour(tmp_path):
    write_images(tmp_path)
    gray = load_dataset(image_config(tmp_path))
    assert gray.class_names == ["ant", "cat", "dog"] and gray.num_classes == 3
    assert gray.shapes == dataset_shapes(image_config(tmp_path)) == {"x": (1, 28, 28), "y": ()}
    assert len(gray) == 9 and gray.x_train.dtype == torch.float32
    ants = gray.x_train[gray.y_train == 0]
    assert float(ants.max()) == 0.0 and float(gray.x_train.max()) <= 1.0
    colour = load_dataset(image_config(tmp_path, size=[16, 12], grayscale=False))
    assert colour.shapes == {"x": (3, 16, 12), "y": ()}
    assert dataset_shapes(image_config(tmp_path, size=[16, 12], grayscale=False)) == \
        colour.shapes
    dogs = colour.x_train[colour.y_train == 2]
    assert torch.allclose(dogs[:, 0], torch.full_like(dogs[:, 0], 250 / 255), atol=1e-6)
    assert torch.allclose(dogs[:, 2], torch.full_like(dogs[:, 2], 10 / 255), atol=1e-6)


def test_image_folder_errors(tmp_path):
    write_images(tmp_path)
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(DataError) as info:
        load_dataset(image_config(tmp_path))
    assert "broken.png: cannot be read as an image" in str(info.value)
    assert "cat" in str(info.value)
    with pytest.raises(DataError, match="holds no class subfolders"):
        dataset_shapes(image_config(tmp_path / "cat"))
    (tmp_path / "cat" / "broken.png").unlink()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: class folder holds no images"):
        load_dataset(image_config(tmp_path))
    with pytest.raises(DataError, match="folder not found"):
        dataset_shapes(image_config(tmp_path / "nowhere"))


def test_the_lesson_sequence_sets_hold_their_answer():
    """first_input: the class is the sign of the first step; marker_copy: the class is the
    token under the marker channel."""
    from engine.data.dataset import load_source

    first = load_source({"name": "first_input", "params": {"n_samples": 200, "length": 30},
                         "val_split": 0.0}, seed=0)
    x, y = first.x_train, first.y_train
    assert tuple(x.shape) == (200, 30, 1)
    assert torch.equal((x[:, 0, 0] > 0).long(), y)
    marked = load_source({"name": "marker_copy", "params": {"n_samples": 200, "length": 12,
                                                           "vocab": 5}, "val_split": 0.0}, seed=0)
    x, y = marked.x_train, marked.y_train
    assert tuple(x.shape) == (200, 12, 6) and torch.equal(x[:, :, -1].sum(dim=1),
                                                          torch.ones(200))
    at = x[:, :, -1].argmax(dim=1)
    assert torch.equal(x[torch.arange(200), at, :5].argmax(dim=1), y)

