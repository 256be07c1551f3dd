"""What a metric is: a name, the direction in which it is better, the family of cell it reads,
a caption, and — for the metrics computed from a cell's reconstructions — how to compute it.

``@metric("acc@1", higher_is_better=True, kind="inversion", caption=...)`` on a function of a
:class:`Judged` declares it: the job computes it per identity for every inversion cell, and
the summary, ``best attack`` and the defense table read its direction and caption from here.
Metrics another part of Sieve produces (lift, AUC, queries, utility) are declared without a
function. Direction is from the point of view of the party the family serves: for
``inversion`` and ``membership`` higher means more leaked, for ``utility`` more useful to an
honest user, for ``cost`` more spent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from torch import Tensor

from bench.data.base import DataSplits
from bench.models.architectures import Classifier
from bench.registry import METRICS

Kind = Literal["inversion", "membership", "utility", "cost"]


@dataclass
class Judged:
    """One inversion cell's reconstructions (one per identity), the private data and the judges;
    ``open`` is absent where there are no public people, ``second`` where no panel was trained."""

    recon: Tensor
    identities: Tensor
    splits: DataSplits
    evaluator: Classifier
    open: Classifier | None = None
    second: Classifier | None = None
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def shared(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per cell for metrics that come out of one computation."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]


Compute = Callable[[Judged], "Tensor | None"]  # per identity; None where it does not apply


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    kind: Kind
    caption: str
    compute: Compute | None = None
    digits: int = 2  # decimals in the summary
    summary: bool = True  # a column of the summary table

    def best(self, values: pd.Series) -> Any:
        """The index of the best of ``values`` in this metric's direction."""
        return values.idxmax() if self.higher_is_better else values.idxmin()


def metric(name: str, *, higher_is_better: bool, kind: Kind, caption: str, digits: int = 2,
           summary: bool = True) -> Callable[[Compute], Compute]:
    """Function decorator: declare ``name`` as computed per identity by the function."""

    def decorate(compute: Compute) -> Compute:
        METRICS.add(name, Metric(name, higher_is_better, kind, caption, compute, digits, summary), origin=compute)
        return compute

    return decorate


def declare(name: str, *, higher_is_better: bool, kind: Kind, caption: str, digits: int = 2,
            summary: bool = True) -> Metric:
    """Declare a metric another part of Sieve computes (its direction and caption only)."""
    declared = Metric(name, higher_is_better, kind, caption, None, digits, summary)
    METRICS.add(name, declared, origin=declared)
    return declared


def computed(kind: Kind = "inversion") -> list[Metric]:
    """The metrics of ``kind`` that a cell computes itself, in declaration order."""
    return [m for m in METRICS.values() if m.kind == kind and m.compute is not None]


def decimals(name: str) -> int:
    """Decimals to show ``name`` with: its declaration's, 2 for a metric nobody declared (a guard's report)."""
    return METRICS.get(name).digits if name in METRICS.names() else 2


def rows_of(metrics: pd.DataFrame, *names: str, target_class: str | None = "all") -> pd.DataFrame:
    """The rows of ``metrics`` (the tidy table) for ``names``, over all identities by default
    (``target_class=None`` keeps the per-identity rows too)."""
    keep = metrics["metric"].isin(names)
    if target_class is not None:
        keep &= metrics["target_class"] == target_class
    return metrics[keep]
