"""bench.testing over every built-in attack and defense (the same check plugin authors run)."""

import pytest
import torch

from bench.oracle import ThreatModel
from bench.registry import ATTACKS, DEFENSES
from bench.testing import check_attack, check_defense

SMALL = {
    "mi-face": {"steps": 30},
    "hill-climb": {"budget": 60},
    "nes": {"budget": 60, "samples": 10},
    "inversion-net": {"budget": 10, "epochs": 5},
    "label-only": {"budget": 60, "points": 4},
    "gmi": {"steps": 20, "restarts": 2},
    "kedmi": {"steps": 20, "samples": 2},
    "latent-nes": {"budget": 60},
    "shadow": {"shadow_models": 1},
    "lira": {"shadow_models": 2},
    "label-only-mia": {"augmentations": 2},
}


@pytest.mark.parametrize("name", ATTACKS.names())
def test_builtin_attack_conforms(name):
    check_attack(name, SMALL.get(name))


@pytest.mark.parametrize("name", DEFENSES.names())
def test_builtin_defense_conforms(name):
    check_defense(name, {"epsilon": 8} if name == "dp-sgd" else None)


def test_conformance_catches_a_nondeterministic_attack():
    import random

    from bench.attacks.base import AttackResult, InversionAttack

    class Sloppy(InversionAttack):
        threat_model = ThreatModel.BLACK_BOX

        def run(self, oracle, identities, public, rng):
            x = torch.full((len(identities), *oracle.input_shape), random.random())  # unseeded: ignores rng
            oracle.probabilities(x)
            self.checkpoint(oracle, x)
            return AttackResult(x)

    ATTACKS.register("sloppy-test-only")(Sloppy)
    try:
        with pytest.raises(AssertionError, match="not deterministic"):
            check_attack("sloppy-test-only")
    finally:
        ATTACKS._classes.pop("sloppy-test-only")


def test_the_readme_attack_example_conforms(readme_plugin):
    readme_plugin("# my_attack.py")
    check_attack("random-guess", {"budget": 50})


@pytest.mark.parametrize("marker, name, params", [
    ("# my_defense.py", "logit-penalty", {"weight": 0.1}),
    ("# my_output_defense.py", "temperature", {"t": 2.0}),
    ("# my_data_defense.py", "posterize", {"levels": 4}),
])
def test_the_readme_defense_examples_conform(readme_plugin, marker, name, params):
    readme_plugin(marker)
    check_defense(name, params)


def test_the_readme_access_defense_example_conforms_and_blocks(readme_plugin):
    from bench.oracle import QueryBlocked
    from bench.registry import DEFENSES

    readme_plugin("# my_access_defense.py")
    check_defense("query-cap", {"limit": 5})
    guard = DEFENSES.get("query-cap")(DEFENSES.get("query-cap").Params(limit=5)).guard(None, None, None)
    guard.admit(torch.zeros(5, 1, 8, 8), 0)
    with pytest.raises(QueryBlocked):
        guard.admit(torch.zeros(1, 1, 8, 8), 5)


def test_the_readme_membership_attack_example_conforms(readme_plugin):
    readme_plugin("# my_membership_attack.py")
    check_attack("top-confidence")


def test_an_attack_outside_both_families_is_refused_at_registration():
    from bench.attacks.base import Attack
    from bench.errors import PluginError
    from bench.registry import attack

    class Orphan(Attack):
        threat_model = ThreatModel.BLACK_BOX

    with pytest.raises(PluginError, match="InversionAttack .* or MembershipAttack"):
        attack("orphan-test-only")(Orphan)
