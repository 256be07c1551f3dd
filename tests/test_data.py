import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from bench.data.base import DataSplits
from bench.data.imagefolder import ImageFolder
from bench.data.synthfaces import SynthFaces, identity_distances, subset
from bench.errors import ConfigError, DataError
from bench.params import parse_params


def check_contract(s: DataSplits) -> None:
    pool = [] if s.evaluator_pool is None else [s.evaluator_pool]
    for split in (s.private_train, s.private_test, s.public, *pool):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert tuple(split.x.shape[1:]) == s.meta.shape
        assert split.x.min() >= 0 and split.x.max() <= 1
    for split in (s.private_train, s.private_test, *pool):
        assert set(split.y.tolist()) == set(range(s.meta.num_classes))


def check_judge_protocols(s: DataSplits) -> None:
    """A disjoint judge sees no image of either private split; a private-train judge sees exactly the target's."""
    disjoint = s.evaluator_train("disjoint")
    assert no_shared_images(disjoint.x, s.private_train.x) and no_shared_images(disjoint.x, s.private_test.x)
    assert s.evaluator_train("private-train") is s.private_train


def no_shared_images(a: torch.Tensor, b: torch.Tensor) -> bool:
    fa = {bytes(x.numpy().tobytes()) for x in a}
    return not any(bytes(x.numpy().tobytes()) in fa for x in b)


def test_digits(digits):
    check_contract(digits)
    assert digits.meta.shape == (1, 8, 8) and digits.meta.num_classes == 10
    idx = digits.meta.extra["source_indices"]
    assert not set(idx["private_train"]) & set(idx["public"])
    sizes = [len(digits.private_train), len(digits.private_test), len(digits.public), len(digits.evaluator_pool)]
    assert sum(sizes) == 1797


def test_every_builtin_dataset_offers_a_disjoint_judge_where_it_can(digits, tmp_path):
    from bench.data.digits import Digits

    assert Digits().evaluator_protocol("auto") == "disjoint"
    check_judge_protocols(digits)
    faces = small_faces()
    assert faces.evaluator_protocol("auto") == "disjoint"
    check_judge_protocols(faces.load())
    root = write_folder(tmp_path / "faces", per=8)
    plain = folder(root)
    assert plain.evaluator_protocol("auto") == "private-train"
    with pytest.raises(ConfigError, match="spares no images for a disjoint evaluator"):
        plain.evaluator_protocol("disjoint")
    s = plain.load()
    assert s.evaluator_pool is None and s.evaluator_train("private-train") is s.private_train
    shared = folder(root, evaluator_share=0.25)
    assert shared.evaluator_protocol("auto") == "disjoint"
    s = shared.load()
    check_contract(s)
    check_judge_protocols(s)
    assert len(s.evaluator_pool) == 2 * s.meta.num_classes


def test_imagefolder_refuses_a_disjoint_judge_without_enough_images(tmp_path):
    root = write_folder(tmp_path / "few", per=4)
    with pytest.raises(DataError, match="identity 'id.' has 4 distinct images, too few"):
        folder(root, evaluator_share=0.25).load()
    with pytest.raises(ConfigError, match="test_fraction \\+ evaluator_share"):
        folder(root, evaluator_share=0.8).check()


def test_imagefolder_drops_byte_identical_copies_within_an_identity(tmp_path):
    root = write_folder(tmp_path / "dupes", per=4)
    (root / "id0" / "copy.png").write_bytes((root / "id0" / "1.png").read_bytes())
    with pytest.warns(UserWarning, match=r"dropped 1 duplicate image\(s\) in 'id0': copy.png \(= 1.png\)"):
        s = folder(root, private=["id0", "id1"]).load()
    assert len(s.private_train) + len(s.private_test) == 8
    every = torch.cat([s.private_train.x, s.private_test.x])
    assert len({x.numpy().tobytes() for x in every}) == 8


def test_imagefolder_has_a_short_label_safe_in_file_names(tmp_path):
    from bench.config import parse_entry
    from bench.results import slug

    root = write_folder(tmp_path / "home" / "me" / "faces")
    spec = parse_entry({"imagefolder": {"root": str(root), "size": 16, "private": ["id0", "id1"]}}, "dataset", "t")
    assert spec.label == "faces(size=16)"
    named = parse_entry({"imagefolder": {"root": str(root), "label": "staff"}}, "dataset", "t")
    assert named.label == "staff"
    assert slug("a/b (c)[d]") == "a-b-c-d" and "/" not in slug(str(root))


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
    assert no_shared_images(s.private_train.x, s.evaluator_pool.x)  # fresh images for the evaluator
    assert s.meta.public_kind == "disjoint identities"


def test_synthfaces_identities_are_distinguishable_and_images_vary():
    s = small_faces(images_per_identity=20, size=24).load()
    x, y = s.private_train.x.flatten(1), s.private_train.y
    means = torch.stack([x[y == k].mean(0) for k in range(5)])
    within = torch.stack([(x[y == k] - means[k]).norm(dim=1).mean() for k in range(5)]).mean()
    between = torch.cdist(means, means)[~torch.eye(5, dtype=torch.bool)].mean()
    assert within > 0.5  # nuisance makes images of one identity differ
    assert between > 0.5 * within  # but identities differ too


