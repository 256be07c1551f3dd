"""The report's first screen: per dataset and target, what an attacker gets back and what stops
it, as sentences computed from the tables (never written by hand).

- the strongest inversion leak on the undefended target: the attack with the largest mean lift
  over the no-inversion baseline (by the open-set judge where there is one strong enough to
  read, else by the closed-set one, saying why), with its interval,
  what it and the baseline recover, and the judge's accuracy;
- the strongest membership leak: the attack with the largest mean tpr@1%fpr, its AUC and the
  target's train–test gap;
- the defense with the best trade-off: of the defenses that cost an honest user at most
  :data:`AFFORDABLE` of accuracy, the one that most lowers the strongest attack's lift (each
  seed's best inversion attack, paired with ``none`` on the seed), with its cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.metrics.base import rows_of  # noqa: E402
from bench.report.figures import Drawn  # noqa: E402
from bench.report.gallery import show  # noqa: E402
from bench.report.reading import open_judge_weakness  # noqa: E402
from bench.report.stats import MIN_SEEDS, mean_ci  # noqa: E402
from bench.results import ResultsDir  # noqa: E402

AFFORDABLE = 0.05  # the honest user's accuracy a defense may cost and still be called a trade-off
NO_INTERVALS = f"no intervals; run with {MIN_SEEDS}+ seeds for them"


@dataclass
class Headline:
    """The first screen's findings for one dataset and target, each a sentence (None: not measured)."""

    dataset: str
    target: str
    inversion: str | None = None
    membership: str | None = None
    defense: str | None = None
    cells: dict[str, str] = field(default_factory=dict)  # the picture's rows: label -> cell id (lowest seed)


def headlines(cells: pd.DataFrame, metrics: pd.DataFrame) -> list[Headline]:
    """One :class:`Headline` per dataset × target of the grid."""
    if cells.empty:
        return []
    done = cells[cells["status"] == "done"]
    out = []
    for (dataset, target), mine in done.groupby(["dataset", "target"], sort=True):
        rows = metrics[metrics["cell_id"].isin(mine["cell_id"])]
        h = Headline(str(dataset), str(target))
        _inversion(h, mine, rows)
        _membership(h, mine, rows)
        _defense(h, mine, rows)
        out.append(h)
    return out


def markdown(found: list[Headline], seeds: int) -> str:
    """The first screen as Markdown: a heading per dataset and target, a sentence per finding."""
    if not found:
        return "No cell has finished yet: nothing to report."
    parts = [] if seeds >= MIN_SEEDS else [f"*{seeds} seed{'s' if seeds != 1 else ''}: {NO_INTERVALS}.*"]
    for h in found:
        parts.append(f"**{h.dataset} · {h.target}**")
        for label, sentence in (("What leaks", h.inversion), ("Who was in training", h.membership),
                                ("What stops it", h.defense)):
            if sentence:
                parts.append(f"- *{label}:* {sentence}")
    return "\n\n".join(parts)


