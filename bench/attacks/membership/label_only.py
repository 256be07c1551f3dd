"""Label-only membership inference by data augmentation (Choquette-Choo et al., ICML 2021)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.attacks.membership.base import MembershipAttack, Population, ShadowTrainer
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("label-only-mia")
class LabelOnlyMIA(MembershipAttack):
    """The data-augmentation attack of Choquette-Choo et al. (ICML 2021): from top-1 labels
    alone. A model stays right on small shifts, flips and noise of the images it trained on
    more often than on unseen ones; score = the share of ``augmentations`` random copies (and
    the image itself) the oracle labels with the true label. Costs ``augmentations + 1`` queries
    per image."""

    threat_model = ThreatModel.LABEL_ONLY

    @dataclass(frozen=True)
    class Params:
        augmentations: int = param(16, help="augmented copies per image, each one query", low=1)
        max_shift: int = param(1, help="largest shift in pixels, per axis", low=0)
        flip: bool = param(True, help="flip half the copies left-right (off for data where a flip changes the class)")
        noise: float = param(0.02, help="Gaussian pixel-noise standard deviation of every copy", low=0)

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, population: Population, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        copies = [x] + [self.augment(x, rng) for _ in range(self.params.augmentations)]
        return torch.stack([(oracle.labels(c) == y).double() for c in copies]).mean(0)

    def augment(self, x: Tensor, rng: torch.Generator) -> Tensor:
        """One copy of the batch: one random shift (edges replicated) and flip, fresh noise per pixel."""
        p = self.params
        s = p.max_shift
        dy, dx = (torch.randint(0, 2 * s + 1, (2,), generator=rng)).tolist()
        h, w = x.shape[-2:]
        out = F.pad(x, (s, s, s, s), mode="replicate")[..., dy : dy + h, dx : dx + w]
        if p.flip and bool(torch.rand((), generator=rng) < 0.5):
            out = out.flip(-1)
        return (out + p.noise * torch.randn(out.shape, generator=rng)).clamp(0, 1)
