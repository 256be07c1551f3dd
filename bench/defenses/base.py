"""The defense base class and its stages.

A defense acts at one stage of the pipeline: ``data`` (transform the private training set),
``training`` (the hooks of the training loop, :class:`bench.models.training.TrainingHook`),
``inference`` (transform what the oracle returns) or ``access`` (guard the endpoint). Data and training defenses determine the target, so
cells that differ only in inference or access defenses share one trained target (a job).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import torch
from torch import Tensor

from bench.data.base import Split
from bench.models.training import TrainingHook
from bench.oracle import AccessGuard


class Stage(str, Enum):
    DATA = "data"
    TRAINING = "training"
    INFERENCE = "inference"
    ACCESS = "access"

    @property
    def shapes_target(self) -> bool:
        return self in (Stage.DATA, Stage.TRAINING)


class Defense(TrainingHook):
    """Base of all defenses; a subclass sets ``stage``, ``Params`` and overrides its stage's hook
    (training-stage defenses: any of the training loop's hooks; ``incompatible_with`` names the
    defenses it cannot be stacked with)."""

    name: ClassVar[str]
    stage: ClassVar[Stage]
    citation: ClassVar[str] = ""
    label_only: ClassVar[bool] = False  # inference: the attacker is left with the top-1 label only

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def check(self, num_classes: int | None) -> None:
        """Refuse what a single range cannot express, e.g. more classes than the dataset has
        (raise ConfigError); ``num_classes`` is None when unknown before loading."""

    def transform_data(self, split: Split, generator: torch.Generator) -> Split:
        """Data stage: the private training set the target is trained on instead of ``split``."""
        return split

    def transform_outputs(self, probs: Tensor, generator: torch.Generator) -> Tensor:
        """Inference stage: what the oracle returns instead of the probability vectors ``probs``."""
        return probs

    def guard(self, calibration: Tensor, held_out: Tensor, generator: torch.Generator) -> AccessGuard:
        """Access stage: the oracle guard for one cell; benign traffic to calibrate on (the
        defender's training images) and to measure false positives on (held-out images)."""
        raise NotImplementedError(f"defense '{self.name}' is not an access-stage defense")
