"""The undefended baseline."""

from __future__ import annotations

from bench.defenses.base import Defense, Stage
from bench.registry import defense


@defense("none")
class NoDefense(Defense):
    """No defense: the reference every other defense is measured against."""

    stage = Stage.INFERENCE
