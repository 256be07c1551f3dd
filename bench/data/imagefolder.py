"""A real dataset on disk laid out as ``root/<identity>/<image>`` (see datasets/README.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from bench.data.base import Dataset, DatasetMeta, DataSplits, Split
from bench.data.split import split_per_class
from bench.errors import ConfigError, DataError
from bench.params import param
from bench.registry import dataset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".gif")


@dataset("imagefolder")
class ImageFolder(Dataset):
    """Identities are sub-folders of ``root``; private identities are chosen by ``private``
    (a list of folder names) or else by ``private_fraction`` of the sorted names with a
    seeded shuffle. The rest are the attacker's public identities. The evaluator trains on
    the private training images (a folder holds no images to spare).
    """

    @dataclass(frozen=True)
    class Params:
        root: str = param(help="folder with one sub-folder per identity")
        size: int = param(32, help="images are resized to size×size", low=4, high=512)
        channels: int = param(1, help="1 (grayscale) or 3 (RGB)", choices=(1, 3))
        private: list[str] = param([], help="identity folders that are private (empty: use private_fraction)")
        private_fraction: float = param(0.5, help="share of identities that are private", low=0, high=1, low_open=True)
        test_fraction: float = param(0.25, help="share of each private identity's images held out", low=0, high=1, low_open=True)
        seed: int = param(0, help="seed of the identity and image splits", low=0)

    def check(self) -> None:
        root = Path(self.params.root).expanduser()
        if not root.is_dir():
            raise ConfigError(f"dataset 'imagefolder': parameter 'root' is '{root}', which is not a folder")

    def num_classes(self) -> int | None:
        return len(self.params.private) or None

    def load(self) -> DataSplits:
        p = self.params
        root = Path(p.root).expanduser()
        if not root.is_dir():
            raise DataError(f"imagefolder: root '{root}' is not a folder")
        folders = sorted(d for d in root.iterdir() if d.is_dir() and _images_in(d))
        if len(folders) < 2:
            raise DataError(
                f"imagefolder: root '{root}' needs at least two identity folders with images "
                f"({', '.join(IMAGE_SUFFIXES)}); found {len(folders)}"
            )
        names = [d.name for d in folders]
        if p.private:
            unknown = sorted(set(p.private) - set(names))
            if unknown:
                raise DataError(f"imagefolder: private identities {unknown} are not folders of '{root}'; found: {names}")
            private_names = [n for n in names if n in p.private]
        else:
            order = np.random.default_rng(p.seed).permutation(len(names))
            k = max(1, round(p.private_fraction * len(names)))
            private_names = sorted(names[i] for i in order[:k])
        public_names = [n for n in names if n not in private_names]
        if len(private_names) < 2 or not public_names:
            raise DataError(
                f"imagefolder: the split leaves {len(private_names)} private and {len(public_names)} public "
                "identities; at least 2 private and 1 public are needed"
            )
        px, py = self._read(root, private_names)
        train, test = split_per_class(py, [1 - p.test_fraction, p.test_fraction], p.seed, f"imagefolder '{root}'")
        qx, qy = self._read(root, public_names)
        x, y = torch.from_numpy(px), torch.from_numpy(py)
        meta = DatasetMeta(
            name="imagefolder",
            num_classes=len(private_names),
            shape=(p.channels, p.size, p.size),
            identity_names=private_names,
            public_kind="disjoint identities",
            evaluator_data="private train (no images to spare)",
            extra={"root": str(root), "public_identities": public_names},
        )
        train_split = Split(x[train], y[train])
        return DataSplits(train_split, Split(x[test], y[test]), Split(torch.from_numpy(qx), torch.from_numpy(qy)),
                          train_split, meta)

    def _read(self, root: Path, identities: list[str]) -> tuple[np.ndarray, np.ndarray]:
        images, labels = [], []
        mode = "L" if self.params.channels == 1 else "RGB"
        for label, name in enumerate(identities):
            for path in _images_in(root / name):
                try:
                    with Image.open(path) as im:
                        im = im.convert(mode).resize((self.params.size,) * 2, Image.Resampling.BILINEAR)
                        array = np.asarray(im, dtype=np.float32) / 255.0
                except (UnidentifiedImageError, OSError) as exc:
                    raise DataError(f"imagefolder: cannot decode image '{path}': {exc}") from exc
                images.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
                labels.append(label)
        return np.stack(images).astype(np.float32), np.asarray(labels, dtype=np.int64)


def _images_in(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
