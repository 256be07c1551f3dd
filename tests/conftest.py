"""Shared fixtures: small real data and a small real target, trained once per session."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from bench.data.base import DataSplits  # noqa: E402
from bench.data.digits import Digits  # noqa: E402
from bench.models.training import TrainingPlan, accuracy, build, fit  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits() -> DataSplits:
    return Digits().load()


@pytest.fixture(scope="session")
def tiny_target(digits: DataSplits) -> torch.nn.Module:
    """An MLP on digits, a few epochs: accurate enough that inversions mean something."""
    net = build("mlp", digits.meta.shape, digits.meta.num_classes, seed=0)
    fit(net, digits.private_train, TrainingPlan(epochs=8, lr=2e-3, batch_size=32), seed=0, desc="tiny target")
    assert accuracy(net, digits.private_test) > 0.85
    return net


@pytest.fixture(scope="session")
def tiny_evaluator(digits: DataSplits) -> torch.nn.Module:
    net = build("resnet", digits.meta.shape, digits.meta.num_classes, seed=1)
    fit(net, digits.evaluator_train("disjoint"), TrainingPlan(epochs=6, lr=2e-3, batch_size=32), seed=1, desc="tiny evaluator")
    return net


@pytest.fixture(scope="session")
def tiny_prior() -> torch.nn.Module:
    """The conformance check's small generator prior on the digits' public split."""
    from bench.testing import prior_fixture

    return prior_fixture()


@pytest.fixture
def readme_plugin(tmp_path):
    """Load the README's example plugin that starts with the comment ``marker`` (e.g. ``# my_attack.py``)
    as ``--plugin`` loads a file."""
    from pathlib import Path

    from bench.registry import load_plugin_file

    def load(marker: str) -> None:
        readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
        code = readme.split(f"{marker}\n", 1)[1].split("```", 1)[0]
        (tmp_path / marker[2:]).write_text(code)
        load_plugin_file(tmp_path / marker[2:])

    return load
