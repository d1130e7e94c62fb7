"""Sweeps on PostgreSQL: two `main.py sweep` processes, started apart as on two machines, share
one study on a real PostgreSQL server (a scratch cluster made by initdb for the test).

Skipped, saying why, where the machine has no PostgreSQL server programs or no psycopg2."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "resources" / "examples"


def _server_programs() -> tuple[str, str] | None:
    for folder in [None, *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]:
        initdb = shutil.which("initdb", path=str(folder) if folder else None)
        pg_ctl = shutil.which("pg_ctl", path=str(folder) if folder else None)
        if initdb and pg_ctl:
            return initdb, pg_ctl
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres():
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed")
    programs = _server_programs()
    if programs is None:
        pytest.skip("no PostgreSQL server programs (initdb, pg_ctl) on this machine")
    initdb, pg_ctl = programs
    # not under tmp_path: pytest's folder is private to this user, and the server may run
    # as its own user
    folder = Path(tempfile.mkdtemp(prefix="layerlab-pg-"))
    folder.chmod(0o755)
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: its own user runs it
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: PostgreSQL cannot be started")
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_user, initdb, "-D", str(folder / "data"), "-A", "trust", "-U",
                    "layerlab"], check=True, capture_output=True, timeout=120)
    subprocess.run([*as_user, pg_ctl, "-D", str(folder / "data"), "-l", str(folder / "log"),
                    "-o", f"-k {folder} -p {port} -c listen_addresses=''", "-w", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql+psycopg2://layerlab@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(folder / "data"), "-m", "fast", "stop"],
                       capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_sweep_processes_share_a_postgresql_study(postgres, tmp_path):
    import optuna

    project = tmp_path / "mlp_spirals.layerlab.json"
    data = json.loads((EXAMPLES / "mlp_spirals.layerlab.json").read_text())
    data["training"]["epochs"] = 3
    data["dataset"].setdefault("params", {})["n_samples"] = 300
    project.write_text(json.dumps(data))
    env = {k: v for k, v in os.environ.items() if k != "LAYERLAB_RUNS_DIR"}
    command = [sys.executable, str(ROOT / "main.py"), "sweep", str(project), "--param",
               "training.optimizer.lr=float:1e-3:5e-2:log", "--param",
               "fc1.out_features=int:8:64", "--trials", "8", "--storage", postgres,
               "--study", "two_machines"]
    workers = [subprocess.Popen(command + ["--seed", str(seed)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for seed in (1, 2)]  # two separate processes, as two machines would start them
    outputs = [w.communicate(timeout=600) for w in workers]
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err
    rows = [json.loads(line) for out, _ in outputs for line in out.splitlines()
            if line.startswith("{")]
    per_worker = [[json.loads(line) for line in out.splitlines()
                   if line.startswith("{") and json.loads(line)["event"] == "trial"]
                  for out, _ in outputs]
    assert all(per_worker)  # both processes trained
    trials = [r for r in rows if r["event"] == "trial"]
    numbers = [r["trial"] for r in trials]
    assert len(numbers) == len(set(numbers))  # no trial twice
    study = optuna.load_study(study_name="two_machines", storage=postgres)
    assert 8 <= len(study.trials) <= 9  # the study's total; both may start the 8th
    assert {t.state for t in study.trials} <= {optuna.trial.TrialState.COMPLETE,
                                                optuna.trial.TrialState.PRUNED}


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path):
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed")
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "sweep", "mlp_spirals",
                          "--param", "training.optimizer.lr=float:1e-3:1e-2", "--trials", "1",
                          "--storage", f"postgresql+psycopg2://bob:secret@/x?host={tmp_path}"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HOME": str(tmp_path)})
    assert out.returncode == 1, out.stderr
    assert out.stderr.startswith("--storage: postgresql+psycopg2://bob:***@/x?host=")
    assert "secret" not in out.stderr and "Traceback" not in out.stderr
