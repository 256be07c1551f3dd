"""Boundary repelling: model inversion from top-1 labels alone."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from bench.attacks.base import Attack, AttackResult
from bench.attacks.priors import initial_images
from bench.oracle import Oracle, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("label-only")
class LabelOnly(Attack):
    """A CPU-scale BREP-MI (Kahla, Chen, Just & Jia, CVPR 2022, "Label-Only Model Inversion
    Attacks via Boundary Repulsion"), in pixel space instead of a GAN's latent space.

    Label-only: start from a point the oracle labels as the target — a public image it
    labels so — then repeatedly sample ``points`` on a sphere around it; move away from the
    sampled points that leave the class (only if the new point keeps the label, else shrink
    the sphere), and grow the sphere when no point leaves. The image drifts away from the
    decision boundary, toward the class's interior. An identity with no starting point keeps
    a gray image. Example: ``bench run default --only attack=label-only``.
    """

    threat_model = ThreatModel.LABEL_ONLY
    needs_public_data = True

    @dataclass(frozen=True)
    class Params:
        budget: int = param(2000, help="queries per target identity", low=2)
        scan: float = param(0.25, help="share of the budget spent labelling public images", low=0, high=1)
        points: int = param(16, help="points sampled on the sphere per step", low=1)
        radius: float = param(0.05, help="initial sphere radius (RMS per pixel)", low=0, low_open=True)
        growth: float = param(1.3, help="radius growth when the whole sphere stays in the class", low=1)
        step: float = param(0.5, help="move as a fraction of the radius", low=0, low_open=True)
        checkpoint_every: int = param(250, help="queries per identity between checkpoints", low=1)

    def run(
        self, oracle: Oracle, targets: Tensor, public: Tensor | None, budget: int | None, rng: torch.Generator
    ) -> AttackResult:
        p = self.params
        k = len(targets)
        total = (budget if budget is not None else p.budget) * k
        x = initial_images("gray", (k, *oracle.input_shape), rng)
        found = self.starting_points(oracle, x, targets, public, int(p.scan * total), rng)
        self.checkpoint(oracle, x, found=float(found.float().mean()))
        radius = torch.full((k,), p.radius)
        dims = x[0].numel()
        active = found.clone()
        while active.any() and oracle.queries + int(active.sum()) * (p.points + 1) <= total:
            idx = active.nonzero().squeeze(1)
            u = torch.randn((len(idx), p.points, dims), generator=rng)
            u = u / u.norm(dim=2, keepdim=True)
            r = (radius[idx] * math.sqrt(dims)).view(-1, 1, 1)
            probes = (x[idx].flatten(1)[:, None] + r * u).clamp(0, 1)
            labels = oracle.labels(probes.view(-1, *oracle.input_shape)).view(len(idx), p.points)
            outside = (labels != targets[idx, None]).float()
            inside_all = outside.sum(1) == 0
            away = -(outside[:, :, None] * u).sum(1)
            away = away / away.norm(dim=1, keepdim=True).clamp_min(1e-12)
            move = (p.step * r.view(-1, 1) * away).view(len(idx), *oracle.input_shape)
            candidate = (x[idx] + move).clamp(0, 1)
            stays = oracle.labels(candidate) == targets[idx]  # never step out of the class
            accept = stays & ~inside_all
            x[idx[accept]] = candidate[accept]
            radius[idx] = torch.where(inside_all, radius[idx] * p.growth,
                                      torch.where(stays, radius[idx], radius[idx] / p.growth))
            active[idx[radius[idx] * math.sqrt(dims) > 2 * math.sqrt(dims)]] = False  # sphere covers the image
            if self.checkpoint_due(oracle, p.checkpoint_every):
                self.checkpoint(oracle, x, radius=float(radius.mean()))
        self.checkpoint(oracle, x, radius=float(radius.mean()))
        return AttackResult(reconstructions=x)

    def starting_points(self, oracle: Oracle, x: Tensor, targets: Tensor, public: Tensor | None, scan: int,
                        rng: torch.Generator) -> Tensor:
        """Fill ``x`` with an image the oracle labels as each target; returns which were found."""
        found = torch.zeros(len(targets), dtype=torch.bool)
        pool = public if public is not None else torch.empty(0, *x.shape[1:])
        pool = pool[torch.randperm(len(pool), generator=rng)][:scan]
        for start in range(0, len(pool), 256):
            batch = pool[start : start + 256]
            labels = oracle.labels(batch)
            for i, t in enumerate(targets.tolist()):
                hit = (labels == t).nonzero()
                if not found[i] and len(hit):
                    x[i] = batch[int(hit[0])]
                    found[i] = True
            if found.all():
                break
        return found
