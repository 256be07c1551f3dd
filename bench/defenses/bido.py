"""BiDO: bilateral dependency optimisation with the Hilbert-Schmidt independence criterion."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.defenses.base import TrainingDefense
from bench.errors import ConfigError
from bench.models.training import Batch
from bench.params import param
from bench.registry import defense


def gaussian_gram(z: Tensor) -> Tensor:
    """Gaussian kernel matrix of the rows of ``z``, bandwidth by the median heuristic."""
    d2 = torch.cdist(z, z).pow(2)
    sigma2 = d2.detach()[d2.detach() > 0].median().clamp_min(1e-6) if (d2 > 0).any() else torch.tensor(1.0)
    return torch.exp(-d2 / (2 * sigma2))


def hsic(k: Tensor, l: Tensor) -> Tensor:  # noqa: E741  (the estimator's usual names)
    """Normalised biased HSIC estimate, tr(KHLH) / sqrt(tr(KHKH) tr(LHLH)), in [0, 1]."""
    n = len(k)
    h = torch.eye(n) - 1.0 / n
    kh, lh = k @ h, l @ h
    return (kh * lh.T).sum() / ((kh * kh.T).sum() * (lh * lh.T).sum()).clamp_min(1e-12).sqrt()


@defense("bido")
class BiDO(TrainingDefense):
    """Bilateral dependency optimisation: minimise the dependence between inputs and latent features,
    maximise it between features and labels, both measured with HSIC (Peng et al., KDD 2022)."""

    citation = ("Peng, Liu, Zhang, Hu, Chen, Ye & Wang, KDD 2022, "
                "'Bilateral Dependency Optimization: Defending Against Model-inversion Attacks'")
    incompatible_with = ("dp-sgd",)  # HSIC couples the samples of a batch: no per-sample gradient

    @dataclass(frozen=True)
    class Params:
        lambda_x: float = param(0.05, help="weight of HSIC(inputs, features), minimised (paper: 0.05 on faces)", low=0)
        lambda_y: float = param(0.5, help="weight of HSIC(labels, features), maximised (paper: 0.5 on faces)", low=0)

    def check(self, num_classes: int | None) -> None:
        if self.params.lambda_x == 0 and self.params.lambda_y == 0:
            raise ConfigError("defense 'bido': lambda_x and lambda_y are both 0, which is no defense; use 'none'")

    def loss(self, batch: Batch) -> Tensor:
        if len(batch.x) < 2:
            return batch.logits.sum() * 0
        k_z = gaussian_gram(batch.features.flatten(1))
        k_x = gaussian_gram(batch.x.flatten(1))
        k_y = F.one_hot(batch.y, batch.logits.shape[1]).float() @ F.one_hot(batch.y, batch.logits.shape[1]).float().T
        return self.params.lambda_x * hsic(k_x, k_z) - self.params.lambda_y * hsic(k_y, k_z)