def picture(results_dir: str | Path, h: Headline, max_identities: int = 8) -> Drawn:
    """Private images beside the strongest attack's reconstructions and the baseline's (lowest seed)."""
    references = ResultsDir(results_dir).references(h.dataset)
    if not h.cells or not references.exists():
        return None, f"no reconstructions to show for {h.dataset} · {h.target}"
    with np.load(references, allow_pickle=False) as npz:
        rows = [("private", npz["images"][:max_identities])]
    for label, cell_id in h.cells.items():
        with np.load(Path(results_dir) / "cells" / cell_id / "reconstructions.npz", allow_pickle=False) as npz:
            rows.append((label, npz["reconstructions"][:max_identities]))
    k = min(len(images) for _, images in rows)
    fig, axes = plt.subplots(len(rows), k, figsize=(0.75 * k + 1.4, 0.8 * len(rows) + 0.3), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for i in range(k):
            show(axes[r, i], images[i])
            axes[r, i].set_xticks([])
            axes[r, i].set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center")
    fig.suptitle(f"{h.dataset} · {h.target}, undefended", fontsize=10)
    fig.tight_layout()
    return fig, None


def _reading(rows: pd.DataFrame, cells: pd.DataFrame) -> tuple[str, str]:
    """The judge's reading to lead with: the open-set one where the grid has it and that judge is
    strong enough to be read (:func:`bench.report.reading.open_judge_weakness`), else the paper's."""
    if (rows["metric"] == "lift:open").any() and not open_judge_weakness(cells):
        return "acc@1:open", "lift:open"
    return "acc@1", "lift"


def _per_seed(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Cell-level ``metric`` per attack, defense and seed."""
    return rows_of(rows, metric)[["attack", "defense", "seed", "value"]]


def _inversion(h: Headline, cells: pd.DataFrame, rows: pd.DataFrame) -> None:
    acc, lift = _reading(rows, cells)
    undefended = rows[rows["defense"] == "none"]
    lifts = _per_seed(undefended, lift)
    if lifts.empty:
        return
    means = lifts.groupby("attack")["value"].mean()
    best = str(means.idxmax())
    gain, half = mean_ci(lifts[lifts["attack"] == best].groupby("seed")["value"].mean())
    recovered = _mean(_per_seed(undefended, acc), best)
    baseline = _baseline(cells)
    base = _mean(_per_seed(undefended, acc), baseline) if baseline else math.nan
    judge = _judge(cells, acc)
    k = _identities(rows)
    if gain <= 0:
        h.inversion = (f"no attack recovers more than the no-inversion baseline ({baseline}, {acc} {base:.2f}); the "
                       f"best, **{best}**, reads {lift} {_pm(gain, half)}. {judge}")
    else:
        h.inversion = (f"**{best}** recovers {recovered:.2f} of the {k} private identities by {acc} (chance "
                       f"{1 / k:.2f}), {_pm(gain, half)} beyond what the attacker had without inverting ({baseline}: "
                       f"{base:.2f}). {judge}")
    h.cells = {best: _cell(cells, best, "none")}
    if baseline:
        h.cells["baseline"] = _cell(cells, baseline, "none")


def _membership(h: Headline, cells: pd.DataFrame, rows: pd.DataFrame) -> None:
    tpr = _per_seed(rows[rows["defense"] == "none"], "tpr@1%fpr")
    if tpr.empty:
        return
    best = str(tpr.groupby("attack")["value"].mean().idxmax())
    value, half = mean_ci(tpr[tpr["attack"] == best].groupby("seed")["value"].mean())
    auc = _mean(_per_seed(rows[rows["defense"] == "none"], "auc"), best)
    mine = cells[(cells["attack"] == best) & (cells["defense"] == "none")]
    gap = mine["gap"].mean() if "gap" in mine else math.nan
    h.membership = (f"**{best}** names {_pm(value, half, 3, signed=False)} of the training images at 1 % false positives (chance "
                    f"0.010), AUC {auc:.2f}; the target's train–test gap is {gap:.2f}.{_holding(mine)}")


def _holding(cells: pd.DataFrame) -> str:
    """What the membership attacker holds besides the challenge set; nothing said where the
    results do not record it."""
    held = cells["population"].max() if "population" in cells else math.nan
    if math.isnan(held):
        return ""
    if held == 0:
        return " The attacker holds no images from the private data's distribution."
    return f" The attacker holds {held:.0f} other images from the private data's distribution, none of the challenge set."


def _defense(h: Headline, cells: pd.DataFrame, rows: pd.DataFrame) -> None:
    _, lift = _reading(rows, cells)
    baseline = _baseline(cells)
    lifts = _per_seed(rows[rows["attack"] != baseline], lift)
    if lifts.empty or "none" not in set(lifts["defense"]):
        return
    strongest = lifts.groupby(["defense", "seed"])["value"].max().unstack("defense")
    utility = cells.drop_duplicates(["defense", "seed"]).pivot(index="seed", columns="defense", values="oracle_acc")
    options = []
    for defense in strongest.columns.drop("none"):
        cut = (strongest["none"] - strongest[defense]).dropna()
        cost = (utility["none"] - utility[defense]).dropna() if defense in utility else pd.Series(dtype=float)
        if len(cut) and len(cost):
            options.append((defense, mean_ci(cut), mean_ci(cost)))
    if not options:
        return
    affordable = [o for o in options if o[2][0] <= AFFORDABLE]
    if not affordable:
        cheapest = min(options, key=lambda o: o[2][0])
        h.defense = (f"every defense measured costs an honest user more than {AFFORDABLE:.2f} of accuracy; the cheapest, "
                     f"**{cheapest[0]}**, costs {_pm(*cheapest[2], signed=False)} and changes the strongest attack's "
                     f"{lift} by {_pm(-cheapest[1][0], cheapest[1][1])}.")
        return
    defense, cut, cost = max(affordable, key=lambda o: o[1][0])
    if cut[0] <= 0:
        h.defense = (f"no defense that costs at most {AFFORDABLE:.2f} of an honest user's accuracy lowers the strongest "
                     f"attack's {lift}; the nearest, **{defense}**, changes it by {_pm(0.0 - cut[0] + 0.0, cut[1])}.")
        return
    if cut[0] - cut[1] <= 0:  # an interval over seeds that holds 0 (with two seeds there is none)
        h.defense = (f"no defense that costs at most {AFFORDABLE:.2f} of an honest user's accuracy lowers the strongest "
                     f"attack's {lift} measurably; the largest cut, **{defense}**'s, is {_pm(*cut, signed=False)}, "
                     f"an interval that holds 0, at a cost of {_pm(*cost, signed=False)}.")
        return
    h.defense = (f"**{defense}** lowers the strongest attack's {lift} by {_pm(*cut, signed=False)} at a cost of "
                 f"{_pm(*cost, signed=False)} in an honest user's accuracy (of the defenses costing at most "
                 f"{AFFORDABLE:.2f}).")


def _baseline(cells: pd.DataFrame) -> str | None:
    marked = cells[cells["baseline"].fillna(False).astype(bool)] if "baseline" in cells else cells[:0]
    return str(marked["attack"].iloc[0]) if len(marked) else None


def _mean(per_seed: pd.DataFrame, attack: str | None) -> float:
    values = per_seed[per_seed["attack"] == attack]["value"]
    return float(values.mean()) if len(values) else math.nan


def _cell(cells: pd.DataFrame, attack: str, defense: str) -> str:
    mine = cells[(cells["attack"] == attack) & (cells["defense"] == defense)]
    return str(mine.sort_values("seed")["cell_id"].iloc[0])


def _identities(rows: pd.DataFrame) -> int:
    per_class = rows[(rows["metric"] == "acc@1") & (rows["target_class"] != "all")]
    return int(per_class.groupby("cell_id").size().max()) if len(per_class) else 0


def _judge(cells: pd.DataFrame, reading: str) -> str:
    judged = cells.dropna(subset=["evaluator_acc"]) if "evaluator_acc" in cells else cells[:0]
    if judged.empty:
        return ""
    r = judged.iloc[0]
    if reading == "acc@1:open" and pd.notna(r.get("open_judge_acc")):
        return (f"Judge: open-set, {r['open_judge_acc']:.2f} right on held-out private photos, false accepts "
                f"{r['open_judge_far']:.3f} of public faces.")
    closed = f"Judge: the closed-set evaluator ({r['evaluator_data']}), {r['evaluator_acc']:.2f} right on held-out photos."
    weak = open_judge_weakness(cells)
    return f"{closed} {weak}" if weak else closed


def _pm(mean: float, half: float, digits: int = 2, signed: bool = True) -> str:
    """'+0.20 ± 0.05', or '+0.20' where there is no interval (the note at the top says why)."""
    text = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    return text if math.isnan(half) else f"{text} ± {half:.{digits}f}"
