"""The compact summaries: means with 95 % t-intervals over seeds, and what the judge is."""

from __future__ import annotations

import pandas as pd

from bench.metrics.base import decimals, rows_of
from bench.registry import METRICS
from bench.report.stats import formatted, mean_ci

KEYS = ["dataset", "target", "defense", "attack"]


def summary_metrics() -> tuple[str, ...]:
    """The summary's columns: every declared metric that asks for one, in declaration order."""
    return tuple(m.name for m in METRICS.values() if m.summary)


def summary_table(cells: pd.DataFrame, metrics: pd.DataFrame,
                  metric_names: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per dataset × target × defense × attack: 'mean ± ci' over seeds of each cell's value
    (its mean over identities); 'refused' where every seed's cell was refused. ``gap`` is the
    target's train–test accuracy gap, which caps every membership attack: it stands beside each AUC."""
    metric_names = summary_metrics() if metric_names is None else metric_names
    rows = rows_of(metrics, *metric_names)
    if "gap" in metric_names and "gap" in cells and not cells.empty:
        gaps = cells.dropna(subset=["gap"])[[*KEYS, "seed", "gap"]].rename(columns={"gap": "value"})
        rows = pd.concat([rows, gaps.assign(metric="gap", target_class="all")], ignore_index=True)
    out = []
    for (*key, metric), group in rows.groupby([*KEYS, "metric"], sort=True):
        mean, half = mean_ci(group.groupby("seed")["value"].mean())
        out.append({**dict(zip(KEYS, key)), "metric": metric,
                    "text": formatted(mean, half, decimals(metric))})
    table = pd.DataFrame(out, columns=[*KEYS, "metric", "text"])
    table = table.pivot(index=KEYS, columns="metric", values="text") if out else pd.DataFrame()
    refused = _all_refused(cells)
    for key in refused:
        for metric in metric_names:
            if metric != "oracle_acc":
                table.loc[key, metric] = "refused"
    if table.empty:
        return table
    table = table.sort_index()
    return table[[m for m in metric_names if m in table.columns]].fillna("—")


JUDGE_COLUMNS = ["evaluator_data", "evaluator_acc", "evaluator_mean_acc", "open_judge_acc", "open_judge_far",
                 "second_judge_acc"]


def judge_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: the closed-set evaluator's protocol (the GMI/KEDMI one) and its accuracy on
    held-out photos and on class means, the open-set judge's accuracy and false-accept rate on
    public faces, and the second judge's accuracy — the yardsticks every acc@1 is read through."""
    columns = [c for c in JUDGE_COLUMNS if c in cells.columns]
    if cells.empty or not set(JUDGE_COLUMNS[:3]) <= set(columns):
        return pd.DataFrame(columns=JUDGE_COLUMNS[:3])
    return cells.dropna(subset=["evaluator_acc"]).groupby("dataset")[columns].first().round(3)


def best_attacks(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, target and defense, the attack that recovered most (mean acc@1 over seeds), its
    lift over the no-inversion baseline, and the test accuracy an honest user gets through the outputs."""
    acc = rows_of(metrics, "acc@1", "lift")
    if acc.empty:
        return pd.DataFrame()
    setting = KEYS[:-1]
    mean = acc.pivot_table(index=KEYS, columns="metric", values="value", aggfunc="mean").reset_index()
    best = mean.loc[mean.groupby(setting)["acc@1"].agg(METRICS.get("acc@1").best)]
    utility = cells.groupby(setting)["oracle_acc"].mean().rename("oracle_acc")
    best = best.merge(utility, left_on=setting, right_index=True, how="left")
    return best.rename(columns={"attack": "best attack"}).set_index(setting).round(2)


def _all_refused(cells: pd.DataFrame) -> list[tuple[str, ...]]:
    if cells.empty or "status" not in cells:
        return []
    status = cells.groupby(KEYS)["status"].agg(lambda s: set(s) == {"refused"})
    return [key for key, refused in status.items() if refused]
