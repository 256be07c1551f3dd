"""Execution of a grid: one papermill notebook per job, run in worker processes or on Dask
(see :mod:`bench.executors`), with papermill called in-process by each worker.

The runner skips complete cells (so re-running resumes), isolates failures (a job whose
notebook dies records its unfinished cells failed; the others go on), shows progress over
cells, and aggregates the tidy tables and the manifest at the end.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.config import GridConfig, JobSpec
from bench.errors import ConfigError
from bench.execute import execute_notebook
from bench.executors import run_dask, run_local
from bench.files import atomic_write_json
from bench.provenance import code_fingerprint, code_version, package_versions, required_fingerprint
from bench.registry import load_plugin_files
from bench.results import ResultsDir
from bench.tables import write_tables

KERNEL_NAME = "sieve"


@dataclass
class JobRun:
    job_id: str
    seconds: float
    error: str | None
    notebook: str


@dataclass
class RunSummary:
    results_dir: Path
    total: int
    statuses: dict[str, int]
    wall_seconds: float
    jobs: list[JobRun] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def kernel_name() -> str:
    """The registered ``sieve`` kernel (``make`` installs it), else this interpreter's ``python3``."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else "python3"


def execute_job(job_json: str, job_id: str, results_dir: str, cache_dir: str, plugins: list[str],
                kernel: str, keep_stale: bool = False) -> JobRun:
    """Run one job's notebook with papermill in this process; the executed notebook is kept even on failure."""
    from papermill.exceptions import PapermillExecutionError

    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the kernel, whatever started this worker
    load_plugin_files(plugins)  # this worker parses the job's specs too (to record failures)
    results = ResultsDir(results_dir)
    out = results.job_dir(job_id) / "experiment.ipynb"
    start = time.perf_counter()
    started = datetime.now(timezone.utc).isoformat()
    error = None
    try:
        execute_notebook("experiment", out, kernel, log=out.with_name("kernel.log"), parameters={
            "job_json": job_json, "results_dir": str(Path(results_dir).resolve()),
            "cache_dir": str(Path(cache_dir).resolve()), "plugins": plugins, "keep_stale": keep_stale})
    except PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # kernel died, notebook missing: the job fails, the grid goes on
        error = f"{type(exc).__name__}: {exc}"
    if error is not None:
        current = required_fingerprint(keep_stale)
        _record_unfinished_failed(JobSpec.from_json(json.loads(job_json)), results, error, out, started, current)
    return JobRun(job_id, time.perf_counter() - start, error, str(out))


