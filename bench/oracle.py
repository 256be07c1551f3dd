"""The oracle: the attacker's only door to the target.

It decides what the attacker may see (threat model), applies the cell's inference-stage
defenses to what it returns, passes every batch past the cell's endpoint guards (rate
limit, query monitor), and counts every image queried (one image = one query), refusing a
batch that would exceed the budget. Query accounting lives here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Protocol

import torch
from torch import Tensor, nn


class ThreatModel(str, Enum):
    """What an attacker gets from the target, from most to least."""

    WHITE_BOX = "white-box"  # the module: logits and input gradients
    BLACK_BOX = "black-box"  # probability vectors after output defenses
    LABEL_ONLY = "label-only"  # the top-1 label

    @property
    def level(self) -> int:
        return {"white-box": 2, "black-box": 1, "label-only": 0}[self.value]

    def serves(self, needed: ThreatModel) -> bool:
        """Whether an oracle of this threat model can answer an attack that needs ``needed``."""
        return self.level >= needed.level


class BudgetExceeded(RuntimeError):
    """A query batch would take the oracle past its budget; nothing was evaluated."""


class AccessDenied(PermissionError):
    """The attacker asked for more than the oracle's threat model grants."""


class QueryBlocked(RuntimeError):
    """An endpoint guard stopped serving this client; the attacker keeps what it had."""


class AccessGuard(Protocol):
    """An endpoint guard: sees every batch before it is answered and may block the client."""

    def admit(self, x: Tensor, served: int) -> None:
        """Raise :class:`QueryBlocked` to refuse ``x``; ``served`` queries were answered before it."""

    def report(self) -> dict[str, float]:
        """What the guard measured, as table columns (e.g. ``simulated_hours``)."""


OutputTransform = Callable[[Tensor], Tensor]


class Oracle:
    """Query access to a target under one threat model, with a query counter and budget."""

    def __init__(
        self,
        model: nn.Module,
        threat_model: ThreatModel,
        num_classes: int,
        input_shape: Sequence[int],
        budget: int | None = None,
        output_transforms: Sequence[OutputTransform] = (),
        guards: Sequence[AccessGuard] = (),
    ) -> None:
        self._model = model.eval()
        for p in self._model.parameters():
            p.requires_grad_(False)
        self.threat_model = ThreatModel(threat_model)
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)
        self.budget = budget
        self._transforms = tuple(output_transforms)
        self.guards = tuple(guards)
        self.queries = 0

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries

    def logits(self, x: Tensor) -> Tensor:
        """White-box only: differentiable logits of the undefended model."""
        self._require(ThreatModel.WHITE_BOX, "logits")
        self._charge(x)
        return self._model(x)

    @torch.no_grad()
    def probabilities(self, x: Tensor) -> Tensor:
        """Black-box: probability vectors after the inference-stage defenses."""
        self._require(ThreatModel.BLACK_BOX, "probabilities")
        self._charge(x)
        probs = torch.softmax(self._model(x), dim=1)
        for transform in self._transforms:
            probs = transform(probs)
        return probs

    @torch.no_grad()
    def labels(self, x: Tensor) -> Tensor:
        """Label-only: the top-1 class after the inference-stage defenses."""
        self._charge(x)
        probs = torch.softmax(self._model(x), dim=1)
        for transform in self._transforms:
            probs = transform(probs)
        return probs.argmax(dim=1)

    def _require(self, needed: ThreatModel, what: str) -> None:
        if not self.threat_model.serves(needed):
            raise AccessDenied(
                f"a {self.threat_model.value} oracle does not give {what} (needs {needed.value})"
            )

    def _charge(self, x: Tensor) -> None:
        if x.dim() != len(self.input_shape) + 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"oracle expects a batch of shape (N, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}"
            )
        n = x.shape[0]
        if self.budget is not None and self.queries + n > self.budget:
            raise BudgetExceeded(
                f"query budget exhausted: {self.queries} of {self.budget} spent, batch of {n} refused"
            )
        for guard in self.guards:
            guard.admit(x, self.queries)
        self.queries += n
