"""bench.testing over every built-in attack and defense (the same check plugin authors run)."""

import pytest

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

    import torch

    from bench.attacks.base import Attack, AttackResult
    from bench.oracle import ThreatModel
    from bench.registry import ATTACKS

    class Sloppy(Attack):
        threat_model = ThreatModel.BLACK_BOX

        def run(self, oracle, targets, public, budget, rng):
            x = torch.full((len(targets), *oracle.input_shape), random.random())  # unseeded: ignores rng
            oracle.probabilities(x)
            self.checkpoint(oracle, x)
            return AttackResult(x)

    ATTACKS.register("sloppy-test-only")(Sloppy)
    try:
        with pytest.raises(AssertionError, match="not deterministic"):
            check_attack("sloppy-test-only")
    finally:
        ATTACKS._classes.pop("sloppy-test-only")


def readme_plugin(tmp_path, marker: str) -> None:
    """Load the README's example plugin that starts with the comment ``marker`` (e.g. ``# my_attack.py``)."""
    from pathlib import Path

    from bench.registry import load_plugin_file

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = readme.split(f"{marker}\n", 1)[1].split("```", 1)[0]
    (tmp_path / marker[2:]).write_text(code)
    load_plugin_file(tmp_path / marker[2:])


def test_the_readme_attack_example_conforms(tmp_path):
    readme_plugin(tmp_path, "# my_attack.py")
    check_attack("random-guess", {"budget": 50})


def test_the_readme_training_defense_example_conforms(tmp_path):
    readme_plugin(tmp_path, "# my_defense.py")
    check_defense("logit-penalty", {"weight": 0.1})



def test_the_readme_output_defense_example_conforms(tmp_path):
    readme_plugin(tmp_path, "# my_output_defense.py")
    check_defense("temperature", {"t": 2.0})
