"""How the evaluator is trained: the strongest judge Sieve can make on the images it may use.

A judge that is wrong on held-out photos turns every acc@1 into a statement about itself, so
it trains with identity-preserving augmentation (:mod:`bench.models.augment`) on every batch and
keeps an exponential moving average of its weights, which is what it judges with.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from bench.models.architectures import Classifier
from bench.models.augment import AugmentSpec, identity_augment
from bench.models.training import TrainingContext, TrainingHook


class JudgeTraining(TrainingHook):
    """Augment every batch with ``spec``; judge with the weights' moving average (``decay``; 0: none)."""

    def __init__(self, spec: AugmentSpec = AugmentSpec(), decay: float = 0.998) -> None:
        self.spec, self.decay = spec, decay
        self._generator = torch.Generator()
        self._average: dict[str, Tensor] = {}
        self._steps = 0

    def before_fit(self, model: Classifier, context: TrainingContext) -> None:
        self._generator.manual_seed(context.seed + 1)
        self._average = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._steps = 0

    def transform_batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return identity_augment(x, y, self._generator, self.spec)

    @torch.no_grad()
    def after_step(self, model: Classifier) -> None:
        """Fold the new weights in; the decay warms up as (1 + t) / (10 + t), so that a short
        training (a few dozen steps on a small face folder) is not averaged with its initialisation."""
        if self.decay > 0:
            self._steps += 1
            decay = min(self.decay, (1 + self._steps) / (10 + self._steps))
            for k, v in model.state_dict().items():
                if v.is_floating_point():
                    self._average[k].mul_(decay).add_(v, alpha=1 - decay)
                else:
                    self._average[k].copy_(v)

    def after_fit(self, model: Classifier) -> dict[str, Any]:
        if self.decay > 0:
            model.load_state_dict(self._average)
        return {"judge_augment": dataclasses.asdict(self.spec), "judge_weight_average": self.decay}
