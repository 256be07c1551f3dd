"""Trained targets and evaluators, cached under a content hash of everything that determines them.

The key carries the fingerprint of the code that determines an artifact (``bench/models``,
``bench/defenses``, ``bench/data``, ``bench/seeds.py``), so a change to that code never loads
weights the old code trained. Two processes asking for the same artifact at once are
serialised by a file lock: one trains, the other waits and loads. Files are written to a temporary name and renamed, and
loaded with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from filelock import FileLock
from torch import nn

from bench.files import atomic_write_bytes
from bench.provenance import ARTIFACT_SOURCES, code_fingerprint

M = TypeVar("M", bound=nn.Module)


@dataclass
class TrainedModel(Generic[M]):
    model: M
    info: dict[str, Any]  # architecture, key, loss history, accuracies
    cached: bool  # loaded from the cache rather than trained now


def structure(model: torch.nn.Module) -> list[tuple[str, list[int]]]:
    """Parameter names and shapes: a changed architecture never loads an old artifact."""
    return [(name, list(t.shape)) for name, t in model.state_dict().items()]


def content_hash(key: dict[str, Any]) -> str:
    blob = json.dumps({"code": code_fingerprint(*ARTIFACT_SOURCES), **key}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


class ArtifactCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def get_or_train(
        self, key: dict[str, Any], make: Callable[[], M], train: Callable[[M], dict[str, Any]],
    ) -> TrainedModel[M]:
        """Load the artifact for ``key`` into ``make()`` or ``train`` it (which returns its info)."""
        self.root.mkdir(parents=True, exist_ok=True)
        model = make()
        digest = content_hash({**key, "structure": structure(model)})
        path = self.root / f"{digest}.pt"
        with FileLock(str(self.root / f"{digest}.lock")):
            if path.exists():
                blob = torch.load(path, weights_only=True)
                model.load_state_dict(blob["state_dict"])
                return TrainedModel(model.eval(), blob["info"], cached=True)
            info = {"key": json.loads(json.dumps(key, default=str)), "hash": digest, **train(model)}
            buf = io.BytesIO()
            torch.save({"state_dict": model.state_dict(), "info": info}, buf)
            atomic_write_bytes(path, buf.getvalue())
            return TrainedModel(model.eval(), info, cached=False)
