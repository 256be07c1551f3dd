"""The report's figures, drawn from a grid's tidy tables with seaborn.

Each function returns ``(figure, None)``, or ``(None, reason)`` when the grid's data does not
allow the figure — the report prints the reason and goes on. Every error bar is a 95 %
Student-t interval over seeds of per-seed values (a cell's mean over identities), drawn only
with at least three seeds (see :mod:`bench.report.stats`).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from bench.membership.metrics import roc_points  # noqa: E402
from bench.metrics.base import rows_of  # noqa: E402
from bench.report.gallery import show  # noqa: E402
from bench.report.reading import baseline_attacks, open_judge_weakness  # noqa: E402
from bench.report.stats import mean_ci, t_interval  # noqa: E402
from bench.results import ResultsDir  # noqa: E402

Drawn = tuple[Figure | None, str | None]
CI = t_interval
QUERY_BIN = 25  # queries per identity: the x resolution of the query-efficiency figure


def with_setting(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``setting`` column, the panel a row belongs to: its dataset, and its target
    where the rows hold several (so two targets are never averaged into one panel)."""
    several = "target" in frame and frame.groupby("dataset")["target"].nunique().gt(1).any()
    return frame.assign(setting=frame["dataset"] + " · " + frame["target"] if several else frame["dataset"])


def _per_class(metrics: pd.DataFrame, metric: str) -> pd.DataFrame:
    return metrics[(metrics["metric"] == metric) & (metrics["target_class"] != "all")]


def gallery(results_dir: str | Path, cells: pd.DataFrame, dataset: str, max_identities: int = 10) -> Drawn:
    """A private training image per identity above what every attack recovered under every
    defense (seed = lowest); a refused cell or a guard's block is said in its row's label."""
    shown, reason = _gallery_cells(cells, dataset)
    if shown is None:
        return None, reason
    return _draw_gallery(results_dir, shown, dataset, "every cell", max_identities)


def compact_gallery(results_dir: str | Path, cells: pd.DataFrame, dataset: str, strongest: int = 3,
                    max_identities: int = 10) -> Drawn:
    """The gallery the report opens with: the undefended baseline and the ``strongest`` undefended
    attacks, ranked by the leading judge's mean reading over seeds (seed = lowest)."""
    shown, reason = _gallery_cells(cells, dataset)
    if shown is None:
        return None, reason
    undefended = cells[(cells["dataset"] == dataset) & (cells["defense"] == "none") & (cells["status"] == "done")]
    reading = next((m for m in ("acc@1:open", "acc@1") if m in undefended and undefended[m].notna().any()), None)
    if reading is None:
        return None, f"no undefended inversion attack on {dataset}"
    baselines = baseline_attacks(undefended)
    ranked = (undefended[~undefended["attack"].isin(baselines)].groupby("attack")[reading].mean()
              .sort_values(ascending=False, kind="stable"))
    keep = baselines | set(ranked.index[:strongest])
    shown = shown[(shown["defense"] == "none") & shown["attack"].isin(keep)]
    order = {a: i for i, a in enumerate([*sorted(baselines), *ranked.index])}
    shown = shown.sort_values("attack", key=lambda a: a.map(order), kind="stable")
    n = len(ranked.index[:strongest])
    return _draw_gallery(results_dir, shown, dataset, f"the baseline and the {n} strongest attacks, no defense",
                         max_identities)


def _gallery_cells(cells: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame | None, str | None]:
    """The inversion cells of ``dataset`` at the lowest seed that has a finished one."""
    inversion = cells[(cells["dataset"] == dataset) & (_kind(cells) == "inversion")
                      & cells["status"].isin(["done", "refused"])]
    done = inversion[inversion["status"] == "done"]
    if done.empty:
        return None, f"no completed inversion attack on {dataset}"
    shown = with_setting(inversion[inversion["seed"] == done["seed"].min()])
    return shown.sort_values(["setting", "attack", "defense"]), None


