"""Benchmark: `main.py train` on image folders against a hand-written Pillow + DataLoader script.

Two generated folders (made once, kept under ``--root``): 60,000 28×28 grayscale PNGs and
20,000 96×96 RGB JPEGs, 10 classes each, every class a learnable pattern under noise. For each
folder the same small CNN trains for ``--epochs`` epochs with batch 64, Adam and per-epoch
validation, two ways, in fresh processes, interleaved (alternating which goes first):

- ``layerlab``: ``main.py train`` on a project whose dataset is the folder (streamed:
  ``in_memory: false``, 2 reader processes);
- ``reference``: a hand-written script - an ImageFolder-style dataset (sorted class folders,
  sorted files, Pillow decode, convert, scale to 0..1) and ``DataLoader(num_workers=2,
  persistent_workers=True, shuffle=True)``. torchvision's ``ImageFolder`` is not used because
  torchvision has no build beside this machine's torch 2.13.0; the script does what it does.

Printed per run: time to the first optimizer step (from process launch; a global
optimizer-step hook in both), the time of each epoch after the first (steady state, readers
warm) and of the first, and peak memory of the process tree (the sum of PSS - proportional set
size - of the process and its reader processes, sampled every 50 ms; RSS would count the
libraries the readers share with their parent once per process). Then the medians of the
per-pair ratios. Targets: epoch time ratio <= 1.05 on both folders; peak memory on the 96×96
folder <= 1.5 GB streamed; first step within 5 s.

    python tests/bench/bench_data.py [--reps 3] [--epochs 2] [--only png|jpeg]
                                     [--root /tmp/layerlab_bench_data] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

SETS = {  # name: (count, size, grayscale, suffix)
    "png": (60_000, 28, True, ".png"),
    "jpeg": (20_000, 96, False, ".jpg"),
}
CLASSES = 10
BATCH = 64
LR = 0.001
VAL_SPLIT = 0.1


# ---- the generated folders ---------------------------------------------------------------------

def _pattern(label: int, size: int, grayscale: bool, rng) -> np.ndarray:
    """Class ``label``: a bright bar at a class-dependent place and angle under noise."""
    img = rng.normal(60, 25, size=(size, size)).clip(0, 255)
    band = size // 10 + 1
    at = (label % 5) * size // 5 + size // 10
    if label < 5:
        img[at:at + band, :] += 150
    else:
        img[:, at:at + band] += 150
    img = img.clip(0, 255).astype(np.uint8)
    if grayscale:
        return img
    tint = np.array([(label * 37) % 255, (label * 91) % 255, (label * 53) % 255])
    rgb = img[..., None] * 0.7 + tint[None, None, :] * 0.3
    return rgb.clip(0, 255).astype(np.uint8)


def _write_chunk(args) -> None:
    from PIL import Image

    folder, name, start, stop = args
    count, size, grayscale, suffix = SETS[name]
    for i in range(start, stop):
        label = i % CLASSES
        rng = np.random.default_rng(i)
        path = Path(folder) / f"class_{label}" / f"{i:06d}{suffix}"
        image = Image.fromarray(_pattern(label, size, grayscale, rng))
        image.save(path, quality=90) if suffix == ".jpg" else image.save(path)


def make_folder(root: Path, name: str) -> Path:
    count, size, grayscale, suffix = SETS[name]
    folder = root / f"{name}_{count}_{size}"
    done = folder / ".complete"
    if done.exists():
        return folder
    for label in range(CLASSES):
        (folder / f"class_{label}").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    chunks = [(str(folder), name, i, min(i + 2000, count)) for i in range(0, count, 2000)]
    with multiprocessing.Pool(max(1, os.cpu_count() or 1)) as pool:
        pool.map(_write_chunk, chunks)
    done.write_text("ok")
    print(f"wrote {count:,} {size}x{size} {suffix} files to {folder} in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    return folder


# ---- the model (the project's graph and the hand-written module are the same network) -----------

def layers(name: str) -> list[tuple[str, str, dict]]:
    pool = 2 if name == "png" else 4
    return [("conv1", "Conv2d", {"out_channels": 16, "kernel_size": 3, "padding": 1}),
            ("relu1", "ReLU", {}), ("pool1", "MaxPool2d", {"kernel_size": pool}),
            ("conv2", "Conv2d", {"out_channels": 32, "kernel_size": 3, "padding": 1}),
            ("relu2", "ReLU", {}), ("pool2", "MaxPool2d", {"kernel_size": pool}),
            ("flat", "Flatten", {}), ("fc1", "Linear", {"out_features": 64}),
            ("relu3", "ReLU", {}), ("fc2", "Linear", {"out_features": CLASSES})]


def reference_module(name: str):
    import torch.nn as nn

    count, size, grayscale, _ = SETS[name]
    pool = 2 if name == "png" else 4
    side = size // pool // pool
    return nn.Sequential(nn.Conv2d(1 if grayscale else 3, 16, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(pool), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(pool), nn.Flatten(), nn.Linear(32 * side * side, 64),
                         nn.ReLU(), nn.Linear(64, CLASSES))


def write_project(folder: Path, name: str, epochs: int, path: Path) -> None:
    count, size, grayscale, _ = SETS[name]
    nodes = [{"id": "x", "type": "Input"}]
    nodes += [{"id": i, "type": t, "params": p} for i, t, p in layers(name)]
    nodes += [{"id": "y", "type": "Output"}]
    edges = [{"from": a["id"], "to": b["id"]} for a, b in zip(nodes, nodes[1:])]
    project = {
        "format": "layerlab-project", "version": 1, "name": f"bench {name}",
        "models": {"model": {"nodes": nodes, "edges": edges}},
        "dataset": {"name": "image_folder", "val_split": VAL_SPLIT,
                    "params": {"path": str(folder), "size": [size, size],
                               "grayscale": grayscale, "in_memory": False, "workers": 2}},
        "training": {"task": "classification", "loss": "CrossEntropyLoss",
                     "optimizer": {"type": "Adam", "lr": LR}, "batch_size": BATCH,
                     "epochs": epochs, "seed": 0},
    }
    path.write_text(json.dumps(project, indent=1))


# ---- the children ------------------------------------------------------------------------------

def _first_step_hook(t0: float) -> None:
    """Print, once, the seconds from launch to the end of the first optimizer step."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    def hook(optimizer, args, kwargs):
        if not seen:
            seen.append(True)
            print(json.dumps({"first_step": time.time() - t0}), file=sys.stderr, flush=True)
    seen: list = []
    register_optimizer_step_post_hook(hook)


