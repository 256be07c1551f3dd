"""The challenge set a membership attack scores: members and non-members, stratified per identity.

Members are images from ``private_train`` as collected (what the target trained on, before any
data-stage defense changed its copy); non-members are private images the target never trained
on: ``private_test`` and, where the dataset spares them, ``evaluator_pool``. Every non-member is
used (a ROC curve needs no balance, and TPR at 0.1 % FPR needs a thousand of them), and members
are drawn per identity in proportion to that identity's non-members, so both sides show the same
mix of people: an attack cannot tell them apart by who is in the picture — an over-represented
identity's label alone scores AUC 0.5 — only by whether the target saw the image.
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
    """Every non-member, and per identity ``k`` the members ``floor(r * non_members_k)`` drawn with
    ``rng`` — ``r`` the largest rate every identity's training images allow — shuffled."""
    outside = [("private_test", splits.private_test)]
    if splits.evaluator_pool is not None:
        outside.append(("evaluator_pool", splits.evaluator_pool))
    out_x = torch.cat([split.x for _, split in outside])
    out_y = torch.cat([split.y for _, split in outside])
    out_source = [name for name, split in outside for _ in range(len(split))]
    train = splits.private_train
    classes = out_y.unique()
    out_counts = torch.stack([(out_y == k).sum() for k in classes])
    in_counts = torch.stack([(train.y == k).sum() for k in classes])
    rate = float((in_counts / out_counts).min()) if len(classes) else 0.0
    picks = [torch.nonzero(train.y == k).flatten()[torch.randperm(int(n), generator=rng)[: int(rate * o + 1e-9)]]
             for k, n, o in zip(classes.tolist(), in_counts, out_counts.tolist())]
    ins = torch.cat(picks) if picks else torch.zeros(0, dtype=torch.long)
    if len(ins) == 0:
        raise ValueError("a challenge set needs, for some identity, a private training image and an image the "
                         "target never saw")
    n_in, n_out = len(ins), len(out_y)
    order = torch.randperm(n_in + n_out, generator=rng)
    source = [MEMBER_SOURCE] * n_in + out_source
    return ChallengeSet(
        x=torch.cat([train.x[ins], out_x])[order],
        y=torch.cat([train.y[ins], out_y])[order],
        member=torch.cat([torch.ones(n_in, dtype=torch.bool), torch.zeros(n_out, dtype=torch.bool)])[order],
        source=tuple(source[i] for i in order.tolist()),
    )


__all__ = ["MEMBER_SOURCE", "ChallengeSet", "challenge_set"]
