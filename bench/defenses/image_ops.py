"""Batched image operations for the data-stage defenses (plain torch, N×C×H×W in [0, 1])."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur per channel with reflect padding."""
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    y = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    y = F.conv2d(y, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(y, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def pixelate(x: Tensor, block: int) -> Tensor:
    """Average over block×block tiles, shown at the original size (edges use partial tiles)."""
    h, w = x.shape[-2:]
    pooled = F.avg_pool2d(x, block, stride=block, ceil_mode=True, count_include_pad=False)
    return F.interpolate(pooled, scale_factor=block, mode="nearest")[..., :h, :w]


def random_affine(x: Tensor, shift: float, degrees: float, flip: bool, g: torch.Generator) -> Tensor:
    """Per-image random shift (fraction of the side), rotation (±degrees) and optional h-flip."""
    n = len(x)
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(degrees)
    tx, ty = ((torch.rand(2, n, generator=g) * 2 - 1) * shift * 2)
    sx = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = torch.cos(angle) * sx, -torch.sin(angle), tx
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = torch.sin(angle) * sx, torch.cos(angle), ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
