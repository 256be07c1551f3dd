"""How the report reads a grid's leak: which attack is the no-inversion baseline a lift is
measured against, and which judge's reading leads a sentence or a figure — the open-set judge's
(it can say "nobody") where it is strong enough to be read, else the closed-set evaluator's
(the paper protocol)."""

from __future__ import annotations

import pandas as pd

OPEN_JUDGE_MIN_ACC = 0.8  # below it, or above OPEN_JUDGE_MAX_FAR, the open-set judge does not lead
OPEN_JUDGE_MAX_FAR = 0.1  # (on the shared Yale faces it read 0.54 right and 0.34 false accepts)


def baseline_attacks(cells: pd.DataFrame) -> set[str]:
    """The attacks the grid marks as its no-inversion baseline (none in results without the mark)."""
    return set(cells.loc[cells["baseline"].fillna(False).astype(bool), "attack"]) if "baseline" in cells else set()


def open_judge_weakness(cells: pd.DataFrame) -> str:
    """Why the open-set judge cannot lead (its accuracy on held-out private photos below
    :data:`OPEN_JUDGE_MIN_ACC`, or its false accepts of public faces above
    :data:`OPEN_JUDGE_MAX_FAR`), or '' where it can or there is none."""
    judged = cells.dropna(subset=["open_judge_acc"]) if "open_judge_acc" in cells else cells[:0]
    if judged.empty:
        return ""
    acc, far = float(judged["open_judge_acc"].iloc[0]), float(judged["open_judge_far"].iloc[0])
    if acc >= OPEN_JUDGE_MIN_ACC and far <= OPEN_JUDGE_MAX_FAR:
        return ""
    return (f"The open-set judge is too weak to lead here ({acc:.2f} right on held-out private photos, false "
            f"accepts {far:.2f} of public faces), so the closed-set reading leads.")
