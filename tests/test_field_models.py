"""The field's architectures (VGG16-BN, IR-152, FaceNet64): shapes, the published key layout,
their checkpoints as given targets, and judges of another family than the target."""

import pytest
import torch

from bench.config import parse_config
from bench.errors import ConfigError
from bench.models.catalogue import size_at
from bench.models.field import FIELD_ARCHITECTURES, from_published, to_published


@pytest.mark.parametrize("name", sorted(FIELD_ARCHITECTURES))
def test_a_field_architecture_classifies_64x64_faces_and_round_trips_its_published_keys(name):
    torch.manual_seed(0)
    net = FIELD_ARCHITECTURES[name]((3, 64, 64), 7).eval()
    x = torch.rand(2, 3, 64, 64)
    assert net(x).shape == (2, 7) and net.features(x).shape == (2, 2048 if name == "vgg16" else 512)
    published = to_published(net.state_dict(), name)
    assert all(k.split(".")[0] in ("feature", "bn", "output_layer", "fc_layer") for k in published)
    again = FIELD_ARCHITECTURES[name]((3, 64, 64), 7).eval()
    again.load_state_dict(from_published({f"module.{k}": v for k, v in published.items()}, name), strict=True)
    assert torch.equal(again(x), net(x))  # DataParallel's prefix off, every key where it belongs


def test_the_published_layout_is_the_field_code_releases():
    """Key names of the GMI/KEDMI code (``classify.py``, face.evoLVe's ``IR_152_64``): what a user's
    checkpoint holds."""
    vgg = to_published(FIELD_ARCHITECTURES["vgg16"]((3, 64, 64), 1000).state_dict(), "vgg16")
    assert {"feature.0.weight", "feature.1.running_var", "feature.41.weight", "bn.weight", "fc_layer.weight"} <= set(vgg)
    assert vgg["fc_layer.weight"].shape == (1000, 2048)
    ir = to_published(FIELD_ARCHITECTURES["ir152"]((3, 64, 64), 1000).state_dict(), "ir152")
    assert {"feature.input_layer.0.weight", "feature.input_layer.2.weight", "feature.body.0.res_layer.2.weight",
            "feature.body.3.shortcut_layer.0.weight", "feature.body.49.res_layer.4.running_mean",
            "output_layer.3.weight", "output_layer.4.running_var", "fc_layer.weight"} <= set(ir)
    assert "feature.body.50.res_layer.0.weight" not in ir and ir["output_layer.3.weight"].shape == (512, 8192)
    facenet = to_published(FIELD_ARCHITECTURES["facenet64"]((3, 64, 64), 1000).state_dict(), "facenet64")
    assert "feature.body.23.res_layer.0.weight" in facenet and "feature.body.24.res_layer.0.weight" not in facenet
    assert size_at("ir152", (3, 64, 64), 1000) == sum(v.numel() for k, v in ir.items()
                                                       if "running" not in k and "num_batches" not in k)


def test_an_image_size_the_architecture_cannot_take_is_refused():
    with pytest.raises(ConfigError, match="sides divide by 32"):
        FIELD_ARCHITECTURES["vgg16"]((3, 48, 48), 5)


def test_a_width_the_published_architecture_does_not_have_is_refused():
    parse_config(grid(target={"model": "ir152", "width": 1.0}))
    with pytest.raises(ConfigError, match="target: 'ir152' is the field's published architecture.*got 0.5"):
        parse_config(grid(target={"model": "ir152", "width": 0.5}))


def grid(**overrides):
    return {"datasets": [{"synthfaces": {"identities": 5, "images_per_identity": 8, "size": 32}}],
            "attacks": ["public-lookalike"], **overrides}


def test_no_judge_shares_its_target_family():
    parse_config(grid(target={"model": "facenet64"}, evaluator={"model": "vgg16", "second": "resnet"}))
    with pytest.raises(ConfigError, match="evaluator.model: 'ir152' is of the target 'facenet64''s architecture family"):
        parse_config(grid(target={"model": "facenet64"}, evaluator={"model": "ir152"}))
    with pytest.raises(ConfigError, match="evaluator.second: 'vgg' is of the target 'vgg16''s"):
        parse_config(grid(target={"model": "vgg16"}))
    with pytest.raises(ConfigError, match="are one architecture family"):
        parse_config(grid(evaluator={"model": "vgg16", "second": "vgg"}))


def test_a_published_checkpoint_is_a_given_target(tmp_path):
    """A FaceNet64 checkpoint in the field's layout, saved as its code saves it, audited as a given model."""
    from bench.models.saved import load_saved

    torch.manual_seed(0)
    net = FIELD_ARCHITECTURES["facenet64"]((1, 32, 32), 5).eval()
    path = tmp_path / "facenet64.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in to_published(net.state_dict(), "facenet64").items()}}, path)
    model = load_saved("", "facenet64", path, (1, 32, 32), 5)
    x = torch.rand(3, 1, 32, 32)
    assert torch.equal(model(x), net(x))
    with pytest.raises(ConfigError, match="do not fit Sieve's facenet64 for 6 identities"):
        load_saved("", "facenet64", path, (1, 32, 32), 6)
    with pytest.raises(ConfigError, match="either a 'factory' that builds it or the field 'model'"):
        parse_config(grid(target={"weights": str(path), "model": "facenet64", "factory": "x.py:build"}))
