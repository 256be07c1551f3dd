"""Membership inference: challenge sets, metrics against hand-computed cases, and every attack
against an over-fit target (it must find the members) and a target that never saw them (chance).

The targets are small MLPs on scikit-learn's digits: the over-fit one trains 100 epochs on 60
images, which are the challenge set's members; the other trains the same way on 60 other
images, and its challenge set's 300 members are images it never saw, so an AUC away from 0.5
there is an attack reading something other than membership. Shadow models come from one
caching trainer (the job's), so attacks that ask for the same shadow twice train it once.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

from bench.attacks.base import AttackRefused
from bench.attacks.membership import (
    RMIA,
    LabelOnlyMIA,
    LiRA,
    LossThreshold,
    MembershipAttack,
    Population,
    Shadow,
    ShadowModel,
    ShadowTrainer,
)
from bench.data.base import DataSplits, Split
from bench.errors import ConfigError
from bench.membership.challenge import ChallengeSet, challenge_set
from bench.membership.metrics import advantage, auc, membership_rows, roc_points, tpr_at_fpr
from bench.membership.shadow import shadow_trainer
from bench.metrics import scalar_rows
from bench.models.architectures import Classifier
from bench.models.training import TrainingPlan, build, fit
from bench.oracle import Oracle, OracleView, QueryBlocked, ThreatModel
from bench.params import parse_params

SEED = 1
PLAN = TrainingPlan(epochs=100, lr=3e-3, batch_size=32)  # the over-fitting recipe of targets and shadows
OVERFIT_TRAIN, DISJOINT_MEMBERS, DISJOINT_TRAIN = 60, 300, 60

ATTACKS: dict[str, MembershipAttack] = {
    "loss-threshold": LossThreshold(),
    "shadow": Shadow(),
    "lira-offline": LiRA(LiRA.Params(variant="offline")),
    "lira-online": LiRA(LiRA.Params(variant="online")),
    "rmia": RMIA(RMIA.Params(reference_models=2)),
    # on 8×8 digits a one-pixel shift or a flip changes the class: noise alone
    "label-only-mia": LabelOnlyMIA(LabelOnlyMIA.Params(max_shift=0, flip=False, noise=0.2)),
}


def rows_of(x: Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x}


def split_of(digits: DataSplits, idx: Tensor) -> Split:
    return Split(digits.private_train.x[idx], digits.private_train.y[idx])


def train_target(train: Split, seed: int) -> Classifier:
    net = build("mlp", (1, 8, 8), 10, seed)
    fit(net, train, PLAN, seed, desc="membership target")
    return net


class Recorder:
    """A shadow trainer that remembers every image it was handed."""

    def __init__(self, train: ShadowTrainer) -> None:
        self.train = train
        self.seen: list[Tensor] = []

    def __call__(self, x: Tensor, y: Tensor, seed: int) -> ShadowModel:
        self.seen.append(x.clone())
        return self.train(x, y, seed)


@pytest.fixture(scope="module")
def trainer(digits: DataSplits, tmp_path_factory) -> ShadowTrainer:
    return shadow_trainer("mlp", digits.meta.shape, 10, PLAN, tmp_path_factory.mktemp("shadows"))


@pytest.fixture(scope="module")
def public(digits: DataSplits) -> Population:
    """Digits' public data are other samples of the same classes: a population, as the threat
    model has it, for targets of ``OVERFIT_TRAIN`` images."""
    assert digits.membership_population is digits.public
    return Population(digits.public.x, digits.public.y, train_size=OVERFIT_TRAIN)


@pytest.fixture(scope="module")
def scenarios(digits: DataSplits) -> dict[str, tuple[Classifier, ChallengeSet]]:
    """``overfit``: the target trained on the challenge members; ``disjoint``: it trained on none."""
    order = torch.randperm(len(digits.private_train), generator=torch.Generator().manual_seed(SEED))
    overfit = split_of(digits, order[:OVERFIT_TRAIN])
    members = split_of(digits, order[OVERFIT_TRAIN : OVERFIT_TRAIN + DISJOINT_MEMBERS])
    elsewhere = split_of(digits, order[OVERFIT_TRAIN + DISJOINT_MEMBERS :][:DISJOINT_TRAIN])
    rng = torch.Generator().manual_seed(SEED)
    return {
        "overfit": (train_target(overfit, SEED),
                    challenge_set(dataclasses.replace(digits, private_train=overfit), rng)),
        "disjoint": (train_target(elsewhere, SEED + 1),
                     challenge_set(dataclasses.replace(digits, private_train=members), rng)),
    }


def attack_auc(attack: MembershipAttack, scenario: tuple[Classifier, ChallengeSet], trainer: ShadowTrainer,
               public: Population) -> float:
    target, challenge = scenario
    oracle = OracleView(Oracle(target, attack.threat_model, 10, (1, 8, 8)))
    scores = attack.score(oracle, challenge.x, challenge.y, public, trainer, torch.Generator().manual_seed(SEED))
    assert scores.shape == (len(challenge),) and torch.isfinite(scores).all()
    return auc(scores, challenge.member)


# --- attacks --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_finds_the_members_of_an_overfit_target(name, scenarios, trainer, public):
    value = attack_auc(ATTACKS[name], scenarios["overfit"], trainer, public)
    assert value > 0.6, f"{name}: AUC {value:.3f} on an over-fit target"


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_is_at_chance_on_a_target_that_never_saw_the_members(name, scenarios, trainer, public):
    value = attack_auc(ATTACKS[name], scenarios["disjoint"], trainer, public)
    assert abs(value - 0.5) < 0.1, f"{name}: AUC {value:.3f} on a target that never saw a member"


def test_the_disjoint_scenario_holds_no_image_its_target_trained_on(scenarios, digits):
    """Guards the chance test above: a leak here would make 'chance' measure nothing."""
    order = torch.randperm(len(digits.private_train), generator=torch.Generator().manual_seed(SEED))
    trained = rows_of(split_of(digits, order[OVERFIT_TRAIN + DISJOINT_MEMBERS :][:DISJOINT_TRAIN]).x)
    assert not rows_of(scenarios["disjoint"][1].x) & trained
    members = rows_of(scenarios["overfit"][1].x[scenarios["overfit"][1].member])
    assert members and members <= rows_of(split_of(digits, order[:OVERFIT_TRAIN]).x)


def test_offline_lira_never_hands_the_shadow_trainer_a_challenge_image(scenarios, trainer, public):
    target, challenge = scenarios["overfit"]
    members = rows_of(challenge.x[challenge.member])
    for variant in ("offline", "online"):
        recorder = Recorder(trainer)
        attack = LiRA(LiRA.Params(variant=variant))
        attack.score(OracleView(Oracle(target, attack.threat_model, 10, (1, 8, 8))), challenge.x, challenge.y,
                     public, recorder, torch.Generator().manual_seed(SEED))
        handed = [rows_of(x) for x in recorder.seen]
        assert len(handed) == attack.params.shadow_models
        if variant == "offline":
            assert all(not seen & rows_of(challenge.x) for seen in handed)
        else:  # the recorder would see it: online shadows train on every member, half of them each
            assert all(len(seen & members) > 0 for seen in handed)
            assert set().union(*handed) >= members


def test_attacks_are_deterministic_for_a_seed(scenarios, trainer, public):
    target, challenge = scenarios["overfit"]
    for attack in (ATTACKS["label-only-mia"], Shadow(Shadow.Params(shadow_models=1))):
        oracle = OracleView(Oracle(target, attack.threat_model, 10, (1, 8, 8)))
        runs = [attack.score(oracle, challenge.x, challenge.y, public, trainer, torch.Generator().manual_seed(s))
                for s in (3, 3, 4)]
        assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_every_image_asked_about_is_a_counted_query(scenarios, trainer, public):
    target, challenge = scenarios["overfit"]
    n = len(challenge)
    for attack, expected in ((LossThreshold(), n), (LabelOnlyMIA(LabelOnlyMIA.Params(augmentations=5)), 6 * n)):
        oracle = Oracle(target, attack.threat_model, 10, (1, 8, 8))
        result = attack.infer(oracle, challenge.x, challenge.y, public, trainer, seed=0)
        assert oracle.queries == result.queries == expected


def test_an_attacker_a_guard_blocks_has_no_scores_and_says_why(scenarios, trainer, public):
    target, challenge = scenarios["overfit"]

    class StopsAt:
        def admit(self, x, served):
            if served + len(x) > 50:
                raise QueryBlocked("query monitor flagged the client at query 51")

        def report(self):
            return {}

    oracle = Oracle(target, ThreatModel.BLACK_BOX, 10, (1, 8, 8), guards=[StopsAt()])
    result = LabelOnlyMIA(LabelOnlyMIA.Params(augmentations=5)).infer(oracle, challenge.x, challenge.y, public,
                                                                       trainer, seed=0)
    assert result.blocked == "query monitor flagged the client at query 51"
    assert torch.equal(result.scores, torch.zeros(len(challenge), dtype=torch.float64))  # AUC 0.5, no better
    assert LossThreshold().infer(Oracle(target, ThreatModel.BLACK_BOX, 10, (1, 8, 8)), challenge.x, challenge.y,
                                 public, trainer, seed=0).blocked is None


def test_a_weaker_oracle_is_refused_before_any_query(scenarios, trainer, public):
    target, challenge = scenarios["overfit"]
    oracle = Oracle(target, ThreatModel.LABEL_ONLY, 10, (1, 8, 8))
    with pytest.raises(AttackRefused, match="needs a black-box oracle"):
        LiRA().infer(oracle, challenge.x, challenge.y, public, trainer, seed=0)
    assert oracle.queries == 0


def test_attacks_import_no_model_data_or_metric_code():
    """The attacks module stays behind the oracle, as import-linter holds ``bench/attacks/`` to."""
    code = "import sys, bench.attacks.membership; print(' '.join(sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).resolve().parent.parent).stdout.split()
    off_limits = ("bench.models", "bench.metrics", "bench.data", "bench.experiment", "bench.runner")
    assert "bench.attacks.membership" in loaded
    assert [m for m in loaded if m.split(".")[:2] in [o.split(".") for o in off_limits]] == []


def test_label_only_copies_are_shifts_and_flips_of_the_image():
    x = torch.rand((2, 1, 6, 6), generator=torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate")
    shifted = [padded[..., dy : dy + 6, dx : dx + 6] for dy in range(3) for dx in range(3)]
    allowed = shifted + [s.flip(-1) for s in shifted]
    attack = LabelOnlyMIA(LabelOnlyMIA.Params(max_shift=1, flip=True, noise=0.0))
    rng = torch.Generator().manual_seed(0)
    copies = [attack.augment(x, rng) for _ in range(20)]
    assert all(any(torch.equal(c, a) for a in allowed) for c in copies)
    assert len({c.numpy().tobytes() for c in copies}) > 5  # the copies differ


def test_online_lira_needs_two_shadows_per_side():
    with pytest.raises(ConfigError, match="fewer than 2"):
        parse_params(LiRA.Params, {"variant": "online", "shadow_models": 3}, "attack 'lira'")
    assert parse_params(LiRA.Params, {"variant": "offline", "shadow_models": 3}, "attack 'lira'").shadow_models == 3


def test_the_shadow_trainer_refuses_labels_beyond_its_classes(digits, tmp_path):
    train = shadow_trainer("mlp", digits.meta.shape, 10, PLAN, tmp_path)
    with pytest.raises(ValueError, match="outside the target's 10 classes"):
        train(digits.public.x[:4], torch.tensor([0, 1, 2, 10]), 0)


# --- challenge set --------------------------------------------------------------------------


def test_challenge_set_uses_every_non_member_and_is_drawn_from_the_right_splits(digits):
    challenge = challenge_set(digits, torch.Generator().manual_seed(0))
    assert challenge.non_members == len(digits.private_test) + len(digits.evaluator_pool)
    members, non_members = rows_of(challenge.x[challenge.member]), rows_of(challenge.x[~challenge.member])
    assert len(members) == challenge.members > 0 and not members & non_members
    assert members <= rows_of(digits.private_train.x)
    by_split = {"private_test": rows_of(digits.private_test.x), "evaluator_pool": rows_of(digits.evaluator_pool.x)}
    for x, is_member, source in zip(challenge.x, challenge.member, challenge.source):
        if not is_member:
            assert x.numpy().tobytes() in by_split[source]
    counts = challenge.source_counts()
    assert counts == {"private_train": challenge.members, "private_test": len(digits.private_test),
                      "evaluator_pool": len(digits.evaluator_pool)}


def identity_shares(challenge: ChallengeSet, member: bool) -> Tensor:
    side = challenge.y[challenge.member == member]
    return torch.bincount(side, minlength=int(challenge.y.max()) + 1) / len(side)


def test_challenge_set_is_stratified_per_identity(digits):
    """The same mix of identities among members and non-members, up to one image per identity."""
    challenge = challenge_set(digits, torch.Generator().manual_seed(0))
    gap = (identity_shares(challenge, True) - identity_shares(challenge, False)).abs().max()
    assert gap < 1 / challenge.members
    assert challenge.members > 0.9 * len(digits.private_train) * min(  # members are not thinned more than needed
        (challenge.y[~challenge.member] == k).sum() / (digits.private_train.y == k).sum() for k in range(10))


def test_an_over_represented_identity_label_alone_is_at_chance():
    """At x20 the over-represented identity is half the training images; 'the label is 0' must
    not tell members from non-members."""
    from bench.data.synthfaces import SynthFaces

    splits = SynthFaces(SynthFaces.Params(identities=10, images_per_identity=5, test_images=5, evaluator_images=20,
                                          population_images=0, size=16, overrepresent=20)).load()
    assert (splits.private_train.y == 0).float().mean() > 0.6  # the over-representation is there
    challenge = challenge_set(splits, torch.Generator().manual_seed(0))
    assert challenge.non_members == 10 * 25
    assert auc((challenge.y == 0).double(), challenge.member) <= 0.52


def test_challenge_labels_are_the_images_own(digits):
    challenge = challenge_set(digits, torch.Generator().manual_seed(0))
    label = {row.numpy().tobytes(): int(y) for split in (digits.private_train, digits.private_test, digits.evaluator_pool)
             for row, y in zip(split.x, split.y)}
    assert [label[x.numpy().tobytes()] for x in challenge.x] == challenge.y.tolist()


def test_challenge_set_is_shuffled_and_deterministic_for_a_seed(digits):
    a, b, c = (challenge_set(digits, torch.Generator().manual_seed(s)) for s in (0, 0, 1))
    assert torch.equal(a.x, b.x) and torch.equal(a.member, b.member)
    assert not torch.equal(a.member, c.member)
    assert 0.3 < a.member[: len(a) // 2].float().mean() < 0.7  # members are not all first


def test_without_an_evaluator_pool_non_members_are_private_test_images(digits):
    challenge = challenge_set(dataclasses.replace(digits, evaluator_pool=None), torch.Generator().manual_seed(0))
    assert challenge.source_counts()["private_test"] == len(digits.private_test) == challenge.non_members
    assert set(challenge.source_counts()) == {"private_test", "private_train"}


# --- metrics --------------------------------------------------------------------------------

SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
MEMBER = np.array([True, True, False, True, False, False])


def test_auc_and_advantage_match_hand_computed_values():
    # member > non-member in 3 + 3 + 2 of 9 pairs; best TPR - FPR is 2/3 (at 0.8: 2/3 - 0; at 0.6: 1 - 1/3)
    assert auc(SCORES, MEMBER) == pytest.approx(8 / 9)
    assert advantage(SCORES, MEMBER) == pytest.approx(2 / 3)
    assert auc(-SCORES, MEMBER) == pytest.approx(1 / 9)
    assert auc(torch.tensor(SCORES), torch.tensor(MEMBER)) == pytest.approx(8 / 9)


def test_tpr_at_fpr_takes_the_best_threshold_within_the_fpr():
    # 100 non-members scored 0..99; members 99.5, 98.5, 50. One false positive (FPR 1%) allows the
    # threshold 98.5 (non-member 99 above it): 2 of 3 members. FPR 50% reaches down to 50: all three.
    scores = np.concatenate([np.arange(100.0), [99.5, 98.5, 50.0]])
    member = np.arange(103) >= 100
    assert tpr_at_fpr(scores, member, 0.01) == (pytest.approx(2 / 3), None)
    assert tpr_at_fpr(scores, member, 0.5) == (pytest.approx(1.0), None)
    assert math.isnan(tpr_at_fpr(scores, member, 0.005)[0])  # one false positive is FPR 1%: 0.5% needs 200


def test_tpr_at_a_fpr_below_one_false_positive_is_not_available():
    rng = np.random.default_rng(0)
    for non_members, available in ((100, False), (999, False), (1000, True)):
        member = np.arange(non_members + 10) < 10
        value, reason = tpr_at_fpr(rng.normal(size=len(member)) + member, member, 0.001)
        assert math.isnan(value) != available
        assert (reason is None) == available
        if not available:
            assert "1000" in reason and str(non_members) in reason


def test_membership_rows_have_the_scalar_row_shape_and_the_na_rule():
    rows = membership_rows(SCORES, MEMBER, queries=6)
    assert [r["metric"] for r in rows] == ["auc", "tpr@1%fpr", "tpr@0.1%fpr", "advantage", "queries"]
    assert all(set(r) == set(scalar_rows({"x": 1.0})[0]) and r["target_class"] == "all" for r in rows)
    by = {r["metric"]: r for r in rows}
    assert by["auc"]["value"] == pytest.approx(8 / 9) and by["auc"]["error"] is None
    assert by["advantage"]["value"] == pytest.approx(2 / 3)
    assert by["queries"] == {"target_class": "all", "metric": "queries", "value": 6.0, "error": None}
    for name in ("tpr@1%fpr", "tpr@0.1%fpr"):
        assert math.isnan(by[name]["value"]) and "non-members" in by[name]["error"]


def test_a_failing_metric_gives_its_row_with_the_error():
    rows = membership_rows(np.array([0.1, np.nan, 0.3]), np.array([True, False, True]), queries=3)
    assert len(rows) == 5
    assert math.isnan(rows[0]["value"]) and "NaN" in rows[0]["error"]
    assert rows[-1]["value"] == 3.0 and rows[-1]["error"] is None
    one_side = membership_rows(np.array([0.1, 0.2]), np.array([True, True]), queries=2)
    assert "both members and non-members" in one_side[0]["error"]


def test_roc_points_run_from_no_positives_to_all():
    fpr, tpr = roc_points(SCORES, MEMBER)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    assert tpr[fpr == 0].max() == pytest.approx(2 / 3)


# --- in a job -------------------------------------------------------------------------------

JOB = """
name: membership-tiny
datasets: [digits: {train: 0.2}]   # the public samples (the population) outnumber the target's training set
target: {model: mlp, epochs: 60, lr: 0.003}
evaluator: {epochs: 2}
defenses: [none, label-only]
attacks:
  - loss-threshold
  - lira: {shadow_models: 2}
  - label-only-mia: {augmentations: 2, max_shift: 0, flip: false, noise: 0.2}
