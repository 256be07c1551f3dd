"""Image priors and starting points shared by the attacks (no target knowledge in here)."""

from __future__ import annotations

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

