"""Image priors and starting points shared by the attacks (no target knowledge in here)."""

from __future__ import annotations

import torch
from torch import Tensor


def total_variation(x: Tensor) -> Tensor:
    """Per-image anisotropic total variation (mean absolute neighbour difference)."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
    return dh + dw


def initial_images(kind: str, shape: tuple[int, ...], rng: torch.Generator) -> Tensor:
    """Starting images in [0, 1]: uniform gray, black, or uniform noise drawn from ``rng``."""
    if kind == "gray":
        return torch.full(shape, 0.5)
    if kind == "zeros":
        return torch.zeros(shape)
    if kind == "noise":
        return torch.rand(shape, generator=rng)
    raise ValueError(f"unknown initial image kind '{kind}'; allowed: gray, zeros, noise")

