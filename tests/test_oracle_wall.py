"""The oracle as a wall: a plugin attack gets only what its threat model allows.

Each cheat is an Attack whose ``run`` tries one route past the oracle; ``execute`` hands it an
OracleView, and the cheat fails with a specific error.
"""

import sys
import types
import warnings

import pytest
import torch
from torch import nn

from bench.attacks.base import AttackResult, InversionAttack
from bench.oracle import AccessDenied, Oracle, OracleView, ThreatModel
from bench.registry import ATTACKS, load_plugin_files
from bench.testing import check_attack

_SKIP = (type, types.ModuleType, torch.Tensor, str, bytes, int, float, bool, type(None))
_FOLLOW = ("__self__", "__func__", "__closure__", "cell_contents", "__wrapped__", "__dict__", "__defaults__",
           "__kwdefaults__", "__globals__", "__slots__", "fget")


def reachable(root: object, depth: int = 6) -> list[object]:
    """What a gc-free walk reaches from ``root``: public and private attributes, slots, ``__dict__``,
    bound ``__self__``/``__func__``, closure cells, ``__wrapped__``, defaults and globals."""
    seen, frontier, found = {id(root)}, [root], [root]
    for _ in range(depth):
        children = []
        for obj in frontier:
            values = [attribute(obj, n) for n in dir(obj) if not n.startswith("__") or n in _FOLLOW]
            if isinstance(obj, (dict, tuple, list)):
                values += list(obj.values() if isinstance(obj, dict) else obj)
            for value in values:
                if id(value) not in seen and not isinstance(value, _SKIP):
                    seen.add(id(value))
                    children.append(value)
        frontier = children
        found += children
    return found


def attribute(obj: object, name: str) -> object:
    try:
        with warnings.catch_warnings():  # the walk touches deprecated attributes on its way
            warnings.simplefilter("ignore")
            return getattr(obj, name)
    except Exception:  # a property that refuses, a slot left empty
        return None


class Cheat(InversionAttack):
    """Runs ``cheat(oracle)`` first, then a single honest query."""

    threat_model = ThreatModel.BLACK_BOX
    cheat = staticmethod(lambda oracle: None)

    def run(self, oracle, identities, public, rng):
        type(self).cheat(oracle)
        x = torch.full((len(identities), *oracle.input_shape), 0.5)
        oracle.labels(x)
        return AttackResult(x)


def cheat_with(route, threat=ThreatModel.BLACK_BOX):
    return type("CheatAttack", (Cheat,), {"name": "cheat", "threat_model": threat, "cheat": staticmethod(route)})()


def make_oracle(model, threat=ThreatModel.BLACK_BOX, budget=50, guards=()):
    return Oracle(model, threat, 10, (1, 8, 8), budget=budget, guards=guards)


def test_the_walk_finds_a_model_held_in_a_closure(tiny_target):
    oracle = make_oracle(tiny_target)
    assert tiny_target in reachable(oracle) and oracle in reachable(lambda: oracle.queries)


@pytest.mark.parametrize("threat", list(ThreatModel))
def test_run_gets_a_view_that_leads_to_no_model_or_oracle(tiny_target, threat):
    seen = []

    def look(oracle):
        seen.append(oracle)
        found = reachable(oracle)
        assert not any(isinstance(o, (Oracle, nn.Module)) for o in found), "reached the oracle or the model"
        for name in ("_model", "model", "_oracle", "oracle", "_transforms", "guards", "budget"):
            assert not hasattr(oracle, name), name
        with pytest.raises(TypeError):
            vars(oracle)

    cheat_with(look, threat).execute(make_oracle(tiny_target, threat), torch.arange(2), None, seed=0)
    assert type(seen[0]) is OracleView and seen[0].threat_model == threat


def test_black_box_gives_no_logits(tiny_target):
    oracle = make_oracle(tiny_target)
    with pytest.raises(AccessDenied, match="black-box oracle does not give logits"):
        cheat_with(lambda o: o.logits(torch.rand(1, 1, 8, 8))).execute(oracle, torch.arange(2), None, seed=0)
    assert oracle.queries == 0


def test_black_box_probabilities_carry_no_gradient(tiny_target):
    def backprop(oracle):
        x = torch.rand(1, 1, 8, 8, requires_grad=True)
        probs = oracle.probabilities(x)
        assert probs.grad_fn is None and not probs.requires_grad
        probs[0, 0].backward()

    with pytest.raises(RuntimeError, match="does not require grad"):
        cheat_with(backprop).execute(make_oracle(tiny_target), torch.arange(2), None, seed=0)


