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
from torch import Tensor

from bench.attacks.base import Attack, AttackRefused
from bench.oracle import BaseOracle, OracleView, QueryBlocked

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
    """Base of membership attacks, the inversion attacks' sibling: ``score`` a challenge set
    through the oracle alone; ``infer`` is its ``execute``."""

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


def draw_seed(rng: torch.Generator) -> int:
    """A shadow model's training seed, from the attack's generator so reruns train the same shadows."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=rng))


@torch.no_grad()
def shadow_probabilities(model: ShadowModel, x: Tensor) -> Tensor:
    """A shadow's softmax in float64, so its confidences saturate no sooner than the target's."""
    return torch.softmax(model(x).double(), dim=1)
