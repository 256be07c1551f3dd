"""scikit-learn's bundled 8×8 handwritten digits: real data that needs no network."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits

from bench.data.base import Dataset, DatasetMeta, DataSplits, Split
from bench.data.split import split_per_class
from bench.errors import ConfigError
from bench.params import param
from bench.registry import dataset


@dataset("digits")
class Digits(Dataset):
    """UCI optical handwritten digits (1,797 images, 10 classes, 8×8, 17 gray levels).

    There are no identities to spare, so public data are disjoint samples of the same
    classes. Per class: ``train`` private training, ``test`` held-out private, ``public``
    attacker data; the rest are the evaluator's pool, in neither private split.
    """

    judge_data = "disjoint (default: the samples left over by the split) or private-train"
    judge_augmentation = False

    @dataclass(frozen=True)
    class Params:
        train: float = param(0.4, help="share of each class in private training", low=0, high=1, low_open=True)
        test: float = param(0.15, help="share of each class held out as private test", low=0, high=1, low_open=True)
        public: float = param(0.25, help="share of each class given to the attacker (the rest: the judge's pool)", low=0,
                              high=1, low_open=True)
        seed: int = param(0, help="seed of the split", low=0)

    def check(self) -> None:
        p = self.params
        if p.train + p.test + p.public >= 1:
            raise ConfigError(
                f"dataset 'digits': train + test + public = {p.train + p.test + p.public:g} must be below 1 "
                "(the rest are the evaluator's pool)"
            )

    def num_classes(self) -> int:
        return 10

    def spares_evaluator_images(self) -> bool:
        return True

    def load(self) -> DataSplits:
        self.check()
        p = self.params
        rest = 1.0 - p.train - p.test - p.public
        bunch = load_digits()
        x = torch.from_numpy((bunch.images / 16.0).astype(np.float32))[:, None]
        y = torch.from_numpy(bunch.target.astype(np.int64))
        train, test, public, pool = split_per_class(bunch.target, [p.train, p.test, p.public, rest], p.seed, "digits")

        def take(idx: np.ndarray) -> Split:
            t = torch.from_numpy(idx)
            return Split(x[t], y[t])

        meta = DatasetMeta(
            name="digits",
            num_classes=10,
            shape=(1, 8, 8),
            identity_names=[str(d) for d in range(10)],
            public_kind="disjoint samples",
            extra={"source_indices": {"private_train": train.tolist(), "public": public.tolist()}},
        )
        return DataSplits(take(train), take(test), take(public), take(pool), meta)
