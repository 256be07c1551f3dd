"""A cell's defense stack, sorted by stage once: what each stage of the pipeline applies.

The job, the oracle, ``bench serve`` and the tables ask the stack, not the defenses' stage
strings: ``data``, ``training``, ``outputs`` and ``guards`` build the stage's defenses in stack
order, ``none`` acts nowhere, and the stack says whether it reshapes the target, leaves the
attacker labels only, or stands at the endpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.defenses.base import AccessDefense, DataDefense, OutputDefense, Stage, TrainingDefense


@dataclass(frozen=True)
class DefenseStack:
    """The defenses of one stack (plugin specs, in stack order), by stage."""

    specs: tuple[Any, ...]  # PluginSpec of kind "defense"

    @classmethod
    def of(cls, specs: Sequence[Any]) -> DefenseStack:
        return cls(tuple(specs))

    def at(self, stage: Stage) -> tuple[Any, ...]:
        """The specs acting at ``stage``, in stack order (``none`` acts at none)."""
        return tuple(s for s in self.specs if not s.cls.inert and s.cls.stage == stage)

    @property
    def shaping(self) -> tuple[Any, ...]:
        """The data and training defenses' specs: they determine the trained target."""
        return tuple(s for s in self.specs if s.cls.stage.shapes_target and not s.cls.inert)

    @property
    def data(self) -> list[DataDefense]:
        return [s.build() for s in self.at(Stage.DATA)]

    @property
    def training(self) -> list[TrainingDefense]:
        return [s.build() for s in self.at(Stage.TRAINING)]

    @property
    def outputs(self) -> list[OutputDefense]:
        return [s.build() for s in self.at(Stage.INFERENCE)]

    @property
    def guards(self) -> list[AccessDefense]:
        return [s.build() for s in self.at(Stage.ACCESS)]

    @property
    def guard_labels(self) -> list[str]:
        return [s.label for s in self.at(Stage.ACCESS)]

    @property
    def label_only(self) -> bool:
        """Whether an output defense leaves the attacker the top-1 label alone."""
        return any(s.cls.label_only for s in self.at(Stage.INFERENCE))

    @property
    def stages(self) -> list[str]:
        """The stages the stack acts at, by name, sorted (empty for ``none``)."""
        return sorted({s.cls.stage.value for s in self.specs if not s.cls.inert})

    @property
    def at_endpoint(self) -> bool:
        """Whether an output or access defense stands between the attacker and the model."""
        return bool(self.at(Stage.INFERENCE) or self.at(Stage.ACCESS))
