"""Why it leaks: the three causes the field names, each a designed experiment with a figure and
a caption computed from the data (never written by hand).

- over-fitting: each attack's acc@1 and lift against its target's train–test gap, one point per
  trained target (target spec × training defenses × seed), with a least-squares trend and the
  95 % t-interval of its slope, per dataset with three or more targets;
- capacity: acc@1 against the parameter count of targets that differ only in ``width``
  (undefended, per dataset);
- over-representation: the over-represented identity's acc@1, ``knn_dist`` and equal-n
  ``ssim_margin`` beside the other identities', per ``overrepresent`` factor (1: the control),
  over seeds, the no-inversion baseline left out.

Only cells without an inference- or access-stage defense count: data- and training-stage
defenses change the target, which is what these studies vary; an output defense would change
the leak for another reason, and a white-box attacker's cells under it repeat the undefended
one. A trend's interval treats its points as independent; targets of one seed share that
seed's data order, so the interval is, if anything, too narrow.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import seaborn as sns
from scipy import stats

from bench.metrics.base import rows_of
from bench.report.figures import CI, Drawn
from bench.report.stats import MIN_SEEDS, mean_ci

GAP_STEP = 0.1  # the captions' unit of train–test gap
IDENTITY_METRICS = ("acc@1", "knn_dist", "ssim_margin")


@dataclass(frozen=True)
class Trend:
    """An ordinary least-squares line through ``n`` points and the 95 % t-interval of its slope."""

    slope: float
    low: float
    high: float
    n: int

    @property
    def clear(self) -> bool:
        """The interval excludes a flat line."""
        return self.low > 0 or self.high < 0


def trend(x: np.ndarray, y: np.ndarray) -> Trend:
    """The slope of y on x with its 95 % interval (nan below three points or with x constant);
    pairs with a missing value are left out."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    known = np.isfinite(x) & np.isfinite(y)
    x, y = x[known], y[known]
    if len(x) < 3 or np.ptp(x) == 0:
        return Trend(math.nan, math.nan, math.nan, len(x))
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.975, len(x) - 2) * fit.stderr
    return Trend(float(fit.slope), float(fit.slope - half), float(fit.slope + half), len(x))


def trend_sentence(what: str, t: Trend, per: float, unit: str, digits: int = 2) -> str:
    """'acc@1 rises 0.31 per 0.1 of train–test gap, 95 % CI [0.12, 0.50], 27 points'."""
    if math.isnan(t.slope):
        return f"{what}: no trend (needs three points with different x; {t.n} given)"
    s, lo, hi = (v * per for v in (t.slope, t.low, t.high))
    verb = "rises" if s >= 0 else "falls"
    verdict = "" if t.clear else " (the interval includes no change)"
    return (f"{what} {verb} {abs(s):.{digits}f} per {per:g} {unit}, 95 % CI [{lo:.{digits}f}, {hi:.{digits}f}], "
            f"{t.n} points{verdict}")


def _undefended_inversions(cells: pd.DataFrame) -> pd.DataFrame:
    """Completed inversion cells whose defenses (if any) act on the data or the training alone."""
    done = cells[cells["status"] == "done"]
    if "kind" in done:
        done = done[done["kind"].fillna("inversion") == "inversion"]
    if "defense_stages" not in done:
        return done
    endpoint = done["defense_stages"].fillna("").str.contains("inference|access")
    return done[~endpoint]


def _studied(points: pd.DataFrame, column: str, least: int) -> pd.DataFrame:
    """The rows of datasets whose points hold at least ``least`` different ``column`` values: a
    sweep designed into the grid, not seed noise."""
    if points.empty:
        return points
    return points[points.groupby("dataset")[column].transform("nunique") >= least]


