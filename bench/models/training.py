"""The one training loop shared by targets and evaluators, and the hooks that extend it.

A :class:`TrainingPlan` holds the loop's settings (epochs, learning rate, batch size, weight
decay). Everything else a training-stage defense does, it does through a :class:`TrainingHook`
— change the plan, shape the model (dropout, a bottleneck), initialise or freeze layers before
training, replace the criterion, add loss terms computed from the batch, the logits and the
penultimate features, wrap model, optimiser and loader (DP-SGD), report what it measured — so
:func:`fit` knows none of the defenses, and a new regulariser is one file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from bench.data.base import Split
from bench.models.architectures import Classifier
from bench.models.catalogue import ARCHITECTURES


@dataclass(frozen=True)
class TrainingPlan:
    """What the loop itself does; hooks may change it (``TrainingHook.configure``)."""

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float = 0.0

    @classmethod
    def from_spec(cls, spec: Any) -> TrainingPlan:
        """From a grid's ``target:`` or ``evaluator:`` spec (anything with epochs, lr and batch_size)."""
        return cls(epochs=spec.epochs, lr=spec.lr, batch_size=spec.batch_size)

    def replace(self, **changes: Any) -> TrainingPlan:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TrainingContext:
    """What a hook may use besides the model: the plan as every hook changed it, the seed of this
    training, the training set (for its statistics) and the attacker-side public data (for
    pretraining on it; never private images)."""

    plan: TrainingPlan
    seed: int
    public: Split | None = None
    train: Split | None = None


@dataclass(frozen=True)
class Batch:
    """One minibatch as the loss hooks see it."""

    x: Tensor
    y: Tensor
    features: Tensor  # the penultimate representation
    logits: Tensor
    model: Classifier


Loader = Any  # an iterable of (x, y) minibatches, re-iterable once per epoch


class TrainingHook:
    """The training loop's extension points; every method is optional (the default does nothing).

    ``incompatible_with`` names hooks this one cannot be stacked with (the config refuses the pair).
    """

    incompatible_with: ClassVar[tuple[str, ...]] = ()

    def configure(self, plan: TrainingPlan) -> TrainingPlan:
        """The loop's settings (epochs, learning rate, weight decay)."""
        return plan

    def shape_model(self, model: Classifier) -> Classifier:
        """Model options that change its structure or modules (dropout, a bottleneck); applied
        whenever the model is built, also to load cached weights into."""
        return model

    def before_fit(self, model: Classifier, context: TrainingContext) -> None:
        """Initialise or freeze layers before the loop (e.g. pretrain on public data)."""

    def criterion(self, logits: Tensor, y: Tensor) -> Tensor | None:
        """A replacement for cross-entropy (at most one hook of a stack gives one)."""
        return None

    def loss(self, batch: Batch) -> Tensor | None:
        """An extra loss term from the batch, its features and logits."""
        return None

    def transform_batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """A minibatch before the forward pass (e.g. augmented)."""
        return x, y

    def wrap(self, model: nn.Module, optimizer: torch.optim.Optimizer, loader: Loader, train: Split,
             context: TrainingContext) -> tuple[nn.Module, torch.optim.Optimizer, Loader]:
        """Wrap model, optimiser and loader (e.g. DP-SGD's per-sample clipping and noise)."""
        return model, optimizer, loader

    def after_step(self, model: Classifier) -> None:
        """After each optimiser step (e.g. to average weights)."""

    def after_fit(self, model: Classifier) -> dict[str, Any]:
        """Undo any wrapping; return what reaches the tables (e.g. the spent epsilon)."""
        return {}


class ShuffledBatches:
    """Minibatches of a split in a fresh random order every epoch, from one generator."""

    def __init__(self, split: Split, batch_size: int, generator: torch.Generator) -> None:
        self.split, self.batch_size, self.generator = split, batch_size, generator

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        order = torch.randperm(len(self.split), generator=self.generator)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield self.split.x[idx], self.split.y[idx]


