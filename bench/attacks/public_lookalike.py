"""The no-inversion baseline: what the attacker gets from its public data alone."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from bench.attacks.base import AttackResult, InversionAttack
from bench.attacks.priors import best_per_identity
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("public-lookalike")
class PublicLookalike(InversionAttack):
    """The baseline every attack's lift is measured against: per identity, the public image the target finds most like it.

    Black-box: query public images (in a seeded random order, up to the budget) and keep, per
    identity, the one the target scores highest for it. Under a label-only oracle: the first
    one labelled as it (an identity no public image is labelled as gets the public mean). No
    inversion happens, so whatever this recovers the attacker had without inverting; an
    attack's ``lift`` is its acc@1 minus this one's on the same target and defenses.
    Example: ``bench run default --only attack=public-lookalike``.
    """

    threat_model = ThreatModel.BLACK_BOX
    least_access = ThreatModel.LABEL_ONLY
    needs_public_data = True
    baseline = True

    @dataclass(frozen=True)
    class Params:
        budget: int = param(100, help="queries per target identity, spent on distinct public images", low=1)

    def run(self, oracle: OracleView, identities: Tensor, public: Tensor | None, rng: torch.Generator) -> AttackResult:
        assert public is not None
        n = min(len(public), self.queries_per_identity(oracle) * len(identities))
        pool = public[torch.randperm(len(public), generator=rng)[:n]]
        scored = oracle.threat_model.serves(ThreatModel.BLACK_BOX)

        def scores(rows: slice) -> Tensor:  # batch × identities; under labels only a hit counts
            if scored:
                return oracle.probabilities(pool[rows])[:, identities]
            return (oracle.labels(pool[rows])[:, None] == identities[None, :]).float()

        def checkpoint(pick: Tensor) -> None:
            self.checkpoint(oracle, self._images(pool, pick), found=float((pick >= 0).float().mean()))

        pick = best_per_identity(n, scores, len(identities), -1.0 if scored else 0.0, checkpoint)
        return AttackResult(reconstructions=self._images(pool, pick))

    @staticmethod
    def _images(pool: Tensor, pick: Tensor) -> Tensor:
        """The picked public images; the public mean for identities with none yet."""
        x = pool.mean(0, keepdim=True).expand(len(pick), *pool.shape[1:]).clone()
        x[pick >= 0] = pool[pick[pick >= 0]]
        return x
