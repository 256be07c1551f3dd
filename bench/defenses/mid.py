"""MID: a variational information bottleneck between the target's features and its head."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.defenses.base import TrainingDefense
from bench.models.architectures import Classifier
from bench.models.training import Batch
from bench.params import param
from bench.registry import defense


class Bottleneck(nn.Module):
    """Encodes features as a Gaussian (mean, std) and passes on a sample in training, the mean
    otherwise; keeps the KL divergence to N(0, I) of its last batch for the loss (in bits)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.encode = nn.Linear(dim, 2 * dim)
        self.kl: Tensor | None = None

    def forward(self, features: Tensor) -> Tensor:
        mean, raw = self.encode(features).chunk(2, dim=1)
        if not self.training:
            return mean
        std = F.softplus(raw - 5)  # as in the paper's code: starts near-deterministic
        self.kl = 0.5 * (mean.pow(2) + std.pow(2) - 2 * std.clamp_min(1e-8).log() - 1).sum(1).mean() / math.log(2)
        return mean + std * torch.randn_like(std)


@defense("mid")
class MID(TrainingDefense):
    """Mutual-information regularisation: a variational information bottleneck before the classifier
    head, the loss adding beta times the KL bound on I(input; features) (Wang et al., AAAI 2021)."""

    citation = "Wang, Gong, Xu & Tao, AAAI 2021, 'Improving Robustness to Model Inversion Attacks via Mutual Information Regularization'"

    @dataclass(frozen=True)
    class Params:
        beta: float = param(0.01, help="weight of the information term (the paper sweeps 0.003-0.02 on faces)",
                            low=0, low_open=True)

    def shape_model(self, model: Classifier) -> Classifier:
        model.neck = Bottleneck(model.head.in_features)
        return model

    def loss(self, batch: Batch) -> Tensor:
        neck = batch.model.neck
        assert isinstance(neck, Bottleneck) and neck.kl is not None, "mid: the model has no bottleneck"
        return self.params.beta * neck.kl