def build(model: str, shape: tuple[int, int, int], num_classes: int, seed: int,
          hooks: Sequence[TrainingHook] = (), width: float = 1.0) -> Classifier:
    """A freshly initialised architecture of ``width``, shaped by the hooks' model options."""
    torch.manual_seed(seed)
    net = ARCHITECTURES[model](shape, num_classes, width)
    for hook in hooks:
        net = hook.shape_model(net)
    return net


def plan_for(plan: TrainingPlan, hooks: Sequence[TrainingHook]) -> TrainingPlan:
    for hook in hooks:
        plan = hook.configure(plan)
    return plan


def fit(net: Classifier, train: Split, plan: TrainingPlan, seed: int, desc: str,
        hooks: Sequence[TrainingHook] = (), public: Split | None = None) -> dict[str, Any]:
    """Train ``net`` in place with ``plan`` as the hooks change it; returns the loss history and
    whatever the hooks report."""
    plan = plan_for(plan, hooks)
    context = TrainingContext(plan=plan, seed=seed, public=public, train=train)
    for hook in hooks:
        hook.before_fit(net, context)
    optimizer: torch.optim.Optimizer = torch.optim.Adam(net.parameters(), lr=plan.lr, weight_decay=plan.weight_decay)
    loader: Loader = ShuffledBatches(train, plan.batch_size, torch.Generator().manual_seed(seed))
    model: nn.Module = net
    for hook in hooks:
        model, optimizer, loader = hook.wrap(model, optimizer, loader, train, context)
    history = []
    model.train()
    bar = tqdm(range(plan.epochs), desc=desc, unit="epoch", leave=True, mininterval=0.5)
    for _ in bar:
        total, seen = 0.0, 0
        for x, y in loader:
            if len(x) == 0:  # Poisson sampling (DP-SGD) can draw an empty batch
                continue
            for hook in hooks:
                x, y = hook.transform_batch(x, y)
            optimizer.zero_grad()
            loss = _loss(net, x, y, hooks)
            loss.backward()
            optimizer.step()
            for hook in hooks:
                hook.after_step(net)
            total += loss.item() * len(x)
            seen += len(x)
        history.append(total / max(1, seen))
        bar.set_postfix(loss=f"{history[-1]:.3f}")
    info: dict[str, Any] = {"history": history}
    for hook in hooks:
        info.update(hook.after_fit(net))
    net.eval()
    return info


def _loss(net: Classifier, x: Tensor, y: Tensor, hooks: Sequence[TrainingHook]) -> Tensor:
    """The criterion (cross-entropy unless a hook replaces it) plus every hook's extra term."""
    features = net.features(x)
    logits = net.head(net.neck(features))
    loss = next((c for hook in hooks if (c := hook.criterion(logits, y)) is not None), None)
    loss = F.cross_entropy(logits, y) if loss is None else loss
    batch = Batch(x, y, features, logits, net)
    for hook in hooks:
        term = hook.loss(batch)
        if term is not None:
            loss = loss + term
    return loss


@torch.no_grad()
def balanced_accuracy(net: nn.Module, split: Split) -> float:
    """The mean over classes of each class's accuracy: a training set where one identity fills
    half the images (``overrepresent``) is not scored mostly on that identity."""
    net.eval()
    hit = torch.cat([net(split.x[i : i + 1024]).argmax(1) == split.y[i : i + 1024] for i in range(0, len(split), 1024)])
    return balanced_mean(hit, split.y)


def balanced_mean(hit: Tensor, y: Tensor) -> float:
    """The mean over classes of each class's share of ``hit`` (0 without classes)."""
    classes = y.unique()
    return float(torch.stack([hit[y == k].float().mean() for k in classes]).mean()) if len(classes) else 0.0


@torch.no_grad()
def accuracy(net: nn.Module, split: Split, batch: int = 1024) -> float:
    net.eval()
    correct = sum(int((net(split.x[i : i + batch]).argmax(1) == split.y[i : i + batch]).sum())
                  for i in range(0, len(split), batch))
    return correct / max(1, len(split))
