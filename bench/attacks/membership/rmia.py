"""The robust membership inference attack, RMIA (Zarifzadeh et al., ICML 2024), offline."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from bench.attacks.membership.base import (
    TINY,
    MembershipAttack,
    Population,
    ShadowTrainer,
    draw_seed,
    shadow_probabilities,
    true_label_probability,
)
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("rmia")
class RMIA(MembershipAttack):
    """The robust membership inference attack of Zarifzadeh et al. (ICML 2024), offline.

    A pairwise likelihood ratio: the target's probability of the true label of challenge image
    ``x``, over ``Pr(x)`` — its average over reference models, which here never trained on ``x``,
    corrected by the paper's offline rule ``Pr(x) = ((1 + a) Pr_out(x) + (1 - a)) / 2`` — set
    against the same ratio of population images ``z``. Score = the share of ``z`` that ``x``
    dominates by a factor ``gamma``. A ``z`` is only compared under reference models it was out
    of, so its ``Pr(z)`` is as offline as ``Pr(x)``. Reference models train on population
    subsets of the target's size (the same shadows as offline LiRA's); every ``x`` and ``z`` is
    one query.
    """

    threat_model = ThreatModel.BLACK_BOX

    @dataclass(frozen=True)
    class Params:
        reference_models: int = param(4, help="reference models of the target's recipe and size", low=1)
        population_samples: int = param(1000, help="population images z each challenge image is compared with", low=1)
        gamma: float = param(1.0, help="how far x's likelihood ratio must exceed z's to count", low=0, low_open=True)
        offline_a: float = param(0.3, help="the offline correction a of Pr(x) = ((1+a) Pr_out(x) + (1-a)) / 2",
                                 low=0, high=1)

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, population: Population, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        p = self.params
        models, subsets = [], []
        for _ in range(p.reference_models):  # drawn as offline LiRA draws its shadows: the same first models
            subset = population.draw(population.train_size, rng, "attack 'rmia'")
            models.append(shadows(population.x[subset], population.y[subset], draw_seed(rng)))
            subsets.append(subset)
        z = torch.randperm(len(population), generator=rng)[: p.population_samples]
        zx, zy = population.x[z], population.y[z]
        out_z = torch.stack([~torch.isin(z, subset) for subset in subsets])
        ref_x = [true_label_probability(shadow_probabilities(m, x), y) for m in models]
        ref_z = [true_label_probability(shadow_probabilities(m, zx), zy) for m in models]
        usable = out_z.any(0)
        prior_x = self.offline(torch.stack(ref_x).mean(0))
        counts = out_z.sum(0).clamp_min(1)
        prior_z = self.offline((torch.stack(ref_z) * out_z).sum(0) / counts)[usable]
        ratio_x = true_label_probability(oracle.probabilities(x), y) / prior_x
        ratio_z = true_label_probability(oracle.probabilities(zx[usable]), zy[usable]) / prior_z
        return (ratio_x[:, None] / ratio_z[None, :] > p.gamma).double().mean(1)

    def offline(self, p_out: Tensor) -> Tensor:
        """``Pr(x)`` from reference models that never trained on x (the paper's offline rule)."""
        a = self.params.offline_a
        return (((1 + a) * p_out + (1 - a)) / 2).clamp_min(TINY)
