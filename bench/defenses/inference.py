"""Inference-stage defenses: harden what the oracle returns. The target itself is unchanged,
and a white-box attacker, who holds the model, never sees these outputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.defenses.base import OutputDefense
from bench.errors import ConfigError
from bench.params import param
from bench.registry import defense


@defense("round")
class Round(OutputDefense):
    """Round each confidence to ``decimals`` decimal places."""

    citation = "Fredrikson et al., CCS 2015 (rounding as a countermeasure)"

    @dataclass(frozen=True)
    class Params:
        decimals: int = param(2, help="decimal places kept", low=0, high=8)

    def transform_outputs(self, probs: Tensor, generator: torch.Generator) -> Tensor:
        return torch.round(probs, decimals=self.params.decimals)


@defense("topk")
class TopK(OutputDefense):
    """Return only the ``k`` largest confidences; the rest are zero."""

    citation = "Shokri et al., S&P 2017 (restricting the prediction vector to top-k)"

    @dataclass(frozen=True)
    class Params:
        k: int = param(1, help="confidences kept", low=1)

    def check(self, num_classes: int | None) -> None:
        if num_classes is not None and self.params.k > num_classes:
            raise ConfigError(
                f"defense 'topk': parameter 'k' is {self.params.k}, larger than the {num_classes} classes; "
                f"allowed: 1..{num_classes}"
            )

    def transform_outputs(self, probs: Tensor, generator: torch.Generator) -> Tensor:
        top = probs.topk(min(self.params.k, probs.shape[1]), dim=1)
        return torch.zeros_like(probs).scatter_(1, top.indices, top.values)


@defense("label-only")
class LabelOnly(OutputDefense):
    """Return the one-hot top class: the attacker is left with labels only."""

    citation = "label-only APIs (Choquette-Choo et al., ICML 2021, 'Label-only membership inference')"
    label_only = True

    def transform_outputs(self, probs: Tensor, generator: torch.Generator) -> Tensor:
        return F.one_hot(probs.argmax(dim=1), probs.shape[1]).to(probs.dtype)


@defense("noise")
class Noise(OutputDefense):
    """Add Gaussian or Laplace noise to the confidences, clip to [0, 1] and renormalise."""

    citation = "output perturbation (e.g. Jia et al., CCS 2019, 'MemGuard', in its simplest form)"

    @dataclass(frozen=True)
    class Params:
        scale: float = param(0.05, help="noise standard deviation (Gaussian) or scale (Laplace)", low=0,
                             low_open=True)
        kind: str = param("gaussian", help="noise distribution", choices=("gaussian", "laplace"))

    def transform_outputs(self, probs: Tensor, generator: torch.Generator) -> Tensor:
        if self.params.kind == "gaussian":
            noise = torch.randn(probs.shape, generator=generator) * self.params.scale
        else:  # Laplace by inverse CDF, so the generator keeps it reproducible
            u = torch.rand(probs.shape, generator=generator) - 0.5
            noise = -self.params.scale * torch.sign(u) * torch.log1p(-2 * u.abs())
        noisy = (probs + noise).clamp(0, 1)
        total = noisy.sum(dim=1, keepdim=True)
        uniform = torch.full_like(noisy, 1 / probs.shape[1])
        return torch.where(total > 0, noisy / total.clamp_min(1e-12), uniform)


@defense("bins")
class Bins(OutputDefense):
    """Report each confidence as the middle of its bucket (e.g. low / medium / high)."""

    citation = "coarse confidence buckets, as some prediction APIs return"

    @dataclass(frozen=True)
    class Params:
        edges: list[float] = param([0.5, 0.8], help="inner bucket edges, increasing, in (0, 1)", low=0, high=1)

    def check(self, num_classes: int | None) -> None:
        e = self.params.edges
        if not e or any(b <= a for a, b in zip(e, e[1:])) or e[0] <= 0 or e[-1] >= 1:
            raise ConfigError(f"defense 'bins': parameter 'edges' is {e}; allowed: a non-empty increasing list in (0, 1)")

    def transform_outputs(self, probs: Tensor, generator: torch.Generator) -> Tensor:
        bounds = torch.tensor([0.0, *self.params.edges, 1.0], dtype=probs.dtype)
        idx = torch.bucketize(probs, bounds[1:-1], right=True)
        return (bounds[idx] + bounds[idx + 1]) / 2
