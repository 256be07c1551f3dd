"""End to end: grids through papermill notebooks into tables, resume, isolation, workers."""

import json
import shutil

import pandas as pd
import pytest

from bench.cli import main

TINY = """
name: tiny
seeds: [0, 1]
datasets:
  - digits
target: {model: mlp, epochs: 4}
evaluator: {epochs: 3}
defenses:
  - none
  - label-only
attacks:
  - mi-face: {steps: 40}
  - hill-climb: {budget: 200}
"""

BROKEN_PLUGIN = '''
from dataclasses import dataclass
from bench.attacks.base import InversionAttack
from bench.oracle import ThreatModel
from bench.registry import attack

@attack("explodes")
class Explodes(InversionAttack):
    """Always fails: the grid must record it and go on."""
    threat_model = ThreatModel.BLACK_BOX
    def run(self, oracle, identities, public, rng):
        oracle.probabilities(public[:3])
        raise RuntimeError("boom in plugin")
'''


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    assert main(["run", "smoke", "--results", str(root), "--no-progress"]) == 0
    return root / "smoke"


def test_smoke_grid_writes_the_design_layout(smoke):
    manifest = json.loads((smoke / "manifest.json").read_text())
    assert manifest["statuses"] == {"done": 3} and manifest["packages"]["torch"].startswith("2.13.0")
    assert manifest["code_version"] and manifest["finished"] and manifest["code_versions"] == [manifest["code_version"]]
    cells = pd.read_parquet(smoke / "tables" / "cells.parquet")
    metrics = pd.read_parquet(smoke / "tables" / "metrics.parquet")
    assert pd.read_csv(smoke / "tables" / "metrics.csv").shape == metrics.shape
    assert set(cells["attack"].str.split("(").str[0]) == {"mi-face", "hill-climb", "public-lookalike"}
    assert (cells["status"] == "done").all() and cells["evaluator_acc"].gt(0.9).all()
    assert (cells["evaluator_data"] == "disjoint").all() and cells["evaluator_mean_acc"].notna().all()
    for col in ("dataset", "defense", "attack", "threat_model", "seed", "target_class", "metric", "value"):
        assert col in metrics.columns
    alls = metrics[metrics.target_class == "all"].pivot_table(index="attack", columns="metric", values="value")
    assert alls["acc@1"].min() > 0.3  # well above chance (0.1) for both attacks
    assert alls.loc[alls.index.str.startswith("hill-climb"), "queries"].item() == 2000 * 10
    assert len(metrics[(metrics.metric == "acc@1") & (metrics.target_class != "all")]) == 3 * 10
    baseline = alls.loc[alls.index.str.startswith("public-lookalike"), "acc@1"].item()
    for attack in ("mi-face", "hill-climb"):
        row = alls.loc[alls.index.str.startswith(attack)]
        assert row["lift"].item() == pytest.approx(row["acc@1"].item() - baseline)
    jobs = list((smoke / "jobs").glob("*/experiment.ipynb"))
    assert len(jobs) == 1 and (jobs[0].parent / "kernel.log").exists()
    nb = json.loads(jobs[0].read_text())
    assert any(o.get("output_type") == "display_data" for c in nb["cells"] for o in c.get("outputs", []))
    for cid in cells["cell_id"]:
        d = smoke / "cells" / cid
        assert {"record.json", "metrics.parquet", "reconstructions.npz", "grid.png", "trace.parquet"} <= {
            p.name for p in d.iterdir()}
    assert not list(smoke.rglob("*.tmp*"))


def copy_of(smoke, root):
    """The smoke grid and its artifact cache copied under ``root``; its cells table."""
    shutil.copytree(smoke, root / "smoke")
    shutil.copytree(smoke.parent / ".cache", root / ".cache")
    return root / "smoke", pd.read_parquet(root / "smoke" / "tables" / "cells.parquet").set_index("cell_id")


