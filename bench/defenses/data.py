"""Data-stage defenses: sanitise the private training set before the target sees it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bench.data.base import Split
from bench.defenses.base import DataDefense
from bench.defenses.image_ops import gaussian_blur, pixelate, random_affine
from bench.errors import ConfigError
from bench.params import param
from bench.registry import defense


@defense("blur")
class Blur(DataDefense):
    """Gaussian blur of every private training image (the anonymisation family)."""

    citation = "anonymisation by blurring, e.g. McPherson et al. 2016, 'Defeating image obfuscation'"

    @dataclass(frozen=True)
    class Params:
        sigma: float = param(1.0, help="blur standard deviation in pixels", low=0, low_open=True)

    def transform_data(self, split: Split, generator: torch.Generator) -> Split:
        return Split(gaussian_blur(split.x, self.params.sigma).clamp(0, 1), split.y)


@defense("pixelate")
class Pixelate(DataDefense):
    """Mosaic of block×block tiles over every private training image."""

    citation = "anonymisation by pixelation, e.g. McPherson et al. 2016, 'Defeating image obfuscation'"

    @dataclass(frozen=True)
    class Params:
        block: int = param(2, help="tile side in pixels", low=2)

    def transform_data(self, split: Split, generator: torch.Generator) -> Split:
        return Split(pixelate(split.x, self.params.block), split.y)


@defense("mask")
class Mask(DataDefense):
    """Black out a box of every private training image; the default band covers SynthFaces' eyes."""

    citation = "region masking (e.g. eye bars) as in face de-identification practice"

    @dataclass(frozen=True)
    class Params:
        top: float = param(0.33, help="box top, as a fraction of the height", low=0, high=1)
        bottom: float = param(0.55, help="box bottom, as a fraction of the height", low=0, high=1)
        left: float = param(0.0, help="box left, as a fraction of the width", low=0, high=1)
        right: float = param(1.0, help="box right, as a fraction of the width", low=0, high=1)
        value: float = param(0.0, help="fill value", low=0, high=1)

    def check(self, num_classes: int | None) -> None:
        p = self.params
        if p.top >= p.bottom or p.left >= p.right:
            raise ConfigError(f"defense 'mask': the box needs top < bottom and left < right, got {p}")

    def transform_data(self, split: Split, generator: torch.Generator) -> Split:
        p = self.params
        h, w = split.x.shape[-2:]
        x = split.x.clone()
        x[..., round(p.top * h) : max(round(p.bottom * h), round(p.top * h) + 1),
          round(p.left * w) : max(round(p.right * w), round(p.left * w) + 1)] = p.value
        return Split(x, split.y)


@defense("augment")
class Augment(DataDefense):
    """Adds augmented copies of the private training set: random shifts, small rotations,
    optional horizontal flips (only where the dataset allows: faces yes, digits no),
    brightness and noise jitter. ``strength`` scales them all."""

    citation = "data augmentation as a regulariser against memorisation (e.g. Shorten & Khoshgoftaar 2019)"

    @dataclass(frozen=True)
    class Params:
        strength: float = param(0.5, help="0..1, scales shift (≤15 % of the side), rotation (≤15°), jitter", low=0,
                                high=1, low_open=True)
        copies: int = param(2, help="augmented copies added per training image", low=1, high=20)
        flip: bool = param(False, help="also flip horizontally (not for digits)")

    def transform_data(self, split: Split, generator: torch.Generator) -> Split:
        s = self.params.strength
        xs, ys = [split.x], [split.y]
        for _ in range(self.params.copies):
            x = random_affine(split.x, 0.15 * s, 15 * s, self.params.flip, generator)
            brightness = 1 + (torch.rand(len(x), 1, 1, 1, generator=generator) * 2 - 1) * 0.3 * s
            x = x * brightness + torch.randn(x.shape, generator=generator) * 0.05 * s
            xs.append(x.clamp(0, 1))
            ys.append(split.y)
        return Split(torch.cat(xs), torch.cat(ys))
