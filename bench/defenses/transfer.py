"""Transfer learning: early layers learned on public data, frozen; only later layers see private data."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from bench.defenses.base import TrainingDefense
from bench.errors import DataError
from bench.models.architectures import Classifier
from bench.models.training import TrainingContext, TrainingPlan, fit
from bench.params import param
from bench.registry import defense


@defense("transfer")
class Transfer(TrainingDefense):
    """Pretrain the target on the public data, then freeze its first ``frozen`` feature layers and
    fine-tune only the rest on the private data (Ho et al., CVPR 2024, TL-DMI: the private data
    reaching only the later layers cuts what inversion recovers)."""

    citation = "Ho, Vo, Ding, Wong, Xiao & Cheung, CVPR 2024, 'Model Inversion Robustness: Can Transfer Learning Help?'"

    @dataclass(frozen=True)
    class Params:
        frozen: int = param(2, help="leading feature layers (those with weights) kept from public pretraining", low=1)
        pretrain_epochs: int = param(20, help="epochs of pretraining on the public data", low=1)

    def before_fit(self, model: Classifier, context: TrainingContext) -> None:
        public = context.public
        if public is None or len(public) == 0:
            raise DataError("defense 'transfer' pretrains on public data and the dataset has none")
        layers = [m for m in model.features if any(True for _ in m.parameters(recurse=True))]
        if self.params.frozen > len(layers):
            raise DataError(f"defense 'transfer': parameter 'frozen' is {self.params.frozen}, but the target has "
                            f"{len(layers)} feature layers with weights; allowed: 1..{len(layers)}")
        pretrain = Classifier(model.features, model.head.in_features, int(public.y.max()) + 1)
        plan = TrainingPlan(epochs=self.params.pretrain_epochs, lr=context.plan.lr, batch_size=context.plan.batch_size)
        fit(pretrain, public, plan, seed=context.seed, desc="transfer: pretraining on public data")
        for layer in layers[: self.params.frozen]:
            freeze(layer)


def freeze(layer: nn.Module) -> None:
    for p in layer.parameters():
        p.requires_grad_(False)
