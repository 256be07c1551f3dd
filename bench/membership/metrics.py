"""From membership scores to tidy rows: AUC, TPR at a low FPR, and the membership advantage.

Scores are higher for images the attack thinks are members. AUC averages over all thresholds,
which hides what matters for privacy: whether an attack can name *some* members with
confidence (Carlini et al., 2022). So the rows also carry TPR at 1% and 0.1% FPR, read off the
ROC curve; an FPR below one false positive in the challenge set's non-members cannot be
measured, and gets NaN with the reason instead of a number that only looks precise.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve
from torch import Tensor

Scores = Tensor | np.ndarray
Row = dict[str, object]

LOW_FPRS = {"tpr@1%fpr": 0.01, "tpr@0.1%fpr": 0.001}


def auc(scores: Scores, member: Scores) -> float:
    """Area under the ROC curve: the chance a random member outscores a random non-member."""
    s, m = _arrays(scores, member)
    return float(roc_auc_score(m, s))


def tpr_at_fpr(scores: Scores, member: Scores, fpr: float) -> tuple[float, str | None]:
    """TPR at the most permissive threshold whose FPR is at most ``fpr`` (the best TPR reachable
    within that FPR), or NaN and why when the non-members are too few to measure that FPR."""
    s, m = _arrays(scores, member)
    needed = math.ceil(1 / fpr - 1e-9)
    non_members = int((~m).sum())
    if non_members < needed:
        return math.nan, f"FPR {fpr:g} needs at least {needed} non-members, the challenge set has {non_members}"
    fprs, tprs, _ = roc_curve(m, s, drop_intermediate=False)
    return float(tprs[np.flatnonzero(fprs <= fpr)[-1]]), None


def advantage(scores: Scores, member: Scores) -> float:
    """Membership advantage (Yeom et al., 2018): the largest TPR - FPR over all thresholds."""
    fprs, tprs = roc_points(scores, member)
    return float((tprs - fprs).max())


def roc_points(scores: Scores, member: Scores) -> tuple[np.ndarray, np.ndarray]:
    """FPR and TPR along the ROC curve, for a log-log figure (plot the points with FPR > 0)."""
    s, m = _arrays(scores, member)
    fprs, tprs, _ = roc_curve(m, s)
    return fprs, tprs


def membership_rows(scores: Scores, member: Scores, queries: int) -> list[Row]:
    """One ``target_class = 'all'`` row per metric; a metric that fails gives its row with the error."""
    computed: dict[str, Callable[[], tuple[float, str | None]]] = {
        "auc": lambda: (auc(scores, member), None),
        **{name: (lambda fpr=fpr: tpr_at_fpr(scores, member, fpr)) for name, fpr in LOW_FPRS.items()},
        "advantage": lambda: (advantage(scores, member), None),
        "queries": lambda: (float(queries), None),
    }
    rows: list[Row] = []
    for name, compute in computed.items():
        try:
            value, error = compute()
        except ValueError as exc:  # e.g. NaN scores, or a challenge set with one side only
            value, error = math.nan, f"{type(exc).__name__}: {exc}"
        rows.append({"target_class": "all", "metric": name, "value": float(value), "error": error})
    return rows


def _arrays(scores: Scores, member: Scores) -> tuple[np.ndarray, np.ndarray]:
    s = scores.detach().cpu().numpy() if isinstance(scores, Tensor) else np.asarray(scores)
    m = member.detach().cpu().numpy() if isinstance(member, Tensor) else np.asarray(member)
    if s.shape != m.shape or s.ndim != 1:
        raise ValueError(f"need one score per challenge image, got scores {s.shape} and membership {m.shape}")
    if m.all() or not m.any():
        raise ValueError("a challenge set needs both members and non-members")
    return s.astype(np.float64), m.astype(bool)


__all__ = ["LOW_FPRS", "advantage", "auc", "membership_rows", "roc_points", "tpr_at_fpr"]