def _draw_gallery(results_dir: str | Path, shown: pd.DataFrame, dataset: str, what: str, max_identities: int) -> Drawn:
    references = ResultsDir(results_dir).references(dataset)
    if not references.exists():
        return None, f"no reference images of {dataset} in the results (written by its jobs)"
    with np.load(references, allow_pickle=False) as npz:
        private, names = npz["images"], [str(n) for n in npz["names"]]
    k = min(max_identities, len(private))
    rows: list[tuple[str, np.ndarray | None]] = [("private", private[:k])]
    for _, c in shown.iterrows():
        where = c["defense"] if c["setting"] == dataset else f"{c['defense']} · {c['target']}"
        label = f"{c['attack']}\n{where}"
        if c["status"] == "refused":
            rows.append((f"{label}\nrefused: {c.get('error') or 'by its threat model'}", None))
            continue
        if isinstance(c.get("blocked"), str) and c["blocked"]:
            label += f"\n{c['blocked'].replace('the client ', '')}"
        with np.load(Path(results_dir) / "cells" / c["cell_id"] / "reconstructions.npz", allow_pickle=False) as npz:
            rows.append((label, npz["reconstructions"][:k]))
    fig, axes = plt.subplots(len(rows), k, figsize=(0.95 * k + 2.6, 1.0 * len(rows) + 0.6), squeeze=False,
                             layout="constrained")
    for r, (label, images) in enumerate(rows):
        for i in range(k):
            ax = axes[r, i]
            if images is not None:
                show(ax, images[i])
            else:
                ax.set_frame_on(False)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(names[i], fontsize=9, rotation=30, ha="left", rotation_mode="anchor")
        wrapped = "\n".join(textwrap.fill(line, 34, break_on_hyphens=False) for line in label.split("\n"))
        axes[r, 0].set_ylabel(wrapped, fontsize=9, rotation=0, ha="right", va="center")
    fig.suptitle(f"{dataset}: what each attack recovered ({what})", fontsize=11)
    return fig, None


def leak_heatmap(metrics: pd.DataFrame, cells: pd.DataFrame, metric: str = "acc@1") -> Drawn:
    """acc@1 (or lift) by attack × defense, per dataset and target (mean over seeds), titled with the judge."""
    data = rows_of(metrics, metric)
    if data.empty:
        return None, f"no {metric} rows" + (" (the grid has no public-lookalike baseline)" if metric == "lift" else "")
    data = with_setting(data)
    settings = sorted(data["setting"].unique())
    fig, axes = plt.subplots(1, len(settings), figsize=(5 + 3 * len(settings), 0.5 * data["defense"].nunique() + 2),
                             squeeze=False)
    low, cmap = (-1, "vlag") if metric == "lift" else (0, "rocket_r")
    for ax, setting in zip(axes[0], settings):
        mine = data[data["setting"] == setting]
        table = mine.pivot_table(index="defense", columns="attack", values="value", aggfunc="mean")
        sns.heatmap(table, ax=ax, vmin=low, vmax=1, annot=True, fmt=".2f", cmap=cmap, cbar_kws={"label": metric})
        what = "beyond the public-lookalike baseline" if metric == "lift" else "identities recovered"
        ax.set_title(f"{setting}: {what} ({metric})\n{judge_caption(cells, mine['dataset'].iloc[0])}", fontsize=9)
        ax.set_xlabel("attack")
        ax.set_ylabel("defense")
    fig.tight_layout()
    return fig, None


