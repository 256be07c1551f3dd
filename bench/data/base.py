"""The dataset contract: every dataset returns :class:`DataSplits`.

Images are float32 in [0, 1], N×C×H×W; labels int64. Private identities are ``0..K-1``;
public data holds other identities (or disjoint samples where a dataset has none to spare)
and never a private image. ``evaluator_pool`` holds more images of the private identities
that are in neither private split, where the dataset can spare them: the judge trained on
them never saw a target's image (protocol ``disjoint``); the field's own protocol trains it on
the private training images (``private-train``, as in GMI and KEDMI).

``population`` is what a membership attacker holds (Shokri et al. 2017; Carlini et al. 2022):
more images from the private data's distribution, of the same identities, in no other split —
so never in a challenge set. Where the public data are other samples of the same classes
(digits), they are such a population already.

``private_train`` stays the images as collected: they are what an attacker is after, so every
similarity metric compares against them. Data-stage defenses (and a dataset's repeats of an
over-represented identity) only set ``defended_train``, the copy the target is trained on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from bench.errors import ConfigError, DataError

EVALUATOR_PROTOCOLS = ("disjoint", "private-train")


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
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSplits:
    private_train: Split
    private_test: Split
    public: Split
    evaluator_pool: Split | None
    meta: DatasetMeta
    defended_train: Split | None = None
    population: Split | None = None

    @property
    def target_train(self) -> Split:
        """What the target trains on: the private training set as the dataset hands it to the target
        (e.g. with an over-represented identity's repeats), after the data-stage defenses."""
        return self.private_train if self.defended_train is None else self.defended_train

    @property
    def membership_population(self) -> Split | None:
        """The membership attacker's population: the dataset's own, else public data that are
        other samples of the private classes; None where the dataset can spare no such images."""
        if self.population is not None:
            return self.population
        return self.public if self.meta.public_kind == "disjoint samples" else None

    def with_defended_train(self, split: Split) -> DataSplits:
        """Data-stage defenses change the target's copy of the training set, never the originals."""
        return dataclasses.replace(self, defended_train=split)

    def evaluator_train(self, protocol: str) -> Split:
        """The judge's training images under ``protocol`` (original images, never defended copies)."""
        if protocol == "private-train":
            return self.private_train
        if protocol != "disjoint":
            raise ValueError(f"unknown evaluator protocol '{protocol}'; allowed: {', '.join(EVALUATOR_PROTOCOLS)}")
        if self.evaluator_pool is None:
            raise DataError(f"dataset '{self.meta.name}' has no images to spare for a disjoint evaluator; "
                            "use evaluator data 'private-train'")
        return self.evaluator_pool

    def class_means(self) -> Split:
        """The mean private training image of every identity: a judge that cannot name these
        will not name a good inversion either."""
        k = self.meta.num_classes
        x = torch.stack([self.private_train.of_class(c).mean(0) for c in range(k)])
        return Split(x, torch.arange(k))


class Dataset:
    """Base of all datasets: ``__init__`` stores params; ``load`` is deterministic for them."""

    name: ClassVar[str]
    # where a judge's training images can come from, for `bench list datasets`
    judge_data: ClassVar[str] = "private-train only (the dataset spares no images)"
    # parameters left out of the dataset's label in tables and file names
    unlabelled: ClassVar[tuple[str, ...]] = ()
    # whether shifts, flips, lighting and same-identity mixing keep an identity (faces: yes;
    # 8×8 digits: a flip or shift can change the class, and the judge measured worse with them)
    judge_augmentation: ClassVar[bool] = True

    @dataclass(frozen=True)
    class Params:
        pass

    def __init__(self, params: Any = None) -> None:
        self.params = params if params is not None else self.Params()

    @classmethod
    def display_name(cls, params: Any) -> str:
        """The name a dataset goes by in tables (before its changed parameters)."""
        return cls.name

    def spares_evaluator_images(self) -> bool:
        """Whether ``load`` fills ``evaluator_pool``, so a judge can be trained on images no target saw."""
        return False

    def class_order_given(self) -> bool:
        """Whether class ``k`` is a known identity, so a model trained outside Sieve can be matched
        to it: a built-in dataset's classes are fixed by its parameters."""
        return True

    def split_given(self) -> bool:
        """Whether a model trained outside Sieve can be held to this dataset's split: its held-out
        images are known to be ones the model never saw. A built-in split is fixed by the
        dataset's parameters, so a model trained on its training split qualifies."""
        return True

    def evaluator_protocol(self, asked: str) -> str:
        """The judge's protocol for this dataset: ``auto`` is ``disjoint`` where images can be spared."""
        if asked == "auto":
            return "disjoint" if self.spares_evaluator_images() else "private-train"
        if asked == "disjoint" and not self.spares_evaluator_images():
            raise ConfigError(f"dataset '{self.name}' spares no images for a disjoint evaluator "
                              f"({self.judge_data}); use evaluator: {{data: private-train}}")
        return asked

    def check(self) -> None:
        """Refuse parameter combinations a single range cannot express (raise ConfigError)."""

    def num_classes(self) -> int | None:
        """Private identities, when known without loading (to check defenses such as top-k)."""
        return None

    def load(self) -> DataSplits:
        raise NotImplementedError
