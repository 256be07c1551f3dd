"""A public conformance check for attack and defense plugins; run it in a plugin's own CI:

    from bench.testing import check_attack, check_defense
    check_attack("my-attack", {"budget": 50})
    check_defense("my-defense")

It trains a small target on scikit-learn's digits once per process (a few seconds) and
checks what every Sieve cell relies on. Each check raises AssertionError naming the problem.
``check_attack`` also holds ``--plugin`` files and entry-point packages to the import
contract that pyproject.toml's import-linter run enforces on ``bench/attacks/``.
"""

from __future__ import annotations

import ast
import importlib.util
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from bench.attacks.base import AttackRefused
from bench.attacks.membership import Population
from bench.config import parse_entry
from bench.data.base import DataSplits, Split
from bench.data.digits import Digits
from bench.defenses.base import Stage
from bench.membership.challenge import challenge_set
from bench.membership.shadow import shadow_trainer
from bench.models.architectures import Classifier
from bench.models.generative import GanPrior, PriorPlan, train_gan
from bench.models.training import TrainingPlan, build, fit
from bench.oracle import Oracle, ThreatModel

_LOWER = {ThreatModel.WHITE_BOX: ThreatModel.BLACK_BOX, ThreatModel.BLACK_BOX: ThreatModel.LABEL_ONLY}
# what an attack may not import, directly or through other modules (pyproject.toml's import-linter contract)
_OFF_LIMITS = ("bench.models", "bench.metrics", "bench.data", "bench.experiment", "bench.runner")


@lru_cache(maxsize=1)
def fixture() -> tuple[DataSplits, Classifier]:
    """Digits and a small MLP target trained on them (deterministic)."""
    torch.set_num_threads(1)
    splits = Digits().load()
    model = build("mlp", splits.meta.shape, splits.meta.num_classes, seed=0)
    fit(model, splits.private_train, TrainingPlan(epochs=5, lr=2e-3, batch_size=32), seed=0, desc="conformance target")
    return splits, model


@lru_cache(maxsize=1)
def prior_fixture() -> GanPrior:
    """A small generator prior on the digits' public split (deterministic; a few seconds)."""
    splits, _ = fixture()
    prior = GanPrior(splits.meta.shape, latent_dim=16, width=16)
    train_gan(prior, splits.public.x, PriorPlan(steps=150, batch_size=32, lr=2e-4), seed=0,
              desc="conformance prior")
    return prior


def _oracle(model: Classifier, splits: DataSplits, threat: ThreatModel, budget: int | None) -> Oracle:
    return Oracle(model, threat, splits.meta.num_classes, splits.meta.shape, budget=budget)


def _source(module: str) -> tuple[str, str] | None:
    """A module's Python source and the package its relative imports start from (None: no source)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # ``from pkg import name``: ``pkg.name`` is not a module
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin).read_text(), spec.parent


def _imported(tree: ast.AST, package: str) -> list[str]:
    """Absolute names imported anywhere in ``tree``; ``from a import b`` gives ``a`` and ``a.b``."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names += [module, *(f"{module}.{alias.name}" for alias in node.names)]
    return names


def _off_limits_import(module: str) -> str | None:
    """The first import chain from ``module`` into the packages attacks may not use, or None.

    Follows imports through ``bench`` and the plugin's own top-level package, as import-linter
    follows indirect imports, except into this module (a plugin's tests define attacks beside
    ``from bench.testing import check_attack``). Catches ``import``/``from ... import``
    statements, not ``importlib``/``__import__`` calls on computed names."""
    follow = {"bench", module.split(".")[0]}
    seen, stack = {module, __name__}, [[module]]
    while stack:
        chain = stack.pop()
        found = _source(chain[-1])
        if found is None:
            continue
        for name in _imported(ast.parse(found[0]), found[1]):
            if any(name == p or name.startswith(p + ".") for p in _OFF_LIMITS):
                return " -> ".join([*chain, name])
            if name.split(".")[0] in follow and name not in seen:
                seen.add(name)
                stack.append([*chain, name])
    return None