def run_grid(
    config: GridConfig,
    results_root: str | Path = "results",
    cache_dir: str | Path | None = None,
    workers: int = 1,
    plugins: tuple[str, ...] = (),
    only: dict[str, tuple[str, ...]] | None = None,
    progress: bool = True,
    executor: str = "local",
    scheduler: str | None = None,
    keep_stale: bool = False,
) -> RunSummary:
    """Run every incomplete cell of ``config`` — and every cell another code version wrote,
    unless ``keep_stale`` — then write the grid's tables and manifest."""
    results = ResultsDir(Path(results_root) / config.name)
    cache = Path(cache_dir) if cache_dir is not None else Path(results_root) / ".cache"
    cells = [c for c in config.cells() if _matches(c.labels(), only or {})]
    if not cells:
        asked = " ".join(f"--only {k}={v}" for k, values in (only or {}).items() for v in values)
        raise ConfigError(f"{asked} matches none of the {len(config.cells())} cells of grid '{config.name}'")
    results.remove_stale_temporaries()
    cell_ids = [c.cell_id for c in cells]
    jobs = config.jobs(cells)
    current = required_fingerprint(keep_stale)
    complete = lambda cid: results.is_complete(cid, current)  # noqa: E731
    todo = [j for j in jobs if any(not complete(c.cell_id) for c in j.cells)]
    todo.sort(key=lambda j: -len(j.cells))  # longest jobs first: the last job to start ends the grid
    kernel = kernel_name()
    started = datetime.now(timezone.utc)
    manifest = {
        "name": config.name, "config": config.raw, "code_version": code_version(),
        "code_fingerprint": code_fingerprint(), "keep_stale": keep_stale, "packages": package_versions(),
        "started": started.isoformat(), "finished": None, "cells": len(cells), "jobs": len(jobs),
        "workers": workers, "executor": executor, "scheduler": scheduler, "kernel": kernel,
        "plugins": [str(Path(p).resolve()) for p in plugins],
    }
    atomic_write_json(results.root / "manifest.json", manifest)
    t0 = time.perf_counter()
    since = time.time()
    initially_done = sum(1 for c in cells if complete(c.cell_id))
    bar = tqdm(total=len(cells), initial=initially_done, desc=f"{config.name} cells", unit="cell",
               disable=not progress, dynamic_ncols=True)
    pending = [c.cell_id for j in todo for c in j.cells if not complete(c.cell_id)]
    tasks = [(j, (json.dumps(j.to_json()), j.job_id, str(results.root.resolve()), str(cache.resolve()),
                  [str(Path(p).resolve()) for p in plugins], kernel, keep_stale)) for j in todo]
    tick = lambda: _advance(bar, results, pending, since, initially_done)  # noqa: E731
    runs: list[JobRun] = []
    if tasks:  # always in workers, even one: the driver stays free to show per-cell progress
        outcomes = (run_dask(execute_job, tasks, workers, scheduler, tick) if executor == "dask"
                    else run_local(execute_job, tasks, workers, tick))
        for job, outcome in outcomes:
            runs.append(_job_run(outcome, job, results, started.isoformat(), current))
    _advance(bar, results, pending, since, initially_done)
    bar.close()
    cells_df, _ = write_tables(results, cell_ids)
    statuses = cells_df["status"].value_counts().to_dict() if not cells_df.empty else {}
    failed = cells_df[cells_df["status"] == "failed"][["cell_id", "dataset", "target", "defense", "attack", "seed",
                                                            "error"]]
    versions = sorted(cells_df["code_version"].dropna().unique()) if "code_version" in cells_df else []
    manifest.update(finished=datetime.now(timezone.utc).isoformat(), statuses=statuses, code_versions=versions,
                    wall_seconds=time.perf_counter() - t0,
                    job_runs=[vars(r) for r in runs])
    atomic_write_json(results.root / "manifest.json", manifest)
    return RunSummary(results.root, len(cells), statuses, time.perf_counter() - t0, runs,
                      failed.to_dict("records") if not cells_df.empty else [])


def _job_run(outcome: JobRun | BaseException, job: JobSpec, results: ResultsDir, started: str,
             current: str | None) -> JobRun:
    """The job's run, or — when its worker process itself died — a failed run for its cells."""
    if isinstance(outcome, JobRun):
        return outcome
    error = f"worker process failed: {type(outcome).__name__}: {outcome}"
    notebook = results.job_dir(job.job_id) / "experiment.ipynb"
    _record_unfinished_failed(job, results, error, notebook, started, current)
    return JobRun(job.job_id, 0.0, error, str(notebook))


def _advance(bar: tqdm, results: ResultsDir, pending: list[str], since: float, initially_done: int) -> None:
    """Count cells whose record was written since the run started (done, refused or failed)."""
    fresh = 0
    for cid in pending:
        path = results.cell_dir(cid) / "record.json"
        if path.exists() and path.stat().st_mtime >= since:
            fresh += 1
    bar.update(initially_done + fresh - bar.n)


def _record_unfinished_failed(job: JobSpec, results: ResultsDir, error: str, notebook: Path, started: str,
                              current: str | None) -> None:
    """A job that died (target could not be trained, kernel crashed) fails the cells it did not record
    (complete cells of the code version ``current`` stand; ``None``: any complete cell stands)."""
    now = datetime.now(timezone.utc).isoformat()
    for cell in job.cells:
        record = results.read_record(cell.cell_id)
        if results.is_complete(cell.cell_id, current) or (record is not None and record.get("finished", "") >= started):
            continue
        results.write_record(cell.cell_id, {
            **cell.labels(), "spec": cell.to_json(), "code_version": code_version(),
            "code_fingerprint": code_fingerprint(), "status": "failed",
            "error": f"job failed before this cell finished: {error}", "notebook": str(notebook),
            "started": now, "finished": now, "seconds": 0.0,
        })


def _matches(labels: dict[str, Any], only: dict[str, tuple[str, ...]]) -> bool:
    """Every key's label is one of its values (a value may name a family: ``mid`` matches ``mid(beta=0.02)``)."""
    return all(str(labels.get(k)) in values or str(labels.get(k)).split("(")[0] in values for k, values in only.items())
