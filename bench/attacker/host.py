"""The job's side of the boundary: start an attacker's process, answer its queries, take its result.

The process is forked from a fork server (``multiprocessing``'s ``forkserver``) that imported
torch and the attacks once and never held a job's data, so a cell's process starts in a
fraction of a second without inheriting the job's memory. Its queries reach the cell's real
oracle — budget, guards and output defenses — as plain float32 arrays, checked for shape,
finite values and range and counted by the rows that arrived. A process that raises, dies,
breaks the protocol or outlives ``timeout`` ends the cell as ``failed`` with the reason.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import sys
import time
import types
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.attacker import wire
from bench.attacker.errors import AttackFailed, rebuilt
from bench.attacker.tasks import Task
from bench.attacker.worker import Grant, main
from bench.attacks.base import Attack, AttackResult
from bench.attacks.membership import MembershipResult
from bench.oracle import BaseOracle, ThreatModel
from bench.registry import plugin_file

ATTACK_TIMEOUT = 3600.0  # seconds an attacker's process may run before its cell fails
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["bench.attacker.preload"])


def run_attack(attack: Attack, task: Task, oracle: BaseOracle, model: nn.Module | None = None,
               factories: Sequence[str] = (), timeout: float = ATTACK_TIMEOUT) -> AttackResult | MembershipResult:
    """Run ``task`` with ``attack`` in its own process against ``oracle``.

    A white-box ``oracle``'s attacker gets ``model`` (its copy crosses the boundary; ``factories``
    name the modules that define a given model's class) and counts its own queries; any other
    attacker reaches the target only through ``oracle``, which counts them."""
    white_box = oracle.threat_model == ThreatModel.WHITE_BOX
    if white_box and model is None:
        raise ValueError("a white-box attacker is granted a copy of the target's model")
    grant = Grant(attack, task, oracle.threat_model, oracle.num_classes, oracle.input_shape, oracle.budget,
                  oracle.queries, model if white_box else None)
    ours, theirs = _CONTEXT.Pipe()
    process = _CONTEXT.Process(target=main, args=(theirs, plugin_file(type(attack)), tuple(factories), pickle.dumps(grant)),
                               name=f"attacker {attack.name}", daemon=True)
    start_queries = oracle.queries
    with _main_module_hidden():
        process.start()
    theirs.close()
    try:
        deadline = time.monotonic() + timeout
        header, arrays = _serve(ours, oracle, process, deadline, timeout)
        started = time.perf_counter()
        if header.get("op") == "ready":
            header, arrays = _serve(ours, oracle, process, deadline, timeout)
        seconds = time.perf_counter() - started
    finally:
        ours.close()
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()
    if header.get("op") == "error":
        exc = rebuilt(str(header.get("type")), str(header.get("message")))
        exc.add_note(f"in the attacker's process:\n{header.get('traceback', '')}")
        raise exc
    if header.get("op") != "result":
        raise AttackFailed(f"the attacker's process answered '{header.get('op')}' where a result was due")
    queries = _own_count(header) if white_box else oracle.queries - start_queries
    return task.receive(attack, header, arrays, (queries, start_queries + queries), seconds, oracle.input_shape)


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start a process that will not re-run this one's ``__main__``: ``multiprocessing`` imports
    the parent's main script or module in every child, and a driver script that loads private
    data would load it into the attacker's process."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _serve(conn: Any, oracle: BaseOracle, process: Any, deadline: float, timeout: float
           ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Answer queries until the process sends anything else; that message."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            process.kill()
            raise AttackFailed(f"the attack ran past its timeout of {timeout:g} s and was stopped")
        if not conn.poll(min(left, 1.0)):
            if not process.is_alive() and not conn.poll(0):
                raise AttackFailed(f"the attacker's process died (exit code {process.exitcode})")
            continue
        try:
            message = conn.recv_bytes(wire.MAX_MESSAGE)
        except EOFError:
            process.join(timeout=5)
            raise AttackFailed(f"the attacker's process died (exit code {process.exitcode})") from None
        except OSError as exc:
            process.kill()
            raise AttackFailed(f"the attacker's process sent an unreadable message: {exc}") from None
        try:
            header, arrays = wire.decode(message)
        except wire.WireError as exc:
            process.kill()
            raise AttackFailed(f"the attacker's process broke the protocol: {exc}") from None
        if header.get("op") not in ("labels", "probabilities"):
            return header, arrays
        conn.send_bytes(wire.encode(*_answer(oracle, header["op"], arrays)))


def _answer(oracle: BaseOracle, op: str, arrays: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One query batch through the real oracle, or the refusal the attacker gets instead."""
    try:
        x = _batch(arrays)
        out = oracle.labels(x) if op == "labels" else oracle.probabilities(x)
        return {"queries": oracle.queries}, {"out": out.numpy()}
    except Exception as exc:  # the oracle's refusals and the checks' go back to the attacker
        return {"queries": oracle.queries, "error": type(exc).__name__, "message": str(exc)}, {}


def _batch(arrays: dict[str, np.ndarray]) -> torch.Tensor:
    """The query batch: one float32 array of finite values in [0, 1] (its shape the oracle checks)."""
    if set(arrays) != {"x"} or arrays["x"].dtype != np.float32:
        raise ValueError(f"a query is one float32 array 'x'; got {', '.join(f'{k} ({v.dtype})' for k, v in arrays.items())}")
    x = arrays["x"]
    if x.size and (not np.isfinite(x).all() or x.min() < 0 or x.max() > 1):
        raise ValueError("query images must hold finite values in [0, 1]")
    return torch.from_numpy(x)


def _own_count(header: dict[str, Any]) -> int:
    value = header.get("queries")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AttackFailed(f"the white-box attacker's process reported {value!r} queries")
    return value
