"""NES: black-box model inversion with gradients estimated from confidence scores."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from bench.attacks.base import Attack, AttackResult
from bench.attacks.priors import initial_images, total_variation
from bench.oracle import Oracle, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("nes")
class NES(Attack):
    """Natural-evolution-strategies gradient estimation (Wierstra et al. 2014; as a black-box
    attack: Ilyas et al., ICML 2018) applied to MI-Face's objective.

    Black-box: each step probes every identity's image with ``samples`` antithetic Gaussian
    perturbations (x ± sigma·u), estimates the gradient of the target's log-confidence from the
    returned scores, adds the gradient of a total-variation / L2 prior (computed locally, no
    queries) and takes an Adam step. All identities are batched in one query batch per step.
    Example: ``bench run default --only attack=nes``.
    """

    threat_model = ThreatModel.BLACK_BOX
    needs_public_data = False

    @dataclass(frozen=True)
    class Params:
        budget: int = param(2000, help="queries per target identity", low=2)
        samples: int = param(20, help="probes per identity per step (antithetic pairs)", low=2)
        sigma: float = param(0.1, help="probe standard deviation per pixel", low=0, low_open=True)
        lr: float = param(0.05, help="Adam step size", low=0, low_open=True)
        tv: float = param(0.0, help="total-variation prior weight", low=0)
        l2: float = param(0.0, help="L2 prior weight (mean squared pixel value)", low=0)
        init: str = param("gray", help="starting image", choices=("gray", "zeros", "noise"))
        checkpoint_every: int = param(250, help="queries per identity between checkpoints", low=1)

    def run(
        self, oracle: Oracle, targets: Tensor, public: Tensor | None, budget: int | None, rng: torch.Generator
    ) -> AttackResult:
        p = self.params
        k = len(targets)
        half = max(1, p.samples // 2)
        x = initial_images(p.init, (k, *oracle.input_shape), rng).requires_grad_(True)
        optimizer = torch.optim.Adam([x], lr=p.lr)
        per_identity = budget if budget is not None else p.budget
        spent = 0
        self.checkpoint(oracle, x)
        while spent + 2 * half <= per_identity:
            u = torch.randn((k, half, *oracle.input_shape), generator=rng)
            probes = torch.cat([x.detach()[:, None] + p.sigma * u, x.detach()[:, None] - p.sigma * u], dim=1)
            probs = oracle.probabilities(probes.clamp(0, 1).flatten(0, 1)).view(k, 2 * half, -1)
            score = probs[torch.arange(k), :, targets].clamp_min(1e-6).log()
            diff = (score[:, :half] - score[:, half:]).view(k, half, *([1] * (x.dim() - 1)))
            grad = (diff * u).mean(dim=1) / (2 * p.sigma)
            optimizer.zero_grad()
            prior = p.tv * total_variation(x) + p.l2 * (x**2).flatten(1).mean(1)
            prior.sum().backward()
            with torch.no_grad():
                x.grad -= grad  # ascend the estimated log-confidence, descend the prior
                optimizer.step()
                x.clamp_(0, 1)
            spent += 2 * half
            if self.checkpoint_due(oracle, p.checkpoint_every):
                self.checkpoint(oracle, x, confidence=float(score.exp().mean()))
        return AttackResult(reconstructions=x.detach())
