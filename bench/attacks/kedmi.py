"""KEDMI: white-box inversion of a distribution over a generator's latent space, per identity."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from bench.attacks.base import AttackResult, InversionAttack
from bench.attacks.latent import identity_loss, most_confident
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("kedmi")
class KEDMI(InversionAttack):
    """Chen, Kahla, Jia, Wang & Jia, CVPR 2021, "Knowledge-Enriched Distributional Model
    Inversion Attacks" — its distributional recovery on the shared public-data prior (the
    paper also trains an inversion-specific GAN with the target's soft labels; not here).

    White-box: each identity gets a Gaussian ``N(mu, diag(sigma^2))`` over the latent; each
    step draws ``draws`` latents per identity by reparameterisation and descends
    ``-realism + identity · CE`` in expectation, with Adam on ``mu`` and ``log sigma``. The
    reconstruction is the best of ``samples`` draws by target confidence; ``extras`` hold the
    distribution's mean image (``acc@1:mean``) and all the draws (``acc@1:samples``, the share
    the judge names correctly).
    Example: ``bench run priors --only attack=kedmi``.
    """

    threat_model = ThreatModel.WHITE_BOX
    needs_prior = True

    @dataclass(frozen=True)
    class Params:
        steps: int = param(300, help="Adam steps on the distributions", low=1)
        draws: int = param(5, help="latents drawn per identity per step", low=1)
        samples: int = param(16, help="draws per identity after training: the best is the reconstruction", low=1)
        lr: float = param(0.02, help="Adam step size", low=0, low_open=True)
        identity: float = param(100.0, help="weight of the target's cross-entropy against the realism term", low=0)

    def run(self, oracle: OracleView, identities: Tensor, public: Tensor | None, rng: torch.Generator) -> AttackResult:
        p = self.params
        prior = self.prior
        assert prior is not None
        k, d = len(identities), prior.latent_dim
        mu = torch.randn((k, d), generator=rng).requires_grad_(True)
        log_sigma = torch.zeros((k, d), requires_grad=True)
        optimizer = torch.optim.Adam([mu, log_sigma], lr=p.lr)
        labels = identities.repeat_interleave(p.draws)
        for step in range(p.steps):
            eps = torch.randn((k, p.draws, d), generator=rng)
            z = (mu[:, None] + log_sigma.exp()[:, None] * eps).flatten(0, 1)
            x = prior.generate(z)
            loss = identity_loss(prior, oracle, x, labels, p.identity)
            optimizer.zero_grad()
            loss.mean().backward()
            optimizer.step()
            if step % 25 == 0:
                self.checkpoint(oracle, prior.generate(mu.detach()))
        with torch.no_grad():
            eps = torch.randn((k, p.samples, d), generator=rng)
            draws = prior.generate((mu[:, None] + log_sigma.exp()[:, None] * eps).flatten(0, 1))
            best, confidence = most_confident(oracle, draws, identities, p.samples)
            mean = prior.generate(mu)
        self.checkpoint(oracle, best, confidence=float(confidence.mean()))
        return AttackResult(reconstructions=best, extras={"mean": mean, "samples": draws.view(k, p.samples, *best.shape[1:])})
