"""The CelebA protocol on a tiny fake CelebA the test writes: 178×218 aligned faces, the identity
file, the GMI/KEDMI split files, an FFHQ folder; the shipped `celeba` grid refuses without data."""

import numpy as np
import pytest
import yaml
from PIL import Image

from bench.config import load_config, parse_config
from bench.data.celeba import CelebA
from bench.errors import ConfigError, DataError

PHOTOS = {"7": 6, "3": 5, "12": 5, "5": 4, "9": 3, "2": 2}  # identity -> photos: 7, 3, 12 have the most


def fake_celeba(root):
    """CelebA's layout: ``img_align_celeba/NNNNNN.jpg`` and ``identity_CelebA.txt``; each person a colour."""
    (root / "img_align_celeba").mkdir(parents=True)
    lines, n = [], 0
    rng = np.random.default_rng(0)
    for identity, count in PHOTOS.items():
        base = rng.integers(0, 255, 3)
        for _ in range(count):
            n += 1
            name = f"{n:06d}.jpg"
            pixels = np.clip(base + rng.normal(0, 8, (218, 178, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "img_align_celeba" / name)
            lines.append(f"{name} {identity}")
    (root / "identity_CelebA.txt").write_text("\n".join(lines) + "\n")
    return dict(line.split() for line in lines)


def test_the_most_photographed_identities_are_private_and_the_others_public(tmp_path):
    owner = fake_celeba(tmp_path)
    splits = CelebA(CelebA.Params(root=str(tmp_path), identities=3, size=16, test_fraction=0.2)).load()
    assert splits.meta.identity_names == ["celeba-7", "celeba-3", "celeba-12"]  # most photos first, ties by number
    assert splits.meta.shape == (3, 16, 16) and splits.private_train.x.shape[1:] == (3, 16, 16)
    assert len(splits.private_train) + len(splits.private_test) == 6 + 5 + 5
    assert len(splits.public) == 4 + 3 + 2 and int(splits.public.y.max()) == 2  # three public people
    public_pixels = {tuple(np.round(x.mean((1, 2)).numpy(), 1)) for x in splits.public.x}
    private_pixels = {tuple(np.round(x.mean((1, 2)).numpy(), 1)) for x in splits.private_train.x}
    assert not public_pixels & private_pixels  # no private photo among the public
    assert len(owner) == sum(PHOTOS.values())


def test_the_split_files_fix_the_private_images_and_their_labels(tmp_path):
    owner = fake_celeba(tmp_path)
    mine = {"7": 1, "3": 0}  # the files' labels, not Sieve's order
    images = sorted(n for n, i in owner.items() if i in mine)
    train, test = images[::2], images[1::2]
    (tmp_path / "train.txt").write_text("".join(f"{n} {mine[owner[n]]}\n" for n in train))
    (tmp_path / "test.txt").write_text("".join(f"{n} {mine[owner[n]]}\n" for n in test))
    params = dict(root=str(tmp_path), identities=2, size=16, train_file=str(tmp_path / "train.txt"),
                  test_file=str(tmp_path / "test.txt"))
    splits = CelebA(CelebA.Params(**params)).load()
    assert splits.meta.identity_names == ["celeba-3", "celeba-7"]  # class k is the files' label k
    assert len(splits.private_train) == len(train) and len(splits.private_test) == len(test)
    assert splits.private_train.y.tolist() == [mine[owner[n]] for n in train]
    (tmp_path / "test.txt").write_text(f"{train[0]} {mine[owner[train[0]]]}\n")
    with pytest.raises(DataError, match="in both split files"):
        CelebA(CelebA.Params(**params)).load()
    (tmp_path / "test.txt").write_text(f"{images[1]} {1 - mine[owner[images[1]]]}\n")  # a second label for a person
    with pytest.raises(DataError, match="labels"):
        CelebA(CelebA.Params(**params)).load()


def test_ffhq_can_be_the_public_data(tmp_path):
    fake_celeba(tmp_path)
    ffhq = tmp_path / "ffhq" / "00000"
    ffhq.mkdir(parents=True)
    for i in range(4):
        Image.fromarray(np.full((128, 128, 3), 40 * i, np.uint8)).save(ffhq / f"{i:05d}.png")
    splits = CelebA(CelebA.Params(root=str(tmp_path), identities=3, size=16, public="ffhq",
                                  public_root=str(tmp_path / "ffhq"))).load()
    assert len(splits.public) == 4 and splits.public.x.shape[1:] == (3, 16, 16)


def test_missing_data_is_refused_with_where_to_put_it(tmp_path):
    with pytest.raises(ConfigError, match="identity_CelebA.txt not found. Download CelebA"):
        parse_config({"datasets": [{"celeba": {"root": str(tmp_path)}}], "attacks": ["public-lookalike"]})
    with pytest.raises(ConfigError, match="Download CelebA"):
        load_config("celeba")


def test_the_shipped_grid_runs_scaled_down_on_a_fake_celeba(tmp_path):
    """The shipped grid's protocol, at 3 identities and 16×16 with Sieve's small models: a smoke of the loader in a grid."""
    from bench.config import shipped_configs
    from bench.experiment import run_job

    fake_celeba(tmp_path / "celeba")
    raw = yaml.safe_load(shipped_configs()["celeba"].read_text())
    raw.update(seeds=[0], datasets=[{"celeba": {"root": str(tmp_path / "celeba"), "identities": 3, "size": 16,
                                                "test_fraction": 0.2}}],
               target={"model": "cnn", "epochs": 2}, evaluator={"epochs": 1, "steps": 5}, prior={"steps": 5},
               attacks=["public-lookalike", {"mi-face": {"steps": 5}}])
    (job,) = parse_config(raw).jobs()
    outcomes = run_job(job, tmp_path / "results", tmp_path / "cache")
    assert [o.status for o in outcomes] == ["done", "done"]
