"""NES: black-box model inversion with gradients estimated from confidence scores."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from bench.attacks.base import AttackResult, CheckpointParams, InversionAttack
from bench.attacks.basis import BasisParams, ImageBasis, image_basis
from bench.attacks.priors import initial_images, total_variation
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("nes")
class NES(InversionAttack):
    """Natural-evolution-strategies gradient estimation (Wierstra et al. 2014; as a black-box
    attack: Ilyas et al., ICML 2018) applied to MI-Face's objective.

    Black-box: each step probes every identity's current coefficients with ``samples``
    antithetic Gaussian perturbations (z ± sigma·u), estimates the gradient of the target's
    log-confidence from the returned scores, adds the gradients of a total-variation prior on
    the image and a Gaussian prior on the coefficients (computed locally, no queries) and takes
    an Adam step. Each identity starts from its own point (a random public image by default).
    The search runs in an image ``basis``: the principal components of the public
    data (default), a coarse upsampled grid, or raw pixels; fewer coefficients make every probe
    count for more. All identities are batched in one query batch per step.
    Example: ``bench run default --only attack=nes``.
    """

    threat_model = ThreatModel.BLACK_BOX
    needs_public_data = False  # only the 'pca' basis does; refused in ``run`` without it

    @dataclass(frozen=True)
    class Params(BasisParams, CheckpointParams):
        budget: int = param(2000, help="queries per target identity", low=2)
        samples: int = param(10, help="probes per identity per step (antithetic pairs)", low=2)
        sigma: float = param(0.5, help="probe standard deviation per coefficient", low=0, low_open=True)
        lr: float = param(0.2, help="Adam step size", low=0, low_open=True)
        tv: float = param(0.0, help="total-variation prior weight", low=0)
        l2: float = param(1.0, help="Gaussian prior weight on the basis coefficients (mean squared coefficient)", low=0)
        init: str = param("public", help="starting point per identity: a distinct random public image or a noise "
                                         "image (projected onto the basis), or the basis' mean shared by all",
                          choices=("public", "noise", "mean"))

    def run(self, oracle: OracleView, identities: Tensor, public: Tensor | None, rng: torch.Generator) -> AttackResult:
        p = self.params
        k = len(identities)
        half = max(1, p.samples // 2)
        basis = image_basis(self.name, p, oracle.input_shape, public)
        z = self.start(basis, k, oracle.input_shape, public, rng).requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=p.lr)
        per_identity = self.queries_per_identity(oracle)
        spent = 0
        self.checkpoint(oracle, basis.decode(z))
        while spent + 2 * half <= per_identity:
            grad, score = estimate_gradient(oracle, basis.decode, z.detach(), identities, half, p.sigma, rng)
            optimizer.zero_grad()
            x = basis.decode(z)
            prior = p.tv * total_variation(x) + p.l2 * (z**2).mean(1)
            prior.sum().backward()
            with torch.no_grad():
                z.grad -= grad  # ascend the estimated log-confidence, descend the prior
                optimizer.step()
            spent += 2 * half
            if self.checkpoint_due(oracle, p.checkpoint_every):
                self.checkpoint(oracle, basis.decode(z), confidence=float(score.exp().mean()))
        return AttackResult(reconstructions=basis.decode(z).detach().clamp(0, 1))

    def start(self, basis: ImageBasis, k: int, shape: tuple[int, ...], public: Tensor | None,
              rng: torch.Generator) -> Tensor:
        """Starting coefficients: distinct per identity unless ``init`` is ``mean``."""
        if self.params.init == "mean":
            return torch.zeros((k, basis.dims))
        return basis.encode(initial_images(self.params.init, (k, *shape), rng, public)).detach().clone()


@torch.no_grad()
def estimate_gradient(oracle: OracleView, decode: Callable[[Tensor], Tensor], z: Tensor, identities: Tensor, half: int,
                      sigma: float, rng: torch.Generator) -> tuple[Tensor, Tensor]:
    """The antithetic NES estimate of each identity's gradient of log p_target(decode(z)) in
    ``z`` (K×d) from ``2·half`` probes per identity, and the probes' log-confidences (K×2·half)."""
    k, d = z.shape
    u = torch.randn((k, half, d), generator=rng)
    probes = torch.cat([z[:, None] + sigma * u, z[:, None] - sigma * u], dim=1)
    probs = oracle.probabilities(decode(probes.flatten(0, 1)).clamp(0, 1)).view(k, 2 * half, -1)
    score = probs[torch.arange(k), :, identities].clamp_min(1e-6).log()
    diff = (score[:, :half] - score[:, half:])[..., None]
    return (diff * u).mean(dim=1) / (2 * sigma), score
