"""Image priors, starting points and candidate scans shared by the attacks (no target knowledge in here)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from bench.attacks.base import AttackRefused

INITS = ("public", "noise", "gray", "zeros")


def total_variation(x: Tensor) -> Tensor:
    """Per-image anisotropic total variation (mean absolute neighbour difference)."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
    return dh + dw


def initial_images(kind: str, shape: tuple[int, ...], rng: torch.Generator, public: Tensor | None = None) -> Tensor:
    """Starting images in [0, 1], one per identity (``shape[0]``): a distinct random public image
    each, uniform noise, or — one image shared by all, which a query monitor flags at once —
    uniform gray or black."""
    if kind == "public":
        if public is None or len(public) == 0:
            raise AttackRefused("starting from public images needs public data and the dataset has none; "
                                "use init 'noise'")
        order = torch.randperm(len(public), generator=rng)
        return public[order[torch.arange(shape[0]) % len(order)]].clone()
    if kind == "gray":
        return torch.full(shape, 0.5)
    if kind == "zeros":
        return torch.zeros(shape)
    if kind == "noise":
        return torch.rand(shape, generator=rng)
    raise ValueError(f"unknown initial image kind '{kind}'; allowed: {', '.join(INITS)}")



def best_per_identity(n: int, scores: Callable[[slice], Tensor], identities: int, floor: float,
                      after_batch: Callable[[Tensor], None] = lambda pick: None, batch: int = 256) -> Tensor:
    """Score ``n`` candidates in query batches (``scores(rows)``: batch × identities) and keep, per
    identity, the index of the first candidate with the highest score above ``floor`` (-1: none);
    ``after_batch`` sees the picks so far (for checkpoints)."""
    best = torch.full((identities,), floor)
    pick = torch.full((identities,), -1, dtype=torch.long)
    for start in range(0, n, batch):
        top, arg = scores(slice(start, start + batch)).max(dim=0)
        better = top > best  # strict: at a tie the earlier candidate stays
        best = torch.where(better, top, best)
        pick = torch.where(better, arg + start, pick)
        after_batch(pick)
    return pick
