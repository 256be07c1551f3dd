"""Plugin attacks that each try one route past the threat model (``--plugin`` file for the
attacker-process tests). Each records ``found`` in its last checkpoint: 1 if the route reached
a private image, a target weight or a real Oracle, else 0; ``shape-lie`` is judged by its count."""

import ctypes
import gc
import importlib
import os
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

import torch
from torch import nn

from bench.attacks.base import AttackResult, InversionAttack
from bench.oracle import ThreatModel
from bench.params import param
from bench.registry import attack


def private(obj):
    """Whether ``obj`` is, or holds, the job's splits (a job context, the splits, a namespace)."""
    if isinstance(obj, dict):
        return any(private(v) for v in list(obj.values()) if not isinstance(v, dict))
    try:
        return type(getattr(obj, "splits", obj)).__name__ == "DataSplits"
    except Exception:  # objects whose attributes refuse to be read (torch.classes, proxies)
        return False


def frames_reach_private(frame):
    while frame is not None:
        if any(private(v) for v in list(frame.f_locals.values())):
            return True
        frame = frame.f_back
    return False


class Cheat(InversionAttack):
    threat_model = ThreatModel.LABEL_ONLY

    def cheat(self, oracle) -> bool:
        raise NotImplementedError

    def run(self, oracle, identities, public, rng):
        found = self.cheat(oracle)
        x = torch.full((len(identities), *oracle.input_shape), 0.5)
        oracle.labels(x)
        self.checkpoint(oracle, x, found=float(found))
        return AttackResult(x)


@attack("cheat-frame-walk")
class FrameWalk(Cheat):
    def cheat(self, oracle):
        return frames_reach_private(sys._getframe())


@attack("cheat-ctypes")
class CtypesFrames(Cheat):
    """The interpreter's own frame pointer, through the C API, then the same walk."""

    def cheat(self, oracle):
        get_frame = ctypes.pythonapi.PyEval_GetFrame
        get_frame.restype = ctypes.py_object
        frame = get_frame()
        # ctypes takes the returned pointer as a reference it owns, but PyEval_GetFrame lends it:
        # without one more reference the frame is freed under the walk (measured: 20,000 plain
        # walks crash CPython with SIGSEGV; with this line they all complete)
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(frame))
        return frames_reach_private(frame)


@attack("cheat-gc")
class GcReferents(Cheat):
    """Everything the collector tracks, and what the view's sealed callables refer to."""

    def cheat(self, oracle):
        referents = [r for name in ("_labels", "_probabilities") for r in gc.get_referents(getattr(oracle, name))]
        reached = gc.get_objects() + referents + [r for o in referents for r in gc.get_referents(o)]
        return any(private(o) or isinstance(o, nn.Module) or type(o).__name__ == "Oracle" for o in reached)


@attack("cheat-import-main")
class ImportMain(Cheat):
    """The notebook kernel's globals (``splits``, ``ctx``) through ``importlib``."""

    def cheat(self, oracle):
        return private(vars(importlib.import_module("__main__")))


class Spy(torch.Tensor):
    """Sees every tensor the target's forward pass touches: its weights."""

    seen: list = []

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        Spy.seen += [a for a in (*args, *kwargs.values()) if isinstance(a, nn.Parameter)]
        return super().__torch_function__(func, types, args, kwargs)


@attack("cheat-tensor-subclass")
class TensorSubclass(Cheat):
    def cheat(self, oracle):
        oracle.labels(torch.rand(2, *oracle.input_shape).as_subclass(Spy))
        return bool(Spy.seen)


class Liar(torch.Tensor):
    """Claims one image, holds many."""

    @property
    def shape(self):
        return torch.Size([1, *torch.Tensor.shape.__get__(self)[1:]])


@attack("cheat-shape-lie")
class ShapeLie(Cheat):
    @dataclass(frozen=True)
    class Params:
        budget: int = param(3, help="queries per identity", low=1)

    def cheat(self, oracle):
        oracle.labels(torch.rand(15, *oracle.input_shape).as_subclass(Liar))
        return False


@attack("cheat-raw-message")
class RawMessage(Cheat):
    """Writes its own message to the pipe: one image declared, a hundred sent."""

    def cheat(self, oracle):
        import json
        import struct

        conn = next((o for o in gc.get_objects() if isinstance(o, Connection)), None)
        if conn is None:
            return False
        head = json.dumps({"op": "labels", "arrays": [
            {"name": "x", "dtype": "float32", "shape": [1, *oracle.input_shape]}]}).encode()
        conn.send_bytes(struct.pack(">I", len(head)) + head + torch.rand(100, *oracle.input_shape).numpy().tobytes())
        conn.recv_bytes()
        return True


@attack("cheat-crash")
class Crash(Cheat):
    def cheat(self, oracle):
        os._exit(3)


@attack("cheat-hang")
class Hang(Cheat):
    def cheat(self, oracle):
        time.sleep(120)
        return False
