"""Built-in attacks; importing this package registers them."""

from bench.attacks import (  # noqa: F401  (registration side effect)
    hill_climb,
    inversion_net,
    label_only,
    mi_face,
    nes,
    public_lookalike,
)
from bench.attacks.base import Attack, AttackRefused, AttackResult

__all__ = ["Attack", "AttackRefused", "AttackResult"]