def test_resume_reruns_only_the_deleted_cell(smoke, tmp_path):
    grid, before = copy_of(smoke, tmp_path)
    victim = before.index[0]
    (grid / "cells" / victim / "record.json").unlink()
    assert main(["run", "smoke", "--results", str(tmp_path), "--no-progress"]) == 0
    after = pd.read_parquet(grid / "tables" / "cells.parquet").set_index("cell_id")
    assert after.loc[victim, "started"] != before.loc[victim, "started"]
    others = [c for c in before.index if c != victim]
    assert (after.loc[others, "started"] == before.loc[others, "started"]).all()
    # same config and seed, same numbers
    for col in ("acc@1", "ssim", "queries"):
        assert after.loc[victim, col] == pytest.approx(before.loc[victim, col])
    # nothing left to do: a third run runs nothing and keeps the tables
    assert main(["run", "smoke", "--results", str(tmp_path), "--no-progress"]) == 0
    again = pd.read_parquet(grid / "tables" / "cells.parquet").set_index("cell_id")
    assert (again["started"] == after["started"]).all()


def test_cells_another_code_version_wrote_are_rerun_unless_kept(smoke, tmp_path):
    grid, before = copy_of(smoke, tmp_path)
    stale = before.index[0]
    path = grid / "cells" / stale / "record.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "code_version": "v0-old", "code_fingerprint": "0ld"}))
    assert main(["run", "smoke", "--results", str(tmp_path), "--no-progress", "--keep-stale"]) == 0
    kept = pd.read_parquet(grid / "tables" / "cells.parquet").set_index("cell_id")
    assert kept.loc[stale, "started"] == before.loc[stale, "started"]
    manifest = json.loads((grid / "manifest.json").read_text())
    assert "v0-old" in manifest["code_versions"] and len(manifest["code_versions"]) == 2
    assert "written by 2 code versions" in (grid / "report.html").read_text()
    assert main(["run", "smoke", "--results", str(tmp_path), "--no-progress"]) == 0  # default: re-run it
    after = pd.read_parquet(grid / "tables" / "cells.parquet").set_index("cell_id")
    assert after.loc[stale, "started"] != before.loc[stale, "started"]
    assert after.loc[stale, "code_fingerprint"] == before.loc[stale, "code_fingerprint"]
    others = [c for c in before.index if c != stale]
    assert (after.loc[others, "started"] == before.loc[others, "started"]).all()
    assert json.loads((grid / "manifest.json").read_text())["code_versions"] == [record["code_version"]]


def test_artifact_cache_keys_carry_the_code_fingerprint(monkeypatch):
    from bench.models import cache

    key = {"kind": "target", "seed": 0}
    before = cache.content_hash(key)
    monkeypatch.setattr(cache, "code_fingerprint", lambda *parts: "changed-training-code")
    assert cache.content_hash(key) != before


def test_failing_plugin_cell_is_isolated(tmp_path, capsys):
    plugin = tmp_path / "explodes.py"
    plugin.write_text(BROKEN_PLUGIN)
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.replace("seeds: [0, 1]", "seeds: [0]") + "  - explodes\n")
    code = main(["run", str(config), "--results", str(tmp_path), "--plugin", str(plugin), "--no-progress"])
    assert code == 1
    assert "FAILED digits / mlp / none / explodes / seed 0: RuntimeError: boom in plugin" in capsys.readouterr().err
    cells = pd.read_parquet(tmp_path / "tiny" / "tables" / "cells.parquet")
    cells = cells[cells.defense == "none"].set_index("attack")
    assert cells.loc["explodes", "status"] == "failed"
    assert (cells.drop(index="explodes")["status"] == "done").all()
    record = json.loads((tmp_path / "tiny" / "cells" / cells.loc["explodes", "cell_id"] / "record.json").read_text())
    assert "boom in plugin" in record["traceback"]
    assert list((tmp_path / "tiny" / "jobs").glob("*/experiment.ipynb"))


