"""Built-in defenses; importing this package registers them."""

from bench.defenses import access, data, inference, none, training  # noqa: F401  (registration side effect)
from bench.defenses.base import Defense, Stage

__all__ = ["Defense", "Stage"]
