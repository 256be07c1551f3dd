import numpy as np
import pytest
import torch
from PIL import Image

from bench.data.base import DataSplits
from bench.data.imagefolder import ImageFolder
from bench.data.synthfaces import SynthFaces
from bench.errors import ConfigError, DataError
from bench.params import parse_params


def check_contract(s: DataSplits) -> None:
    for split in (s.private_train, s.private_test, s.public, s.evaluator_train):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert tuple(split.x.shape[1:]) == s.meta.shape
        assert split.x.min() >= 0 and split.x.max() <= 1
    for split in (s.private_train, s.private_test, s.evaluator_train):
        assert set(split.y.tolist()) == set(range(s.meta.num_classes))


def no_shared_images(a: torch.Tensor, b: torch.Tensor) -> bool:
    fa = {bytes(x.numpy().tobytes()) for x in a}
    return not any(bytes(x.numpy().tobytes()) in fa for x in b)


def test_digits(digits):
    check_contract(digits)
    assert digits.meta.shape == (1, 8, 8) and digits.meta.num_classes == 10
    idx = digits.meta.extra["source_indices"]
    assert not set(idx["private_train"]) & set(idx["public"])
    sizes = [len(digits.private_train), len(digits.private_test), len(digits.public)]
    assert sum(sizes) < 1797 and len(digits.evaluator_train) > len(digits.private_train)


def test_digits_is_deterministic(digits):
    from bench.data.digits import Digits

    again = Digits().load()
    assert torch.equal(again.private_train.x, digits.private_train.x)
    other = Digits(Digits.Params(seed=1)).load()
    assert not torch.equal(other.private_train.x, digits.private_train.x)


def small_faces(**kw) -> SynthFaces:
    params = {"identities": 5, "images_per_identity": 4, "test_images": 2, "public_identities": 3,
              "evaluator_images": 3, "size": 16, **kw}
    return SynthFaces(parse_params(SynthFaces.Params, params, "synthfaces"))


def test_synthfaces_contract_and_disjoint_identities():
    s = small_faces().load()
    check_contract(s)
    assert s.meta.shape == (1, 16, 16) and len(s.private_train) == 20 and len(s.public) == 12
    assert no_shared_images(s.private_train.x, s.public.x)
    assert no_shared_images(s.private_train.x, s.evaluator_train.x)  # fresh images for the evaluator
    assert s.meta.public_kind == "disjoint identities"


def test_synthfaces_identities_are_distinguishable_and_images_vary():
    s = small_faces(images_per_identity=20, size=24).load()
    x, y = s.private_train.x.flatten(1), s.private_train.y
    means = torch.stack([x[y == k].mean(0) for k in range(5)])
    within = torch.stack([(x[y == k] - means[k]).norm(dim=1).mean() for k in range(5)]).mean()
    between = torch.cdist(means, means)[~torch.eye(5, dtype=torch.bool)].mean()
    assert within > 0.5  # nuisance makes images of one identity differ
    assert between > 0.5 * within  # but identities differ too


def test_synthfaces_deterministic_rgb_and_overrepresent():
    a, b = small_faces().load(), small_faces().load()
    assert torch.equal(a.private_train.x, b.private_train.x)
    assert not torch.equal(a.private_train.x, small_faces(seed=3).load().private_train.x)
    rgb = small_faces(channels=3).load()
    assert rgb.meta.shape == (3, 16, 16)
    over = small_faces(overrepresent=5, overrepresented_identity=2).load()
    counts = torch.bincount(over.private_train.y)
    assert counts.tolist() == [4, 4, 20, 4, 4]
    with pytest.raises(ConfigError, match="overrepresented_identity"):
        small_faces(overrepresent=2, overrepresented_identity=9).check()


def write_folder(root, identities=4, per=4, size=10):
    rng = np.random.default_rng(0)
    for i in range(identities):
        d = root / f"id{i}"
        d.mkdir(parents=True)
        for j in range(per):
            arr = (rng.random((size, size)) * 255).astype(np.uint8)
            Image.fromarray(arr).save(d / f"{j}.{'png' if j % 2 else 'pgm'}")
    return root


def folder(root, **kw) -> ImageFolder:
    return ImageFolder(parse_params(ImageFolder.Params, {"root": str(root), "size": 8, **kw}, "imagefolder"))


def test_imagefolder_reads_and_splits(tmp_path):
    root = write_folder(tmp_path / "faces")
    s = folder(root, private=["id0", "id2"], test_fraction=0.25).load()
    check_contract(s)
    assert s.meta.identity_names == ["id0", "id2"] and s.meta.extra["public_identities"] == ["id1", "id3"]
    assert len(s.private_train) == 6 and len(s.private_test) == 2 and len(s.public) == 8
    assert no_shared_images(s.private_train.x, s.public.x)
    rgb = folder(root, channels=3, private_fraction=0.5).load()
    assert rgb.meta.shape == (3, 8, 8) and rgb.meta.num_classes == 2


def test_imagefolder_bad_input(tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        folder(tmp_path / "missing").check()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="at least two identity folders"):
        folder(tmp_path / "empty").load()
    root = write_folder(tmp_path / "broken")
    (root / "id1" / "9.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"cannot decode image '.*id1/9.png'"):
        folder(root).load()
    few = write_folder(tmp_path / "few", per=1)
    with pytest.raises(DataError, match="has 1 images, the split needs at least 2"):
        folder(few).load()
    with pytest.raises(DataError, match=r"private identities \['nobody'\] are not folders"):
        folder(write_folder(tmp_path / "ok"), private=["nobody"]).load()
