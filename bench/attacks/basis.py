"""Low-dimensional image bases for black-box search.

A score-based attacker pays one query per probe, and a gradient estimate from n probes is only
as good as n is large against the number of dimensions searched. Searching a handful of
coefficients instead of every pixel is what makes black-box inversion affordable: a coarse
grid upsampled to full size, or the principal components of the public data (a linear
stand-in for the generative priors of GMI-style attacks, fitted on images the attacker may know).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.attacks.base import AttackRefused
from bench.attacks.latent import GenerativePrior
from bench.params import param


@dataclass(frozen=True)
class ImageBasis:
    """``x = mean + z @ components``, reshaped to ``shape``; ``z = 0`` is the basis' mean image."""

    mean: Tensor  # D
    components: Tensor  # d × D
    inverse: Tensor  # D × d, the pseudo-inverse of ``components``
    shape: tuple[int, ...]

    @property
    def dims(self) -> int:
        return len(self.components)

    def decode(self, z: Tensor) -> Tensor:
        """Coefficients (… × d) to images (… × C×H×W), not yet clamped to [0, 1]."""
        return (self.mean + z @ self.components).view(*z.shape[:-1], *self.shape)

    def encode(self, x: Tensor) -> Tensor:
        """Images to the coefficients of their least-squares approximation in the basis."""
        return (x.flatten(-len(self.shape)) - self.mean) @ self.inverse

    def candidates(self, images: Tensor | None, n: int, rng: torch.Generator) -> Tensor:
        """Up to ``n`` points to start a search from: the coefficients of ``images`` in a random order."""
        if images is None:
            return torch.empty(0, self.dims)
        return self.encode(images[torch.randperm(len(images), generator=rng)][:n])


@dataclass(frozen=True)
class BasisParams:
    """The search-space parameters an attack's ``Params`` inherit to search in a basis."""

    basis: str = param("pca", help="search space: public-data principal components, coarse grid, or pixels",
                       choices=("pca", "lowres", "pixel"))
    components: int = param(16, help="principal components searched (basis 'pca')", low=1)
    grid: int = param(8, help="grid size per side (basis 'lowres')", low=1)


def image_basis(attack: str, params: BasisParams, shape: tuple[int, ...], public: Tensor | None,
                prior: GenerativePrior | None = None) -> ImageBasis:
    """The basis an attack's parameters name; 'pca' refuses a cell without public data."""
    if params.basis == "generator":
        if prior is None:
            raise AttackRefused(f"attack '{attack}' with basis 'generator' needs the generator prior")
        return GeneratorBasis(torch.empty(0), torch.empty(0), torch.empty(0), shape, prior)
    if params.basis == "pixel":
        return pixel_basis(shape)
    if params.basis == "lowres":
        return lowres_basis(shape, params.grid)
    if public is None:
        raise AttackRefused(f"attack '{attack}' with basis 'pca' needs public data and the dataset has none; "
                            "use basis 'lowres' or 'pixel'")
    return pca_basis(public, params.components)


@dataclass(frozen=True)
class PixelBasis(ImageBasis):
    """The identity basis: decoding and encoding are shifts, so the attacks' inner loops pay no
    D×D product for it (a quarter of mi-face's time on 32×32 faces)."""

    def decode(self, z: Tensor) -> Tensor:
        return (self.mean + z).view(*z.shape[:-1], *self.shape)

    def encode(self, x: Tensor) -> Tensor:
        return x.flatten(-len(self.shape)) - self.mean


@dataclass(frozen=True)
class GeneratorBasis(ImageBasis):
    """The generator prior as a search space: ``decode`` is the generator (its outputs are
    already images in [0, 1]); it has no encoder, so searches start from latent draws."""

    prior: GenerativePrior | None = None

    @property
    def dims(self) -> int:
        assert self.prior is not None
        return self.prior.latent_dim

    def decode(self, z: Tensor) -> Tensor:
        assert self.prior is not None
        return self.prior.generate(z.reshape(-1, self.dims)).view(*z.shape[:-1], *self.shape)

    def encode(self, x: Tensor) -> Tensor:
        raise NotImplementedError("a generator basis has no encoder: start from latent draws")

    def candidates(self, images: Tensor | None, n: int, rng: torch.Generator) -> Tensor:
        """``n`` draws from the latent distribution: without an encoder, images cannot be starts."""
        return torch.randn((n, self.dims), generator=rng)


def pixel_basis(shape: tuple[int, ...]) -> ImageBasis:
    """Every pixel its own coefficient, around uniform gray."""
    d = int(torch.tensor(shape).prod())
    return PixelBasis(torch.full((d,), 0.5), torch.eye(d), torch.eye(d), shape)


def lowres_basis(shape: tuple[int, ...], size: int) -> ImageBasis:
    """A ``size``×``size`` grid per channel, bilinearly upsampled, around uniform gray."""
    c, h, w = shape
    d = c * size * size
    coarse = torch.eye(d).view(d, c, size, size)
    fine = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False).flatten(1)
    return ImageBasis(torch.full((c * h * w,), 0.5), fine, torch.linalg.pinv(fine), shape)


def pca_basis(public: Tensor, components: int) -> ImageBasis:
    """The top principal components of the public images, each scaled by its standard deviation
    (so a unit step in any coefficient is a typical public-data variation); starts from their mean."""
    flat = public.flatten(1).double()
    if components > min(flat.shape):
        raise ValueError(f"pca basis with {components} components needs at least that many public images and pixels, "
                         f"got {flat.shape[0]} images of {flat.shape[1]} pixels")
    mean = flat.mean(0)
    _, s, v = torch.linalg.svd(flat - mean, full_matrices=False)
    scale = s[:components] / (len(flat) - 1) ** 0.5
    return ImageBasis(mean.float(), (v[:components] * scale[:, None]).float(), (v[:components].T / scale).float(),
                      tuple(public.shape[1:]))
