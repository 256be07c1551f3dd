import pytest
import torch

from bench.attacks.base import AttackRefused
from bench.config import parse_entry
from bench.metrics.identification import top_k_hits
from bench.oracle import Oracle, ThreatModel
from bench.registry import ATTACKS

TINY = {
    "mi-face": {"steps": 60},
    "hill-climb": {"budget": 300, "population": 10},
    "nes": {"budget": 300, "samples": 10},
    "inversion-net": {"budget": 40, "epochs": 60},
    "label-only": {"budget": 300, "points": 8},
    "public-lookalike": {"budget": 40},
    "gmi": {"steps": 60, "restarts": 3},
    "kedmi": {"steps": 150, "samples": 4},
    "latent-nes": {"budget": 300},
}

STOPS_EARLY = {"label-only"}  # once every identity's sphere spans the whole search range


def make(name):
    return parse_entry({name: TINY[name]}, "attack", "test").build()


def oracle_for(attack, model, threat=None):
    budget = None if attack.budget is None else attack.budget * 10
    return Oracle(model, threat or attack.threat_model, 10, (1, 8, 8), budget=budget)


def test_every_builtin_inversion_attack_has_a_tiny_setting():  # membership attacks: tests/test_membership.py
    builtin = {n for n, cls in ATTACKS.items() if cls.__module__.startswith("bench.attacks.")}
    assert {n for n in builtin if ATTACKS.get(n).kind == "inversion"} == set(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_attack_runs_respects_budget_and_is_deterministic(name, tiny_target, tiny_evaluator, digits, tiny_prior):
    targets = torch.arange(10)
    a = make(name)
    o = oracle_for(a, tiny_target)
    prior = tiny_prior if a.uses_prior() else None
    r = a.execute(o, targets, digits.public.x, seed=3, prior=prior)
    assert r.reconstructions.shape == (10, 1, 8, 8)
    assert 0 <= r.reconstructions.min() and r.reconstructions.max() <= 1
    assert r.queries == o.queries > 0 and r.seconds > 0 and r.checkpoints
    assert r.checkpoints[-1].queries == r.queries
    if a.budget is not None:
        assert r.queries <= a.budget * 10  # never more than its budget
        if name not in STOPS_EARLY:
            assert 0.9 * a.budget * 10 <= r.queries  # and spends it
    again = make(name).execute(oracle_for(a, tiny_target), targets, digits.public.x, seed=3, prior=prior)
    assert torch.equal(again.reconstructions, r.reconstructions)
    # the attacks must recover something: well above chance (0.1) by the target itself
    with torch.no_grad():
        hits = (tiny_target(r.reconstructions).argmax(1) == targets).float().mean()
    assert hits >= 0.7


def test_mi_face_stops_at_confidence():
    from bench.attacks.mi_face import MIFace

    class Easy(torch.nn.Module):  # confidence for class k grows with the mean pixel
        def forward(self, x):
            m = x.flatten(1).mean(1, keepdim=True)
            return torch.cat([20 * m, torch.zeros_like(m)], 1)

    a = MIFace(MIFace.Params(steps=500, confidence=0.9, lr=0.1))
    o = Oracle(Easy(), ThreatModel.WHITE_BOX, 2, (1, 4, 4))
    r = a.execute(o, torch.tensor([0]), None, seed=0)
    assert r.queries < 100  # one image per step: stopped long before the 500 steps


def test_attack_refused_when_oracle_cannot_serve_it(tiny_target):
    a = make("mi-face")
    o = oracle_for(a, tiny_target, ThreatModel.BLACK_BOX)
    with pytest.raises(AttackRefused, match="needs a white-box oracle; this cell's defenses leave only black-box"):
        a.execute(o, torch.arange(10), None, seed=0)
    assert o.queries == 0
    h = make("hill-climb")
    with pytest.raises(AttackRefused, match="needs a black-box oracle"):
        h.execute(oracle_for(h, tiny_target, ThreatModel.LABEL_ONLY), torch.arange(10), None, seed=0)


def test_reconstructions_are_judged_by_the_evaluator(tiny_target, tiny_evaluator, digits):
    r = make("mi-face").execute(oracle_for(make("mi-face"), tiny_target), torch.arange(10), None, seed=0)
    assert top_k_hits(tiny_evaluator, r.reconstructions, torch.arange(10), 1).mean() > 0.3


def test_public_lookalike_returns_the_public_image_the_target_finds_most_like_each_identity(tiny_target, digits):
    targets = torch.arange(10)
    pool = digits.public.x[:200]
    a = parse_entry({"public-lookalike": {"budget": 20}}, "attack", "t").build()
    oracle = Oracle(tiny_target, ThreatModel.BLACK_BOX, 10, (1, 8, 8), budget=200)
    r = a.execute(oracle, targets, pool, seed=0)
    with torch.no_grad():
        best = torch.softmax(tiny_target(pool), 1).argmax(0)  # per class, the top-scoring image
    assert torch.equal(r.reconstructions, pool[best]) and r.queries == 200
    labels = oracle_for(a, tiny_target, ThreatModel.LABEL_ONLY)  # also served under label-only
    r = make("public-lookalike").execute(labels, targets, pool, seed=0)
    with torch.no_grad():
        predicted = tiny_target(r.reconstructions).argmax(1)
    found = predicted == targets
    assert found.float().mean() >= 0.9  # a public image labelled as the identity, for (nearly) every one
    assert torch.allclose(r.reconstructions[~found], pool.mean(0).expand_as(r.reconstructions[~found]))