"""


def test_membership_cells_run_in_the_job_beside_the_defenses(tmp_path, monkeypatch):
    import pandas as pd
    import yaml

    from bench import experiment as ex
    from bench.config import parse_config
    from bench.report import figures
    from bench.results import ResultsDir
    from bench.tables import write_tables

    (job,) = parse_config(yaml.safe_load(JOB)).jobs()
    outcomes = {(o.cell.defense_label, o.cell.attack.name): o for o in ex.run_job(job, tmp_path / "r", tmp_path / "c")}
    done = outcomes[("none", "lira")].record
    assert done["status"] == "done" and done["kind"] == "membership" and done["non_members"] > done["members"] > 0
    assert done["challenge_private_train"] == done["members"] and done["auc"] > 0.5
    assert done["challenge_private_test"] + done["challenge_evaluator_pool"] == done["non_members"]
    assert math.isnan(done["tpr@0.1%fpr"])  # fewer than 1000 non-members: not measurable
    scores = pd.read_parquet(tmp_path / "r" / "cells" / done["cell_id"] / "membership.parquet")
    assert len(scores) == done["members"] + done["non_members"] and scores["member"].sum() == done["members"]
    assert outcomes[("label-only", "lira")].status == "refused"  # probabilities are gone under label-only
    assert outcomes[("label-only", "label-only-mia")].status == "done"
    assert outcomes[("none", "loss-threshold")].record["queries"] == done["members"] + done["non_members"]
    shadows = list((tmp_path / "c").glob("*.pt"))
    ex.run_job(job, tmp_path / "again", tmp_path / "c")
    assert sorted((tmp_path / "c").glob("*.pt")) == sorted(shadows)  # shadows and target reloaded, none retrained

    results = ResultsDir(tmp_path / "r")
    cells, metrics = write_tables(results, [o.cell.cell_id for o in outcomes.values()])
    table = pd.read_parquet(results.tables / "defenses.parquet")
    mia = table[(table["defense"] == "label-only") & table["attack"].str.startswith("label-only-mia")]
    assert {"auc", "Δauc", "tpr@1%fpr", "Δtpr@1%fpr"} <= set(mia["metric"])
    assert mia.loc[mia["metric"] == "Δauc", "mean"].item() == 0  # label-only leaves the labels it reads unchanged
    assert "acc@1" not in set(table["metric"])  # no inversion attack in this grid, no inversion rows
    roc, reason = figures.membership_roc(tmp_path / "r", cells)
    assert roc is not None, reason
    from IPython.display import Image

    from bench.report import explore

    shown = []
    monkeypatch.setattr(explore, "display", shown.append)
    lira = cells[cells["attack"].str.startswith("lira") & (cells["defense"] == "none")].iloc[0]
    explore.show_cell(tmp_path / "r", cells, metrics, pd.DataFrame(columns=["cell_id"]), lira["dataset"],
                      lira["target"], "none", lira["attack"], lira["seed"])
    assert sum(isinstance(o, Image) for o in shown) == 1  # the cell's ROC curve (a membership cell has no grid.png)
    assert figures.leak_map(cells, metrics)[1] == "needs inversion and membership attacks on the same targets"
    assert figures.gallery(tmp_path / "r", cells, "digits")[1] == "no completed inversion attack on digits"
    dp = cells.assign(epsilon=[1.0, 8.0] * 3, defense=["dp-sgd(epsilon=1)", "dp-sgd(epsilon=8)"] * 3)
    assert figures.dp_sweep(dp, metrics)[1] == "no inversion attack on a DP-SGD target"


def test_lira_names_members_at_a_low_fpr_where_the_loss_threshold_cannot(scenarios, trainer, public, digits):
    """The point of LiRA (Carlini et al. 2022): per-image calibration against shadows of the
    target's size finds members at 1 % FPR that one global loss threshold does not. Every one
    of the over-fit target's training images is a member here, beside every image it never saw."""
    target = scenarios["overfit"][0]
    order = torch.randperm(len(digits.private_train), generator=torch.Generator().manual_seed(SEED))
    train, outside = split_of(digits, order[:OVERFIT_TRAIN]), [digits.private_test, digits.evaluator_pool]
    member = torch.cat([torch.ones(len(train), dtype=torch.bool), torch.zeros(sum(map(len, outside)), dtype=torch.bool)])
    x, y = torch.cat([train.x, *(s.x for s in outside)]), torch.cat([train.y, *(s.y for s in outside)])
    assert int((~member).sum()) >= 100  # tpr@1%fpr is measured, not NaN

    def tpr(attack: MembershipAttack) -> float:
        oracle = OracleView(Oracle(target, attack.threat_model, 10, (1, 8, 8)))
        scores = attack.score(oracle, x, y, public, trainer, torch.Generator().manual_seed(SEED))
        return tpr_at_fpr(scores, member, 0.01)[0]

    lira, loss = tpr(LiRA(LiRA.Params(variant="online", shadow_models=8))), tpr(ATTACKS["loss-threshold"])
    assert lira >= 0.1 and lira >= 3 * loss, f"lira tpr@1%fpr {lira:.3f}, loss-threshold {loss:.3f}"
