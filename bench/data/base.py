"""The dataset contract: every dataset returns :class:`DataSplits`.

Images are float32 in [0, 1], N×C×H×W; labels int64. Private identities are ``0..K-1``;
public data holds other identities (or disjoint samples where a dataset has none to spare)
and never a private image. The evaluator trains on ``evaluator_train``: more images of the
private identities where the dataset can give them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor


@dataclass(frozen=True)
class Split:
    x: Tensor
    y: Tensor

    def __post_init__(self) -> None:
        if self.x.dtype != torch.float32 or self.y.dtype != torch.int64:
            raise TypeError(f"split needs float32 images and int64 labels, got {self.x.dtype}, {self.y.dtype}")
        if self.x.dim() != 4 or len(self.x) != len(self.y):
            raise ValueError(f"split needs N×C×H×W images and N labels, got {tuple(self.x.shape)}, {tuple(self.y.shape)}")

    def __len__(self) -> int:
        return len(self.y)

    def of_class(self, k: int) -> Tensor:
        return self.x[self.y == k]


@dataclass(frozen=True)
class DatasetMeta:
    name: str
    num_classes: int
    shape: tuple[int, int, int]
    identity_names: list[str]
    public_kind: str  # "disjoint identities" or "disjoint samples"
    evaluator_data: str  # where the evaluator's training images come from
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSplits:
    private_train: Split
    private_test: Split
    public: Split
    evaluator_train: Split
    meta: DatasetMeta

    def replace_private_train(self, split: Split) -> DataSplits:
        """Data-stage defenses change the private training set only."""
        return DataSplits(split, self.private_test, self.public, self.evaluator_train, self.meta)


class Dataset:
    """Base of all datasets: ``__init__`` stores params; ``load`` is deterministic for them."""

    name: ClassVar[str]

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    def check(self) -> None:
        """Refuse parameter combinations a single range cannot express (raise ConfigError)."""

    def num_classes(self) -> int | None:
        """Private identities, when known without loading (to check defenses such as top-k)."""
        return None

    def load(self) -> DataSplits:
        raise NotImplementedError
