"""Membership inference attacks: how likely is it that the target trained on this image?

They are attacks of the kind ``membership``, registered and configured like inversion attacks
and run in the same jobs on the same targets, through the same oracle (threat models, output
defenses, guards and budgets apply unchanged). An attack sees the target only through an :class:`~bench.oracle.OracleView` (every image it
asks about is a counted query) and returns one score per challenge image, higher for images it
thinks are members. Attacks that calibrate against reference models get a :data:`ShadowTrainer`
from the job: it trains a model with the target's recipe on whatever the attack hands it and
returns that model as a function from images to logits, so the attack decides *what* shadows
train on (the public data; for online LiRA also the challenge images) and never imports model code.

Label spaces: public labels number the public classes from 0, private labels the private
identities from 0. Where the public data are other identities (face data), the numbers name
different people, so a shadow that trains on both (online LiRA) sees the private labels after
the public ones; where they are other samples of the same classes (digits), the numbers agree
and the labels are kept — the job says which (:class:`PublicImages`). A shadow trainer is
built with :func:`shadow_classes` outputs, enough for either.
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

from bench.attacks.base import Attack
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
class PublicImages:
    """The attacker's labelled public images, and whether their labels number the same classes
    as the private identities (other samples of the same classes) or other people."""

    x: Tensor
    y: Tensor
    same_classes: bool


@dataclass(frozen=True)
class MembershipResult:
    """One score per challenge image (higher: more likely a member), and what it cost."""

    scores: Tensor
    queries: int
    seconds: float
    blocked: str | None = None  # why an endpoint guard stopped the attacker, if it did


def shadow_classes(public_labels: Tensor, private_classes: int) -> int:
    """Output width every shadow model needs: the public classes, then the private identities."""
    return int(public_labels.max()) + 1 + private_classes


def log_odds(probs: Tensor, labels: Tensor) -> Tensor:
    """``log p_y - log sum_{j != y} p_j`` in float64: the logit-scaled confidence of LiRA
    (Carlini et al. 2022, eq. 4), summed from the other classes rather than ``1 - p_y`` so
    confidences near 1 keep their spread."""
    p = probs.double()
    hit = F.one_hot(labels, p.shape[1]).bool()
    return p[hit].clamp_min(TINY).log() - p.masked_fill(hit, 0).sum(1).clamp_min(TINY).log()


def max_log_odds(probs: Tensor) -> Tensor:
    """:func:`log_odds` of the top class: a confidence that needs no label, so a model trained on
    other classes (a shadow on public identities) can be asked about any image."""
    return log_odds(probs, probs.argmax(1))


class MembershipAttack(Attack):
    """Base of membership attacks: ``score`` a challenge set through the oracle alone.

    Shares the inversion attacks' traits (threat model, parameters, budget, refusal of a
    weaker oracle before any query); ``infer`` is its ``execute``."""

    kind = "membership"

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, public: PublicImages, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        """One score per challenge image ``x`` (true private labels ``y``): higher means more likely
        a member. Deterministic for the state of ``rng``."""
        raise NotImplementedError

    def infer(self, oracle: BaseOracle, x: Tensor, y: Tensor, public: PublicImages, shadows: ShadowTrainer,
              seed: int) -> MembershipResult:
        """Score ``x`` through ``oracle`` (seen as an :class:`OracleView`); refuse a wrong oracle up front.
        An attacker an endpoint guard stops has no scores: every image gets the same one (an
        uninformed guess, AUC 0.5), and the result says why."""
        self.refuse_weaker(oracle)
        start_queries, start = oracle.queries, time.perf_counter()
        try:
            scores, blocked = self.score(OracleView(oracle), x, y, public, shadows,
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

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, public: PublicImages, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        return log_odds(oracle.probabilities(x), y)


@attack("shadow")
class Shadow(MembershipAttack):
    """Shokri et al. (S&P 2017), with ML-Leaks' class-agnostic features (Salem et al., NDSS 2019).

    Each shadow model trains on a random half of the public data; its outputs on the half it
    trained on (in) and on the other half (out) teach a logistic-regression attack classifier
    what the target's outputs look like on members. The features name no class — the true
    label's log-odds and the sorted top-k log-probabilities — so shadows on public identities
    can teach an attack on private ones. Score = the classifier's decision value on the
    oracle's probabilities (one query per image).
    """

    threat_model = ThreatModel.BLACK_BOX

    @dataclass(frozen=True)
    class Params:
        shadow_models: int = param(4, help="shadow models, each trained on a random half of the public data", low=1)
        top_k: int = param(3, help="sorted top probabilities in the attack classifier's features", low=1)

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, public: PublicImages, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        p = self.params
        features, trained_on = [], []
        for _ in range(p.shadow_models):
            half = random_half(len(public.y), rng)
            model = shadows(public.x[half], public.y[half], draw_seed(rng))
            features.append(self.features(shadow_probabilities(model, public.x), public.y))
            trained_on.append(half)
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
    """The likelihood-ratio attack of Carlini et al. (S&P 2022), at CPU scale.

    Per challenge image, shadow models give the distribution of a model's confidence on it
    when the image was out of training (offline: every shadow, trained on a random half of the
    public data and never on a challenge image) and, online, also when it was in (each image
    trains half the shadows, beside a random half of the public data). The confidence is
    :func:`max_log_odds`, the logit-scaled probability of the top class, for the target and the
    shadows alike: a shadow trained on public identities has no output for a private image's
    true label, and one statistic must mean the same on both sides. Online scores the
    log-likelihood ratio of the target's confidence under the in and out Gaussians; offline,
    how many out-standard-deviations it lies above the out mean, which ranks images as the
    paper's one-sided test does without saturating at 1. With few shadows a variance pooled
    over all images (the paper's fixed variance) is steadier than one per image. Online
    shadows label challenge images with their identity: the public class of the same number
    where the public data are other samples of the same classes, a class after the public
    ones where they are other people.
    """

    threat_model = ThreatModel.BLACK_BOX

    @dataclass(frozen=True)
    class Params:
        variant: str = param("offline", help="offline: shadows never train on challenge images; online: half of "
                                             "them train on each", choices=("offline", "online"))
        shadow_models: int = param(8, help="shadow models (online: half train on each challenge image)", low=2)
        variance: str = param("global", help="Gaussian spread: pooled over all images, or fitted per image",
                              choices=("global", "per-example"))

        def __post_init__(self) -> None:
            per_side = self.shadow_models // 2 if self.variant == "online" else self.shadow_models
            if per_side < 2:
                raise ConfigError(f"attack 'lira': {self.variant} LiRA with {self.shadow_models} shadow models fits a "
                                  "Gaussian to fewer than 2 confidences per image; use more shadow models")

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, public: PublicImages, shadows: ShadowTrainer,
              rng: torch.Generator) -> Tensor:
        p = self.params
        keep = self.assignment(len(y), rng)
        first_private = 0 if public.same_classes else int(public.y.max()) + 1
        confidences = []
        for inside in keep:
            half = random_half(len(public.y), rng)
            labels = torch.cat([public.y[half], y[inside] + first_private])
            model = shadows(torch.cat([public.x[half], x[inside]]), labels, draw_seed(rng))
            confidences.append(max_log_odds(shadow_probabilities(model, x)))
        confidence = torch.stack(confidences)
        observed = max_log_odds(oracle.probabilities(x))
        out_mean, out_std = gaussian(confidence, ~keep, p.variance)
        if p.variant == "offline":
            return (observed - out_mean) / out_std
        in_mean, in_std = gaussian(confidence, keep, p.variance)
        return log_normal(observed, in_mean, in_std) - log_normal(observed, out_mean, out_std)

    def assignment(self, n: int, rng: torch.Generator) -> Tensor:
        """Shadows × challenge images: whether the shadow trains on the image. Offline: never;
        online: exactly half the shadows (rounded down) for every image, chosen at random."""
        m = self.params.shadow_models
        if self.params.variant == "offline":
            return torch.zeros((m, n), dtype=torch.bool)
        return torch.rand((m, n), generator=rng).argsort(0) < m // 2


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

    def score(self, oracle: OracleView, x: Tensor, y: Tensor, public: PublicImages, shadows: ShadowTrainer,
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


def random_half(n: int, rng: torch.Generator) -> Tensor:
    """A bool mask of exactly ``n // 2`` of ``n`` items, chosen with ``rng``."""
    mask = torch.zeros(n, dtype=torch.bool)
    mask[torch.randperm(n, generator=rng)[: n // 2]] = True
    return mask


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
    "LabelOnlyMIA", "LiRA", "LossThreshold", "MembershipAttack", "MembershipResult", "PublicImages", "Shadow",
    "ShadowModel", "ShadowTrainer", "log_odds", "max_log_odds", "shadow_classes",
]