def child_layerlab(args) -> None:
    import runpy

    _first_step_hook(args.t0)
    out = tempfile.mkdtemp(prefix="bench_data_out_")
    sys.argv = ["main.py", "train", args.project, "--epochs", str(args.epochs), "--out", out,
                "--threads", str(args.threads), "--device", "cpu"]
    sys.path.insert(0, str(ROOT))
    runpy.run_path(str(ROOT / "main.py"), run_name="__main__")


class FolderDataset:
    """What torchvision's ImageFolder does: sorted class folders, sorted files, Pillow."""

    def __init__(self, root: str, size: int, grayscale: bool):
        self.classes = sorted(d.name for d in os.scandir(root) if d.is_dir())
        self.samples = [(os.path.join(root, c, f), k) for k, c in enumerate(self.classes)
                        for f in sorted(os.listdir(os.path.join(root, c)))]
        self.size, self.mode = size, "L" if grayscale else "RGB"

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        import torch
        from PIL import Image

        path, label = self.samples[i]
        with Image.open(path) as image:
            image = image.convert(self.mode)
            if image.size != (self.size, self.size):
                image = image.resize((self.size, self.size), Image.BILINEAR)
            array = np.asarray(image, dtype=np.float32) / 255.0
        array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)
        return torch.from_numpy(np.ascontiguousarray(array)), label


def child_reference(args) -> None:
    import torch
    import torch.nn as nn
    from torch.utils.data import DataLoader, Subset

    _first_step_hook(args.t0)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    count, size, grayscale, _ = SETS[args.set]
    data = FolderDataset(args.folder, size, grayscale)
    order = torch.randperm(len(data)).tolist()
    n_val = int(round(len(data) * VAL_SPLIT))
    train = DataLoader(Subset(data, order[n_val:]), batch_size=BATCH, shuffle=True,
                       num_workers=2, persistent_workers=True)
    val = DataLoader(Subset(data, order[:n_val]), batch_size=256, num_workers=2,
                     persistent_workers=True)
    model = reference_module(args.set)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        for x, y in train:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in val:
                correct += int((model(x).argmax(1) == y).sum())
        print(json.dumps({"event": "epoch", "epoch": epoch, "val_accuracy": correct / n_val,
                          "seconds": round(time.perf_counter() - start, 3)}), flush=True)


