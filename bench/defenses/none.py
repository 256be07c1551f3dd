"""The undefended baseline."""

from __future__ import annotations

from bench.defenses.base import OutputDefense
from bench.registry import defense


@defense("none")
class NoDefense(OutputDefense):
    """No defense: the reference every other defense is measured against. It passes the outputs
    through unchanged, and a defense stack counts it at no stage (``inert``)."""

    inert = True
