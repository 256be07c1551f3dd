"""The two attack families and the small base they share.

:class:`Attack` holds what every attack has: a threat model, parameters, a budget, and the
refusal of a weaker oracle before any query. :class:`InversionAttack` reconstructs an image per
identity; its sibling ``MembershipAttack`` (``bench.attacks.membership``) scores a challenge
set. A plugin subclasses one family and writes ``run`` (or ``score``); the job dispatches on
the family's ``kind``.

``InversionAttack.execute`` refuses an oracle that cannot serve the attack's threat model before any
query, times the run, stamps the oracle's query count, and checks the reconstructions'
shape and range, so every attack's result means the same thing in the tables. ``run`` gets
an :class:`~bench.oracle.OracleView`, never the Oracle: only what the threat model allows,
with no model, guards or budget to reach. Attacks call
``checkpoint`` as they go: the checkpoints become the query-efficiency trace, and when an
endpoint guard blocks the attacker mid-run, the last checkpoint is what the attacker keeps.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from bench.attacks.latent import GenerativePrior
from bench.oracle import BaseOracle, OracleView, QueryBlocked, ThreatModel
from bench.params import param


class AttackRefused(RuntimeError):
    """The cell's oracle cannot give what the attack needs; recorded, never run."""


@dataclass(frozen=True)
class Checkpoint:
    """The attacker's reconstructions after ``queries`` queries, and what it could see then."""

    queries: int
    reconstructions: Tensor
    info: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class AttackResult:
    """One reconstruction per target identity (K×C×H×W in [0, 1]) and the attack's checkpoints."""

    reconstructions: Tensor
    checkpoints: list[Checkpoint] = field(default_factory=list)
    queries: int = 0
    seconds: float = 0.0
    blocked: str | None = None  # why an endpoint guard stopped the attacker, if it did
    # more images the job judges beside the reconstructions, by name: K×C×H×W (another
    # reconstruction per identity) or K×N×C×H×W (N samples per identity), each an ``acc@1:<name>`` row
    extras: dict[str, Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointParams:
    """The checkpoint cadence a query-based attack's ``Params`` inherit (see ``InversionAttack.checkpoint_due``)."""

    checkpoint_every: int = param(50, help="queries per identity between checkpoints", low=1)


class Attack:
    """What both families share. Subclass :class:`InversionAttack` or ``MembershipAttack``."""

    name: ClassVar[str]
    kind: ClassVar[str]  # the family: "inversion" or "membership"
    threat_model: ClassVar[ThreatModel]
    # the weakest oracle the attack still runs against, in a variant of its own (None: ``threat_model``)
    least_access: ClassVar[ThreatModel | None] = None
    # a reference that infers nothing: the family's other attacks are measured against it
    baseline: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def uses_prior(self) -> bool:
        """Whether the job must train the generator prior and grant it to this attack."""
        return False

    @classmethod
    def weakest_access(cls) -> ThreatModel:
        return cls.least_access or cls.threat_model

    @property
    def budget(self) -> int | None:
        """Queries allowed per target identity (``None``: unlimited, only counted); the job gives
        the oracle this budget, and the attack reads what is left from the oracle."""
        return getattr(self.params, "budget", None)

    def budget_for(self, identities: int) -> int | None:
        """The oracle's budget for a run over ``identities``: the per-identity budget times their number."""
        return None if self.budget is None else self.budget * identities

    def check(self) -> None:
        """Refuse parameter combinations a single range cannot express (raise ConfigError)."""

    def refuse_weaker(self, oracle: BaseOracle) -> None:
        """Raise ``AttackRefused`` — before any query — when ``oracle`` serves less than the attack needs."""
        if not oracle.threat_model.serves(self.weakest_access()):
            raise AttackRefused(
                f"attack '{self.name}' needs a {self.weakest_access().value} oracle; "
                f"this cell's defenses leave only {oracle.threat_model.value} access"
            )


class InversionAttack(Attack):
    """Base of inversion attacks. Subclasses set ``threat_model``, ``Params`` and write ``run``."""

    kind = "inversion"
    needs_public_data: ClassVar[bool] = False
    # searches the latent space of the generator prior the job trains on public data (``self.prior``)
    needs_prior: ClassVar[bool] = False

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._checkpoints: list[Checkpoint] = []
        self._identities = 1
        self.prior: GenerativePrior | None = None

    def uses_prior(self) -> bool:
        """Whether this attack, with these parameters, searches the generator prior."""
        return self.needs_prior

    def run(self, oracle: OracleView, identities: Tensor, public: Tensor | None, rng: torch.Generator) -> AttackResult:
        raise NotImplementedError

    def queries_per_identity(self, oracle: OracleView) -> int:
        """What is left of the oracle's budget, shared over the identities of this run."""
        if oracle.remaining is None:
            raise ValueError(f"attack '{self.name}' spends a query budget; its oracle has none")
        return oracle.remaining // self._identities

    def checkpoint_due(self, oracle: OracleView, every: int) -> bool:
        """Whether ``every`` queries per identity were spent since the last checkpoint (or none was taken)."""
        if not self._checkpoints:
            return True
        return oracle.queries - self._checkpoints[-1].queries >= every * self._identities

    def checkpoint(self, oracle: OracleView, x: Tensor, **info: float) -> None:
        """Record the current reconstructions (one per target identity) after the queries so far."""
        self._checkpoints.append(Checkpoint(oracle.queries, x.detach().clamp(0, 1).clone(), dict(info)))

    def refuse(self, oracle: BaseOracle, public: Tensor | None, prior: GenerativePrior | None) -> None:
        """Raise ``AttackRefused`` before any query: a weaker oracle, no public data, no prior."""
        self.refuse_weaker(oracle)
        if self.needs_public_data and public is None:
            raise AttackRefused(f"attack '{self.name}' needs public data and the dataset has none")
        if self.uses_prior() and prior is None:
            raise AttackRefused(f"attack '{self.name}' searches a generator prior and this cell has none")

    def execute(self, oracle: BaseOracle, identities: Tensor, public: Tensor | None, seed: int,
                prior: GenerativePrior | None = None) -> AttackResult:
        """Run against ``oracle`` for every one of ``identities``; refuse a wrong oracle up front.

        The attack sees ``oracle`` only through an :class:`OracleView`, and the generator
        ``prior`` (trained on public data by the job) as ``self.prior``. An oracle without a
        budget gets the attack's (the job's oracle has it already)."""
        self.refuse(oracle, public, prior)
        if oracle.budget is None and self.budget is not None:
            oracle.budget = oracle.queries + self.budget_for(len(identities))
        self.prior = prior
        rng = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        start_queries = oracle.queries
        view = OracleView(oracle)
        self._checkpoints = []
        self._identities = len(identities)
        start = time.perf_counter()
        try:
            result = self.run(view, identities, public, rng)
        except QueryBlocked as exc:  # the attacker keeps its last checkpoint, or nothing (gray)
            if not self._checkpoints:
                self._checkpoints.append(Checkpoint(oracle.queries, torch.full((len(identities), *oracle.input_shape), 0.5)))
            result = AttackResult(self._checkpoints[-1].reconstructions, blocked=str(exc))
        if not self._checkpoints or self._checkpoints[-1].queries != oracle.queries:
            self.checkpoint(view, result.reconstructions)  # the trace always ends at the result
        result = dataclasses.replace(result, checkpoints=list(self._checkpoints))
        seconds = time.perf_counter() - start
        x = check_reconstructions(self.name, result.reconstructions, (len(identities), *oracle.input_shape))
        return dataclasses.replace(
            result, reconstructions=x.detach().float(), queries=oracle.queries - start_queries, seconds=seconds
        )


def check_reconstructions(name: str, x: Tensor, expected: tuple[int, ...]) -> Tensor:
    """``x`` if it holds ``expected``-shaped finite images in [0, 1]; else a ValueError naming the attack."""
    if tuple(x.shape) != expected:
        raise ValueError(f"attack '{name}' returned reconstructions of shape {tuple(x.shape)}, expected {expected}")
    if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError(f"attack '{name}' returned reconstructions outside [0, 1]")
    return x