# ---- measuring a run -----------------------------------------------------------------------------

def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            pass
    return pids


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(kind: str, name: str, folder: Path, project: Path, epochs: int, threads: int) -> dict:
    t0 = time.time()
    cmd = [sys.executable, __file__, "--child", kind, "--set", name, "--folder", str(folder),
           "--project", str(project), "--epochs", str(epochs), "--threads", str(threads),
           "--t0", repr(t0)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tempfile.gettempdir())
    peak = [0]

    def sample():
        while proc.poll() is None:
            peak[0] = max(peak[0], sum(_pss_kb(p) for p in _tree(proc.pid)))
            time.sleep(0.05)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{kind} on {name} failed (exit {proc.returncode}):\n{err[-3000:]}")
    seconds = [json.loads(line)["seconds"] for line in out.splitlines()
               if line.startswith("{") and json.loads(line).get("event") == "epoch"]
    first = [json.loads(line)["first_step"] for line in err.splitlines()
             if line.startswith('{"first_step"')]
    epochs_s = [b - a for a, b in zip([0.0] + seconds, seconds)]
    accuracy = [json.loads(line).get("val_accuracy") for line in out.splitlines()
                if line.startswith('{"event": "epoch"')][-1]
    return {"first_step": first[0], "epoch1": epochs_s[0],
            "epoch": statistics.median(epochs_s[1:]) if len(epochs_s) > 1 else epochs_s[0],
            "peak_mb": peak[0] / 1024, "val_accuracy": accuracy}


def bench(name: str, root: Path, reps: int, epochs: int, threads: int) -> dict:
    folder = make_folder(root, name)
    project = root / f"bench_{name}.layerlab.json"
    write_project(folder, name, epochs, project)
    count, size, _, suffix = SETS[name]
    print(f"\n{name}: {count:,} {size}x{size} {suffix} images, {epochs} epochs, batch {BATCH}, "
          f"{reps} interleaved pairs", flush=True)
    print(f"  {'run':<10}{'first step s':>13}{'epoch 1 s':>11}{'epoch s':>9}{'peak MB':>9}"
          f"{'val acc':>9}")
    pairs = []
    for rep in range(reps):
        order = ("layerlab", "reference") if rep % 2 == 0 else ("reference", "layerlab")
        result = {}
        for kind in order:
            result[kind] = run(kind, name, folder, project, epochs, threads)
            r = result[kind]
            print(f"  {kind:<10}{r['first_step']:>13.2f}{r['epoch1']:>11.2f}{r['epoch']:>9.2f}"
                  f"{r['peak_mb']:>9.0f}{r['val_accuracy']:>9.3f}", flush=True)
        pairs.append(result)
    ratio = statistics.median(p["layerlab"]["epoch"] / p["reference"]["epoch"] for p in pairs)
    ratio1 = statistics.median(p["layerlab"]["epoch1"] / p["reference"]["epoch1"]
                               for p in pairs)
    first = statistics.median(p["layerlab"]["first_step"] for p in pairs)
    first_ref = statistics.median(p["reference"]["first_step"] for p in pairs)
    peak = max(p["layerlab"]["peak_mb"] for p in pairs)
    peak_ref = max(p["reference"]["peak_mb"] for p in pairs)
    print(f"  epoch time layerlab / reference (median of pairs): {ratio:.3f} "
          f"(first epoch {ratio1:.3f})  target <= 1.05")
    print(f"  first step: layerlab {first:.2f} s, reference {first_ref:.2f} s  target <= 5 s")
    print(f"  peak memory (PSS of the process tree): layerlab {peak:.0f} MB, "
          f"reference {peak_ref:.0f} MB" + ("  target <= 1536 MB" if name == "jpeg" else ""))
    return {"ratio": ratio, "first": first, "peak": peak}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--only", choices=sorted(SETS))
    p.add_argument("--root", default=os.path.join(tempfile.gettempdir(),
                                                  "layerlab_bench_data"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--child", choices=("layerlab", "reference"), help=argparse.SUPPRESS)
    p.add_argument("--set", help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    p.add_argument("--project", help=argparse.SUPPRESS)
    p.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == "layerlab":
        return child_layerlab(args)
    if args.child == "reference":
        return child_reference(args)
    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, {args.threads} compute "
          f"thread(s) per process, 2 reader processes each")
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    for name in ([args.only] if args.only else list(SETS)):
        bench(name, root, args.reps, args.epochs, args.threads)


if __name__ == "__main__":
    main()
