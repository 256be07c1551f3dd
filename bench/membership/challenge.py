"""The challenge set a membership attack scores: members and non-members, balanced.

Members are images from ``private_train`` as collected (what the target trained on, before any
data-stage defense changed its copy); non-members are private images the target never trained
on: ``private_test`` and, where the dataset spares them, ``evaluator_pool``. Both sides show the
same identities, so an attack cannot tell them apart by who is in the picture, only by whether
the target saw the image. Equal numbers on both sides make 0.5 AUC mean chance.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import Tensor

from bench.data.base import DataSplits

MEMBER_SOURCE = "private_train"


@dataclass(frozen=True)
class ChallengeSet:
    """Shuffled challenge images with their labels, membership and the split each came from."""

    x: Tensor  # N×C×H×W float32
    y: Tensor  # N int64, private identities
    member: Tensor  # N bool: trained on by the target
    source: tuple[str, ...]  # per image: "private_train", "private_test" or "evaluator_pool"

    def __post_init__(self) -> None:
        n = len(self.x)
        if self.member.dtype != torch.bool or len(self.y) != n or len(self.member) != n or len(self.source) != n:
            raise ValueError(f"challenge set needs N images, labels, a bool member mask and sources, got "
                             f"{tuple(self.x.shape)}, {tuple(self.y.shape)}, {self.member.dtype} {tuple(self.member.shape)}, "
                             f"{len(self.source)} sources")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def members(self) -> int:
        return int(self.member.sum())

    @property
    def non_members(self) -> int:
        return len(self) - self.members

    def source_counts(self) -> dict[str, int]:
        """How many challenge images came from each split, for the record."""
        return dict(sorted(Counter(self.source).items()))


def challenge_set(splits: DataSplits, rng: torch.Generator) -> ChallengeSet:
    """As many members as non-members (the smaller side's size), drawn with ``rng``, shuffled."""
    outside = [("private_test", splits.private_test)]
    if splits.evaluator_pool is not None:
        outside.append(("evaluator_pool", splits.evaluator_pool))
    out_x = torch.cat([split.x for _, split in outside])
    out_y = torch.cat([split.y for _, split in outside])
    out_source = [name for name, split in outside for _ in range(len(split))]
    train = splits.private_train
    n = min(len(train), len(out_y))
    if n == 0:
        raise ValueError("a challenge set needs at least one private training image and one image the target never saw")
    ins = torch.randperm(len(train), generator=rng)[:n]
    outs = torch.randperm(len(out_y), generator=rng)[:n]
    order = torch.randperm(2 * n, generator=rng)
    source = [MEMBER_SOURCE] * n + [out_source[i] for i in outs.tolist()]
    return ChallengeSet(
        x=torch.cat([train.x[ins], out_x[outs]])[order],
        y=torch.cat([train.y[ins], out_y[outs]])[order],
        member=torch.cat([torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)])[order],
        source=tuple(source[i] for i in order.tolist()),
    )


__all__ = ["MEMBER_SOURCE", "ChallengeSet", "challenge_set"]