def test_white_box_logits_stay_differentiable(tiny_target):
    def gradient(oracle):
        x = torch.rand(2, 1, 8, 8, requires_grad=True)
        oracle.logits(x).sum().backward()
        assert x.grad is not None and oracle.queries == 2

    oracle = make_oracle(tiny_target, ThreatModel.WHITE_BOX)
    cheat_with(gradient, ThreatModel.WHITE_BOX).execute(oracle, torch.arange(2), None, seed=0)
    assert oracle.queries == 4


@pytest.mark.parametrize("route", [
    lambda o: setattr(o, "budget", 10**9),
    lambda o: setattr(o, "queries", 0),
    lambda o: setattr(o, "remaining", 10**9),
    lambda o: object.__setattr__(o, "budget", 10**9),
    lambda o: delattr(o, "_count"),
], ids=["budget", "queries", "remaining", "object-setattr", "delattr"])
def test_the_budget_cannot_be_raised(tiny_target, route):
    oracle = make_oracle(tiny_target, budget=5)
    oracle.labels(torch.rand(3, 1, 8, 8))
    with pytest.raises(AttributeError):
        cheat_with(route).execute(oracle, torch.arange(2), None, seed=0)
    assert oracle.budget == 5 and oracle.queries == 3


def test_the_view_counts_against_the_oracles_budget(tiny_target):
    def count(oracle):
        oracle.labels(torch.rand(3, 1, 8, 8))
        assert (oracle.queries, oracle.remaining) == (3, 2)

    oracle = make_oracle(tiny_target, budget=5)
    cheat_with(count).execute(oracle, torch.arange(2), None, seed=0)
    assert oracle.queries == 5 and oracle.remaining == 0


def test_the_guards_are_out_of_reach_and_still_see_every_batch(tiny_target):
    class Counter:
        batches = 0

        def admit(self, x, served):
            Counter.batches += 1

        def report(self):
            return {}

    oracle = make_oracle(tiny_target, guards=[Counter()])
    with pytest.raises(AttributeError, match="guards"):
        cheat_with(lambda o: o.guards).execute(oracle, torch.arange(2), None, seed=0)
    cheat_with(lambda o: o.labels(torch.rand(1, 1, 8, 8))).execute(oracle, torch.arange(2), None, seed=0)
    assert Counter.batches == 2


PLUGIN = """
import torch
from bench.attacks.base import AttackResult, InversionAttack
from bench.oracle import ThreatModel
from bench.registry import attack
{cheat}

@attack("{name}")
class Importer(InversionAttack):
    threat_model = ThreatModel.LABEL_ONLY

    def run(self, oracle, identities, public, rng):
        return AttackResult(torch.zeros(len(identities), *oracle.input_shape))
"""


@pytest.mark.parametrize("cheat, chain", [
    ("from bench.models.architectures import Classifier", "-> bench.models.architectures"),
    ("import bench.metrics", "-> bench.metrics"),
    ("from bench import data", "-> bench.data"),
    ("from bench.experiment import build_oracle", "-> bench.experiment"),
    ("import bench.cli", "-> bench.cli -> bench."),  # indirectly, through a bench module that reaches them
])
def test_check_attack_catches_a_plugin_file_importing_past_the_oracle(tmp_path, cheat, chain):
    name = f"wall-importer-{tmp_path.name}"
    (tmp_path / "cheat.py").write_text(PLUGIN.format(cheat=cheat, name=name))
    load_plugin_files([tmp_path / "cheat.py"])
    try:
        with pytest.raises(AssertionError, match=f"{name}: imports past the oracle .*{chain}"):
            check_attack(name)
    finally:
        ATTACKS._classes.pop(name)


def test_check_attack_follows_a_plugin_packages_own_modules(tmp_path, monkeypatch):
    package = tmp_path / "wall_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helpers.py").write_text("from bench.metrics import identification\n")
    (package / "attack.py").write_text(PLUGIN.format(cheat="from .helpers import identification", name="wall-pkg"))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        __import__("wall_pkg.attack")
        with pytest.raises(AssertionError, match=r"wall_pkg.attack -> wall_pkg.helpers -> bench.metrics"):
            check_attack("wall-pkg")
    finally:
        ATTACKS._classes.pop("wall-pkg", None)
        for module in ("wall_pkg", "wall_pkg.attack", "wall_pkg.helpers"):
            sys.modules.pop(module, None)
