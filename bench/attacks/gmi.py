"""GMI: white-box model inversion in the latent space of a generator trained on public data."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from bench.attacks.base import AttackResult, InversionAttack
from bench.attacks.latent import identity_loss, most_confident, random_latents
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("gmi")
class GMI(InversionAttack):
    """Zhang, Jia, Pei, Wang, Li & Song, CVPR 2020, "The Secret Revealer: Generative
    Model-Inversion Attacks Against Deep Neural Networks".

    White-box: for every identity, ``restarts`` latents drawn from the prior descend
    ``-realism(G(z)) + identity · CE(target(G(z)), identity)`` — the discriminator keeps the
    image on the public data's manifold, the target's loss pulls it to the identity — with
    momentum SGD, clipping the latent to ``[-clip, clip]`` after each step. The attacker keeps,
    per identity, the restart its target is most confident about (it cannot ask the judge).
    All identities and restarts run in one batch.
    Example: ``bench run priors --only attack=gmi``.
    """

    threat_model = ThreatModel.WHITE_BOX
    needs_prior = True

    @dataclass(frozen=True)
    class Params:
        steps: int = param(300, help="gradient steps on the latents", low=1)
        restarts: int = param(5, help="random latent starts per identity; the most confident is kept", low=1)
        lr: float = param(0.02, help="SGD step size on the latent", low=0, low_open=True)
        momentum: float = param(0.9, help="SGD momentum", low=0, high=1)
        identity: float = param(100.0, help="weight of the target's cross-entropy against the realism term", low=0)
        clip: float = param(1.0, help="latent coordinates are clipped to [-clip, clip] (0: no clipping)", low=0)

    def run(self, oracle: OracleView, identities: Tensor, public: Tensor | None, rng: torch.Generator) -> AttackResult:
        p = self.params
        prior = self.prior
        assert prior is not None
        k, r = len(identities), p.restarts
        labels = identities.repeat_interleave(r)
        z = self.clipped(random_latents(prior, k * r, rng)).requires_grad_(True)
        optimizer = torch.optim.SGD([z], lr=p.lr, momentum=p.momentum)
        for step in range(p.steps):
            x = prior.generate(z)
            loss = identity_loss(prior, oracle, x, labels, p.identity)
            optimizer.zero_grad()
            loss.sum().backward()
            optimizer.step()
            with torch.no_grad():
                z.copy_(self.clipped(z))
            if step % 25 == 0:
                self.checkpoint(oracle, most_confident(oracle, prior.generate(z.detach()), identities, r)[0])
        best, confidence = most_confident(oracle, prior.generate(z.detach()), identities, r)
        self.checkpoint(oracle, best, confidence=float(confidence.mean()))
        return AttackResult(reconstructions=best)

    def clipped(self, z: Tensor) -> Tensor:
        c = self.params.clip
        return z.clamp(-c, c) if c > 0 else z
