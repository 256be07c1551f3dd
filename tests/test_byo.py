"""Bring your own target: a model the test trains with its own code and saves, audited by a grid."""

import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from bench.cli import main
from bench.config import parse_config
from bench.data.synthfaces import SynthFaces
from bench.errors import ConfigError
from bench.models.saved import load_factory, load_saved
from bench.params import parse_params

FACTORY = '''
import torch
from torch import nn


class Net(nn.Module):
    """Not one of Sieve's architectures: any module that maps images to logits will do."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                                  nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 5))

    def forward(self, x):
        return self.body(x)


def build():
    return Net()
'''
class Payload:
    """A pickle that runs code when loaded: what a crafted model file does."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


ORDER = ["p3", "p0", "p4", "p1", "p2"]  # the model's class i is folder ORDER[i]: not the sorted order


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    """A folder of faces (5 private, 3 public identities), a classes file, and a model the
    'user' trained on the private folders in their own class order and saved as a state dict."""
    root = tmp_path_factory.mktemp("byo")
    faces = SynthFaces(parse_params(SynthFaces.Params, {"identities": 8, "images_per_identity": 12, "size": 16},
                                    "synthfaces")).load().private_train
    names = [f"p{i}" for i in range(5)] + [f"q{i}" for i in range(3)]
    for k, name in enumerate(names):
        (root / "faces" / name).mkdir(parents=True)
        for j, img in enumerate(faces.of_class(k)):
            Image.fromarray((img[0].numpy() * 255).round().astype(np.uint8)).save(root / "faces" / name / f"{j}.png")
    (root / "classes.txt").write_text("# the model's class order\n" + "\n".join(ORDER) + "\n")
    (root / "held_out.txt").write_text("\n".join(f"{n}/{j}.png" for n in ORDER for j in (9, 10, 11)))
    (root / "my_model.py").write_text(FACTORY)
    torch.manual_seed(0)
    net = load_factory(f"{root / 'my_model.py'}:build")()
    x = torch.cat([faces.of_class(names.index(n))[:9] for n in ORDER])  # images 9-11 are held out
    y = torch.arange(5).repeat_interleave(9)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    torch.save(net.state_dict(), root / "my_model.pt")
    held_out = torch.cat([faces.of_class(names.index(n))[9:] for n in ORDER])
    with torch.no_grad():
        test_acc = float((net.eval()(held_out).argmax(1) == torch.arange(5).repeat_interleave(3)).float().mean())
    return root, net, test_acc


def faces(root, **params):
    return {"imagefolder": {"root": str(root / "faces"), "size": 16, "classes": str(root / "classes.txt"),
                            "held_out": str(root / "held_out.txt"), **params}}


def grid(root, **overrides):
    config = {
        "name": "audit", "seeds": [0],
        "datasets": [faces(root)],
        "target": {"weights": str(root / "my_model.pt"), "factory": f"{root / 'my_model.py'}:build", "label": "mine"},
        "evaluator": {"epochs": 3, "steps": 60},
        "defenses": ["none", {"round": {"decimals": 1}}],
        "attacks": ["public-lookalike", {"mi-face": {"steps": 20}}, {"nes": {"budget": 20}}],
    }
    config.update(overrides)
    return config


def test_a_given_model_is_loaded_safely_and_strictly(audit):
    root, net, _ = audit
    model = load_saved(f"{root / 'my_model.py'}:build", "", root / "my_model.pt", (1, 16, 16), 4)
    x = torch.rand(3, 1, 16, 16)
    assert torch.equal(model(x), net.eval()(x))
    torch.save(net, root / "pickled.pt")  # a whole pickled module: code, not a state dict
    with pytest.raises(ConfigError, match="not a state dict torch.load\\(weights_only=True\\) accepts"):
        load_saved(f"{root / 'my_model.py'}:build", "", root / "pickled.pt", (1, 16, 16), 4)
    sentinel = root / "pwned"
    with open(root / "evil.pt", "wb") as f:  # unpickling it would create the sentinel file
        pickle.dump(Payload(str(sentinel)), f)
    with pytest.raises(ConfigError, match="is not a state dict torch.load\\(weights_only=True\\) accepts"):
        load_saved(f"{root / 'my_model.py'}:build", "", root / "evil.pt", (1, 16, 16), 4)
    assert not sentinel.exists()
    torch.save({"body.0.weight": torch.zeros(1)}, root / "partial.pt")
    with pytest.raises(ConfigError, match="do not fit the model"):
        load_saved(f"{root / 'my_model.py'}:build", "", root / "partial.pt", (1, 16, 16), 4)
    with pytest.raises(ConfigError, match="has no callable 'nope'"):
        load_saved(f"{root / 'my_model.py'}:nope", "", root / "my_model.pt", (1, 16, 16), 4)
    with pytest.raises(ConfigError, match="cannot import 'no_such_pkg.models'"):
        load_saved("no_such_pkg.models:build", "", root / "my_model.pt", (1, 16, 16), 4)


def test_config_errors_for_a_given_model_come_before_anything_runs(audit, tmp_path, capsys):
    root, _, _ = audit
    with pytest.raises(ConfigError, match="defense 'dp-sgd.*training stage, and target 'mine' is a given model"):
        parse_config(grid(root, defenses=["none", "dp-sgd"]))
    with pytest.raises(ConfigError, match="would split its images at random: name the images the model never trained"):
        parse_config(grid(root, datasets=[faces(root, held_out="")]))
    with pytest.raises(ConfigError, match="does not say which identity each of its classes is"):
        parse_config(grid(root, datasets=[faces(root, classes="", private=ORDER)]))
    with pytest.raises(ConfigError, match="overrepresent repeats images in a target's training set"):
        parse_config(grid(root, datasets=[faces(root, overrepresent=3, overrepresented="p1")]))
    four = tmp_path / "four.txt"
    four.write_text("\n".join(ORDER[:4]))
    held_out = tmp_path / "held_out.txt"
    held_out.write_text("\n".join(f"{n}/9.png" for n in ORDER[:4]))
    with pytest.raises(ConfigError, match=r"returns \(2, 5\) for 2 images; the dataset has 4 private identities"):
        parse_config(grid(root, datasets=[faces(root, classes=str(four), held_out=str(held_out))]))
    wrong_size = grid(root, datasets=[faces(root, channels=3)])
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps(wrong_size))
    assert main(["run", str(path), "--results", str(tmp_path / "results")]) == 2
    assert "does not accept the dataset's images of shape (N, 3, 16, 16)" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_a_grid_audits_a_given_model_from_the_command_line(audit, tmp_path):
    root, net, test_acc = audit
    path = tmp_path / "audit.yaml"
    path.write_text(json.dumps(grid(root)))
    assert main(["run", str(path), "--results", str(tmp_path / "results"), "--no-progress"]) == 0
    cells = __import__("pandas").read_parquet(tmp_path / "results" / "audit" / "tables" / "cells.parquet")
    assert set(cells["status"]) == {"done"} and set(cells["target"]) == {"mine"} and len(cells) == 6
    assert cells["train_acc"].iloc[0] > 0.9  # measured by Sieve in the model's own class order
    assert cells["test_acc"].iloc[0] == pytest.approx(test_acc)  # on exactly the images the user held out
    assert (cells["train_acc"].nunique(), cells["test_acc"].nunique()) == (1, 1)
    rounded = cells[cells["defense"] != "none"]
    assert set(rounded["attack"]) == {"public-lookalike", "mi-face(steps=20)", "nes(budget=20)"}
    assert (rounded["outputs_defended"] == (rounded["threat_model"] != "white-box")).all()
    assert cells["target_params"].iloc[0] == sum(p.numel() for p in net.parameters())


def test_weights_saved_over_the_old_file_are_another_target(audit, tmp_path):
    root, net, _ = audit
    weights = tmp_path / "model.pt"
    torch.save(net.state_dict(), weights)
    first = parse_config(grid(root, target={"weights": str(weights), "factory": f"{root / 'my_model.py'}:build"})).cells()
    retrained = {k: v + 0.01 for k, v in net.state_dict().items()}
    torch.save(retrained, weights)
    again = parse_config(grid(root, target={"weights": str(weights), "factory": f"{root / 'my_model.py'}:build"})).cells()
    assert {c.cell_id for c in first}.isdisjoint(c.cell_id for c in again)
    assert {c.job_id for c in first}.isdisjoint(c.job_id for c in again)
