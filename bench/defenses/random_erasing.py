"""Random erasing against model inversion: the target never sees a whole face, so an inversion
that must reconstruct one is drawn away from its private features."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from bench.defenses.base import TrainingDefense
from bench.errors import ConfigError
from bench.models.architectures import Classifier
from bench.models.training import TrainingContext
from bench.params import param
from bench.registry import defense
from bench.seeds import generator

ATTEMPTS = 10  # as torchvision's RandomErasing: a box that does not fit is drawn again, then given up


def random_erase(x: Tensor, g: torch.Generator, probability: float, scale: tuple[float, float],
                 ratio: tuple[float, float], fill: Tensor) -> Tensor:
    """``x`` with one box per image (chosen with ``probability``) filled with the colour ``fill``
    (one value per channel): its area a share of the image drawn from ``scale``, its aspect from
    ``ratio`` (log-uniform), its place uniform over where it fits."""
    n, _, h, w = x.shape
    chosen = torch.rand(n, generator=g) < probability
    box_h, box_w = torch.zeros(n, dtype=torch.long), torch.zeros(n, dtype=torch.long)
    for _ in range(ATTEMPTS):
        area = h * w * torch.empty(n).uniform_(*scale, generator=g)
        aspect = torch.exp(torch.empty(n).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=g))
        bh, bw = (area * aspect).sqrt().round().long(), (area / aspect).sqrt().round().long()
        fits = chosen & (box_h == 0) & (bh >= 1) & (bw >= 1) & (bh < h) & (bw < w)
        box_h, box_w = torch.where(fits, bh, box_h), torch.where(fits, bw, box_w)
    top = (torch.rand(n, generator=g) * (h - box_h + 1)).long()
    left = (torch.rand(n, generator=g) * (w - box_w + 1)).long()
    rows, cols = torch.arange(h)[None, :], torch.arange(w)[None, :]
    inside = (((rows >= top[:, None]) & (rows < (top + box_h)[:, None]))[:, :, None]
              & ((cols >= left[:, None]) & (cols < (left + box_w)[:, None]))[:, None, :])
    return torch.where(inside[:, None], fill.view(1, -1, 1, 1).to(x.dtype).expand_as(x), x)


@defense("random-erasing")
class RandomErasing(TrainingDefense):
    """Every training minibatch has one random box of each image erased, drawn afresh each time
    (partial erasure at a random place, the two properties the paper finds matter), filled with
    the training set's mean colour. It is the training stage's, not the data stage's: a data
    defense would erase each image once, at one place."""

    citation = ("Tran, Nguyen, Mai, Vandierendonck, Assent, Kot & Cheung, TMLR 2025, 'Random Erasing vs. "
                "Model Inversion: A Promising Defense or a False Hope?' (defaults: their released FaceScrub "
                "target config, p 1.0, area 0.1-0.4, square boxes, filled with the mean colour)")

    @dataclass(frozen=True)
    class Params:
        probability: float = param(1.0, help="share of images erased in each minibatch", low=0, high=1,
                                   low_open=True)
        area_low: float = param(0.1, help="smallest erased area, as a share of the image", low=0, high=1,
                                low_open=True)
        area_high: float = param(0.4, help="largest erased area, as a share of the image", low=0, high=1)
        ratio_low: float = param(1.0, help="smallest box aspect (height / width)", low=0, low_open=True)
        ratio_high: float = param(1.0, help="largest box aspect (height / width)", low=0, low_open=True)

    def __init__(self, params: Params | None = None) -> None:
        super().__init__(params)
        self._generator = torch.Generator()
        self._fill = torch.tensor([0.5])

    def check(self, num_classes: int | None) -> None:
        p = self.params
        if p.area_low > p.area_high or p.ratio_low > p.ratio_high:
            raise ConfigError(f"defense 'random-erasing': needs area_low <= area_high and ratio_low <= ratio_high, "
                              f"got {p}")

    def before_fit(self, model: Classifier, context: TrainingContext) -> None:
        self._generator = generator(context.seed, "defense")
        assert context.train is not None, "random erasing fills with the training set's mean colour"
        self._fill = context.train.x.mean(dim=(0, 2, 3))

    def transform_batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        p = self.params
        return random_erase(x, self._generator, p.probability, (p.area_low, p.area_high),
                            (p.ratio_low, p.ratio_high), self._fill), y
