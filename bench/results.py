"""The results folder: its layout, cell records, and loading its tidy tables.

Every file is written atomically (``bench.files``), so a grid killed at any moment leaves
either the old file or the new one, never half of one. A cell is complete
when its ``record.json`` (written last) says ``done`` or ``refused`` — and, unless stale cells
are kept on purpose, when the code that wrote it has the current fingerprint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.files import atomic_write_json

COMPLETE = ("done", "refused")
LABEL_COLUMNS = ["cell_id", "job_id", "dataset", "target", "defense", "attack", "threat_model", "seed"]
METRIC_COLUMNS = [*LABEL_COLUMNS, "target_class", "metric", "value", "error"]
TRACE_COLUMNS = [*LABEL_COLUMNS, "queries", "acc@1"]


def slug(label: str) -> str:
    """A label made safe as one file-name component (no slashes, spaces or brackets)."""
    return re.sub(r"[^A-Za-z0-9_.=,+-]+", "-", label).strip("-.") or "unnamed"


class ResultsDir:
    """Paths and records of one grid's results: ``results/<grid-name>/``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def cell_dir(self, cell_id: str) -> Path:
        return self.root / "cells" / cell_id

    def job_dir(self, job_id: str) -> Path:
        return self.root / "jobs" / job_id

    def references(self, dataset: str) -> Path:
        """A private training image per identity of ``dataset`` (its label): the gallery's top row,
        kept with the results so the report never needs the dataset itself."""
        return self.root / "references" / f"{slug(dataset)}.npz"

    @property
    def tables(self) -> Path:
        return self.root / "tables"

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete temporary files a killed run left behind (one run per grid at a time)."""
        stale = [p for p in self.root.rglob(".*.tmp*") if p.is_file()] if self.root.exists() else []
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    def read_record(self, cell_id: str) -> dict[str, Any] | None:
        path = self.cell_dir(cell_id) / "record.json"
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def is_complete(self, cell_id: str, fingerprint: str | None = None) -> bool:
        """Done or refused — by code with ``fingerprint``, when one is given."""
        record = self.read_record(cell_id)
        if record is None or record.get("status") not in COMPLETE:
            return False
        return fingerprint is None or record.get("code_fingerprint") == fingerprint

    def write_record(self, cell_id: str, record: dict[str, Any]) -> None:
        atomic_write_json(self.cell_dir(cell_id) / "record.json", record)

    def cells_table(self, cell_ids: Iterable[str]) -> pd.DataFrame:
        """One row per cell (records flattened; missing cells are absent)."""
        rows = []
        for cid in cell_ids:
            record = self.read_record(cid)
            if record is None:
                continue
            row = {k: v for k, v in record.items() if not isinstance(v, (dict, list))}
            row.setdefault("target", record.get("spec", {}).get("target", {}).get("model"))  # written before targets were an axis
            row["params"] = json.dumps(record.get("spec", {}), sort_keys=True)
            rows.append(row)
        return pd.DataFrame(rows)

    def metrics_table(self, cell_ids: Iterable[str]) -> pd.DataFrame:
        """One row per (cell, target class or 'all', metric) over the complete cells."""
        frames = []
        for cid in cell_ids:
            path = self.cell_dir(cid) / "metrics.parquet"
            if path.exists() and self.is_complete(cid):
                frames.append(pd.read_parquet(path))
        if not frames:
            return pd.DataFrame(columns=METRIC_COLUMNS)
        return pd.concat(frames, ignore_index=True)

    def traces_table(self, cell_ids: Iterable[str]) -> pd.DataFrame:
        """Query-efficiency checkpoints of every complete cell that has them."""
        frames = [pd.read_parquet(p) for cid in cell_ids
                  if (p := self.cell_dir(cid) / "trace.parquet").exists() and self.is_complete(cid)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=TRACE_COLUMNS)


def with_targets(frame: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every row's ``target`` label, taken from its cell where its own file predates
    the column (a results folder written before targets were a grid axis): a row without one
    would drop out of every grouping."""
    if frame.empty or cells.empty or ("target" in frame and frame["target"].notna().all()):
        return frame
    label = frame["cell_id"].map(cells.set_index("cell_id")["target"])
    return frame.assign(target=frame["target"].fillna(label) if "target" in frame else label)


def load_tables(root: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The aggregated ``cells`` and ``metrics`` tables of a results folder."""
    tables = Path(root) / "tables"
    cells = pd.read_parquet(tables / "cells.parquet")
    if "target" not in cells and "params" in cells:  # tables written before targets were an axis
        cells = cells.assign(target=[json.loads(p).get("target", {}).get("model") for p in cells["params"]])
    return cells, with_targets(pd.read_parquet(tables / "metrics.parquet"), cells)


def load_traces(root: str | Path) -> pd.DataFrame:
    """The aggregated query-efficiency checkpoints (empty when the grid has none)."""
    path = Path(root) / "tables" / "traces.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=TRACE_COLUMNS)