def check_attack(name: str, params: dict[str, Any] | None = None, seed: int = 0) -> None:
    """The attack's module reaches the target only through the oracle (no imports of models,
    metrics, data or the runner); shapes and range of reconstructions, determinism for a seed,
    exact budget accounting, and refusal — before any query — of an oracle weaker than the
    attack's threat model. An attack that searches a generator prior is handed a small one; a
    membership attack scores a small challenge set with small shadow models."""
    spec = parse_entry({name: params or {}}, "attack", f"conformance of attack '{name}'")
    chain = _off_limits_import(spec.cls.__module__)
    assert chain is None, f"{name}: imports past the oracle ({chain}); attacks may not use {', '.join(_OFF_LIMITS)}"
    if spec.cls.kind == "membership":
        _check_membership(name, spec, seed)
        return
    splits, model = fixture()
    identities = torch.arange(splits.meta.num_classes)
    prior = prior_fixture() if spec.build().uses_prior() else None
    runs = []
    for _ in range(2):
        attack = spec.build()
        oracle = _oracle(model, splits, attack.threat_model, attack.budget_for(len(identities)))
        result = attack.execute(oracle, identities, splits.public.x, seed=seed, prior=prior)
        assert result.reconstructions.shape == (len(identities), *splits.meta.shape), f"{name}: wrong shape"
        assert 0 <= float(result.reconstructions.min()) and float(result.reconstructions.max()) <= 1, f"{name}: range"
        assert result.queries == oracle.queries, f"{name}: result.queries differs from the oracle's count"
        if attack.budget is not None:
            assert oracle.queries <= attack.budget_for(len(identities)), f"{name}: spent more than its budget"
        assert result.checkpoints and result.checkpoints[-1].queries <= result.queries, f"{name}: checkpoints"
        runs.append(result)
    assert torch.equal(runs[0].reconstructions, runs[1].reconstructions), f"{name}: not deterministic for a seed"
    _check_refuses_weaker(name, spec, lambda a, o: a.execute(o, identities, splits.public.x, seed=seed, prior=prior))


def _check_membership(name: str, spec: Any, seed: int) -> None:
    """A membership attack: one finite score per challenge image, every query counted,
    deterministic for a seed, and refusal of a weaker oracle before any query."""
    splits, model = fixture()
    challenge = challenge_set(splits, torch.Generator().manual_seed(seed))
    x, y = challenge.x[:60], challenge.y[:60]
    population = Population(splits.public.x, splits.public.y, train_size=min(len(splits.public), 100))
    with tempfile.TemporaryDirectory(prefix="sieve-conformance-") as cache:
        shadows = shadow_trainer("mlp", splits.meta.shape, splits.meta.num_classes,
                                 TrainingPlan(epochs=2, lr=2e-3, batch_size=64), cache)
        runs = []
        for _ in range(2):
            attack = spec.build()
            oracle = _oracle(model, splits, attack.threat_model, attack.budget_for(splits.meta.num_classes))
            result = attack.infer(oracle, x, y, population, shadows, seed=seed)
            assert result.scores.shape == (len(y),), f"{name}: needs one score per challenge image"
            assert result.queries == oracle.queries > 0, f"{name}: queries not counted by the oracle"
            runs.append(result.scores)
        assert torch.equal(runs[0], runs[1]), f"{name}: not deterministic for a seed"
        _check_refuses_weaker(name, spec, lambda a, o: a.infer(o, x, y, population, shadows, seed=seed))


def _check_refuses_weaker(name: str, spec: Any, run: Callable[[Any, Oracle], object]) -> None:
    """Run the attack against an oracle one threat model below what it needs: it must be refused
    before any query."""
    attack = spec.build()
    weaker = _LOWER.get(attack.weakest_access())
    if weaker is None:
        return
    splits, model = fixture()
    oracle = _oracle(model, splits, weaker, attack.budget_for(splits.meta.num_classes))
    try:
        run(attack, oracle)
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
    elif defense.stage == Stage.TRAINING:  # one short training through the hooks, twice: same weights
        weights = []
        for _ in range(2):
            hooks = [spec.build()]
            net = build("mlp", splits.meta.shape, splits.meta.num_classes, seed=0, hooks=hooks)
            fit(net, splits.private_train, TrainingPlan(epochs=1, lr=1e-3, batch_size=64), seed=0,
                desc=f"conformance {name}", hooks=hooks, public=splits.public)
            assert not net.training, f"{name}: the model must be left in eval mode"
            weights.append(net.state_dict())
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0]), f"{name}: not deterministic"
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
