"""Independent random streams per purpose, derived from one grid seed.

A grid seed varies the target's initialisation and minibatch order (and DP-SGD's noise), the
attack's randomness, the stochastic defenses (data augmentation, output noise), the endpoint
guards' projections and the membership challenge set's draw — each from its own stream, so
that changing how much one of them draws never shifts another. The data split, the evaluator
and the generator prior do not depend on it: they are fixed per dataset (the dataset's own
``seed`` parameter) so every seed is judged alike.
"""

from __future__ import annotations

import hashlib

import torch

PURPOSES = ("target", "attack", "defense", "guard", "challenge")


def stream_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for ``purpose`` derived from the grid ``seed`` (stable across runs and machines)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random stream '{purpose}'; allowed: {', '.join(PURPOSES)}")
    digest = hashlib.sha256(f"sieve:{seed}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(seed: int, purpose: str) -> torch.Generator:
    return torch.Generator().manual_seed(stream_seed(seed, purpose))
