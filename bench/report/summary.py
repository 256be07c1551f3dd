"""The compact summaries: means with 95 % t-intervals over seeds, and what the judge is."""

from __future__ import annotations

import pandas as pd

from bench.report.stats import formatted, mean_ci

SUMMARY_METRICS = ("acc@1", "lift", "knn_acc@1", "ssim_margin", "auc", "tpr@1%fpr", "queries", "oracle_acc")
KEYS = ["dataset", "target", "defense", "attack"]


def summary_table(cells: pd.DataFrame, metrics: pd.DataFrame,
                  metric_names: tuple[str, ...] = SUMMARY_METRICS) -> pd.DataFrame:
    """One row per dataset × target × defense × attack: 'mean ± ci' over seeds of each cell's value
    (its mean over identities); 'refused' where every seed's cell was refused."""
    rows = metrics[(metrics["target_class"] == "all") & metrics["metric"].isin(metric_names)]
    out = []
    for (*key, metric), group in rows.groupby([*KEYS, "metric"], sort=True):
        mean, half = mean_ci(group.groupby("seed")["value"].mean())
        out.append({**dict(zip(KEYS, key)), "metric": metric,
                    "text": formatted(mean, half, {"queries": 0, "tpr@1%fpr": 3}.get(metric, 2))})
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


def judge_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: the evaluator's protocol and its accuracy on held-out photos and on class means —
    the yardstick every acc@1 of that dataset is read through."""
    columns = ["evaluator_data", "evaluator_acc", "evaluator_mean_acc"]
    if cells.empty or not set(columns) <= set(cells.columns):
        return pd.DataFrame(columns=columns)
    return cells.dropna(subset=["evaluator_acc"]).groupby("dataset")[columns].first().round(3)


def best_attacks(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, target and defense, the attack that recovered most (mean acc@1 over seeds), its
    lift over the no-inversion baseline, and the test accuracy an honest user gets through the outputs."""
    acc = metrics[(metrics["metric"].isin(["acc@1", "lift"])) & (metrics["target_class"] == "all")]
    if acc.empty:
        return pd.DataFrame()
    setting = KEYS[:-1]
    mean = acc.pivot_table(index=KEYS, columns="metric", values="value", aggfunc="mean").reset_index()
    best = mean.loc[mean.groupby(setting)["acc@1"].idxmax()]
    utility = cells.groupby(setting)["oracle_acc"].mean().rename("oracle_acc")
    best = best.merge(utility, left_on=setting, right_index=True, how="left")
    return best.rename(columns={"attack": "best attack"}).set_index(setting).round(2)


def _all_refused(cells: pd.DataFrame) -> list[tuple[str, ...]]:
    if cells.empty or "status" not in cells:
        return []
    status = cells.groupby(KEYS)["status"].agg(lambda s: set(s) == {"refused"})
    return [key for key, refused in status.items() if refused]
