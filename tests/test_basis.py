"""Image bases for black-box search: what z = 0 means, and what a coefficient step means."""

import pytest
import torch

from bench.attacks.base import AttackRefused
from bench.attacks.basis import lowres_basis, pca_basis, pixel_basis
from bench.config import parse_entry
from bench.oracle import Oracle, ThreatModel


def test_pixel_basis_is_the_image_itself():
    b = pixel_basis((1, 4, 4))
    assert b.dims == 16 and torch.equal(b.decode(torch.zeros(2, 16)), torch.full((2, 1, 4, 4), 0.5))
    z = torch.zeros(16)
    z[5] = 0.25
    assert b.decode(z)[0, 1, 1] == 0.75 and (b.decode(z) == 0.5).sum() == 15


def test_lowres_basis_upsamples_a_coarse_grid():
    b = lowres_basis((1, 8, 8), 2)
    assert b.dims == 4
    assert torch.allclose(b.decode(torch.full((4,), 0.25)), torch.full((1, 8, 8), 0.75))  # constant stays constant
    left = b.decode(torch.tensor([0.5, 0.0, 0.5, 0.0]))[0]
    assert torch.allclose(left[:, 0], torch.ones(8)) and torch.allclose(left[:, -1], torch.full((8,), 0.5))


def test_pca_basis_starts_at_the_public_mean_with_unit_variance_coefficients(digits):
    public = digits.public.x
    b = pca_basis(public, 8)
    assert torch.allclose(b.decode(torch.zeros(8)), public.mean(0), atol=1e-5)
    norms = b.components.norm(dim=1)
    unit = b.components / norms[:, None]
    assert torch.allclose(unit @ unit.T, torch.eye(8), atol=1e-4)  # orthogonal directions
    coefficients = (public.flatten(1) - public.flatten(1).mean(0)) @ unit.T / norms
    assert torch.allclose(coefficients.var(0), torch.ones(8), atol=1e-3)  # z ~ N(0, 1) is a typical public image
    assert (norms[:-1] >= norms[1:]).all()  # largest variation first
    with pytest.raises(ValueError, match="needs at least that many public images and pixels"):
        pca_basis(public[:5], 8)


def test_nes_in_the_pca_basis_needs_public_data(tiny_target):
    nes = parse_entry({"nes": {"budget": 40}}, "attack", "test").build()
    oracle = Oracle(tiny_target, ThreatModel.BLACK_BOX, 10, (1, 8, 8), budget=400)
    with pytest.raises(AttackRefused, match="basis 'pca' needs public data.*use basis 'lowres' or 'pixel'"):
        nes.execute(oracle, torch.arange(10), None, seed=0)
    assert oracle.queries == 0


@pytest.mark.parametrize("basis", ["lowres", "pixel"])
def test_nes_runs_without_public_data_in_other_bases(tiny_target, basis):
    nes = parse_entry({"nes": {"budget": 40, "basis": basis, "grid": 4}}, "attack", "test").build()
    oracle = Oracle(tiny_target, ThreatModel.BLACK_BOX, 10, (1, 8, 8), budget=400)
    result = nes.execute(oracle, torch.arange(10), None, seed=0)
    assert result.queries == 400 and result.reconstructions.shape == (10, 1, 8, 8)
