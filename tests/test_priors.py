"""The generator prior: trained on public data only, handed to the attacks that search it."""

import dataclasses

import pandas as pd
import pytest
import torch
import yaml

from bench import experiment as ex
from bench.attacks.base import AttackRefused
from bench.config import parse_config, parse_entry
from bench.data.base import DataSplits, Split
from bench.models.cache import TrainedModel
from bench.oracle import Oracle, ThreatModel

GRID = """
name: priors-tiny
datasets: [digits]
target: {model: mlp, epochs: 4}
evaluator: {epochs: 3}
prior: {steps: 120, latent_dim: 16, width: 16, batch_size: 32}
attacks:
  - gmi: {steps: 30, restarts: 2}
  - kedmi: {steps: 30, samples: 3}
  - label-only: {basis: generator, budget: 200, points: 8}
  - mi-face: {steps: 20}
"""


def nan_private(splits: DataSplits) -> DataSplits:
    """The same splits with every private image NaN: a prior that touches one is not finite."""
    nan = lambda s: Split(torch.full_like(s.x, float("nan")), s.y)  # noqa: E731
    return dataclasses.replace(splits, private_train=nan(splits.private_train), private_test=nan(splits.private_test),
                               evaluator_pool=nan(splits.evaluator_pool))


def test_prior_trains_on_public_data_only_and_its_samples_vary_in_range(digits, tmp_path):
    cells = parse_config(yaml.safe_load(GRID)).cells()
    trained = ex.train_prior(cells, nan_private(digits), tmp_path)
    assert trained is not None and trained.info["failure"] is None
    x = trained.model.generate(torch.randn(64, 16))
    assert torch.isfinite(x).all() and 0 <= x.min() and x.max() <= 1 and x.shape == (64, 1, 8, 8)
    assert x.std(0).mean() > 0.2 * digits.public.x.std(0).mean()  # not collapsed to one image
    assert not any(p.requires_grad for p in trained.model.parameters())  # attacks never train it
    assert ex.train_prior(cells, digits, tmp_path).cached  # the public split alone is its key
    assert ex.train_prior([c for c in cells if c.attack.name == "mi-face"], digits, tmp_path) is None


def test_prior_attacks_run_in_a_job_with_extras_and_a_sample_sheet(tmp_path):
    config = parse_config(yaml.safe_load(GRID))
    (job,) = config.jobs()
    outcomes = ex.run_job(job, tmp_path / "results", tmp_path / "cache")
    assert [o.status for o in outcomes] == ["done"] * 4, [o.record.get("error") for o in outcomes]
    by_attack = {o.cell.attack.name: o for o in outcomes}
    for name in ("gmi", "kedmi", "label-only"):
        assert (tmp_path / "results" / "cells" / by_attack[name].cell.cell_id / "prior_samples.png").exists()
    assert not (tmp_path / "results" / "cells" / by_attack["mi-face"].cell.cell_id / "prior_samples.png").exists()
    metrics = pd.read_parquet(tmp_path / "results" / "cells" / by_attack["kedmi"].cell.cell_id / "metrics.parquet")
    alls = metrics[metrics.target_class == "all"].set_index("metric")["value"]
    assert 0 <= alls["acc@1:mean"] <= 1 and 0 <= alls["acc@1:samples"] <= 1
    assert "prior" in by_attack["gmi"].cell.to_json() and "prior" not in by_attack["mi-face"].cell.to_json()


def test_a_prior_that_failed_is_a_refused_cell_with_the_reason(tiny_prior):
    attack = parse_entry({"gmi": {}}, "attack", "t").build()
    ctx = ex.JobContext(None, None, None, None, TrainedModel(tiny_prior, {"failure": "the generator collapsed"}, True))
    with pytest.raises(AttackRefused, match="the generator prior failed to train: the generator collapsed"):
        ex.prior_for(ctx, attack)
    assert ex.prior_for(ctx, parse_entry({"label-only": {}}, "attack", "t").build()) is None


def test_an_attack_that_searches_a_prior_is_refused_without_one_before_any_query(tiny_target):
    attack = parse_entry({"latent-nes": {"budget": 20}}, "attack", "t").build()
    oracle = Oracle(tiny_target, ThreatModel.BLACK_BOX, 10, (1, 8, 8))
    with pytest.raises(AttackRefused, match="searches a generator prior"):
        attack.execute(oracle, torch.arange(10), None, seed=0)
    assert oracle.queries == 0


def test_label_only_in_the_generator_space_stays_in_each_class(tiny_target, digits, tiny_prior):
    attack = parse_entry({"label-only": {"basis": "generator", "budget": 300, "points": 8}}, "attack", "t").build()
    oracle = Oracle(tiny_target, ThreatModel.LABEL_ONLY, 10, (1, 8, 8), budget=3000)
    r = attack.execute(oracle, torch.arange(10), digits.public.x, seed=0, prior=tiny_prior)
    found = r.checkpoints[0].info["found"]  # identities whose latent scan found a start in the class
    assert found >= 0.3
    with torch.no_grad():  # every found identity ends where it started: inside its class
        assert (tiny_target(r.reconstructions).argmax(1) == torch.arange(10)).float().mean() >= found
    assert r.queries <= 3000


def test_a_white_box_attacker_sees_the_models_own_probabilities_under_an_output_defense(tiny_target, digits):
    """gmi and kedmi pick their best restart by confidence: under rounding they must still see the
    model's probabilities, as they hold the model (they chose through the rounding before this was so)."""
    rounded_grid = GRID.replace("attacks:", "defenses: [round: {decimals: 1}]\nattacks:\n  - latent-nes")
    cells = {c.attack.name: c for c in parse_config(yaml.safe_load(rounded_grid)).cells()}
    ctx = ex.JobContext(None, digits, TrainedModel(tiny_target, {}, True), None)
    x = digits.public.x[:8]
    white = ex.build_oracle(ctx, cells["gmi"], cells["gmi"].attack.build()).probabilities(x)
    assert torch.allclose(white, torch.softmax(tiny_target(x), 1))
    black = ex.build_oracle(ctx, cells["latent-nes"], cells["latent-nes"].attack.build()).probabilities(x)
    assert torch.equal(black, black.round(decimals=1)) and not torch.allclose(black, white)
