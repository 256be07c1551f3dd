"""Built-in attacks; importing this package registers them."""

from bench.attacks import hill_climb, mi_face  # noqa: F401  (registration side effect)
from bench.attacks.base import Attack, AttackRefused, AttackResult

__all__ = ["Attack", "AttackRefused", "AttackResult"]
