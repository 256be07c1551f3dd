"""The likelihood-ratio attack, LiRA (Carlini et al., S&P 2022), offline and online."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from bench.attacks.membership.base import MembershipAttack, Population, ShadowTrainer, draw_seed, log_odds, shadow_probabilities
from bench.errors import ConfigError
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("lira")
class LiRA(MembershipAttack):
    """The likelihood-ratio attack of Carlini et al. (S&P 2022).

    Shadow models of the target's architecture, recipe, training-set size and class count give,
    per challenge image, the distribution of a model's confidence on it when it was out of
    training and, online, when it was in. The confidence is :func:`log_odds` of the image's
    true label (the paper's logit scaling), for the target and the shadows alike.

    - offline: every shadow trains on a random population subset of the target's size and never
      on a challenge image; the score is how many out-standard-deviations the target's
      confidence lies above the out mean (the paper's one-sided test, without saturating at 1).
    - online: each shadow trains on the challenge images assigned to it, filled up to the
      target's size with population images; every challenge image is in the training set of
      the same number of shadows, ``round(shadows * q)`` with ``q = min(1/2, train size /
      challenge size)`` (a challenge set larger than twice the target's training set cannot be
      half in every shadow at the target's size), at least two (a spread needs two confidences)
      and leaving at least two out — so with a challenge set much larger than the target's
      training set a shadow trains on more images than the target did. The score is the
      log-likelihood ratio of the target's confidence under the in and out Gaussians.

    ``variance: global`` pools the spread over all images (the paper's fixed variance, steadier
    with few shadows); ``per-example`` fits one per image.
    """

    threat_model = ThreatModel.BLACK_BOX

    @dataclass(frozen=True)
    class Params:
        variant: str = param("offline", help="offline: shadows never train on challenge images; online: about half "
                                             "of them train on each", choices=("offline", "online"))
        shadow_models: int = param(8, help="shadow models (reference models) of the target's recipe and size", low=2)
        variance: str = param("global", help="Gaussian spread: pooled over all images, or fitted per image",
                              choices=("global", "per-example"))

        def __post_init__(self) -> None:
            per_side = self.shadow_models // 2 if self.variant == "online" else self.shadow_models
            if per_side < 2:
                raise ConfigError(f"attack 'lira': {self.variant} LiRA with {self.shadow_models} shadow models fits a "
                                  "Gaussian to fewer than 2 confidences per image; use more shadow models")

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, population: Population, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        p = self.params
        keep = self.assignment(len(y), population.train_size, rng)
        confidences = []
        for inside in keep:
            fill = population.draw(max(0, population.train_size - int(inside.sum())), rng, f"attack 'lira' ({p.variant})")
            images, labels = torch.cat([x[inside], population.x[fill]]), torch.cat([y[inside], population.y[fill]])
            model = shadows(images, labels, draw_seed(rng))
            confidences.append(log_odds(shadow_probabilities(model, x), y))
        confidence = torch.stack(confidences)
        observed = log_odds(oracle.probabilities(x), y)
        out_mean, out_std = gaussian(confidence, ~keep, p.variance)
        if p.variant == "offline":
            return (observed - out_mean) / out_std
        in_mean, in_std = gaussian(confidence, keep, p.variance)
        return log_normal(observed, in_mean, in_std) - log_normal(observed, out_mean, out_std)

    def assignment(self, n: int, train_size: int, rng: torch.Generator) -> Tensor:
        """Shadows × challenge images: whether the shadow trains on the image. Offline: never;
        online: the same number of shadows for every image (see the class), chosen at random."""
        m = self.params.shadow_models
        if self.params.variant == "offline":
            return torch.zeros((m, n), dtype=torch.bool)
        share = min(0.5, train_size / n)
        inside = min(m - 2, max(2, round(m * share)))
        return torch.rand((m, n), generator=rng).argsort(0) < inside




def gaussian(values: Tensor, mask: Tensor, variance: str) -> tuple[Tensor, Tensor]:
    """Per-column mean and standard deviation of the ``mask``ed entries of ``values`` (models ×
    images); ``variance='global'`` pools the spread over all columns."""
    count = mask.sum(0).double()
    mean = (values * mask).sum(0) / count
    squares = ((values - mean) ** 2 * mask).sum(0)
    if variance == "global":
        std = (squares.sum() / (count.sum() - len(count))).sqrt().expand_as(mean)
    else:
        std = (squares / (count - 1)).sqrt()
    return mean, std.clamp_min(1e-6)


def log_normal(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Gaussian log-density up to the constant ``-log(2 pi) / 2``, which cancels in a ratio."""
    return -0.5 * ((x - mean) / std) ** 2 - std.log()