def test_synthfaces_public_people_are_no_near_duplicate_of_a_private_one():
    """The *minimum* template distance over every private × public pair, at the default size."""
    faces = SynthFaces(SynthFaces.Params())
    people = faces.identities(torch.Generator().manual_seed(0))
    k = faces.params.identities
    private, public = subset(people, torch.arange(k)), subset(people, torch.arange(k, k + faces.params.public_identities))
    assert identity_distances(private, public, 32, 1).min() >= faces.params.min_identity_distance
    # without the rule the same generator draws a public person nearer than that: the rule acts
    free = SynthFaces(SynthFaces.Params(min_identity_distance=0)).identities(torch.Generator().manual_seed(0))
    near = identity_distances(private, subset(free, torch.arange(k, len(free["skin"]))), 32, 1).min()
    assert near < faces.params.min_identity_distance


def test_synthfaces_refuses_a_distance_no_public_person_can_keep():
    with pytest.raises(ConfigError, match="min_identity_distance"):
        small_faces(min_identity_distance=1e6).load()


def test_digits_mnist_protocol_keeps_the_public_classes_out_of_the_private_ones():
    from bench.data.digits import Digits

    s = Digits(parse_params(Digits.Params, {"split": "classes", "population": 0.1}, "digits")).load()
    check_contract(s)
    assert s.meta.num_classes == 5 and s.meta.public_kind == "disjoint identities"
    idx = s.meta.extra["source_indices"]
    target = load_digits().target
    assert set(target[idx["private_train"]]) == set(range(5)) and set(target[idx["public"]]) == set(range(5, 10))
    assert (target == 5).sum() + (target >= 6).sum() == len(s.public)  # every image of 5-9 is public
    assert s.membership_population is s.population and no_shared_images(s.population.x, s.private_train.x)
    with pytest.raises(ConfigError, match="must be below 1"):
        Digits(parse_params(Digits.Params, {"split": "classes", "population": 0.5}, "digits")).check()


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


def test_imagefolder_overrepresent_repeats_only_the_targets_training_images_of_one_identity(tmp_path):
    root = write_folder(tmp_path / "faces")
    plain = folder(root, private=["id0", "id2"]).load()
    s = folder(root, private=["id0", "id2"], overrepresent=3, overrepresented="id2").load()
    assert s.meta.extra["overrepresented_identity"] == 1 and plain.meta.extra["overrepresented_identity"] is None
    for part in ("private_train", "private_test", "public"):  # the originals, held-out and public stay as collected
        assert torch.equal(getattr(s, part).x, getattr(plain, part).x)
    assert s.evaluator_train("private-train") is s.private_train  # the judge never sees the repeats
    target = s.target_train
    assert torch.equal(target.of_class(0), plain.private_train.of_class(0))
    assert torch.equal(target.of_class(1), plain.private_train.of_class(1).repeat(3, 1, 1, 1))
    control = folder(root, private=["id0", "id2"], overrepresented="id2").load()  # the study's ×1 point
    assert control.meta.extra["overrepresented_identity"] == 1 and control.meta.extra["overrepresent"] == 1
    assert torch.equal(control.target_train.x, plain.private_train.x)
    with pytest.raises(ConfigError, match="needs 'overrepresented', one identity folder"):
        folder(root, overrepresent=2, overrepresented="nobody").check()
    with pytest.raises(DataError, match=r"overrepresented identity 'id1' is not private; private: \['id0', 'id2'\]"):
        folder(root, private=["id0", "id2"], overrepresent=2, overrepresented="id1").load()


def test_imagefolder_held_out_file_is_the_held_out_split(tmp_path):
    root = write_folder(tmp_path / "faces")
    listed = tmp_path / "held_out.txt"
    listed.write_text("# never trained on\nid0/1.png\nid2/0.pgm\nid2/3.png\n")
    s = folder(root, private=["id0", "id2"], held_out=str(listed)).load()
    assert len(s.private_test) == 3 and len(s.private_train) == 5 and s.private_test.y.tolist() == [0, 1, 1]
    for img, name in zip(s.private_test.x, ("id0/1.png", "id2/0.pgm", "id2/3.png")):
        listed_img = np.asarray(Image.open(root / name).convert("L").resize((8, 8), Image.Resampling.BILINEAR))
        assert torch.allclose(img[0], torch.from_numpy(listed_img.astype(np.float32) / 255))
    listed.write_text("id0/1.png\nid1/0.pgm\n")  # id1 is public
    with pytest.raises(DataError, match=r"held_out lists 1 image\(s\) that are not private images.*'id1/0.pgm'"):
        folder(root, private=["id0", "id2"], held_out=str(listed)).load()
    listed.write_text("id0/1.png\n")
    with pytest.raises(DataError, match="identity 'id2' needs training and held-out images; held_out lists 0 of its 4"):
        folder(root, private=["id0", "id2"], held_out=str(listed)).load()
    with pytest.raises(ConfigError, match="held_out and evaluator_share > 0 cannot be combined"):
        folder(root, held_out=str(listed), evaluator_share=0.2).check()
