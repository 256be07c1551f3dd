"""Hill climbing: the naive black-box "20 questions" baseline."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from bench.attacks.base import AttackResult, CheckpointParams, InversionAttack
from bench.attacks.priors import INITS, initial_images
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("hill-climb")
class HillClimb(InversionAttack):
    """Random-perturbation hill climbing on the target confidence (the baseline of
    Fredrikson et al. 2015's black-box setting; later black-box attacks are measured
    against it).

    Black-box: every identity starts from its own image (a random public image by default, as
    a real attacker would start), then each round proposes ``population`` Gaussian
    perturbations of every identity's current image, queries them in one batch, and keeps the best if its target confidence
    rose. Stops when the per-identity ``budget`` cannot pay for another round.
    Example: ``bench run smoke --only attack=hill-climb``.
    """

    threat_model = ThreatModel.BLACK_BOX
    needs_public_data = False

    @dataclass(frozen=True)
    class Params(CheckpointParams):
        budget: int = param(20000, help="queries per target identity", low=1)
        population: int = param(20, help="perturbations proposed per identity per round", low=1)
        sigma: float = param(0.1, help="standard deviation of a perturbation", low=0, low_open=True)
        init: str = param("public", help="starting images: a distinct public image or noise per identity, or one "
                                           "shared gray or black image", choices=INITS)

    def run(self, oracle: OracleView, identities: Tensor, public: Tensor | None, rng: torch.Generator) -> AttackResult:
        p = self.params
        per_identity = self.queries_per_identity(oracle)
        k = len(identities)
        rows = torch.arange(k)
        x = initial_images(p.init, (k, *oracle.input_shape), rng, public)
        best = oracle.probabilities(x)[rows, identities]
        spent = 1
        self.checkpoint(oracle, x, confidence=float(best.mean()))
        while spent < per_identity:
            n = min(p.population, per_identity - spent)
            noise = torch.randn((k, n, *oracle.input_shape), generator=rng) * p.sigma
            candidates = (x[:, None] + noise).clamp(0, 1)
            probs = oracle.probabilities(candidates.flatten(0, 1)).view(k, n, -1)
            scores = probs[rows, :, identities]
            top, arg = scores.max(dim=1)
            better = top > best
            x[better] = candidates[rows, arg][better]
            best = torch.where(better, top, best)
            spent += n
            if self.checkpoint_due(oracle, p.checkpoint_every) or spent >= per_identity:
                self.checkpoint(oracle, x, confidence=float(best.mean()))
        return AttackResult(reconstructions=x)
