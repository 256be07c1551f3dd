"""The compact terminal summary: means with 95 % t-intervals over seeds."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from bench.metrics import PER_CLASS_METRICS

SUMMARY_METRICS = ("acc@1", "knn_acc@1", "ssim_mean", "queries", "test_acc")


def mean_ci(values: pd.Series) -> tuple[float, float]:
    """Mean and half-width of its 95 % Student-t interval (nan half-width for one value)."""
    v = values.dropna().to_numpy(dtype=float)
    if len(v) == 0:
        return math.nan, math.nan
    if len(v) == 1:
        return float(v[0]), math.nan
    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return float(v.mean()), float(half)


def summary_table(metrics: pd.DataFrame, metric_names: tuple[str, ...] = SUMMARY_METRICS) -> pd.DataFrame:
    """One row per dataset × defense × attack: 'mean ± ci' over seeds and target classes
    (per-identity rows where a metric has them, else the cell's 'all' row)."""
    per_class = metrics["metric"].isin(PER_CLASS_METRICS)
    pooled = (per_class & (metrics["target_class"] != "all")) | (~per_class & (metrics["target_class"] == "all"))
    rows = metrics[pooled & metrics["metric"].isin(metric_names)]
    if rows.empty:
        return pd.DataFrame()
    out = []
    for (ds, defense, attack, metric), group in rows.groupby(["dataset", "defense", "attack", "metric"], sort=True):
        mean, half = mean_ci(group["value"])
        out.append({"dataset": ds, "defense": defense, "attack": attack, "metric": metric, "text": _fmt(mean, half, metric)})
    table = pd.DataFrame(out).pivot(index=["dataset", "defense", "attack"], columns="metric", values="text")
    return table[[m for m in metric_names if m in table.columns]]


def _fmt(mean: float, half: float, metric: str) -> str:
    if np.isnan(mean):
        return "—"
    digits = 0 if metric == "queries" else 2
    text = f"{mean:.{digits}f}"
    return text if np.isnan(half) else f"{text} ± {half:.{digits}f}"


def best_attacks(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """The compact terminal summary: per dataset and defense, the attack that recovered most
    (mean acc@1 over seeds), with the target's test accuracy."""
    acc = metrics[(metrics["metric"] == "acc@1") & (metrics["target_class"] == "all")]
    if acc.empty:
        return pd.DataFrame()
    mean = acc.groupby(["dataset", "defense", "attack"])["value"].mean().reset_index()
    best = mean.loc[mean.groupby(["dataset", "defense"])["value"].idxmax()]
    utility = cells.groupby(["dataset", "defense"])["test_acc"].mean()
    best = best.assign(test_acc=[utility.get((d, f)) for d, f in zip(best["dataset"], best["defense"])])
    return best.rename(columns={"attack": "best attack", "value": "acc@1"}).set_index(["dataset", "defense"]).round(2)
