"""The training loop shared by targets and evaluators.

A :class:`Recipe` says everything the loop does; training-stage defenses change the recipe
(dropout, weight decay, L1, label smoothing, epochs, DP-SGD), never the loop itself, so
every defense is trained by the same code as the undefended target.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm

from bench.data.base import Split
from bench.models.architectures import ARCHITECTURES, TARGET_MODELS, Classifier
from bench.params import param


@dataclass(frozen=True)
class LoopSpec:
    """The training loop's settings shared by targets and the evaluator."""

    epochs: int = param(30, help="training epochs", low=1)
    lr: float = param(1e-3, help="Adam learning rate", low=0, low_open=True)
    batch_size: int = param(64, help="minibatch size", low=1)


@dataclass(frozen=True)
class TrainSpec(LoopSpec):
    """How every target of a grid is trained (the config's ``target:`` mapping)."""

    model: str = param("cnn", help="target architecture", choices=TARGET_MODELS)


@dataclass(frozen=True)
class Recipe:
    """What the training loop does. ``dp_epsilon`` or ``dp_noise_multiplier`` turns on DP-SGD."""

    epochs: int
    lr: float
    batch_size: int
    dropout: float = 0.0
    weight_decay: float = 0.0
    l1: float = 0.0
    label_smoothing: float = 0.0
    dp_epsilon: float | None = None
    dp_noise_multiplier: float | None = None
    dp_delta: float = 1e-5
    dp_max_grad_norm: float = 1.0

    @classmethod
    def from_spec(cls, spec: LoopSpec) -> Recipe:
        return cls(epochs=spec.epochs, lr=spec.lr, batch_size=spec.batch_size)

    @property
    def private(self) -> bool:
        """DP-SGD runs unless no privacy was asked for (``epsilon: inf`` is no privacy)."""
        if self.dp_noise_multiplier is not None:
            return True
        return self.dp_epsilon is not None and math.isfinite(self.dp_epsilon)

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)


def build(model: str, shape: tuple[int, int, int], num_classes: int, seed: int, dropout: float = 0.0) -> Classifier:
    torch.manual_seed(seed)
    return ARCHITECTURES[model](shape, num_classes, dropout)


def smoothed_cross_entropy(logits: Tensor, y: Tensor, alpha: float) -> Tensor:
    """Cross-entropy against ``(1 - alpha) * onehot + alpha / K``; negative ``alpha`` allowed
    (Struppek et al., ICLR 2024), which torch's built-in ``label_smoothing`` refuses."""
    if alpha == 0:
        return F.cross_entropy(logits, y)
    k = logits.shape[1]
    target = torch.full_like(logits, alpha / k)
    target.scatter_(1, y[:, None], 1 - alpha + alpha / k)
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


def fit(net: Classifier, train: Split, recipe: Recipe, seed: int, desc: str) -> dict[str, Any]:
    """Train ``net`` in place; returns the loss history and, under DP-SGD, the spent (ε, δ)."""
    if recipe.private:
        return _fit_private(net, train, recipe, seed, desc)
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    history = []
    net.train()
    bar = tqdm(range(recipe.epochs), desc=desc, unit="epoch", leave=True, mininterval=0.5)
    for _ in bar:
        order = torch.randperm(len(train), generator=g)
        total = 0.0
        for start in range(0, len(order), recipe.batch_size):
            idx = order[start : start + recipe.batch_size]
            optimizer.zero_grad()
            loss = _loss(net, train.x[idx], train.y[idx], recipe)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        history.append(total / len(train))
        bar.set_postfix(loss=f"{history[-1]:.3f}")
    net.eval()
    return {"history": history, "epsilon": math.inf if recipe.dp_epsilon is not None else None,
            "delta": recipe.dp_delta if recipe.dp_epsilon is not None else None}


def _loss(net: nn.Module, x: Tensor, y: Tensor, recipe: Recipe) -> Tensor:
    loss = smoothed_cross_entropy(net(x), y, recipe.label_smoothing)
    if recipe.l1 > 0:
        loss = loss + recipe.l1 * sum(p.abs().sum() for p in net.parameters())
    return loss


def _fit_private(net: Classifier, train: Split, recipe: Recipe, seed: int, desc: str) -> dict[str, Any]:
    """DP-SGD through Opacus: per-sample clipping, Gaussian noise, Poisson sampling, RDP accountant."""
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    if recipe.l1 > 0:
        raise ValueError("DP-SGD cannot add an L1 penalty: Opacus privatises per-sample gradients only")
    torch.manual_seed(seed)
    loader = DataLoader(TensorDataset(train.x, train.y), batch_size=recipe.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    engine = PrivacyEngine(accountant="rdp")
    common = {"module": net, "optimizer": optimizer, "data_loader": loader, "max_grad_norm": recipe.dp_max_grad_norm,
              "noise_generator": torch.Generator().manual_seed(seed + 1)}
    if recipe.dp_noise_multiplier is not None:
        model, optimizer, loader = engine.make_private(noise_multiplier=recipe.dp_noise_multiplier, **common)
    else:
        model, optimizer, loader = engine.make_private_with_epsilon(
            target_epsilon=recipe.dp_epsilon, target_delta=recipe.dp_delta, epochs=recipe.epochs, **common)
    history = []
    model.train()
    bar = tqdm(range(recipe.epochs), desc=f"{desc} (DP-SGD)", unit="epoch", leave=True, mininterval=0.5)
    for _ in bar:
        total, seen = 0.0, 0
        for xb, yb in loader:
            if len(xb) == 0:  # Poisson sampling can draw an empty batch
                continue
            optimizer.zero_grad()
            loss = smoothed_cross_entropy(model(xb), yb, recipe.label_smoothing)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(xb)
            seen += len(xb)
        history.append(total / max(1, seen))
        bar.set_postfix(loss=f"{history[-1]:.3f}", eps=f"{engine.get_epsilon(recipe.dp_delta):.2f}")
    epsilon = engine.get_epsilon(recipe.dp_delta)
    model.to_standard_module()
    net.eval()
    return {"history": history, "epsilon": epsilon, "delta": recipe.dp_delta,
            "noise_multiplier": optimizer.noise_multiplier}


@torch.no_grad()
def accuracy(net: nn.Module, split: Split, batch: int = 1024) -> float:
    net.eval()
    correct = sum(int((net(split.x[i : i + batch]).argmax(1) == split.y[i : i + batch]).sum())
                  for i in range(0, len(split), batch))
    return correct / max(1, len(split))

