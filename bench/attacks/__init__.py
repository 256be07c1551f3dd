"""Built-in attacks; importing this package registers them."""

from bench.attacks import (  # noqa: F401  (registration side effect)
    gmi,
    hill_climb,
    inversion_net,
    kedmi,
    label_only,
    latent_nes,
    membership,
    mi_face,
    nes,
    public_lookalike,
)
from bench.attacks.base import Attack, AttackRefused, AttackResult

__all__ = ["Attack", "AttackRefused", "AttackResult"]
