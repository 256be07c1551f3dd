"""The oracle: the attacker's only door to the target.

It decides what the attacker may see (threat model), applies the cell's inference-stage
defenses to what it returns, passes every batch past the cell's endpoint guards (rate
limit, query monitor), and counts every image queried (one image = one query), refusing a
batch that would exceed the budget. Query accounting lives here and nowhere else.
Attacks never hold the Oracle itself: ``Attack.execute`` hands them an :class:`OracleView`.
:class:`BaseOracle` holds the accounting; :class:`Oracle` answers from an in-process model,
``bench.serve.client.HttpOracle`` from a prediction URL.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Protocol, TypeVar

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


def defended_probabilities(model: nn.Module, x: Tensor, transforms: Sequence[OutputTransform]) -> Tensor:
    """What an endpoint answers: the model's probability vectors after the output defenses, in
    stack order — one computation for the oracle, the honest user and ``bench serve``."""
    probs = torch.softmax(model(x), dim=1)
    for transform in transforms:
        probs = transform(probs)
    return probs


class BaseOracle(ABC):
    """What every oracle shares, in-process or over HTTP: the threat model, the input shape, the
    budget, the endpoint guards and the query counter. A batch is checked and refused (budget,
    guards) before it is evaluated or sent, and counted once it is answered."""

    def __init__(
        self,
        threat_model: ThreatModel,
        num_classes: int,
        input_shape: Sequence[int],
        budget: int | None = None,
        guards: Sequence[AccessGuard] = (),
    ) -> None:
        self.threat_model = ThreatModel(threat_model)
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)
        self.budget = budget
        self.guards = tuple(guards)
        self.queries = 0

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget - self.queries

    @abstractmethod
    def logits(self, x: Tensor) -> Tensor:
        """White-box only: differentiable logits of the undefended model."""

    @abstractmethod
    def probabilities(self, x: Tensor) -> Tensor:
        """Black-box: probability vectors after the inference-stage defenses."""

    @abstractmethod
    def labels(self, x: Tensor) -> Tensor:
        """Label-only: the top-1 class after the inference-stage defenses."""

    def _require(self, needed: ThreatModel, what: str) -> None:
        if not self.threat_model.serves(needed):
            raise AccessDenied(
                f"a {self.threat_model.value} oracle does not give {what} (needs {needed.value})"
            )

    def _admit(self, x: Tensor) -> int:
        """Check ``x``'s shape, the budget and the guards; the batch's query count if it may be answered."""
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
        return n

    def _charge(self, x: Tensor) -> None:
        self.queries += self._admit(x)


class Oracle(BaseOracle):
    """Query access to an in-process target under one threat model, with a query counter and budget."""

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
        super().__init__(threat_model, num_classes, input_shape, budget, guards)
        self._model = model.eval()
        for p in self._model.parameters():
            p.requires_grad_(False)
        self._transforms = tuple(output_transforms)

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
        return defended_probabilities(self._model, x, self._transforms)

    @torch.no_grad()
    def labels(self, x: Tensor) -> Tensor:
        """Label-only: the top-1 class after the inference-stage defenses."""
        self._charge(x)
        return defended_probabilities(self._model, x, self._transforms).argmax(dim=1)


R = TypeVar("R")


def _sealed(fn: Callable[..., R]) -> Callable[..., R]:
    """``fn`` behind a C-level wrapper that holds it without exposing it as an attribute.

    ``lru_cache(maxsize=0)`` caches nothing and only counts calls; with ``__wrapped__``
    deleted, no ``__closure__``/``__self__``/``__wrapped__`` walk leads from it back to ``fn``.
    """
    wrapper = functools.lru_cache(maxsize=0)(fn)
    del wrapper.__wrapped__  # type: ignore[attr-defined]
    return wrapper


class OracleView:
    """What an attack holds: the questions its threat model allows, the counter, nothing else.

    ``labels`` for everyone, ``probabilities`` from black-box up, differentiable ``logits``
    for white-box only (the wrapped Oracle raises :class:`AccessDenied` otherwise). No model,
    no output transforms, no guards, no budget setter: the Oracle is held only inside sealed
    callables (see ``_sealed``), so attribute access, ``vars()``, ``__slots__`` and walks of
    ``__self__``/``__closure__``/``__wrapped__`` find no Oracle or model, and setting any
    attribute raises AttributeError. Probabilities and labels are computed under ``no_grad``.

    What it does not stop: Python cannot seal an object from code in the same process —
    ``gc.get_referents`` on a sealed callable, ``ctypes`` and frame inspection reach the
    Oracle. That is why a job runs every attack in its own process (``bench.attacker``),
    where the view wraps a pipe to the job's oracle and nothing else of the job exists.
    """

    __slots__ = ("threat_model", "num_classes", "input_shape", "_labels", "_probabilities", "_logits", "_count",
                 "_left")

    threat_model: ThreatModel
    num_classes: int
    input_shape: tuple[int, ...]

    def __init__(self, oracle: BaseOracle) -> None:
        fields: dict[str, Any] = {
            "threat_model": oracle.threat_model, "num_classes": oracle.num_classes,
            "input_shape": oracle.input_shape, "_labels": _sealed(oracle.labels),
            "_probabilities": _sealed(oracle.probabilities), "_logits": _sealed(oracle.logits),
            "_count": _sealed(lambda: oracle.queries), "_left": _sealed(lambda: oracle.remaining),
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"the oracle view is read-only (cannot set '{name}')")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"the oracle view is read-only (cannot delete '{name}')")

    @property
    def queries(self) -> int:
        """Images queried so far (one image = one query)."""
        return self._count()

    @property
    def remaining(self) -> int | None:
        """Queries left in the budget (``None``: unlimited)."""
        return self._left()

    def labels(self, x: Tensor) -> Tensor:
        """The top-1 class after the inference-stage defenses."""
        return self._labels(x)

    def probabilities(self, x: Tensor) -> Tensor:
        """Black-box and up: probability vectors after the inference-stage defenses (no autograd graph)."""
        return self._probabilities(x)

    def logits(self, x: Tensor) -> Tensor:
        """White-box only: differentiable logits of the undefended model."""
        return self._logits(x)
