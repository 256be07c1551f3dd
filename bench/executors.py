"""Where jobs run: worker processes on this machine, or a Dask cluster.

Both take ``(job, args)`` tasks for :func:`bench.runner.execute_job` and yield each job with
its run — or the exception that killed its worker — as jobs finish, calling ``tick`` about
twice a second so the driver can show per-cell progress.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from bench.config import JobSpec

Task = tuple[JobSpec, tuple[Any, ...]]
Outcome = tuple[JobSpec, Any]  # the JobRun, or the exception its worker died of


def run_local(function: Callable[..., Any], tasks: Sequence[Task], workers: int,
              tick: Callable[[], None]) -> Iterator[Outcome]:
    """Spawned worker processes (never forked: torch and OpenMP do not survive a fork)."""
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, min(workers, len(tasks))), mp_context=ctx) as pool:
        futures = {pool.submit(function, *args): job for job, args in tasks}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for f in done:
                yield futures[f], (f.exception() or f.result())
            tick()


def run_dask(function: Callable[..., Any], tasks: Sequence[Task], workers: int, scheduler: str | None,
             tick: Callable[[], None]) -> Iterator[Outcome]:
    """A ``distributed.LocalCluster`` of ``workers`` one-thread processes, or the cluster at
    ``scheduler``. A worker that dies mid-job has its job rescheduled by Dask; a job whose
    function raises is retried once. Results and cache must be on storage all workers see."""
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               silence_logs=logging.WARNING, dashboard_address=":0")
    try:
        with Client(scheduler or cluster) as client:
            if client.dashboard_link:
                print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)
            run = uuid.uuid4().hex[:8]
            futures = {client.submit(function, *args, key=f"sieve-{job.job_id}-{run}", pure=False, retries=1): job
                       for job, args in tasks}
            pending = set(futures)
            while pending:
                done = {f for f in pending if f.done()}
                for f in done:
                    yield futures[f], (f.exception() if f.status == "error" else f.result())
                pending -= done
                tick()
                if pending:
                    time.sleep(0.5)
    finally:
        if cluster is not None:
            cluster.close()
