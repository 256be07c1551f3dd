"""Training-stage defenses: train a model that remembers less. Each implements the training
loop's hooks it needs (:class:`bench.models.training.TrainingHook`); the loop knows none of them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.data.base import Split
from bench.defenses.base import TrainingDefense
from bench.errors import ConfigError
from bench.models.architectures import Classifier
from bench.models.training import Batch, Loader, TrainingContext, TrainingPlan
from bench.params import param
from bench.registry import defense

DEFAULT_EPSILON = 8.0


@defense("dropout")
class Dropout(TrainingDefense):
    """Dropout on the target's penultimate features during training."""

    citation = "Srivastava et al., JMLR 2014, 'Dropout'"

    @dataclass(frozen=True)
    class Params:
        p: float = param(0.5, help="drop probability", low=0, high=1, low_open=True)

    def check(self, num_classes: int | None) -> None:
        if self.params.p >= 1:
            raise ConfigError("defense 'dropout': parameter 'p' is 1.0; allowed: > 0 and < 1")

    def shape_model(self, model: Classifier) -> Classifier:
        model.neck = nn.Dropout(self.params.p)
        return model


@defense("weight-decay")
class WeightDecay(TrainingDefense):
    """L2 weight decay (Adam's ``weight_decay``)."""

    citation = "L2 regularisation against memorisation (Shokri et al., S&P 2017)"

    @dataclass(frozen=True)
    class Params:
        strength: float = param(1e-3, help="L2 coefficient", low=0, low_open=True)

    def configure(self, plan: TrainingPlan) -> TrainingPlan:
        return plan.replace(weight_decay=self.params.strength)


@defense("l1")
class L1(TrainingDefense):
    """L1 penalty on all weights, added to the loss."""

    citation = "sparsity regularisation (Tibshirani 1996, applied to network weights)"
    incompatible_with = ("dp-sgd",)  # a penalty on the weights is no per-sample gradient to clip

    @dataclass(frozen=True)
    class Params:
        strength: float = param(1e-5, help="L1 coefficient", low=0, low_open=True)

    def loss(self, batch: Batch) -> Tensor:
        return self.params.strength * sum(p.abs().sum() for p in batch.model.parameters())


def smoothed_cross_entropy(logits: Tensor, y: Tensor, alpha: float) -> Tensor:
    """Cross-entropy against ``(1 - alpha) * onehot + alpha / K``; negative ``alpha`` allowed
    (Struppek et al., ICLR 2024), which torch's built-in ``label_smoothing`` refuses."""
    if alpha == 0:
        return F.cross_entropy(logits, y)
    k = logits.shape[1]
    target = torch.full_like(logits, alpha / k)
    target.scatter_(1, y[:, None], 1 - alpha + alpha / k)
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


@defense("label-smoothing")
class LabelSmoothing(TrainingDefense):
    """Train against ``(1 - alpha) * onehot + alpha / K``. Struppek et al., ICLR 2024, "Be Careful
    What You Smooth For": positive alpha increases inversion leakage, negative alpha reduces it."""

    citation = "Struppek, Hintersdorf & Kersting, ICLR 2024"

    @dataclass(frozen=True)
    class Params:
        alpha: float = param(-0.05, help="smoothing factor, negative allowed", low=-1, high=0.99)

    def check(self, num_classes: int | None) -> None:
        if self.params.alpha == 0:
            raise ConfigError("defense 'label-smoothing': parameter 'alpha' is 0, which is no defense; use 'none'")

    def criterion(self, logits: Tensor, y: Tensor) -> Tensor:
        return smoothed_cross_entropy(logits, y, self.params.alpha)


@defense("early-stop")
class EarlyStop(TrainingDefense):
    """Train for ``epochs`` instead of the grid's epoch count: under- vs over-fitting."""

    citation = "overfitting as the root of leakage (Yeom et al., CSF 2018)"

    @dataclass(frozen=True)
    class Params:
        epochs: int = param(5, help="epochs to train", low=1)

    def configure(self, plan: TrainingPlan) -> TrainingPlan:
        return plan.replace(epochs=self.params.epochs)


@defense("dp-sgd")
class DPSGD(TrainingDefense):
    """Differentially private training with Opacus: per-sample clipping, Gaussian noise, and the
    RDP accountant; the spent (epsilon, delta) goes into the tables. ``epsilon: inf`` is no privacy."""

    citation = "Abadi et al., CCS 2016, 'Deep Learning with Differential Privacy'; Opacus (Yousefpour et al. 2021)"
    incompatible_with = ("l1", "bido")  # terms over weights or whole batches have no per-sample gradient

    @dataclass(frozen=True)
    class Params:
        epsilon: float | None = param(None, help="target epsilon (inf: no privacy); 8 if neither this nor "
                                      "noise_multiplier is given", low=0, low_open=True)
        noise_multiplier: float | None = param(None, help="noise multiplier instead of a target epsilon", low=0,
                                               low_open=True)
        delta: float = param(1e-5, help="target delta", low=0, high=1, low_open=True)
        max_grad_norm: float = param(1.0, help="per-sample gradient clipping norm", low=0, low_open=True)

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        self._engine: Any = None
        self._wrapped: tuple[Any, Any, Any] | None = None

    def check(self, num_classes: int | None) -> None:
        if self.params.noise_multiplier is not None and self.params.epsilon is not None:
            raise ConfigError("defense 'dp-sgd': give 'epsilon' or 'noise_multiplier', not both")

    @property
    def epsilon(self) -> float | None:
        p = self.params
        return p.epsilon if p.epsilon is not None or p.noise_multiplier is not None else DEFAULT_EPSILON

    @property
    def private(self) -> bool:
        """DP-SGD runs unless no privacy was asked for (``epsilon: inf`` trains exactly as without it)."""
        return self.params.noise_multiplier is not None or math.isfinite(self.epsilon)

    def wrap(self, model: nn.Module, optimizer: torch.optim.Optimizer, loader: Loader, train: Split,
             context: TrainingContext) -> tuple[nn.Module, torch.optim.Optimizer, Loader]:
        """Per-sample clipping, Gaussian noise and Poisson sampling through Opacus' PrivacyEngine."""
        if not self.private:
            return model, optimizer, loader
        from opacus import PrivacyEngine
        from torch.utils.data import DataLoader, TensorDataset

        p = self.params
        torch.manual_seed(context.seed)
        batches = DataLoader(TensorDataset(train.x, train.y), batch_size=context.plan.batch_size, shuffle=True,
                             generator=torch.Generator().manual_seed(context.seed))
        self._engine = PrivacyEngine(accountant="rdp")
        common = {"module": model, "optimizer": optimizer, "data_loader": batches, "max_grad_norm": p.max_grad_norm,
                  "noise_generator": torch.Generator().manual_seed(context.seed + 1)}
        if p.noise_multiplier is not None:
            wrapped = self._engine.make_private(noise_multiplier=p.noise_multiplier, **common)
        else:
            wrapped = self._engine.make_private_with_epsilon(target_epsilon=p.epsilon, target_delta=p.delta,
                                                             epochs=context.plan.epochs, **common)
        self._wrapped = wrapped
        return wrapped

    def after_fit(self, model: Classifier) -> dict[str, Any]:
        if self._wrapped is None:
            return {"epsilon": math.inf, "delta": self.params.delta}
        module, optimizer, _ = self._wrapped
        module.to_standard_module()
        return {"epsilon": self._engine.get_epsilon(self.params.delta), "delta": self.params.delta,
                "noise_multiplier": optimizer.noise_multiplier}
