"""What a latent-space attack is handed: a generator prior the job trained on public data.

GMI, KEDMI, Mirror and BREP-MI search the latent space of a generator trained on public
images, so every candidate stays on the image manifold. The job trains the prior (never on
private images) and hands it to attacks that declare they use one; an attack module sees
only this interface, never the model code behind it.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.oracle import OracleView


class GenerativePrior(Protocol):
    """A frozen generator and its discriminator, differentiable end to end."""

    latent_dim: int

    def generate(self, z: Tensor) -> Tensor:
        """Latents (N×latent_dim, standard normal a priori) to images N×C×H×W in [0, 1]."""
        ...

    def realism(self, x: Tensor) -> Tensor:
        """One score per image: higher is more like the public data (the discriminator)."""
        ...


def random_latents(prior: GenerativePrior, n: int, rng: torch.Generator) -> Tensor:
    """``n`` draws from the prior's latent distribution."""
    return torch.randn((n, prior.latent_dim), generator=rng)


def identity_loss(prior: GenerativePrior, oracle: OracleView, x: Tensor, labels: Tensor, weight: float) -> Tensor:
    """GMI's objective per image (KEDMI's too): the discriminator keeps ``x`` on the public data's
    manifold (``-realism``), the white-box target's cross-entropy pulls it to its identity."""
    return -prior.realism(x) + weight * F.cross_entropy(oracle.logits(x), labels, reduction="none")


@torch.no_grad()
def most_confident(oracle: OracleView, x: Tensor, identities: Tensor, per_identity: int) -> tuple[Tensor, Tensor]:
    """Of ``x`` — ``per_identity`` candidate images for each of ``identities`` in turn — per identity
    the one the target is most confident about, and that confidence: how GMI keeps a restart and
    KEDMI a draw (the attacker cannot ask the judge)."""
    k = len(identities)
    labels = identities.repeat_interleave(per_identity)
    confidence = oracle.probabilities(x).gather(1, labels[:, None]).view(k, per_identity)
    best = x.view(k, per_identity, *x.shape[1:])[torch.arange(k), confidence.argmax(1)]
    return best, confidence.max(1).values
