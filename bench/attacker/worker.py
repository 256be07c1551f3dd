"""The attacker's side of the boundary: a process that holds only what its threat model grants.

It is forked from a server that has imported torch and the attacks but never held a job's
data, loads the grid's plugin files, unpickles its :class:`Grant` (the job's trusted message
to it) and runs the attack. A white-box grant carries a copy of the target and answers
locally; otherwise a :class:`PipeOracle` sends each batch to the job's oracle as a plain
float32 array and raises the oracle's refusals as the same exceptions. No splits, job
context, judge, guards or oracle object exist here, so a frame walk, ``gc`` or ``ctypes``
finds only the grant.
"""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np
import torch
from torch import Tensor, nn

import bench.attacks  # noqa: F401  (the built-in attacks: preloaded by the fork server)
from bench.attacker import wire
from bench.attacker.errors import rebuilt
from bench.attacker.tasks import Task
from bench.attacks.base import Attack
from bench.oracle import BaseOracle, Oracle, ThreatModel


@dataclass(frozen=True)
class Grant:
    """Everything the attacker's process receives: the attack, its task, and the oracle's terms.
    ``model`` — a copy of the target — only when the attacker is white-box."""

    attack: Attack
    task: Task
    access: ThreatModel
    num_classes: int
    input_shape: tuple[int, ...]
    budget: int | None
    spent: int  # queries the job's oracle had answered before this attack
    model: nn.Module | None = None

    def oracle(self, conn: Connection) -> BaseOracle:
        if self.access == ThreatModel.WHITE_BOX:
            assert self.model is not None, "a white-box grant carries the model"
            oracle: BaseOracle = Oracle(self.model, ThreatModel.WHITE_BOX, self.num_classes, self.input_shape,
                                        self.budget)
        else:
            oracle = PipeOracle(conn, self.access, self.num_classes, self.input_shape, self.budget)
        oracle.queries = self.spent
        return oracle


class PipeOracle(BaseOracle):
    """Black-box and label-only access through the pipe: the job's oracle counts, checks and answers."""

    def __init__(self, conn: Connection, threat_model: ThreatModel, num_classes: int, input_shape: Sequence[int],
                 budget: int | None) -> None:
        super().__init__(threat_model, num_classes, input_shape, budget)
        self._conn = conn

    def logits(self, x: Tensor) -> Tensor:
        self._require(ThreatModel.WHITE_BOX, "logits")
        raise AssertionError("unreachable: a pipe oracle is never white-box")

    def probabilities(self, x: Tensor) -> Tensor:
        self._require(ThreatModel.BLACK_BOX, "probabilities")
        return self._ask("probabilities", x)

    def labels(self, x: Tensor) -> Tensor:
        return self._ask("labels", x)

    def _ask(self, op: str, x: Tensor) -> Tensor:
        self._conn.send_bytes(wire.encode({"op": op}, {"x": x.detach().cpu().numpy().astype(np.float32, copy=False)}))
        header, arrays = wire.decode(self._conn.recv_bytes())
        self.queries = int(header["queries"])
        if "error" in header:
            raise rebuilt(header["error"], header["message"])
        return torch.from_numpy(arrays["out"])


def main(conn: Connection, plugin: str | None, factories: Sequence[str], grant: bytes) -> None:
    """Run the granted attack and send its result (or its error) back; the process then ends.
    ``plugin`` is the ``--plugin`` file that defines the attack, if one does."""
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    try:
        from bench.models.saved import load_factory  # a given target's class, for the white-box copy
        from bench.registry import load_plugin_file, load_registries

        load_registries()  # installed plugins register (and are named) as in the job
        if plugin is not None:
            load_plugin_file(plugin)
        for factory in factories:
            load_factory(factory)
        granted: Grant = pickle.loads(grant)
        del grant
        oracle = granted.oracle(conn)
        conn.send_bytes(wire.encode({"op": "ready"}))
        header, arrays = granted.task.run(granted.attack, oracle)
        conn.send_bytes(wire.encode({"op": "result", **header}, arrays))
    except BaseException as exc:  # everything the attack raises goes back as its name and message
        conn.send_bytes(wire.encode({"op": "error", "type": type(exc).__name__, "message": str(exc),
                                     "traceback": traceback.format_exc()}))
    finally:
        conn.close()
