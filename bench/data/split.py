"""Deterministic per-class splitting of samples, shared by datasets that split images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.errors import DataError


def split_per_class(
    labels: np.ndarray, fractions: Sequence[float], seed: int, what: str
) -> list[np.ndarray]:
    """Shuffle each class's indices with ``seed`` and cut them by ``fractions`` (summing to 1).

    Every part gets at least one image of every class, or a :class:`DataError` says which
    class has too few images.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        if len(idx) < len(fractions):
            raise DataError(
                f"{what}: class {k} has {len(idx)} images, the split needs at least {len(fractions)}"
            )
        counts = np.maximum(1, np.floor(np.asarray(fractions) * len(idx)).astype(int))
        counts[-1] = len(idx) - counts[:-1].sum()
        if counts[-1] < 1:
            raise DataError(f"{what}: class {k} has {len(idx)} images, too few for the split asked")
        for part, chunk in zip(parts, np.split(idx, np.cumsum(counts)[:-1])):
            part.append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]
