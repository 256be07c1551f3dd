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


@pytest.mark.parametrize("make", [lambda p: pixel_basis((1, 8, 8)), lambda p: lowres_basis((1, 8, 8), 3),
                                  lambda p: pca_basis(p, 12)], ids=["pixel", "lowres", "pca"])
def test_encode_inverts_decode_and_projects_images_onto_the_basis(digits, make):
    b = make(digits.public.x)
    z = torch.randn(5, b.dims, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(b.encode(b.decode(z)), z, atol=1e-3)
    x = digits.public.x[:5]
    fit = b.decode(b.encode(x))
    assert torch.allclose(b.encode(fit), b.encode(x), atol=1e-3)  # a projection: applying it twice changes nothing
    assert (fit - x).pow(2).mean() <= (b.decode(torch.zeros(5, b.dims)) - x).pow(2).mean()


@pytest.mark.parametrize("entry", [{"nes": {"budget": 40}}, {"mi-face": {"steps": 5, "basis": "pca"}}])
def test_attacks_in_the_pca_basis_need_public_data(tiny_target, entry):
    attack = parse_entry(entry, "attack", "test").build()
    oracle = Oracle(tiny_target, attack.threat_model, 10, (1, 8, 8), budget=400)
    with pytest.raises(AttackRefused, match="basis 'pca' needs public data.*use basis 'lowres' or 'pixel'"):
        attack.execute(oracle, torch.arange(10), None, seed=0)
    assert oracle.queries == 0


def test_white_box_inversion_in_the_pca_basis_starts_at_the_public_mean(tiny_target, digits):
    mi = parse_entry({"mi-face": {"steps": 60, "basis": "pca", "init": "mean", "loss": "ce"}}, "attack", "test").build()
    result = mi.execute(Oracle(tiny_target, ThreatModel.WHITE_BOX, 10, (1, 8, 8)), torch.arange(10), digits.public.x, seed=0)
    start = result.checkpoints[0].reconstructions
    assert torch.allclose(start, digits.public.x.mean(0).expand_as(start).clamp(0, 1), atol=1e-5)
    with torch.no_grad():
        assert (tiny_target(result.reconstructions).argmax(1) == torch.arange(10)).float().mean() >= 0.7


@pytest.mark.parametrize("basis", ["lowres", "pixel"])
def test_nes_runs_without_public_data_in_other_bases(tiny_target, basis):
    nes = parse_entry({"nes": {"budget": 40, "basis": basis, "grid": 4, "init": "noise"}}, "attack", "test").build()
    oracle = Oracle(tiny_target, ThreatModel.BLACK_BOX, 10, (1, 8, 8), budget=400)
    result = nes.execute(oracle, torch.arange(10), None, seed=0)
    assert result.queries == 400 and result.reconstructions.shape == (10, 1, 8, 8)
    public_start = parse_entry({"nes": {"budget": 40, "basis": basis}}, "attack", "test").build()
    with pytest.raises(AttackRefused, match="needs public data and the dataset has none; use init 'noise'"):
        public_start.execute(Oracle(tiny_target, ThreatModel.BLACK_BOX, 10, (1, 8, 8)), torch.arange(10), None, seed=0)
