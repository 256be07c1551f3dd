"""The loss-threshold baseline of membership inference (Yeom et al., CSF 2018)."""

from __future__ import annotations

import torch
from torch import Tensor

from bench.attacks.membership.base import MembershipAttack, Population, ShadowTrainer, log_odds
from bench.oracle import OracleView, ThreatModel
from bench.registry import attack


@attack("loss-threshold")
class LossThreshold(MembershipAttack):
    """Yeom et al. (CSF 2018): a model's loss is lower on what it trained on. Score = minus the
    cross-entropy of the true label under the oracle's probabilities: the baseline every other
    attack must beat, at one query per image and no shadow models. Ranked by the true label's
    :func:`log_odds`, which orders images exactly as the loss does but keeps apart the confident
    ones whose float32 probability rounds to 1 (measured: on an over-fit digits target those
    ties left the loss no true positive at 1 % FPR)."""

    threat_model = ThreatModel.BLACK_BOX

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, population: Population, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        return log_odds(oracle.probabilities(x), y)
