"""Executing a notebook template into the results: papermill, in this process.

The executed notebook appears under its final name only once papermill is done with it (and is
kept even when a cell failed, as the record of what happened); the kernel's own log lines go to
a log file beside it, not into the user's terminal.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

from bench.files import stderr_to


def template(name: str) -> Path:
    """A notebook template shipped in the package (``experiment``, ``report``, ``explore``)."""
    return Path(str(resources.files("bench") / "notebooks" / f"{name}.ipynb"))


def execute_notebook(name: str, out: Path, kernel: str, parameters: dict[str, Any], log: Path) -> None:
    """Run template ``name`` with ``parameters`` into ``out``; raises what papermill raises."""
    import papermill as pm

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    try:
        with stderr_to(log):
            pm.execute_notebook(str(template(name)), str(tmp), parameters=parameters, kernel_name=kernel,
                                progress_bar=False, log_output=False)
    finally:
        if tmp.exists():
            os.replace(tmp, out)
