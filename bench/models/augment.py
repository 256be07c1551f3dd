"""Identity-preserving augmentation for the evaluator's training batches.

The judge sees few photos per identity (a face folder holds about ten), so it overfits
to pose, framing and lighting unless each batch shows them varied. Every transform here
keeps the identity: small shifts, rotations and scales, horizontal flips, brightness and
contrast jitter, and mixing two photos of the same identity, so labels stay hard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class AugmentSpec:
    """Ranges of the random transforms, drawn uniformly per image. The defaults are the ones
    measured best for face judges (Yale, SynthFaces); 8×8 digits are better without any."""

    shift: float = 0.05  # translation, as a fraction of the image side
    rotate: float = 5.0  # rotation, degrees
    scale: float = 0.05  # zoom factor within [1 - scale, 1 + scale]
    flip: bool = True  # mirror half the images left-right (faces are near symmetric)
    brightness: float = 0.15  # added intensity offset
    contrast: float = 0.2  # contrast factor within [1 - contrast, 1 + contrast], about each image's mean
    gradient: float = 0.6  # linear lighting ramp up to this strength, random direction (side-lit photos)
    mix: float = 0.5  # weight of a second image of the same identity, within [0, mix]


def identity_augment(x: Tensor, y: Tensor, g: torch.Generator, spec: AugmentSpec = AugmentSpec()) -> tuple[Tensor, Tensor]:
    """Augment an N×C×H×W float batch in [0, 1]; returns the new batch (same shape) and ``y``.

    All randomness comes from ``g``, so a seeded generator gives the same batch every run.
    """
    n = len(x)
    if spec.mix > 0:
        x = _mix_same_label(x, y, g, spec.mix)
    x = _affine(x, g, spec)
    if spec.brightness > 0 or spec.contrast > 0:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        c = 1 + spec.contrast * _symmetric(g, n).view(n, 1, 1, 1)
        b = spec.brightness * _symmetric(g, n).view(n, 1, 1, 1)
        x = (x - mean) * c + mean + b
    if spec.gradient > 0:
        x = x * _lighting_ramp(x, g, spec.gradient)
    return x.clamp(0, 1), y


def _symmetric(g: torch.Generator, n: int) -> Tensor:
    return 2 * torch.rand(n, generator=g) - 1


def _lighting_ramp(x: Tensor, g: torch.Generator, strength: float) -> Tensor:
    """A factor ``1 + s * (cos a * u + sin a * v)`` over grid coordinates: light from one side."""
    n, _, h, w = x.shape
    a = 2 * math.pi * torch.rand(n, generator=g).view(n, 1, 1, 1)
    s = strength * torch.rand(n, generator=g).view(n, 1, 1, 1)
    v, u = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    return 1 + s * (torch.cos(a) * u + torch.sin(a) * v)


def _mix_same_label(x: Tensor, y: Tensor, g: torch.Generator, mix: float) -> Tensor:
    """Blend each image with a random image of its own label (possibly itself).

    Sorting by label plus a random tie-break in [0, 1) twice gives two independent shuffles
    of every label's images at the same positions, so position k pairs two images of one label.
    """
    key = y.double() * 2
    first = torch.argsort(key + torch.rand(len(y), generator=g, dtype=torch.float64))
    second = torch.argsort(key + torch.rand(len(y), generator=g, dtype=torch.float64))
    partner = torch.empty_like(first)
    partner[first] = second
    lam = (mix * torch.rand(len(y), generator=g)).view(-1, 1, 1, 1)
    return (1 - lam) * x + lam * x[partner]


def _affine(x: Tensor, g: torch.Generator, spec: AugmentSpec) -> Tensor:
    """Random rotation, zoom, shift and mirror in one resampling; borders repeat the edge pixels."""
    n = len(x)
    angle = math.radians(spec.rotate) * _symmetric(g, n)
    zoom = 1 + spec.scale * _symmetric(g, n)
    shift = 2 * spec.shift * _symmetric(g, n * 2).view(n, 2)  # grid coordinates span [-1, 1]
    mirror = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if spec.flip else torch.ones(n)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos * mirror, -sin, shift[:, 0]], 1),
                         torch.stack([sin * mirror, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