def privacy_utility(cells: pd.DataFrame, metrics: pd.DataFrame) -> Drawn:
    """Per defense, one point: what it costs an honest user (the accuracy through its outputs;
    an access guard's false blocks are in the defense table, not here) against what still leaks
    — the strongest attack's lift over the no-inversion baseline (the open-set judge's where the
    setting has one strong enough to read) and, where the grid has membership attacks, the strongest tpr@1%fpr — each
    seed's best attack, then the mean over seeds."""
    baselines = baseline_attacks(cells)
    utility = cells.set_index("cell_id")["oracle_acc"]
    rows = with_setting(metrics[(metrics["target_class"] == "all") & ~metrics["attack"].isin(baselines)])
    judged = with_setting(cells)
    open_set = {setting for setting in rows.loc[rows["metric"] == "lift:open", "setting"].unique()
                if not open_judge_weakness(judged[judged["setting"] == setting])}
    leak = np.where(rows["setting"].isin(open_set), "lift:open", "lift")
    inversion = rows[rows["metric"] == leak].assign(leak="inversion leak (best lift)")
    membership = rows[rows["metric"] == "tpr@1%fpr"].assign(leak="membership leak (best tpr@1%fpr)")
    panels = []
    for data in (inversion, membership):
        per_seed = (data.assign(x=data["cell_id"].map(utility).astype(float))
                    .groupby(["leak", "setting", "defense", "seed"]).agg(x=("x", "mean"), y=("value", "max")).reset_index())
        if per_seed["defense"].nunique() >= 2:
            panels.append(per_seed)
    if not panels:
        return None, "needs at least two defenses with lift or tpr@1%fpr rows (a lift needs the baseline attack)"
    summary = pd.concat(panels).groupby(["leak", "setting", "defense"]).agg(
        x=("x", "mean"), y=("y", "mean"), xerr=("x", _half), yerr=("y", _half)).reset_index()
    grid = sns.relplot(data=summary, x="x", y="y", hue="defense", style="defense", row="leak", col="setting",
                       kind="scatter", s=80, height=3.4, aspect=1.2, facet_kws={"sharex": False, "sharey": False})
    for _, r in summary.iterrows():
        grid.axes_dict[(r["leak"], r["setting"])].errorbar(r["x"], r["y"], xerr=np.nan_to_num(r["xerr"]),
                                                           yerr=np.nan_to_num(r["yerr"]), fmt="none", ecolor="gray",
                                                           alpha=0.5)
    for (leak, setting), ax in grid.axes_dict.items():
        reading = "lift:open" if setting in open_set else "lift"
        ax.set_title(setting if "membership" in leak else f"{setting} ({reading})", fontsize=10)
        ax.set_ylabel(leak, fontsize=10)
        ax.axhline(0.01 if "membership" in leak else 0, color="gray", lw=0.8, ls=":")  # chance; the baseline
    grid.set_xlabels("honest user's accuracy through the defended outputs", fontsize=10)
    grid.figure.suptitle("privacy–utility: what each defense costs, what still leaks (best: lower right)",
                         y=1.02, fontsize=11)
    return grid.figure, None


def query_efficiency(traces: pd.DataFrame, metrics: pd.DataFrame) -> Drawn:
    """acc@1 against queries per identity for the black-box and label-only attacks, per output defense."""
    if traces.empty:
        return None, "no attack recorded checkpoints"
    data = traces[traces["threat_model"] != "white-box"]
    if data.empty:
        return None, "no black-box or label-only attack in the grid"
    identities = _per_class(metrics, "acc@1").groupby("cell_id").size()
    # checkpoints fall at seed-dependent query counts: snap each up to a common grid (what the
    # attacker holds by then, the last checkpoint per bin) so that seeds average at the same x
    per_identity = data["queries"] / data["cell_id"].map(identities)
    data = data.assign(queries_per_identity=np.ceil(per_identity / QUERY_BIN - 1e-9) * QUERY_BIN)
    data = with_setting(data.groupby(["cell_id", "queries_per_identity"]).tail(1))  # checkpoints are in query order
    grid = sns.relplot(data=data, x="queries_per_identity", y="acc@1", hue="attack", style="defense", col="setting",
                       kind="line", errorbar=CI, facet_kws={"sharex": False})
    grid.set_axis_labels("queries per target identity", "acc@1 (evaluator)")
    grid.figure.suptitle("query efficiency", y=1.02)
    return grid.figure, None


def dp_sweep(cells: pd.DataFrame, metrics: pd.DataFrame) -> Drawn:
    """Test accuracy and acc@1 against the epsilon the accountant spent."""
    if "epsilon" not in cells or cells["epsilon"].dropna().empty:
        return None, "no DP-SGD target in the grid"
    dp = cells[cells["epsilon"].notna() & np.isfinite(cells["epsilon"].astype(float))]
    if dp["defense"].nunique() < 2:
        return None, "needs DP-SGD at two or more epsilons"
    acc = rows_of(metrics, "acc@1").merge(dp[["cell_id", "epsilon", "test_acc"]], on="cell_id")
    if acc.empty:
        return None, "no inversion attack on a DP-SGD target"
    acc = with_setting(acc)
    long = pd.concat([acc.assign(measure="attack acc@1", y=acc["value"]),
                      acc.drop_duplicates(["setting", "seed", "epsilon"]).assign(measure="test accuracy", attack="target",
                                                                                 y=lambda d: d["test_acc"])])
    grid = sns.relplot(data=long, x="epsilon", y="y", hue="attack", style="measure", col="setting", kind="line",
                       marker="o", errorbar=CI)
    grid.set(xscale="log")
    grid.set_axis_labels("ε spent (RDP accountant, log scale)", "accuracy")
    grid.figure.suptitle("DP-SGD: privacy budget against utility and leak", y=1.02)
    return grid.figure, None


ROC_FPRS = np.logspace(-3, 0, 61)  # the common FPR grid seeds are averaged on


