"""Exceptions across the process boundary: sent by name and message, raised again as the same class.

The attacker's process and the job speak in the oracle's exceptions (a refused budget, a
blocked client, a denied logit) and the attack's own; a name the job does not know comes back
as an :class:`AttackFailed` subclass of that name, so a cell's error reads as it did in process.
"""

from __future__ import annotations

import builtins

from bench.attacks.base import AttackRefused
from bench.errors import ConfigError, PluginError
from bench.oracle import AccessDenied, BudgetExceeded, QueryBlocked


class AttackFailed(RuntimeError):
    """The attacker's process raised, crashed, hung past its timeout or broke the protocol."""


KNOWN: dict[str, type[Exception]] = {cls.__name__: cls for cls in (
    AttackRefused, AttackFailed, AccessDenied, BudgetExceeded, QueryBlocked, ConfigError, PluginError)}


def rebuilt(name: str, message: str) -> Exception:
    """The exception ``name`` with ``message``: a known class, a built-in one, or an AttackFailed named so."""
    cls = KNOWN.get(name) or getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ in ("builtins", "bench.attacks.base",
                                                                                     "bench.attacker.errors",
                                                                                     "bench.oracle", "bench.errors"):
        return cls(message)
    return type(name if name.isidentifier() else "AttackFailed", (AttackFailed,), {})(message)