BROKEN_DATASET = '''
from bench.data.base import Dataset
from bench.registry import dataset

@dataset("unreadable")
class Unreadable(Dataset):
    """Fails to load: the job's target cannot be trained."""
    def load(self):
        raise OSError("disk on fire")
'''


def test_job_that_cannot_train_fails_all_its_cells(tmp_path):
    plugin = tmp_path / "unreadable.py"
    plugin.write_text(BROKEN_DATASET)
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.replace("seeds: [0, 1]", "seeds: [0]").replace("  - digits", "  - digits\n  - unreadable"))
    assert main(["run", str(config), "--results", str(tmp_path), "--plugin", str(plugin), "--no-progress"]) == 1
    cells = pd.read_parquet(tmp_path / "tiny" / "tables" / "cells.parquet").set_index("dataset")
    assert (cells.loc["unreadable", "status"] == "failed").all()
    assert cells.loc["unreadable", "error"].str.contains("job failed before this cell finished: OSError: disk on fire").all()
    assert set(cells.loc["digits", "status"]) == {"done", "refused"}


def test_workers_give_the_same_tables_as_one_process(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    assert main(["run", str(config), "--results", str(tmp_path / "one"), "--no-progress"]) == 0
    assert main(["run", str(config), "--results", str(tmp_path / "two"), "--workers", "2", "--no-progress"]) == 0
    one = pd.read_parquet(tmp_path / "one" / "tiny" / "tables" / "metrics.parquet")
    two = pd.read_parquet(tmp_path / "two" / "tiny" / "tables" / "metrics.parquet")
    key = ["cell_id", "target_class", "metric"]
    one = one[one.metric != "attack_seconds"].sort_values(key).reset_index(drop=True)
    two = two[two.metric != "attack_seconds"].sort_values(key).reset_index(drop=True)
    assert len(one) == len(two) > 0
    pd.testing.assert_frame_equal(one, two)
    cells = pd.read_parquet(tmp_path / "one" / "tiny" / "tables" / "cells.parquet").set_index(["defense", "attack"])
    refused = cells.loc[("label-only", "hill-climb(budget=200)")]
    assert (refused["status"] == "refused").all() and refused["error"].str.contains("leave only label-only").all()
    white = cells.loc[("label-only", "mi-face(steps=40)")]
    assert (white["status"] == "done").all() and white["note"].str.contains("output and access defenses do not apply").all()
    assert (cells["oracle_acc"] <= cells["test_acc"] + 1e-9).all()


FRAGILE_PLUGIN = '''
import multiprocessing
from bench.attacks.hill_climb import HillClimb
from bench.registry import attack

if multiprocessing.parent_process() is not None:
    raise ImportError("cannot load inside a worker process")

@attack("fragile")
class Fragile(HillClimb):
    """Loads in the driver only: its workers die before the notebook starts."""
'''


def test_a_worker_that_dies_fails_its_cells_not_the_grid(tmp_path, capsys):
    plugin = tmp_path / "fragile.py"
    plugin.write_text(FRAGILE_PLUGIN)
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.replace("seeds: [0, 1]", "seeds: [0]").replace("  - label-only\n", ""))
    assert main(["run", str(config), "--results", str(tmp_path), "--plugin", str(plugin), "--no-progress"]) == 1
    cells = pd.read_parquet(tmp_path / "tiny" / "tables" / "cells.parquet")
    assert (cells["status"] == "failed").all()
    assert cells["error"].str.contains("worker process failed: PluginError").all()
    assert "cannot load inside a worker process" in capsys.readouterr().err


def test_kernel_log_lines_go_to_the_job_log_not_the_terminal(tmp_path, capfd):
    import subprocess
    import sys

    from bench.files import stderr_to

    with stderr_to(tmp_path / "kernel.log"):  # a started kernel inherits the redirected stderr
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('[IPKernelApp] WARNING | noise')"], check=True)
    assert "noise" not in capfd.readouterr().err
    assert "[IPKernelApp] WARNING | noise" in (tmp_path / "kernel.log").read_text()
