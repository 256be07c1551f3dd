"""Scale-out and resilience: a real Dask cluster on loopback, a grid killed with SIGKILL and
resumed, and a plugin package discovered through its entry point."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main

BIN = Path(sys.executable).parent
TINY = """
name: tiny
seeds: [0, 1]
datasets: [digits]
target: {model: mlp, epochs: 4}
evaluator: {epochs: 3}
attacks: [{mi-face: {steps: 40}}, {hill-climb: {budget: 200}}]
"""


def metrics_of(grid: Path) -> pd.DataFrame:
    m = pd.read_parquet(grid / "tables" / "metrics.parquet")
    key = ["cell_id", "target_class", "metric"]
    return m[m.metric != "attack_seconds"].sort_values(key).reset_index(drop=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def local_tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    (root / "tiny.yaml").write_text(TINY)
    assert main(["run", str(root / "tiny.yaml"), "--results", str(root), "--no-progress"]) == 0
    return root / "tiny"


def test_grid_on_a_real_dask_cluster_matches_a_local_run(local_tiny, tmp_path):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard"],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        (tmp_path / "tiny.yaml").write_text(TINY)
        assert main(["run", str(tmp_path / "tiny.yaml"), "--results", str(tmp_path), "--scheduler", address,
                     "--no-progress"]) == 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
    pd.testing.assert_frame_equal(metrics_of(tmp_path / "tiny"), metrics_of(local_tiny))


def test_killed_grid_resumes_to_the_same_tables(local_tiny, tmp_path):
    (tmp_path / "tiny.yaml").write_text(TINY)
    cmd = [str(BIN / "bench"), "run", str(tmp_path / "tiny.yaml"), "--results", str(tmp_path), "--no-progress"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cells = tmp_path / "tiny" / "cells"
    deadline = time.time() + 180
    while time.time() < deadline and not list(cells.glob("*/record.json")):
        time.sleep(0.2)
    assert list(cells.glob("*/record.json")), "the grid never finished a cell"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver, its workers and their kernels, mid-grid
    proc.wait(30)
    assert subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600).returncode == 0
    pd.testing.assert_frame_equal(metrics_of(tmp_path / "tiny"), metrics_of(local_tiny))
    assert not [p for p in (tmp_path / "tiny").rglob("*") if ".tmp" in p.name]


PLUGIN_MODULE = '''
from dataclasses import dataclass
import torch
from bench.attacks.base import AttackResult, InversionAttack
from bench.oracle import ThreatModel
from bench.params import param


class MeanOfPublic(InversionAttack):
    """Answers every identity with the mean public image the oracle labels as it."""

    threat_model = ThreatModel.LABEL_ONLY
    needs_public_data = True

    @dataclass(frozen=True)
    class Params:
        budget: int = param(20, help="queries per identity", low=1)

    def run(self, oracle, identities, public, rng):
        x = public[: self.queries_per_identity(oracle) * len(identities)]
        labels = oracle.labels(x)
        out = torch.stack([x[labels == t].mean(0) if (labels == t).any() else torch.full(x.shape[1:], 0.5)
                           for t in identities.tolist()])
        self.checkpoint(oracle, out)
        return AttackResult(out)
'''


def test_entry_point_plugin_is_listed_and_runs_in_a_grid(tmp_path):
    site = tmp_path / "site"
    (site / "sieve_example").mkdir(parents=True)
    (site / "sieve_example" / "__init__.py").write_text(PLUGIN_MODULE)
    dist = site / "sieve_example-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sieve-example\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[bench.attacks]\nmean-of-public = sieve_example:MeanOfPublic\n")
    env = {**os.environ, "PYTHONPATH": str(site)}
    listed = subprocess.run([str(BIN / "bench"), "list", "attacks"], env=env, capture_output=True, text=True)
    assert "mean-of-public  [threat_model: label-only; needs public data]" in listed.stdout
    (tmp_path / "g.yaml").write_text(TINY.replace("seeds: [0, 1]", "seeds: [0]").replace(
        "attacks: [{mi-face: {steps: 40}}, {hill-climb: {budget: 200}}]", "attacks: [mean-of-public]"))
    run = subprocess.run([str(BIN / "bench"), "run", str(tmp_path / "g.yaml"), "--results", str(tmp_path),
                          "--no-progress"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    cells = pd.read_parquet(tmp_path / "tiny" / "tables" / "cells.parquet")
    assert cells["attack"].tolist() == ["mean-of-public"] and cells["acc@1"].iloc[0] > 0.5


def test_broken_entry_point_is_an_error_naming_it(tmp_path):
    site = tmp_path / "site"
    dist = site / "broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[bench.attacks]\nghost = no_such_module:Ghost\n")
    out = subprocess.run([str(BIN / "bench"), "list", "attacks"], env={**os.environ, "PYTHONPATH": str(site)},
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "attack plugin 'ghost' (no_such_module:Ghost, from package broken) failed to import" in out.stderr
