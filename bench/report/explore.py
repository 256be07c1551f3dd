"""What ``explore.ipynb`` (``make lab`` copies it into ``notebooks/``) shows for one cell: reconstructions,
metrics, the query trace, a membership attack's ROC curve, and the cell's spec."""

from __future__ import annotations

import io
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import Image, Markdown, display
from matplotlib.figure import Figure

from bench.report.figures import membership_roc


def show_cell(results_dir: str | Path, cells: pd.DataFrame, metrics: pd.DataFrame, traces: pd.DataFrame,
              dataset: str, target: str, defense: str, attack: str, seed: int) -> None:
    """Display one cell of a grid; says so when the combination has no cell."""
    match = cells[(cells["dataset"] == dataset) & (cells["target"] == target) & (cells["defense"] == defense)
                  & (cells["attack"] == attack) & (cells["seed"] == seed)]
    if match.empty:
        display(Markdown(f"No cell for {dataset} / {target} / {defense} / {attack} / seed {seed}."))
        return
    cell = match.iloc[0]
    root = Path(results_dir)
    display(Markdown(f"**{cell['status']}** — cell `{cell['cell_id']}`, job notebook "
                     f"`{root / 'jobs' / cell['job_id'] / 'experiment.ipynb'}`"
                     + (f"\n\n{cell['error']}" if isinstance(cell.get("error"), str) and cell["error"] else "")))
    grid = root / "cells" / cell["cell_id"] / "grid.png"
    if grid.exists():
        display(Image(filename=str(grid)))
    rows = metrics[metrics["cell_id"] == cell["cell_id"]]
    display(rows[rows["target_class"] == "all"].set_index("metric")[["value", "error"]])
    trace = traces[traces["cell_id"] == cell["cell_id"]]
    if not trace.empty:
        fig, ax = plt.subplots(figsize=(5, 3))
        sns.lineplot(data=trace, x="queries", y="acc@1", marker="o", ax=ax)
        ax.set_xlabel("queries (all identities)")
        ax.set_ylabel("acc@1 (evaluator)")
        ax.set_ylim(-0.05, 1.05)
        _display(fig)
    roc, _ = membership_roc(root, match)  # a figure only for a finished membership cell
    if roc is not None:
        _display(roc)
    record = json.loads((root / "cells" / cell["cell_id"] / "record.json").read_text())
    display(Markdown("```json\n" + json.dumps(record["spec"], indent=1) + "\n```"))


def _display(fig: Figure) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue(), format="png"))
