"""The threat model as a process boundary: each route that reached past the oracle in process
(``tests/cheats.py``, one plugin attack per route) finds nothing in the attacker's process, and
a query counts by the rows that crossed.

In process, each of these reached its goal (measured on the last in-process commit, 7c25c7f's
successor f9c7ec0): the frame walk, ctypes and gc found the job context, the splits or the
Oracle; ``importlib`` read the kernel's ``splits``; the tensor subclass collected the target's
weights through a label-only oracle; the shape lie was counted as 1 query for 15 images.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import experiment as ex
from bench.attacker import wire
from bench.config import load_config
from bench.registry import load_plugin_files

CHEATS = Path(__file__).with_name("cheats.py")
ROUTES = ["cheat-frame-walk", "cheat-ctypes", "cheat-gc", "cheat-import-main", "cheat-tensor-subclass"]
GRID = """
name: wall
seeds: [0]
datasets: [digits]
target: {{model: mlp, epochs: 2}}
evaluator: {{epochs: 1, steps: 20}}
defenses: [none]
attacks: [{attacks}]
"""


@pytest.fixture(scope="module")
def wall(tmp_path_factory):
    load_plugin_files([CHEATS])
    root = tmp_path_factory.mktemp("wall")
    attacks = ROUTES + ["cheat-shape-lie", "cheat-raw-message", "cheat-crash", "cheat-hang"]
    (root / "grid.yaml").write_text(GRID.format(attacks=", ".join(attacks)))
    job = load_config(str(root / "grid.yaml")).jobs()[0]
    ctx = ex.prepare(job, root / "cache")
    return ctx, {c.attack.name: c for c in job.cells}, root / "results"


def _run(wall, name, **ctx_fields):
    ctx, cells, results = wall
    for field, value in ctx_fields.items():
        setattr(ctx, field, value)
    outcome = ex.run_cell(ctx, cells[name], results)
    trace = results / "cells" / cells[name].cell_id / "trace.parquet"
    return outcome, (pd.read_parquet(trace) if trace.exists() else None)


@pytest.mark.parametrize("route", ROUTES)
def test_no_route_reaches_the_job_from_the_attackers_process(wall, route, monkeypatch):
    ctx = wall[0]
    monkeypatch.setattr(sys.modules["__main__"], "splits", ctx.splits, raising=False)  # as in the kernel
    monkeypatch.setattr(sys.modules["__main__"], "ctx", ctx, raising=False)
    outcome, trace = _run(wall, route)
    assert outcome.status == "done", outcome.record.get("error")
    assert trace["found"].iloc[-1] == 0.0


def test_a_query_counts_the_rows_that_crossed_not_the_shape_claimed(wall):
    outcome, _ = _run(wall, "cheat-shape-lie")
    assert outcome.status == "done", outcome.record.get("error")
    assert outcome.record["queries"] == 15 + 10  # the lie's 15 images, then one honest image per identity


def test_a_message_that_declares_fewer_rows_than_it_carries_ends_the_cell(wall):
    outcome, _ = _run(wall, "cheat-raw-message")
    assert outcome.status == "failed" and "broke the protocol" in outcome.record["error"]


def test_a_crashing_attack_process_fails_its_cell_and_the_job_goes_on(wall):
    outcome, _ = _run(wall, "cheat-crash")
    assert outcome.status == "failed" and "died (exit code 3)" in outcome.record["error"]
    again, _ = _run(wall, "cheat-frame-walk")
    assert again.status == "done"


def test_a_hanging_attack_process_is_stopped_at_its_timeout(wall):
    try:
        outcome, _ = _run(wall, "cheat-hang", attack_timeout=3.0)
    finally:
        wall[0].attack_timeout = ex.ATTACK_TIMEOUT
    assert outcome.status == "failed" and "ran past its timeout of 3 s" in outcome.record["error"]
    assert outcome.record["seconds"] < 30


def test_the_wire_refuses_what_it_does_not_declare():
    x = np.random.rand(3, 1, 8, 8).astype(np.float32)
    header, arrays = wire.decode(wire.encode({"op": "labels"}, {"x": x}))
    assert header == {"op": "labels"} and np.array_equal(arrays["x"], x)
    message = wire.encode({"op": "labels"}, {"x": x})
    with pytest.raises(wire.WireError, match="bytes follow"):
        wire.decode(message + b"\0" * 4)
    with pytest.raises(wire.WireError, match="short"):
        wire.decode(message[:-4])
    head = json.dumps({"arrays": [{"name": "x", "dtype": "object", "shape": [1]}]}).encode()
    with pytest.raises(wire.WireError, match="dtype"):
        wire.decode(struct.pack(">I", len(head)) + head)
    head = json.dumps({"arrays": [{"name": "x", "dtype": "float32", "shape": [-1]}]}).encode()
    with pytest.raises(wire.WireError, match="non-negative"):
        wire.decode(struct.pack(">I", len(head)) + head)
