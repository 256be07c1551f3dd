"""Built-in defenses; importing this package registers them."""

from bench.defenses import (  # noqa: F401  (registration side effect)
    access,
    bido,
    data,
    inference,
    mid,
    none,
    training,
    transfer,
)
from bench.defenses.base import Defense, Stage

__all__ = ["Defense", "Stage"]
