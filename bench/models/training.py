"""The training loop shared by targets and evaluators, with a progress bar and its spec."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from tqdm import tqdm

from bench.data.base import Split
from bench.models.architectures import ARCHITECTURES, TARGET_MODELS, Classifier
from bench.params import param


@dataclass(frozen=True)
class TrainSpec:
    """How every target of a grid is trained (the config's ``target:`` mapping)."""

    model: str = param("cnn", help="target architecture", choices=TARGET_MODELS)
    epochs: int = param(30, help="training epochs", low=1)
    lr: float = param(1e-3, help="Adam learning rate", low=0, low_open=True)
    batch_size: int = param(64, help="minibatch size", low=1)


def build(model: str, shape: tuple[int, int, int], num_classes: int, seed: int) -> Classifier:
    torch.manual_seed(seed)
    return ARCHITECTURES[model](shape, num_classes)


def fit(
    net: nn.Module, train: Split, *, epochs: int, lr: float, batch_size: int, seed: int, desc: str
) -> list[float]:
    """Adam on cross-entropy with a seeded shuffle; returns the mean loss per epoch."""
    g = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    net.train()
    bar = tqdm(range(epochs), desc=desc, unit="epoch", leave=True, mininterval=0.5)
    for _ in bar:
        order = torch.randperm(len(train), generator=g)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(net(train.x[idx]), train.y[idx])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        history.append(total / len(train))
        bar.set_postfix(loss=f"{history[-1]:.3f}")
    net.eval()
    return history


@torch.no_grad()
def accuracy(net: nn.Module, split: Split, batch: int = 1024) -> float:
    net.eval()
    correct = sum(int((net(split.x[i : i + batch]).argmax(1) == split.y[i : i + batch]).sum())
                  for i in range(0, len(split), batch))
    return correct / max(1, len(split))


@torch.no_grad()
def predict(net: nn.Module, x: Tensor, batch: int = 1024) -> Tensor:
    net.eval()
    return torch.cat([net(x[i : i + batch]) for i in range(0, len(x), batch)])
