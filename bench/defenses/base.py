"""The defense base class and its stages.

A defense acts at one stage of the pipeline, and its base class says which:
:class:`DataDefense` (transform the private training set), :class:`TrainingDefense` (the hooks
of the training loop, :class:`bench.models.training.TrainingHook`), :class:`OutputDefense`
(transform what the oracle returns) or :class:`AccessDefense` (guard the endpoint). Data and
training defenses determine the target, so cells that differ only in output or access
defenses share one trained target (a job).
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


class Defense:
    """What every defense shares: ``Params``, ``check`` and a citation. A defense subclasses one
    of the four stage bases below (its stage comes from its class) and overrides that stage's
    hook; ``inert`` marks ``none``, which acts at no stage."""

    name: ClassVar[str]
    stage: ClassVar[Stage]
    citation: ClassVar[str] = ""
    inert: ClassVar[bool] = False

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def check(self, num_classes: int | None) -> None:
        """Refuse what a single range cannot express, e.g. more classes than the dataset has
        (raise ConfigError); ``num_classes`` is None when unknown before loading."""


class DataDefense(Defense):
    """Data stage: the target trains on a transformed copy of the private training set."""

    stage = Stage.DATA

    def transform_data(self, split: Split, generator: torch.Generator) -> Split:
        """The private training set the target is trained on instead of ``split``."""
        return split


class TrainingDefense(Defense, TrainingHook):
    """Training stage: any of the training loop's hooks (``incompatible_with`` names the
    defenses it cannot be stacked with)."""

    stage = Stage.TRAINING


class OutputDefense(Defense):
    """Inference stage: what the oracle returns instead of the probability vectors."""

    stage = Stage.INFERENCE
    label_only: ClassVar[bool] = False  # the attacker is left with the top-1 label only

    def transform_outputs(self, probs: Tensor, generator: torch.Generator) -> Tensor:
        """What the oracle returns instead of the probability vectors ``probs``."""
        return probs


class AccessDefense(Defense):
    """Access stage: a guard on the endpoint, one per cell (per client behind ``bench serve``)."""

    stage = Stage.ACCESS

    def guard(self, calibration: Tensor, held_out: Tensor, generator: torch.Generator) -> AccessGuard:
        """The oracle guard for one cell; benign traffic to calibrate on (the defender's training
        images) and to measure false positives on (held-out images)."""
        raise NotImplementedError(f"defense '{self.name}' gives no guard")

    def wall_clock_rate(self) -> tuple[float, int] | None:
        """``(per_minute, burst)`` where ``bench serve`` enforces this guard as a token bucket on
        the wall clock instead of the grid's simulated one; None: it serves the grid's guard."""
        return None
