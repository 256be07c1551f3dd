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

    ``split: samples`` (the default): all ten classes are private and the public data are
    disjoint samples of the same classes, so nothing beyond the public prior can be measured by
    inversion. ``split: classes`` is the field's MNIST protocol (GMI, KEDMI): digits 0–4 are
    private, every image of 5–9 is public. Per private class: ``train`` private training,
    ``test`` held-out private, ``public`` attacker data (samples split only), ``population`` a
    membership attacker's population; the rest are the evaluator's pool, in neither private split.
    """

    judge_data = "disjoint (default: the samples left over by the split) or private-train"
    judge_augmentation = False

    @dataclass(frozen=True)
    class Params:
        split: str = param("samples", help="samples: public data are other samples of the same 10 classes; "
                                           "classes: 0-4 private, 5-9 public (GMI/KEDMI)", choices=("samples", "classes"))
        train: float = param(0.4, help="share of each private class in private training", low=0, high=1, low_open=True)
        test: float = param(0.15, help="share of each private class held out as private test", low=0, high=1,
                            low_open=True)
        public: float = param(0.25, help="share of each class given to the attacker (split samples; the rest: the "
                                         "judge's pool)", low=0, high=1, low_open=True)
        population: float = param(0.0, help="share of each private class kept for a membership attacker (0: under "
                                             "split samples the public samples serve)", low=0, high=1)
        seed: int = param(0, help="seed of the split", low=0)

    def shares(self) -> list[float]:
        """Per private class: train, test, public (samples split), population, and the judge's rest."""
        p = self.params
        public = p.public if p.split == "samples" else 0.0
        return [p.train, p.test, public, p.population, 1.0 - p.train - p.test - public - p.population]

    def check(self) -> None:
        p = self.params
        used = 1.0 - self.shares()[-1]
        if used >= 1:
            named = "train + test + public + population" if p.split == "samples" else "train + test + population"
            raise ConfigError(f"dataset 'digits': {named} = {used:g} must be below 1 (the rest are the evaluator's pool)")

    def num_classes(self) -> int:
        return 10 if self.params.split == "samples" else 5

    def spares_evaluator_images(self) -> bool:
        return True

    def load(self) -> DataSplits:
        self.check()
        p = self.params
        bunch = load_digits()
        x = torch.from_numpy((bunch.images / 16.0).astype(np.float32))[:, None]
        y = torch.from_numpy(bunch.target.astype(np.int64))
        k = self.num_classes()
        private = np.flatnonzero(bunch.target < k)
        shares = [s for s in self.shares() if s > 0]
        parts = iter(private[i] for i in split_per_class(bunch.target[private], shares, p.seed, "digits"))
        train, test, public, population, pool = (next(parts) if s > 0 else None for s in self.shares())
        if p.split == "classes":
            public = np.flatnonzero(bunch.target >= k)

        def take(idx: np.ndarray | None) -> Split | None:
            if idx is None:
                return None
            t = torch.from_numpy(idx)
            return Split(x[t], y[t] % k)

        meta = DatasetMeta(
            name="digits",
            num_classes=k,
            shape=(1, 8, 8),
            identity_names=[str(d) for d in range(k)],
            public_kind="disjoint samples" if p.split == "samples" else "disjoint identities",
            extra={"source_indices": {"private_train": train.tolist(), "public": public.tolist()}},
        )
        return DataSplits(take(train), take(test), take(public), take(pool), meta, population=take(population))
