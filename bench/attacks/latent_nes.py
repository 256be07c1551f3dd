"""Latent NES: black-box model inversion searching a generator's latent space (Mirror-style)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from bench.attacks.base import AttackResult, CheckpointParams, InversionAttack
from bench.attacks.latent import GenerativePrior, random_latents
from bench.attacks.nes import estimate_gradient
from bench.attacks.priors import best_per_identity
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("latent-nes")
class LatentNES(InversionAttack):
    """An, Tao, Xu, Liu, Wang, Shen & Zhang, NDSS 2022, "MIRROR: Model Inversion for Deep
    Learning Network with High Fidelity" (its black-box search, with NES in place of the
    genetic algorithm) in the latent space of the generator prior.

    Black-box: first ``scan`` of the budget labels random generator samples — every query
    scores all identities at once, so each identity starts from the sample its target is most
    confident about; then NES (as ``nes``) ascends the target's log-confidence in the latent,
    with a Gaussian prior on the latent, every probe a counted query. All identities are
    batched in one query batch per step.
    Example: ``bench run priors --only attack=latent-nes``.
    """

    threat_model = ThreatModel.BLACK_BOX
    needs_prior = True

    @dataclass(frozen=True)
    class Params(CheckpointParams):
        budget: int = param(500, help="queries per target identity", low=2)
        scan: float = param(0.2, help="share of the budget spent scoring random generator samples", low=0, high=1)
        samples: int = param(10, help="probes per identity per step (antithetic pairs)", low=2)
        sigma: float = param(0.3, help="probe standard deviation per latent coordinate", low=0, low_open=True)
        lr: float = param(0.1, help="Adam step size", low=0, low_open=True)
        l2: float = param(0.5, help="Gaussian prior weight on the latent (mean squared coordinate)", low=0)

    def run(self, oracle: OracleView, identities: Tensor, public: Tensor | None, rng: torch.Generator) -> AttackResult:
        p = self.params
        prior = self.prior
        assert prior is not None
        k = len(identities)
        half = max(1, p.samples // 2)
        per_identity = self.queries_per_identity(oracle)
        z = self.most_confident_draws(oracle, prior, identities, int(p.scan * per_identity) * k, rng).requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=p.lr)
        self.checkpoint(oracle, prior.generate(z.detach()))
        while (oracle.queries + 2 * half * k) <= per_identity * k:
            grad, score = estimate_gradient(oracle, prior.generate, z.detach(), identities, half, p.sigma, rng)
            optimizer.zero_grad()
            (p.l2 * (z**2).mean(1)).sum().backward()
            with torch.no_grad():
                z.grad -= grad
                optimizer.step()
            if self.checkpoint_due(oracle, p.checkpoint_every):
                self.checkpoint(oracle, prior.generate(z.detach()), confidence=float(score.exp().mean()))
        return AttackResult(reconstructions=prior.generate(z.detach()))

    @torch.no_grad()
    def most_confident_draws(self, oracle: OracleView, prior: GenerativePrior, identities: Tensor, n: int,
                             rng: torch.Generator) -> Tensor:
        """Per identity, the latent among ``n`` random draws its target is most confident about
        (a random draw each when ``n`` is 0)."""
        if n == 0:
            return random_latents(prior, len(identities), rng)
        latents = random_latents(prior, n, rng)
        pick = best_per_identity(n, lambda rows: oracle.probabilities(prior.generate(latents[rows]))[:, identities],
                                 len(identities), -1.0)
        return latents[pick].clone()
