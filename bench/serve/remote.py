"""``bench attack --url``: one attack cell against a live prediction endpoint.

The endpoint stands where a trained target would (an :class:`~bench.experiment.Endpoint`):
the attacker queries it through an :class:`~bench.serve.client.HttpOracle` with the attack's
budget, and the cell is judged by Sieve's own evaluator for the dataset, so the cell's files
(record.json, metrics.parquet, reconstructions.npz, grid.png, trace.parquet) mean what a grid's
do. The target's accuracy is measured through the endpoint as an honest user sees it, with its
own headers (its own API key), before the attack and never charged to the attacker.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from bench.attacks.base import Attack
from bench.config import CellSpec, EvaluatorSpec, GridConfig, JobSpec, PluginSpec, PriorSpec, TrainSpec, parse_entry
from bench.data.base import DataSplits, Split
from bench.errors import ConfigError
from bench.experiment import CellOutcome, JobContext, load_data, run_cell, train_evaluator, train_panel, train_prior
from bench.files import atomic_write_json
from bench.models.training import balanced_mean
from bench.oracle import QueryBlocked
from bench.results import ResultsDir
from bench.serve.client import HttpAdapter, HttpOracle
from bench.serve.target import select_cell


def remote_cell(dataset: str, attack: PluginSpec, seed: int, config: GridConfig | None,
                target: str | None = None, defenses: Sequence[str] = ()) -> CellSpec:
    """The cell of ``attack`` on ``dataset`` at ``seed`` behind the defense stack the endpoint says
    it runs (``defenses``, names; none: ``none``), so a defended endpoint's cell is never filed as
    an undefended one. A grid ``config`` lends the cell of that dataset, target and stack (its
    dataset parameters, evaluator spec, target spec and label), so the cell id is the grid's.
    Without one, the target is called ``endpoint``: Sieve does not know what it serves."""
    if config is not None:
        return dataclasses.replace(select_cell(config, dataset, defenses, seed, target), attack=attack)
    spec = parse_entry(dataset, "dataset", "--dataset")
    spec.build().check()
    stack = tuple(parse_entry(d, "defense", "--defense") for d in defenses or ["none"])
    if not spec.build().split_given():
        raise ConfigError(f"dataset '{spec.label}' would split its images at random, and Sieve cannot know which "
                          "ones the endpoint's model trained on: name the held-out images (imagefolder: held_out)")
    return CellSpec(spec, stack, attack, seed, TrainSpec(), EvaluatorSpec(), PriorSpec(), "endpoint")


@dataclass
class RemoteTarget:
    """An endpoint in a job's place: the attacker's oracles, and the honest user's accuracies."""

    adapter: HttpAdapter  # the attacker's
    num_classes: int
    input_shape: tuple[int, ...]
    info: dict[str, Any]
    opened: list[HttpOracle] = field(default_factory=list)

    @classmethod
    def measure(cls, adapter: HttpAdapter, user: HttpAdapter, splits: DataSplits) -> RemoteTarget:
        """Measure train and test accuracy through the endpoint with the honest user's ``user`` adapter;
        NaN where an endpoint guard blocks the honest user (a false positive worth seeing)."""
        k, shape = splits.meta.num_classes, tuple(splits.meta.shape)
        with HttpOracle(user, k, shape) as honest:
            info = {"test_acc": _accuracy(honest, splits.private_test),
                    "train_acc": _accuracy(honest, splits.target_train, balanced=True)}
            info["honest_queries"] = honest.queries
        return cls(adapter, k, shape, info)

    def oracle(self, cell: CellSpec, attack: Attack) -> HttpOracle:
        budget = attack.budget_for(self.num_classes)
        self.opened.append(HttpOracle(self.adapter, self.num_classes, self.input_shape, budget))
        return self.opened[-1]

    def close(self) -> None:
        for oracle in self.opened:
            oracle.close()

    def accuracy(self, cell: CellSpec) -> float:
        return self.info["test_acc"]


def _accuracy(oracle: HttpOracle, split: Split, balanced: bool = False) -> float:
    """Top-1 accuracy through the endpoint, computed as a grid computes it in process (``balanced``:
    the mean over classes, as ``train_acc``), so the numbers match to the last bit."""
    try:
        hit = oracle.labels(split.x) == split.y
        return balanced_mean(hit, split.y) if balanced else int(hit.sum()) / len(split.y)
    except QueryBlocked as exc:
        print(f"warning: the honest user was blocked while measuring accuracy: {exc}")
        return math.nan


def run_remote(cell: CellSpec, adapter: HttpAdapter, user: HttpAdapter, results_dir: str | Path,
               cache_dir: str | Path) -> CellOutcome:
    """Run ``cell``'s attack against ``adapter.url`` and write its files under ``results_dir``."""
    job = JobSpec((cell,))
    splits = load_data(job)
    evaluator = train_evaluator(job, splits, cache_dir)
    prior = train_prior([cell], splits, cache_dir)
    target = RemoteTarget.measure(adapter, user, splits)
    ctx = JobContext(job, splits, target, evaluator, prior, cache_dir, train_panel([cell], splits, cache_dir))
    started = datetime.now(timezone.utc).isoformat()
    torch.set_num_threads(1)
    try:
        outcome = run_cell(ctx, cell, results_dir)
    finally:
        target.close()
    atomic_write_json(ResultsDir(results_dir).root / "manifest.json", {
        "kind": "remote", "url": adapter.url, "access": adapter.access, "encoding": adapter.encoding,
        "header_names": sorted(adapter.header_map()), "started": started,
        "finished": datetime.now(timezone.utc).isoformat(), "cell_id": cell.cell_id, **target.info})
    return outcome
