"""The measured defense table: the playbook's "pros and cons", with numbers.

For every defense (per dataset): its stage, and against ``none`` in the same seed the change
in test accuracy, in white-box and black-box acc@1 (over the attacks of each threat model),
and in queries spent — means with 95 % t-intervals over seeds (and attacks).
"""

from __future__ import annotations

import pandas as pd

from bench.report.summary import mean_ci

DEFENSE_TABLE_COLUMNS = ["dataset", "defense", "stage", "metric", "mean", "ci95", "n"]


def defense_table(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per dataset × defense × change (``Δtest_acc``, ``Δacc@1 white-box``, ...)."""
    done = cells[cells["status"] == "done"]
    if done.empty or "none" not in set(done["defense"]):
        return pd.DataFrame(columns=DEFENSE_TABLE_COLUMNS)
    acc = metrics[(metrics["target_class"] == "all") & metrics["metric"].isin(["acc@1", "queries"])]
    acc = acc.pivot_table(index=["dataset", "defense", "attack", "threat_model", "seed"], columns="metric",
                          values="value").reset_index()
    per_target = done.drop_duplicates(["dataset", "defense", "seed"])[["dataset", "defense", "seed", "test_acc"]]
    stages = done.drop_duplicates(["dataset", "defense"]).set_index(["dataset", "defense"])["defense_stages"]
    rows = []
    for (dataset, defense), stage in stages.items():
        if defense == "none":
            continue
        changes = {"Δtest_acc": _paired(per_target, dataset, defense, ["seed"], "test_acc")}
        for threat in ("white-box", "black-box", "label-only"):
            sub = acc[acc["threat_model"] == threat]
            changes[f"Δacc@1 {threat}"] = _paired(sub, dataset, defense, ["attack", "seed"], "acc@1")
            if threat != "white-box":
                changes[f"Δqueries {threat}"] = _paired(sub, dataset, defense, ["attack", "seed"], "queries")
        for name, diffs in changes.items():
            if len(diffs):
                mean, half = mean_ci(diffs)
                rows.append({"dataset": dataset, "defense": defense, "stage": stage, "metric": name,
                             "mean": mean, "ci95": half, "n": len(diffs)})
    return pd.DataFrame(rows, columns=DEFENSE_TABLE_COLUMNS)


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """Wide, readable: one row per dataset × defense, 'mean ± ci' per change."""
    if table.empty:
        return table
    text = table.assign(text=[f"{m:+.2f}" if pd.isna(h) else f"{m:+.2f} ± {h:.2f}"
                              for m, h in zip(table["mean"], table["ci95"])])
    wide = text.pivot_table(index=["dataset", "stage", "defense"], columns="metric", values="text", aggfunc="first")
    order = [c for c in ("Δtest_acc", "Δacc@1 white-box", "Δacc@1 black-box", "Δqueries black-box",
                         "Δacc@1 label-only", "Δqueries label-only") if c in wide.columns]
    return wide[order].fillna("—")


def _paired(frame: pd.DataFrame, dataset: str, defense: str, keys: list[str], value: str) -> pd.Series:
    """``value`` under ``defense`` minus under ``none``, matched on ``keys`` (same seed, same attack)."""
    mine = frame[(frame["dataset"] == dataset) & (frame["defense"] == defense)]
    base = frame[(frame["dataset"] == dataset) & (frame["defense"] == "none")]
    joined = mine.merge(base, on=keys, suffixes=("", "_none"))
    return (joined[value] - joined[f"{value}_none"]).dropna()