def membership_roc(results_dir: str | Path, cells: pd.DataFrame) -> Drawn:
    """ROC curves of the membership attacks on log–log axes, a line per defense (TPR averaged over
    seeds at each FPR), a panel per dataset and attack: what matters is the TPR at low FPR."""
    done = cells[(cells["status"] == "done") & (_kind(cells) == "membership")]
    if done.empty:
        return None, "no membership attack in the grid"
    curves = []
    for _, c in with_setting(done).iterrows():
        scores = pd.read_parquet(Path(results_dir) / "cells" / c["cell_id"] / "membership.parquet")
        fpr, tpr = roc_points(scores["score"].to_numpy(), scores["member"].to_numpy())
        curves.append(pd.DataFrame({"fpr": ROC_FPRS, "tpr": np.interp(ROC_FPRS, fpr, tpr), "setting": c["setting"],
                                    "attack": c["attack"], "defense": c["defense"], "seed": c["seed"]}))
    data = pd.concat(curves)
    grid = sns.relplot(data=data, x="fpr", y="tpr", hue="defense", row="setting", col="attack", kind="line",
                       errorbar=None, height=2.8)
    for ax in grid.axes.flat:
        ax.plot(ROC_FPRS, ROC_FPRS, color="gray", linestyle=":", linewidth=1)  # chance
        ax.set(xscale="log", yscale="log", ylim=(1e-3, 1.05))
    grid.set_titles("{row_name}\n{col_name}", size=9)
    grid.set_axis_labels("false-positive rate", "true-positive rate")
    grid.figure.suptitle("membership inference: ROC on log–log axes (dotted: chance)", y=1.04)
    return grid.figure, None


def leak_map(cells: pd.DataFrame, metrics: pd.DataFrame) -> Drawn:
    """Per defense, one point: its membership leak (each seed's best tpr@1%fpr over the membership
    attacks) against its inversion leak (each seed's best lift, or acc@1 without a baseline, over
    the inversion attacks) — does a defense stop one leak, both, or neither?"""
    inversion = "lift" if (metrics["metric"] == "lift").any() else "acc@1"
    baselines = baseline_attacks(cells)
    best = {}
    for metric in (inversion, "tpr@1%fpr"):
        rows = with_setting(rows_of(metrics, metric))
        rows = rows[~rows["attack"].isin(baselines)]
        best[metric] = rows.groupby(["setting", "defense", "seed"])["value"].max()
    joined = pd.concat(best, axis=1).dropna().reset_index()
    if joined.empty:
        return None, "needs inversion and membership attacks on the same targets"
    summary = joined.groupby(["setting", "defense"]).agg(
        x=(inversion, "mean"), y=("tpr@1%fpr", "mean"), xerr=(inversion, _half), yerr=("tpr@1%fpr", _half)).reset_index()
    grid = sns.relplot(data=summary, x="x", y="y", hue="defense", col="setting", kind="scatter", s=80,
                       facet_kws={"sharex": False, "sharey": False})
    for _, row in summary.iterrows():
        grid.axes_dict[row["setting"]].errorbar(row["x"], row["y"], xerr=np.nan_to_num(row["xerr"]),
                                                yerr=np.nan_to_num(row["yerr"]), fmt="none", ecolor="gray", alpha=0.5)
    grid.set_axis_labels(f"inversion leak (best {inversion})", "membership leak (best tpr@1%fpr)")
    grid.figure.suptitle("two leaks of the same defended targets, one point per defense", y=1.02)
    return grid.figure, None


def judge_caption(cells: pd.DataFrame, dataset: str) -> str:
    """The yardstick under every acc@1: the evaluator's protocol and accuracy on this dataset."""
    rows = cells[(cells["dataset"] == dataset)].dropna(subset=["evaluator_acc"]) if "evaluator_acc" in cells else cells[:0]
    if rows.empty:
        return "judge: unknown"
    r = rows.iloc[0]
    return (f"judge: {r['evaluator_data']}, acc {r['evaluator_acc']:.2f} on held-out photos, "
            f"{r['evaluator_mean_acc']:.2f} on class means")


def _kind(cells: pd.DataFrame) -> pd.Series:
    """Each cell's attack kind (results written before membership attacks existed: inversion)."""
    return cells["kind"].fillna("inversion") if "kind" in cells else pd.Series("inversion", index=cells.index)


def _half(values: pd.Series) -> float:
    return mean_ci(values)[1]