def _cell_values(metrics: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    rows = rows_of(metrics, *names)
    return rows.pivot_table(index="cell_id", columns="metric", values="value").reset_index()


def gap_points(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per undefended inversion cell: its attack, target, seed, the target's gap, acc@1 and lift."""
    done = _undefended_inversions(cells)
    if done.empty or "gap" not in done:
        return pd.DataFrame(columns=["attack", "gap", "acc@1"])
    keep = ["cell_id", "dataset", "target", "defense", "attack", "seed", "gap", "target_params", "params"]
    return done[[k for k in keep if k in done]].merge(_cell_values(metrics, ("acc@1", "lift")), on="cell_id")


OVERFITTING_NEEDS = "needs three or more targets of one dataset (e.g. target: a list of epochs)"


def overfitting(points: pd.DataFrame) -> Drawn:
    """acc@1 and lift against the train–test gap, per attack and dataset, a fitted line with its
    95 % band (seaborn's bootstrap; the caption's interval is the t-interval of the fit)."""
    points = _studied(points, "target", 3)
    if points.empty:
        return None, OVERFITTING_NEEDS
    value_names = [m for m in ("acc@1", "lift") if m in points]
    long = points.melt(id_vars=["attack", "gap", "dataset"], value_vars=value_names, var_name="measure")
    grid = sns.lmplot(data=long.dropna(subset=["value"]), x="gap", y="value", hue="attack", col="measure", row="dataset",
                      ci=95, height=3.3, facet_kws={"sharex": False, "sharey": False})
    grid.set_titles("{row_name}\n{col_name}", size=9)
    grid.set_axis_labels("train − test accuracy of the target (gap)", "value")
    grid.figure.suptitle("over-fitting: leak against the train–test gap, one point per trained target", y=1.02)
    return grid.figure, None


def overfitting_caption(points: pd.DataFrame) -> str:
    """Per dataset and attack, how acc@1 changes per 0.1 of gap (and lift, where a baseline ran)."""
    points = _studied(points, "target", 3)
    if points.empty:
        return f"over-fitting: not studied in this grid ({OVERFITTING_NEEDS})"
    lines = []
    for (dataset, attack), mine in points.groupby(["dataset", "attack"], sort=True):
        for measure in ("acc@1", "lift"):
            if measure in mine and mine[measure].notna().any():
                lines.append(trend_sentence(f"{dataset} · {attack}: {measure}", trend(mine["gap"], mine[measure]),
                                            GAP_STEP, "of train–test gap"))
    return "\n".join(lines)


def capacity_points(points: pd.DataFrame) -> pd.DataFrame:
    """The undefended rows whose target differs from another of the grid only in ``width`` (same
    model, epochs, learning rate, batch size and dataset): the capacity study's points."""
    if points.empty or "target_params" not in points or "params" not in points:
        return points.iloc[0:0]
    points = points[points["defense"] == "none"]
    spec = [json.loads(p)["target"] for p in points["params"]]
    family = [json.dumps({k: v for k, v in s.items() if k != "width"}, sort_keys=True) for s in spec]
    points = points.assign(family=family, width=[s.get("width", 1.0) for s in spec])
    widths = points.groupby(["dataset", "family"])["width"].transform("nunique")
    return points[widths >= 2]


def capacity(points: pd.DataFrame) -> Drawn:
    """acc@1 against parameter count (log scale) for undefended targets that differ only in width."""
    data = capacity_points(points)
    if data.empty:
        return None, "needs undefended targets that differ only in width (e.g. target: [{width: 0.5}, {width: 2}])"
    grid = sns.relplot(data=data, x="target_params", y="acc@1", hue="attack", col="dataset", kind="line", marker="o",
                       errorbar=CI, height=3.3, facet_kws={"sharex": False})
    grid.set(xscale="log")
    grid.set_titles("{col_name}", size=9)
    grid.set_axis_labels("target parameters (log scale)", "attack acc@1")
    grid.figure.suptitle("capacity: leak against the target's size at the same training recipe", y=1.02)
    return grid.figure, None


def capacity_caption(points: pd.DataFrame) -> str:
    """Per dataset and attack, how acc@1 changes per doubling of the target's parameters."""
    data = capacity_points(points)
    if data.empty:
        return "capacity: not studied in this grid (needs undefended targets that differ only in width)"
    return "\n".join(
        trend_sentence(f"{dataset} · {attack}: acc@1", trend(np.log2(mine["target_params"].astype(float)),
                                                              mine["acc@1"]), 1, "doubling of parameters")
        for (dataset, attack), mine in data.groupby(["dataset", "attack"], sort=True))


def base_dataset(label: str) -> str:
    """A dataset's label without its ``overrepresent`` factor: the ×1, ×5 and ×20 copies of one dataset."""
    label = re.sub(r"(?<=[(,])overrepresent=\d+(,|(?=\)))", "", label)
    return label.replace(",)", ")").replace("()", "")


def identity_points(cells: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Per undefended inversion cell (no baseline) of a dataset that names an over-represented
    identity, and per metric: that identity's value and the mean of the others', with the
    cell's ``overrepresent`` and its dataset without it."""
    done = _undefended_inversions(cells)
    if done.empty or "overrepresent" not in done or "overrepresented_identity" not in done:
        return pd.DataFrame(columns=["base", "overrepresent", "metric", "identity", "seed", "value"])
    if "baseline" in done:
        done = done[~done["baseline"].fillna(False).astype(bool)]
    done = done.dropna(subset=["overrepresented_identity", "overrepresent"])
    rows = metrics[metrics["cell_id"].isin(done["cell_id"]) & metrics["metric"].isin(IDENTITY_METRICS)
                   & (metrics["target_class"] != "all")]
    special = done.set_index("cell_id")["overrepresented_identity"].astype(int).astype(str)
    rows = rows.assign(identity=np.where(rows["target_class"] == rows["cell_id"].map(special), "over-represented",
                                         "others"),
                       overrepresent=rows["cell_id"].map(done.set_index("cell_id")["overrepresent"]).astype(int),
                       base=rows["dataset"].map(base_dataset))
    return rows.groupby(["base", "dataset", "target", "overrepresent", "attack", "metric", "identity", "seed"],
                        as_index=False)["value"].mean()


def overrepresentation(cells: pd.DataFrame, metrics: pd.DataFrame) -> Drawn:
    """The over-represented identity beside the others, per metric, against how many times its images appear."""
    data = identity_points(cells, metrics)
    if data.empty or data["overrepresent"].max() <= 1:
        return None, "needs a dataset with an over-represented identity (synthfaces or imagefolder: overrepresent > 1)"
    per_seed = data.groupby(["base", "overrepresent", "metric", "identity", "seed"], as_index=False)["value"].mean()
    grid = sns.catplot(data=per_seed, x="overrepresent", y="value", hue="identity", col="metric", row="base",
                       kind="point", errorbar=CI, sharey=False, height=3.3, dodge=0.2)
    grid.set_titles("{row_name}\n{col_name}", size=9)
    grid.set_axis_labels("× the identity's training images", "value (mean over attacks and targets, then seeds)")
    grid.figure.suptitle("over-representation: the 'CEO in the training set' against everyone else", y=1.08)
    return grid.figure, None


def overrepresentation_caption(cells: pd.DataFrame, metrics: pd.DataFrame) -> str:
    """Per dataset and factor: the identity's acc@1 minus the others' (each seed's mean over the
    inversion attacks and targets first, then a t-interval over seeds); ×1 is the control."""
    data = identity_points(cells, metrics)
    acc = data[data["metric"] == "acc@1"]
    if acc.empty or acc["overrepresent"].max() <= 1:
        return "over-representation: not studied in this grid (needs overrepresent > 1)"
    per_seed = acc.groupby(["base", "overrepresent", "identity", "seed"])["value"].mean().unstack("identity")
    lines = []
    for base, factors in per_seed.groupby(level="base"):
        parts = []
        for factor, mine in factors.groupby(level="overrepresent"):
            diff = (mine["over-represented"] - mine["others"]).dropna()
            mean, half = mean_ci(diff)
            interval = f"95 % CI [{mean - half:+.2f}, {mean + half:+.2f}]" if not math.isnan(half) else \
                f"no interval below {MIN_SEEDS} seeds"
            parts.append(f"×{factor}: {mine['over-represented'].mean():.2f} against {mine['others'].mean():.2f} "
                         f"(difference {mean:+.2f}, {interval}, {len(diff)} seeds)")
        lines.append(f"{base}: acc@1 of the over-represented identity against the others — " + "; ".join(parts))
    return "\n".join(lines)
