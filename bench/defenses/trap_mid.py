"""Trap-MID: a trapdoor per identity, so that an inversion finds the trapdoor before the face."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.defenses.base import TrainingDefense
from bench.models.architectures import Classifier
from bench.models.training import Batch, TrainingContext
from bench.params import param
from bench.registry import defense


def blend(x: Tensor, trigger: Tensor, alpha: float) -> Tensor:
    """The trigger blended into the images at ``alpha``, as the paper's code writes it."""
    return alpha * trigger + (1 - alpha) * x


@defense("trap-mid")
class TrapMID(TrainingDefense):
    """Each identity k gets a random trigger t_k; while training, every image is also shown blended
    with the trigger of a random identity k and taught to be k. An inversion of k then maximises
    k's confidence most easily through t_k, which carries nothing of k's face. The loss is the
    paper's (1 - beta) CE + beta CE_trapdoor, written as CE + beta / (1 - beta) CE_trapdoor (the
    same direction; Adam ignores the scale). The triggers stay as drawn: the released code's
    optional trigger optimisation and its discriminators are not built."""

    citation = ("Liu, Chen, Yu & Chen, NeurIPS 2024, 'Trap-MID: Trapdoor-based Defense against Model "
                "Inversion Attacks' (defaults: blend 0.02, trapdoor-loss weight 0.2)")
    incompatible_with = ("dp-sgd",)  # a second forward pass per step: no per-sample gradient of it

    @dataclass(frozen=True)
    class Params:
        blend: float = param(0.02, help="the trigger's share of a trapdoor image", low=0, high=1, low_open=True)
        beta: float = param(0.2, help="the trapdoor loss's weight, (1 - beta) the clean loss's", low=0, high=1,
                            low_open=True)

    def __init__(self, params: Params | None = None) -> None:
        super().__init__(params)
        self._generator = torch.Generator()
        self.triggers: Tensor | None = None  # K×C×H×W in [0, 1], drawn on the first batch

    def before_fit(self, model: Classifier, context: TrainingContext) -> None:
        self._generator.manual_seed(context.seed + 11)
        self.triggers = None

    def loss(self, batch: Batch) -> Tensor:
        k = batch.logits.shape[1]
        if self.triggers is None:
            self.triggers = torch.rand((k, *batch.x.shape[1:]), generator=self._generator)
        identity = torch.randint(k, (len(batch.x),), generator=self._generator)
        trapped = batch.model(blend(batch.x, self.triggers[identity], self.params.blend))
        beta = self.params.beta
        return beta / (1 - beta) * F.cross_entropy(trapped, identity)
