"""A public conformance check for attack and defense plugins; run it in a plugin's own CI:

    from bench.testing import check_attack, check_defense
    check_attack("my-attack", {"budget": 50})
    check_defense("my-defense")

It trains a small target on scikit-learn's digits once per process (a few seconds) and
checks what every Sieve cell relies on. Each check raises AssertionError naming the problem.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import torch

from bench.attacks.base import AttackRefused
from bench.config import parse_entry
from bench.data.base import DataSplits, Split
from bench.data.digits import Digits
from bench.defenses.base import Stage
from bench.models.architectures import Classifier
from bench.models.training import Recipe, build, fit
from bench.oracle import Oracle, ThreatModel

_LOWER = {ThreatModel.WHITE_BOX: ThreatModel.BLACK_BOX, ThreatModel.BLACK_BOX: ThreatModel.LABEL_ONLY}


@lru_cache(maxsize=1)
def fixture() -> tuple[DataSplits, Classifier]:
    """Digits and a small MLP target trained on them (deterministic)."""
    torch.set_num_threads(1)
    splits = Digits().load()
    model = build("mlp", splits.meta.shape, splits.meta.num_classes, seed=0)
    fit(model, splits.private_train, Recipe(epochs=5, lr=2e-3, batch_size=32), seed=0, desc="conformance target")
    return splits, model


def _oracle(model: Classifier, splits: DataSplits, threat: ThreatModel, budget: int | None) -> Oracle:
    k = splits.meta.num_classes
    return Oracle(model, threat, k, splits.meta.shape, budget=None if budget is None else budget * k)


def check_attack(name: str, params: dict[str, Any] | None = None, seed: int = 0) -> None:
    """Shapes and range of reconstructions, determinism for a seed, exact budget accounting,
    and refusal — before any query — of an oracle weaker than the attack's threat model."""
    splits, model = fixture()
    spec = parse_entry({name: params or {}}, "attack", f"conformance of attack '{name}'")
    targets = torch.arange(splits.meta.num_classes)
    runs = []
    for _ in range(2):
        attack = spec.build()
        oracle = _oracle(model, splits, attack.threat_model, attack.budget)
        result = attack.execute(oracle, targets, splits.public.x, seed=seed)
        assert result.reconstructions.shape == (len(targets), *splits.meta.shape), f"{name}: wrong shape"
        assert 0 <= float(result.reconstructions.min()) and float(result.reconstructions.max()) <= 1, f"{name}: range"
        assert result.queries == oracle.queries, f"{name}: result.queries differs from the oracle's count"
        if attack.budget is not None:
            assert oracle.queries <= attack.budget * len(targets), f"{name}: spent more than its budget"
        assert result.checkpoints and result.checkpoints[-1].queries <= result.queries, f"{name}: checkpoints"
        runs.append(result)
    assert torch.equal(runs[0].reconstructions, runs[1].reconstructions), f"{name}: not deterministic for a seed"
    attack = spec.build()
    weaker = _LOWER.get(attack.weakest_access())
    if weaker is not None:
        oracle = _oracle(model, splits, weaker, attack.budget)
        try:
            attack.execute(oracle, targets, splits.public.x, seed=seed)
        except AttackRefused:
            assert oracle.queries == 0, f"{name}: queried before refusing"
        else:
            raise AssertionError(f"{name}: ran against a {weaker.value} oracle it cannot use")


def check_defense(name: str, params: dict[str, Any] | None = None) -> None:
    """The defense declares a stage and does that stage's job with well-formed outputs."""
    splits, model = fixture()
    spec = parse_entry({name: params or {}}, "defense", f"conformance of defense '{name}'")
    defense = spec.build()
    defense.check(splits.meta.num_classes)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert isinstance(defense.stage, Stage), f"{name}: stage must be a bench.defenses.base.Stage"
    if defense.stage == Stage.DATA:
        out = defense.transform_data(splits.private_train, g())
        assert isinstance(out, Split) and tuple(out.x.shape[1:]) == splits.meta.shape, f"{name}: data shape"
        assert 0 <= float(out.x.min()) and float(out.x.max()) <= 1, f"{name}: data range"
        again = defense.transform_data(splits.private_train, g())
        assert torch.equal(out.x, again.x), f"{name}: data transform not deterministic for a generator"
    elif defense.stage == Stage.TRAINING:
        recipe = Recipe(epochs=3, lr=1e-3, batch_size=32)
        assert isinstance(defense.adjust(recipe), Recipe), f"{name}: adjust must return a Recipe"
    elif defense.stage == Stage.INFERENCE:
        probs = torch.softmax(model(splits.private_test.x), dim=1).detach()
        out = defense.transform_outputs(probs, g())
        assert out.shape == probs.shape, f"{name}: output shape"
        assert 0 <= float(out.min()) and float(out.max()) <= 1, f"{name}: outputs outside [0, 1]"
        assert torch.equal(out, defense.transform_outputs(probs, g())), f"{name}: not deterministic for a generator"
    else:
        guard = defense.guard(splits.private_train.x, splits.private_test.x, g())
        guard.admit(splits.public.x[:1], 0)
        assert isinstance(guard.report(), dict), f"{name}: guard report must be a dict"
