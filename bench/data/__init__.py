"""Built-in datasets; importing this package registers them."""

from bench.data import celeba, digits, imagefolder, synthfaces  # noqa: F401  (registration side effect)
from bench.data.base import Dataset, DatasetMeta, DataSplits, Split

__all__ = ["DataSplits", "Dataset", "DatasetMeta", "Split"]
