"""The measured defense table: the playbook's "pros and cons", with numbers.

Per dataset, target and defense, against ``none`` on the same target and seed: what it costs an honest user (the
change in accuracy through the defended outputs, ``Δoracle_acc``), and per attack what it
changes in acc@1 and queries — one row per attack, never averaged across attacks with
different budgets — plus, per threat model, the worst case over the inversion attacks (each
seed's best attack), which is what a defender must plan for; per membership attack, its AUC
and TPR at 1 % FPR and their changes. 95 % t-intervals over seeds.
"""

from __future__ import annotations

import pandas as pd

from bench.metrics.base import decimals, rows_of
from bench.registry import METRICS
from bench.report.reading import baseline_attacks
from bench.report.stats import formatted as fmt
from bench.report.stats import mean_ci

SETTING = ["dataset", "target"]  # a defense is compared with 'none' on the same dataset and target (its label)
DEFENSE_TABLE_COLUMNS = [*SETTING, "defense", "stage", "attack", "metric", "mean", "ci95", "n"]
TARGET_ROW = "(honest user)"
MEMBERSHIP_METRICS = ("auc", "tpr@1%fpr")


def defense_table(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Long table: one row per dataset × target × defense × attack (or worst case, or the honest user) × change."""
    done = cells[cells["status"].isin(["done", "refused"])]
    if done.empty or "none" not in set(done["defense"]):
        return pd.DataFrame(columns=DEFENSE_TABLE_COLUMNS)
    membership = set(cells.loc[cells["kind"] == "membership", "attack"]) if "kind" in cells else set()
    alls = rows_of(metrics, "acc@1", "queries", *MEMBERSHIP_METRICS)
    acc = _wide(alls[~alls["attack"].isin(membership)], ["acc@1", "queries"])
    mia = _wide(alls[alls["attack"].isin(membership)], list(MEMBERSHIP_METRICS))
    baselines = baseline_attacks(cells)
    worst = _worst_cases(acc, baselines)
    utility = done.drop_duplicates([*SETTING, "defense", "seed"])[[*SETTING, "defense", "seed", "oracle_acc"]]
    stages = done.drop_duplicates([*SETTING, "defense"]).set_index([*SETTING, "defense"])["defense_stages"]
    rows = []

    def add(setting: tuple[str, str], defense: str, stage: str, attack: str, metric: str, values: pd.Series) -> None:
        if len(values):
            mean, half = mean_ci(values)
            rows.append({**dict(zip(SETTING, setting)), "defense": defense, "stage": stage, "attack": attack,
                         "metric": metric, "mean": mean, "ci95": half, "n": len(values)})

    for (*setting, defense), stage in stages.items():
        if defense == "none":
            continue
        here = (setting[0], setting[1])
        add(here, defense, stage, TARGET_ROW, "Δoracle_acc", _paired(utility, here, defense, "oracle_acc"))
        for frame in (acc, worst):
            mine = _of(frame, here, defense)
            for attack in sorted(mine["attack"].unique()):
                sub = frame[frame["attack"] == attack]
                add(here, defense, stage, attack, "acc@1", mine[mine["attack"] == attack]["acc@1"])
                add(here, defense, stage, attack, "Δacc@1", _paired(sub, here, defense, "acc@1"))
                if "queries" in sub and not attack.startswith("worst") and sub["threat_model"].iloc[0] != "white-box":
                    add(here, defense, stage, attack, "Δqueries", _paired(sub, here, defense, "queries"))
        mine = _of(mia, here, defense)
        for attack in sorted(mine["attack"].unique()):
            for metric in MEMBERSHIP_METRICS:
                add(here, defense, stage, attack, metric, mine[mine["attack"] == attack][metric].dropna())
                add(here, defense, stage, attack, f"Δ{metric}", _paired(mia[mia["attack"] == attack], here, defense, metric))
    return pd.DataFrame(rows, columns=DEFENSE_TABLE_COLUMNS)


def _wide(rows: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Cell-level ``names`` as columns, one row per dataset × target × defense × attack × seed; a
    metric that is n/a everywhere (e.g. tpr@0.1%fpr on a small challenge set) is a column of NaN."""
    rows = rows[rows["metric"].isin(names)]
    index = [*SETTING, "defense", "attack", "threat_model", "seed"]
    if rows.empty:
        return pd.DataFrame(columns=[*index, *names])
    wide = rows.pivot_table(index=index, columns="metric", values="value").reset_index()
    return wide.reindex(columns=[*index, *names])


def formatted(table: pd.DataFrame) -> pd.DataFrame:
    """Wide, readable: one row per dataset × target × defense × attack, 'mean ± ci' per column."""
    if table.empty:
        return table
    text = table.assign(text=[fmt(m, h, signed=metric.startswith("Δ"), digits=decimals(metric.removeprefix("Δ")))
                              for m, h, metric in zip(table["mean"], table["ci95"], table["metric"])])
    wide = text.pivot_table(index=[*SETTING, "stage", "defense", "attack"], columns="metric", values="text",
                            aggfunc="first")
    order = [c for c in ("Δoracle_acc", "acc@1", "Δacc@1", "Δqueries", "auc", "Δauc", "tpr@1%fpr", "Δtpr@1%fpr")
             if c in wide.columns]
    return wide[order].fillna("")


def _worst_cases(acc: pd.DataFrame, baselines: set[str]) -> pd.DataFrame:
    """Per dataset × target × defense × seed and threat model: the best acc@1 over the inversion
    attacks, in the metric's declared direction (the no-inversion baselines left out)."""
    attacks = acc[~acc["attack"].isin(baselines)]
    most = "max" if METRICS.get("acc@1").higher_is_better else "min"
    worst = attacks.groupby([*SETTING, "defense", "threat_model", "seed"])["acc@1"].agg(most).reset_index()
    return worst.assign(attack="worst " + worst["threat_model"])


def _of(frame: pd.DataFrame, setting: tuple[str, str], defense: str) -> pd.DataFrame:
    return frame[(frame["dataset"] == setting[0]) & (frame["target"] == setting[1]) & (frame["defense"] == defense)]


def _paired(frame: pd.DataFrame, setting: tuple[str, str], defense: str, value: str) -> pd.Series:
    """``value`` under ``defense`` minus under ``none`` on the same dataset and target, matched on the seed."""
    joined = _of(frame, setting, defense).merge(_of(frame, setting, "none"), on="seed", suffixes=("", "_none"))
    return (joined[value] - joined[f"{value}_none"]).dropna()
