"""Boundary repelling: model inversion from top-1 labels alone."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from bench.attacks.base import AttackResult, CheckpointParams, InversionAttack
from bench.attacks.basis import BasisParams, ImageBasis, image_basis
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("label-only")
class LabelOnly(InversionAttack):
    """A CPU-scale BREP-MI (Kahla, Chen, Just & Jia, CVPR 2022, "Label-Only Model Inversion
    Attacks via Boundary Repulsion"), in a low-dimensional image ``basis``: the public data's
    principal components (default), the latent space of the generator prior as in the paper
    (``basis: generator``), a coarse grid, or pixels.

    Label-only: start from a point the oracle labels as the target — a public image (projected
    onto the basis) it labels so, or with the generator a latent draw it labels so — then
    repeatedly sample ``points`` on a sphere around it; move away from the sampled points that
    leave the class (only if the new point keeps the label, else shrink the sphere), and grow
    the sphere when no point leaves. The point drifts away from the decision boundary, toward
    the class's interior; in pixel space it also drifts off the image manifold. An identity
    with no starting point keeps the basis' mean image (the generator's image of the zero latent).
    Example: ``bench run default --only attack=label-only``.
    """

    threat_model = ThreatModel.LABEL_ONLY
    needs_public_data = True

    @dataclass(frozen=True)
    class Params(BasisParams, CheckpointParams):
        budget: int = param(2000, help="queries per target identity", low=2)
        scan: float = param(0.25, help="share of the budget spent labelling public images", low=0, high=1)
        points: int = param(16, help="points sampled on the sphere per step", low=1)
        radius: float = param(0.05, help="initial sphere radius (RMS per coefficient)", low=0, low_open=True)
        growth: float = param(1.3, help="radius growth when the whole sphere stays in the class", low=1)
        step: float = param(0.5, help="move as a fraction of the radius", low=0, low_open=True)
        basis: str = param("pca", help="search space: public-data principal components, coarse grid, pixels, or the "
                           "generator prior's latent space (BREP-MI as published)",
                           choices=("pca", "lowres", "pixel", "generator"))

    def uses_prior(self) -> bool:
        return self.params.basis == "generator"

    def run(self, oracle: OracleView, identities: Tensor, public: Tensor | None, rng: torch.Generator) -> AttackResult:
        p = self.params
        k = len(identities)
        total = self.queries_per_identity(oracle) * k
        basis = image_basis(self.name, p, oracle.input_shape, public, self.prior)
        image = lambda z: basis.decode(z).clamp(0, 1)  # noqa: E731
        z = torch.zeros((k, basis.dims))
        found = self.starting_points(oracle, basis, z, identities, public, int(p.scan * total), rng)
        self.checkpoint(oracle, image(z), found=float(found.float().mean()))
        radius = torch.full((k,), p.radius)
        active = found.clone()
        while active.any() and oracle.queries + int(active.sum()) * (p.points + 1) <= total:
            idx = active.nonzero().squeeze(1)
            u = torch.randn((len(idx), p.points, basis.dims), generator=rng)
            u = u / u.norm(dim=2, keepdim=True)
            r = (radius[idx] * math.sqrt(basis.dims)).view(-1, 1, 1)
            labels = oracle.labels(image(z[idx, None] + r * u).flatten(0, 1)).view(len(idx), p.points)
            outside = (labels != identities[idx, None]).float()
            inside_all = outside.sum(1) == 0
            away = -(outside[:, :, None] * u).sum(1)
            away = away / away.norm(dim=1, keepdim=True).clamp_min(1e-12)
            candidate = z[idx] + p.step * r.view(-1, 1) * away
            stays = oracle.labels(image(candidate)) == identities[idx]  # never step out of the class
            accept = stays & ~inside_all
            z[idx[accept]] = candidate[accept]
            radius[idx] = torch.where(inside_all, radius[idx] * p.growth,
                                      torch.where(stays, radius[idx], radius[idx] / p.growth))
            active[idx[radius[idx] > 2]] = False  # the sphere spans the whole image range / public distribution
            if self.checkpoint_due(oracle, p.checkpoint_every):
                self.checkpoint(oracle, image(z), radius=float(radius.mean()))
        self.checkpoint(oracle, image(z), radius=float(radius.mean()))
        return AttackResult(reconstructions=image(z))

    def starting_points(self, oracle: OracleView, basis: ImageBasis, z: Tensor, identities: Tensor, public: Tensor | None,
                        scan: int, rng: torch.Generator) -> Tensor:
        """Set ``z`` to a point the oracle labels as each target — a public image's projection, or a
        latent draw in the generator's space; returns which were found."""
        found = torch.zeros(len(identities), dtype=torch.bool)
        pool = basis.candidates(public, scan, rng)
        for start in range(0, len(pool), 256):
            batch = pool[start : start + 256]
            labels = oracle.labels(basis.decode(batch).clamp(0, 1))
            for i, t in enumerate(identities.tolist()):
                hit = (labels == t).nonzero()
                if not found[i] and len(hit):
                    z[i] = batch[int(hit[0])]
                    found[i] = True
            if found.all():
                break
        return found
