"""Membership inference attacks: how likely is it that the target trained on this image?

They are attacks of the kind ``membership``, registered and configured like inversion attacks
and run in the same jobs on the same targets, through the same oracle (threat models, output
defenses, guards and budgets apply unchanged). An attack sees the target only through an
:class:`~bench.oracle.OracleView` (every image it asks about is a counted query) and returns one
score per challenge image, higher for images it thinks are members.

The threat model is the field's (Shokri et al. 2017; Carlini et al. 2022): the attacker holds a
:class:`Population` — other images from the private data's distribution, of the same people
(or classes), labelled with the same identities, never an image of the challenge set — and
knows the target's recipe and training-set size. Attacks that calibrate against reference
(shadow) models get a :data:`ShadowTrainer` from the job: it trains a model with the target's
architecture, recipe and class count on whatever the attack hands it and returns that model as a
function from images to logits, so the attack decides *what* shadows train on (population
subsets of the target's size; for online LiRA also challenge images) and never imports model code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from bench.attacks.base import Attack, AttackRefused
from bench.errors import ConfigError
from bench.oracle import BaseOracle, OracleView, QueryBlocked, ThreatModel
from bench.params import param
from bench.registry import attack

ShadowModel = Callable[[Tensor], Tensor]  # images -> logits
ShadowTrainer = Callable[[Tensor, Tensor, int], ShadowModel]  # (images, labels, seed) -> trained model

# probabilities below this are treated as this: a float32 softmax rounds the runners-up of a
# confident prediction to 0, and log(0) would tie every such image at infinity
TINY = 1e-30


@dataclass(frozen=True)
class Population:
    """What a membership attacker holds: images ``x`` from the private data's distribution with
    their private identities ``y`` (none of them in the challenge set), and the size of the
    target's training set, so reference models can be trained at the target's size."""

    x: Tensor
    y: Tensor
    train_size: int

    def __len__(self) -> int:
        return len(self.y)

    def draw(self, size: int, rng: torch.Generator, what: str) -> Tensor:
        """``size`` random population indices, or a refusal that says why: a reference model
        smaller than the target would not model it."""
        if len(self) < size:
            raise AttackRefused(f"{what} trains reference models of the target's training-set size "
                                f"({self.train_size} images) and needs {size} population images; the attacker's "
                                f"population holds {len(self)}: give the dataset a larger population")
        return torch.randperm(len(self), generator=rng)[:size]


@dataclass(frozen=True)
class MembershipResult:
    """One score per challenge image (higher: more likely a member), and what it cost."""

    scores: Tensor
    queries: int
    seconds: float
    blocked: str | None = None  # why an endpoint guard stopped the attacker, if it did


def log_odds(probs: Tensor, labels: Tensor) -> Tensor:
    """``log p_y - log sum_{j != y} p_j`` in float64: the logit-scaled confidence of LiRA
    (Carlini et al. 2022, eq. 4), summed from the other classes rather than ``1 - p_y`` so
    confidences near 1 keep their spread."""
    p = probs.double()
    hit = F.one_hot(labels, p.shape[1]).bool()
    return p[hit].clamp_min(TINY).log() - p.masked_fill(hit, 0).sum(1).clamp_min(TINY).log()


def true_label_probability(probs: Tensor, labels: Tensor) -> Tensor:
    """``p_y`` in float64: the signal RMIA compares (Zarifzadeh et al. 2024)."""
    return probs.double().gather(1, labels[:, None])[:, 0]


class MembershipAttack(Attack):
    """Base of membership attacks: ``score`` a challenge set through the oracle alone.

    Shares the inversion attacks' traits (threat model, parameters, budget, refusal of a
    weaker oracle before any query); ``infer`` is its ``execute``."""

    kind = "membership"

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, population: Population, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        """One score per challenge image ``x`` (true private labels ``y``): higher means more likely
        a member. Deterministic for the state of ``rng``."""
        raise NotImplementedError

    def infer(self, oracle: BaseOracle, x: Tensor, y: Tensor, population: Population, shadows: ShadowTrainer,
              seed: int) -> MembershipResult:
        """Score ``x`` through ``oracle`` (seen as an :class:`OracleView`); refuse a wrong oracle up front.
        An attacker an endpoint guard stops has no scores: every image gets the same one (an
        uninformed guess, AUC 0.5), and the result says why."""
        self.refuse_weaker(oracle)
        start_queries, start = oracle.queries, time.perf_counter()
        try:
            scores, blocked = self.score(OracleView(oracle), x, y, population, shadows,
                                         torch.Generator().manual_seed(seed)), None
        except QueryBlocked as exc:
            scores, blocked = torch.zeros(len(y), dtype=torch.float64), str(exc)
        if scores.shape != y.shape or not torch.isfinite(scores.double()).all():
            raise ValueError(f"attack '{self.name}' must return one finite score per challenge image")
        return MembershipResult(scores.double(), oracle.queries - start_queries, time.perf_counter() - start, blocked)


@attack("loss-threshold")
class LossThreshold(MembershipAttack):
    """Yeom et al. (CSF 2018): a model's loss is lower on what it trained on. Score = minus the
    cross-entropy of the true label under the oracle's probabilities: the baseline every other
    attack must beat, at one query per image and no shadow models. Ranked by the true label's
    :func:`log_odds`, which orders images exactly as the loss does but keeps apart the confident
    ones whose float32 probability rounds to 1 (measured: on an over-fit digits target those
    ties left the loss no true positive at 1 % FPR)."""

    threat_model = ThreatModel.BLACK_BOX

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, population: Population, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        return log_odds(oracle.probabilities(x), y)


@attack("shadow")
class Shadow(MembershipAttack):
    """Shokri et al. (S&P 2017), with ML-Leaks' class-agnostic features (Salem et al., NDSS 2019).

    Each shadow model trains on a random subset of the population of the target's training-set
    size; its outputs on that subset (in) and on the rest of the population (out) teach a
    logistic-regression attack classifier what the target's outputs look like on members. The
    features are the true label's log-odds and the sorted top-k log-probabilities. Score = the
    classifier's decision value on the oracle's probabilities (one query per image).
    """

    threat_model = ThreatModel.BLACK_BOX

    @dataclass(frozen=True)
    class Params:
        shadow_models: int = param(4, help="shadow models, each trained on a random population subset of the "
                                           "target's training-set size", low=1)
        top_k: int = param(3, help="sorted top probabilities in the attack classifier's features", low=1)

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, population: Population, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        p = self.params
        features, trained_on = [], []
        for _ in range(p.shadow_models):
            subset = population.draw(population.train_size, rng, "attack 'shadow'")
            model = shadows(population.x[subset], population.y[subset], draw_seed(rng))
            features.append(self.features(shadow_probabilities(model, population.x), population.y))
            inside = torch.zeros(len(population), dtype=torch.bool)
            inside[subset] = True
            trained_on.append(inside)
        classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        classifier.fit(torch.cat(features).numpy(), torch.cat(trained_on).numpy())
        target = self.features(oracle.probabilities(x), y)
        return torch.from_numpy(classifier.decision_function(target.numpy()))

    def features(self, probs: Tensor, labels: Tensor) -> Tensor:
        """The true label's log-odds, then the top-k log-probabilities in decreasing order."""
        k = min(self.params.top_k, probs.shape[1])
        top = probs.double().topk(k, dim=1).values.clamp_min(TINY).log()
        return torch.cat([log_odds(probs, labels)[:, None], top], dim=1)


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


