"""Files written so that a run killed at any moment leaves the old file or the new one, never half
of one, and a log that a started kernel's stderr goes to."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """``data`` to a temporary name in ``path``'s folder, then renamed over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; results are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def atomic_write_parquet(df: pd.DataFrame, path: Path) -> None:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_table(df: pd.DataFrame, path_without_suffix: Path) -> None:
    """``<path>.parquet`` and ``<path>.csv``, each atomically."""
    atomic_write_parquet(df, path_without_suffix.with_suffix(".parquet"))
    atomic_write_bytes(path_without_suffix.with_suffix(".csv"), df.to_csv(index=False).encode())


@contextlib.contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Append this process's stderr — inherited by any kernel it starts — to the log ``path`` for a
    while: a kernel's own log lines belong beside its notebook, not in the user's terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
