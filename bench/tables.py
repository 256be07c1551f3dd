"""The grid's tidy tables, as the runner writes them after every run: the cells, the metrics with
each attack's lift over the no-inversion baseline, the query traces, and the measured defense
table. The report only reads them."""

from __future__ import annotations

import pandas as pd

from bench.files import atomic_write_table
from bench.metrics.lift import lift_rows
from bench.report.defense_table import DEFENSE_TABLE_COLUMNS, defense_table
from bench.results import ResultsDir, with_targets


def write_tables(results: ResultsDir, cell_ids: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``tables/{cells,metrics,traces,defenses}`` for ``cell_ids``; return cells and metrics."""
    cells = results.cells_table(cell_ids)
    metrics = with_targets(results.metrics_table(cell_ids), cells)
    if not cells.empty:
        metrics = pd.concat([metrics, lift_rows(cells, metrics)], ignore_index=True)
    atomic_write_table(cells, results.tables / "cells")
    atomic_write_table(metrics, results.tables / "metrics")
    atomic_write_table(with_targets(results.traces_table(cell_ids), cells), results.tables / "traces")
    defenses = defense_table(cells, metrics) if not cells.empty else pd.DataFrame(columns=DEFENSE_TABLE_COLUMNS)
    atomic_write_table(defenses, results.tables / "defenses")
    return cells, metrics
