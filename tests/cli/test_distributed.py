"""``train --distributed``: two processes under torchrun, and the per-rank sharding by itself."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DistributedSampler

from engine.cli import main as cli_main
from engine.examples import EXAMPLES_DIR
from engine.project import load_project
from engine.training import Trainer
from engine.training.distributed import DistributedStrategy, ShardSampler

ROOT = Path(__file__).resolve().parents[2]
torch.set_num_threads(1)


def small_copy(tmp_path: Path, example: str, n_samples: int) -> Path:
    data = json.loads((EXAMPLES_DIR / f"{example}.layerlab.json").read_text())
    data["dataset"]["params"] = {**data["dataset"].get("params", {}), "n_samples": n_samples}
    path = tmp_path / f"{example}.layerlab.json"
    path.write_text(json.dumps(data))
    return path


def torchrun(*args, nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node", str(nproc), "main.py", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_torchrun_trains_two_processes_and_rank_0_alone_reports(tmp_path, capsys):
    # 405 samples: 324 to train (162 per rank), 81 to validate (41 + 40: unequal shards)
    project = small_copy(tmp_path, "perceptron", 405)
    out = tmp_path / "ddp"
    proc = torchrun("train", str(project), "--distributed", "--epochs", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = json_lines(proc.stdout)
    assert [line["event"] for line in lines] == ["epoch", "epoch", "done"]
    assert [line["epoch"] for line in lines[:2]] == [1, 2]
    assert lines[-1] == {"event": "done", "out": str(out)}
    for line in lines[:2]:
        assert all(math.isfinite(line[k]) for k in ("train_loss", "val_loss", "val_accuracy"))
    # each rank took ceil(162 / 16) = 11 steps an epoch, half of one process's 21
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 2 * 11

    assert cli_main(["train", str(project), "--epochs", "1", "--out", str(tmp_path / "one")]) == 0
    capsys.readouterr()
    ddp = torch.load(out / "weights.pt", weights_only=True)
    single = torch.load(tmp_path / "one" / "weights.pt", weights_only=True)
    assert {m: {k: v.shape for k, v in s.items()} for m, s in ddp.items()} == \
        {m: {k: v.shape for k, v in s.items()} for m, s in single.items()}

    # the reported validation figures are those of the whole validation set
    trainer = Trainer(load_project(project), device="cpu")
    trainer.models["model"].load_state_dict(ddp["model"])
    with torch.no_grad():
        full = trainer.task.evaluate()
    assert lines[1]["val_loss"] == pytest.approx(full["val_loss"], rel=1e-5)
    assert lines[1]["val_accuracy"] == pytest.approx(full["val_accuracy"], rel=1e-5)


def test_distributed_without_torchrun_trains_in_one_process_with_a_note(tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    project = small_copy(tmp_path, "perceptron", 200)
    assert cli_main(["train", str(project), "--epochs", "1", "--distributed",
                     "--out", str(tmp_path / "o")]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "data: blobs: in memory (<0.1 MB fits the memory budget of 2048 MB)",
        "note: --distributed outside torchrun (no WORLD_SIZE in the environment); "
        "training in one process"]
    assert [line["event"] for line in json_lines(captured.out)] == ["epoch", "done"]


def test_a_half_set_up_environment_is_a_usage_error(tmp_path, capsys, monkeypatch):
    for name in ("RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    project = small_copy(tmp_path, "perceptron", 200)
    assert cli_main(["train", str(project), "--distributed", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "RANK, MASTER_ADDR, MASTER_PORT are not" in err and "torchrun" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("n, world", [(100, 2), (101, 2), (10, 3), (7, 4), (2, 5)])
def test_shards_are_distributed_samplers_order(n, world):
    for rank in range(world):
        for epoch in (0, 3):
            ours = ShardSampler(n, world, rank, seed=11)
            ours.set_epoch(epoch)
            theirs = DistributedSampler(range(n), num_replicas=world, rank=rank, seed=11)
            theirs.set_epoch(epoch)
            assert ours.indices().tolist() == list(theirs)


def rank_batches(n: int, world: int, epoch: int, batch_size: int = 16) -> list[list]:
    shards = []
    with torch.random.fork_rng():  # batches() reseeds this rank's random stream
        for rank in range(world):
            strategy = DistributedStrategy("cpu", rank=rank, world_size=world)
            strategy.set_epoch(epoch)
            batches = strategy.batches(n, batch_size, torch.Generator().manual_seed(5), "cpu")
            assert len(batches) == strategy.steps_per_epoch(n, batch_size)
            shards.append(torch.cat(batches).tolist())
    return shards


def test_rank_shards_are_disjoint_and_cover_the_data():
    shards = rank_batches(320, 2, epoch=1)
    assert set(shards[0]).isdisjoint(shards[1])
    assert sorted(shards[0] + shards[1]) == list(range(320))
    assert rank_batches(320, 2, epoch=1) == shards  # the same on every call for an epoch
    assert rank_batches(320, 2, epoch=2) != shards  # a new order every epoch


def test_uneven_data_pad_every_rank_to_the_same_number_of_samples():
    shards = rank_batches(101, 3, epoch=1)
    assert [len(s) for s in shards] == [34, 34, 34]
    everything = sum(shards, [])
    assert set(everything) == set(range(101))
    assert len(everything) - len(set(everything)) == 1  # one sample repeated as padding


@dataclasses.dataclass
class Split:
    """The two dataset fields that are split between ranks."""

    x_val: torch.Tensor
    y_val: torch.Tensor


def test_each_rank_validates_its_own_contiguous_part():
    full = Split(torch.arange(81.0).reshape(81, 1), torch.arange(81))
    parts = [DistributedStrategy("cpu", rank=r, world_size=2).shard_validation(full)
             for r in range(2)]
    assert [len(p.y_val) for p in parts] == [41, 40]
    assert torch.equal(torch.cat([p.x_val for p in parts]), full.x_val)
    assert torch.equal(torch.cat([p.y_val for p in parts]), full.y_val)
    tiny = Split(torch.zeros(1, 1), torch.zeros(1))  # fewer samples than ranks: all of it
    assert DistributedStrategy("cpu", rank=1, world_size=2).shard_validation(tiny) is tiny
