"""Intervals over seeds, the only replicates a grid has.

Identities of one run share a target, so they are not independent: every interval is taken
over per-seed values (a cell's mean over identities first), with Student's t. With fewer than
:data:`MIN_SEEDS` seeds a mean stands alone, and one note says why, rather than a meaninglessly wide interval.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

MIN_SEEDS = 3
SEEDS_NOTE = (f"Means over seeds (each seed's mean over identities first) ± the half-width of a 95 % Student-t "
              f"interval over seeds; with fewer than {MIN_SEEDS} seeds, means alone: no intervals (run with "
              f"{MIN_SEEDS}+ for them). A seed varies the target's initialisation "
              "and minibatch order (and DP-SGD's noise), the attack's randomness, the stochastic defenses and the "
              "guards, each from its own stream; the data split and the judge are fixed per dataset.")


def mean_ci(values: pd.Series | np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval (nan with fewer than :data:`MIN_SEEDS` values)."""
    v = pd.Series(values, dtype=float).dropna().to_numpy()
    if len(v) == 0:
        return math.nan, math.nan
    if len(v) < MIN_SEEDS:
        return float(v.mean()), math.nan
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half)


def t_interval(values: np.ndarray) -> tuple[float, float]:
    """A 95 % t-interval as (low, high), for seaborn's ``errorbar=``; no bar below :data:`MIN_SEEDS` values."""
    mean, half = mean_ci(values)
    return (math.nan, math.nan) if math.isnan(half) else (mean - half, mean + half)


def formatted(mean: float, half: float, digits: int = 2, signed: bool = False) -> str:
    """'mean ± half', or the mean alone when the interval is not defined (SEEDS_NOTE says why)."""
    if math.isnan(mean):
        return "—"
    text = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    return text if math.isnan(half) else f"{text} ± {half:.{digits}f}"
