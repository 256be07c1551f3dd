"""Lift: what an attack recovers beyond what the attacker had without inverting.

An attack's ``lift`` is its acc@1 minus the baseline's (the attack that declares ``baseline``,
built in: ``public-lookalike``) on the same trained target (same job: dataset, target spec,
data and training defenses, seed). A black-box or label-only attack is matched
with the baseline under the same output and access defenses; a white-box attacker holds the
model, so its baseline is the one that saw undefended outputs.

Each judge gives its own lift: ``lift`` by the closed-set evaluator (the GMI/KEDMI protocol),
``lift:open`` by the open-set judge, which names a public look-alike as the stranger it is, and
``lift:second`` by the judge of another architecture family.
"""

from __future__ import annotations

import pandas as pd

from bench.metrics.base import rows_of

LIFTS = {"acc@1": "lift", "acc@1:open": "lift:open", "acc@1:second": "lift:second"}  # judge's reading -> its lift


def lift_rows(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Per judge, one lift row (target_class ``all``) per completed non-baseline cell that has a baseline."""
    return pd.concat([judge_lift_rows(cells, metrics, reading, name) for reading, name in LIFTS.items()],
                     ignore_index=True)


def judge_lift_rows(cells: pd.DataFrame, metrics: pd.DataFrame, reading: str, name: str) -> pd.DataFrame:
    """Rows ``name``: each cell's ``reading`` minus its baseline's."""
    acc = rows_of(metrics, reading)
    if acc.empty or "attack" not in cells:
        return metrics.iloc[0:0]
    done = cells[cells["status"] == "done"].merge(acc[["cell_id", "value"]], on="cell_id")
    is_baseline = done["baseline"].fillna(False).astype(bool) if "baseline" in done else pd.Series(False, done.index)
    base, rest = done[is_baseline], done[~is_baseline]
    if base.empty or rest.empty:
        return metrics.iloc[0:0]
    same_outputs = rest[rest["threat_model"] != "white-box"].merge(
        base[["job_id", "defense", "value"]], on=["job_id", "defense"], suffixes=("", "_baseline"))
    undefended = base[~base["outputs_defended"].astype(bool)][["job_id", "value"]].drop_duplicates("job_id")
    white_box = rest[rest["threat_model"] == "white-box"].merge(undefended, on="job_id", suffixes=("", "_baseline"))
    matched = pd.concat([same_outputs, white_box], ignore_index=True)
    rows = acc[acc["cell_id"].isin(matched["cell_id"])].copy()
    lift = matched.set_index("cell_id")["value"] - matched.set_index("cell_id")["value_baseline"]
    return rows.assign(metric=name, value=rows["cell_id"].map(lift).to_numpy(), error=None)
