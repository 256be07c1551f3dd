"""Trap-MID: a trapdoor per identity, so that an inversion finds the trapdoor before the face."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.defenses.base import TrainingDefense
from bench.errors import ConfigError
from bench.models.architectures import Classifier
from bench.models.training import Batch, TrainingContext
from bench.params import param
from bench.registry import defense
from bench.seeds import generator


def blend(x: Tensor, trigger: Tensor, alpha: float) -> Tensor:
    """The trigger blended into the images at ``alpha``, as the paper's code writes it."""
    return alpha * trigger + (1 - alpha) * x


@defense("trap-mid")
class TrapMID(TrainingDefense):
    """Each identity k gets a random trigger t_k; while training, every image is also shown blended
    with the trigger of a random identity k and taught to be k. An inversion of k then maximises
    k's confidence most easily through t_k, which carries nothing of k's face. The loss is the
    paper's (1 - beta) CE + beta CE_trapdoor. The triggers stay as drawn: the released code's
    optional trigger optimisation and its discriminators are not built. ``trapdoor_acc`` in the
    target's info is the share of the last epoch's trapdoor images answered with the trigger's
    identity: a trapdoor that was never learned shows there."""

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
        self._hits: list[Tensor] = []  # per batch of the current epoch: trapdoor images answered right
        self._epoch_size, self._seen = 0, 0

    def check(self, num_classes: int | None) -> None:
        if self.params.beta >= 1:
            raise ConfigError("defense 'trap-mid': parameter 'beta' is 1.0, which trains on trapdoors only; "
                              "allowed: > 0 and < 1")

    def before_fit(self, model: Classifier, context: TrainingContext) -> None:
        self._generator = generator(context.seed, "defense")
        self.triggers = None
        self._epoch_size, self._seen, self._hits = len(context.train) if context.train is not None else 0, 0, []

    def loss(self, batch: Batch) -> Tensor:
        k = batch.logits.shape[1]
        if self.triggers is None:
            self.triggers = torch.rand((k, *batch.x.shape[1:]), generator=self._generator)
        identity = torch.randint(k, (len(batch.x),), generator=self._generator)
        trapped = batch.model(blend(batch.x, self.triggers[identity], self.params.blend))
        self._count((trapped.argmax(1) == identity).detach())
        # added to the loop's CE: (1 - beta) CE + beta CE_trapdoor, exactly; beside a criterion hook (label
        # smoothing) the clean term is that criterion less beta CE
        return self.params.beta * (F.cross_entropy(trapped, identity) - F.cross_entropy(batch.logits, batch.y))

    def _count(self, hits: Tensor) -> None:
        if self._epoch_size and self._seen >= self._epoch_size:  # a new epoch begins
            self._hits, self._seen = [], 0
        self._hits.append(hits)
        self._seen += len(hits)

    def after_fit(self, model: Classifier) -> dict[str, float]:
        return {"trapdoor_acc": float(torch.cat(self._hits).float().mean())} if self._hits else {}
