"""The defense base class and its stages.

A defense acts at one stage of the pipeline: ``data`` (transform the private training set),
``training`` (change how the target is trained), ``inference`` (transform what the oracle
returns) or ``access`` (guard the endpoint). Data and training defenses determine the target,
so cells that differ only in inference or access defenses share one trained target (a job).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import torch
from torch import Tensor

from bench.data.base import Split


class Stage(str, Enum):
    DATA = "data"
    TRAINING = "training"
    INFERENCE = "inference"
    ACCESS = "access"

    @property
    def shapes_target(self) -> bool:
        return self in (Stage.DATA, Stage.TRAINING)


class Defense:
    """Base of all defenses; a subclass sets ``stage`` and ``Params`` and overrides its hook."""

    name: ClassVar[str]
    stage: ClassVar[Stage]
    citation: ClassVar[str] = ""

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def check(self) -> None:
        """Refuse parameter combinations a single range cannot express (raise ConfigError)."""

    def transform_data(self, split: Split, generator: torch.Generator) -> Split:
        """Data stage: the private training set the target is trained on instead of ``split``."""
        return split

    def transform_outputs(self, probs: Tensor) -> Tensor:
        """Inference stage: what the oracle returns instead of ``probs``."""
        return probs
