"""Shadow-model membership inference (Shokri et al., S&P 2017; ML-Leaks, Salem et al., NDSS 2019)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from bench.attacks.membership.base import TINY, MembershipAttack, Population, ShadowTrainer, draw_seed, log_odds, shadow_probabilities
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("shadow")
class Shadow(MembershipAttack):
    """Shokri et al. (S&P 2017), with ML-Leaks' class-agnostic features (Salem et al., NDSS 2019).

    Each shadow model trains on a random subset of the population of the target's training-set
    size; its outputs on that subset (in) and on the rest of the population (out) teach a
    logistic-regression attack classifier what the target's outputs look like on members. The
    features are the true label's log-odds and the sorted top-k log-probabilities. Score = the
    classifier's decision value on the oracle's probabilities (one query per image).
    """

    threat_model = ThreatModel.BLACK_BOX

    @dataclass(frozen=True)
    class Params:
        shadow_models: int = param(4, help="shadow models, each trained on a random population subset of the "
                                           "target's training-set size", low=1)
        top_k: int = param(3, help="sorted top probabilities in the attack classifier's features", low=1)

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, population: Population, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        p = self.params
        features, trained_on = [], []
        for _ in range(p.shadow_models):
            subset = population.draw(population.train_size, rng, "attack 'shadow'")
            model = shadows(population.x[subset], population.y[subset], draw_seed(rng))
            features.append(self.features(shadow_probabilities(model, population.x), population.y))
            inside = torch.zeros(len(population), dtype=torch.bool)
            inside[subset] = True
            trained_on.append(inside)
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        classifier.fit(torch.cat(features).numpy(), torch.cat(trained_on).numpy())
        target = self.features(oracle.probabilities(x), y)
        return torch.from_numpy(classifier.decision_function(target.numpy()))

    def features(self, probs: Tensor, labels: Tensor) -> Tensor:
        """The true label's log-odds, then the top-k log-probabilities in decreasing order."""
        k = min(self.params.top_k, probs.shape[1])
        top = probs.double().topk(k, dim=1).values.clamp_min(TINY).log()
        return torch.cat([log_odds(probs, labels)[:, None], top], dim=1)