@attack("rmia")
class RMIA(MembershipAttack):
    """The robust membership inference attack of Zarifzadeh et al. (ICML 2024), offline.

    A pairwise likelihood ratio: the target's probability of the true label of challenge image
    ``x``, over ``Pr(x)`` — its average over reference models, which here never trained on ``x``,
    corrected by the paper's offline rule ``Pr(x) = ((1 + a) Pr_out(x) + (1 - a)) / 2`` — set
    against the same ratio of population images ``z``. Score = the share of ``z`` that ``x``
    dominates by a factor ``gamma``. A ``z`` is only compared under reference models it was out
    of, so its ``Pr(z)`` is as offline as ``Pr(x)``. Reference models train on population
    subsets of the target's size (the same shadows as offline LiRA's); every ``x`` and ``z`` is
    one query.
    """

    threat_model = ThreatModel.BLACK_BOX

    @dataclass(frozen=True)
    class Params:
        reference_models: int = param(4, help="reference models of the target's recipe and size", low=1)
        population_samples: int = param(1000, help="population images z each challenge image is compared with", low=1)
        gamma: float = param(1.0, help="how far x's likelihood ratio must exceed z's to count", low=0, low_open=True)
        offline_a: float = param(0.3, help="the offline correction a of Pr(x) = ((1+a) Pr_out(x) + (1-a)) / 2",
                                 low=0, high=1)

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, population: Population, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        p = self.params
        models, subsets = [], []
        for _ in range(p.reference_models):  # drawn as offline LiRA draws its shadows: the same first models
            subset = population.draw(population.train_size, rng, "attack 'rmia'")
            models.append(shadows(population.x[subset], population.y[subset], draw_seed(rng)))
            subsets.append(subset)
        z = torch.randperm(len(population), generator=rng)[: p.population_samples]
        zx, zy = population.x[z], population.y[z]
        out_z = torch.stack([~torch.isin(z, subset) for subset in subsets])
        ref_x = [true_label_probability(shadow_probabilities(m, x), y) for m in models]
        ref_z = [true_label_probability(shadow_probabilities(m, zx), zy) for m in models]
        usable = out_z.any(0)
        prior_x = self.offline(torch.stack(ref_x).mean(0))
        counts = out_z.sum(0).clamp_min(1)
        prior_z = self.offline((torch.stack(ref_z) * out_z).sum(0) / counts)[usable]
        ratio_x = true_label_probability(oracle.probabilities(x), y) / prior_x
        ratio_z = true_label_probability(oracle.probabilities(zx[usable]), zy[usable]) / prior_z
        return (ratio_x[:, None] / ratio_z[None, :] > p.gamma).double().mean(1)

    def offline(self, p_out: Tensor) -> Tensor:
        """``Pr(x)`` from reference models that never trained on x (the paper's offline rule)."""
        a = self.params.offline_a
        return (((1 + a) * p_out + (1 - a)) / 2).clamp_min(TINY)


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


def draw_seed(rng: torch.Generator) -> int:
    """A shadow model's training seed, from the attack's generator so reruns train the same shadows."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=rng))


@torch.no_grad()
def shadow_probabilities(model: ShadowModel, x: Tensor) -> Tensor:
    """A shadow's softmax in float64, so its confidences saturate no sooner than the target's."""
    return torch.softmax(model(x).double(), dim=1)


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


__all__ = [
    "RMIA", "LabelOnlyMIA", "LiRA", "LossThreshold", "MembershipAttack", "MembershipResult", "Population", "Shadow",
    "ShadowModel", "ShadowTrainer", "log_odds", "true_label_probability",
]
