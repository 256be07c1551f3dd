"""A real dataset on disk laid out as ``root/<identity>/<image>`` (see datasets/README.md)."""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    seeded shuffle. The rest are the attacker's public identities. A folder seldom has images
    to spare, so the judge trains on the private training images unless ``evaluator_share``
    sets aside a share of every private identity's images for it. Byte-identical copies of an
    image within an identity are dropped (with a warning), so no copy lands on both sides of a split.
    ``overrepresent: N`` repeats one private identity's training images N times in the copy the
    target trains on — the CEO whose photos fill the company's dataset — and nowhere else: the
    originals, the held-out images and the judge's stay as collected.
    """

    judge_data = "private-train (default), or disjoint with evaluator_share > 0"
    unlabelled = ("root", "label", "private", "classes", "held_out")

    @dataclass(frozen=True)
    class Params:
        root: str = param(help="folder with one sub-folder per identity")
        size: int = param(32, help="images are resized to size×size", low=4, high=512)
        channels: int = param(1, help="1 (grayscale) or 3 (RGB)", choices=(1, 3))
        private: list[str] = param([], help="identity folders that are private (empty: use private_fraction)")
        classes: str = param("", help="a text file naming the private identity folders one per line, in the order "
                                      "of a given model's class indices (overrides private and private_fraction)")
        held_out: str = param("", help="a text file listing the private images a given model never trained on "
                                       "(paths relative to root, e.g. alice/3.jpg): the held-out split, instead of "
                                       "test_fraction")
        private_fraction: float = param(0.5, help="share of identities that are private", low=0, high=1, low_open=True)
        test_fraction: float = param(0.25, help="share of each private identity's images held out", low=0, high=1, low_open=True)
        evaluator_share: float = param(0.0, help="share of each private identity's images kept for a disjoint judge "
                                       "(0: none, the judge trains on the private training images)", low=0, high=1)
        population_share: float = param(0.0, help="share of each private identity's images kept for a membership "
                                        "attacker's population (0: none; shadow-model attacks then refuse)",
                                        low=0, high=1)
        seed: int = param(0, help="seed of the identity and image splits", low=0)
        label: str = param("", help="short name in tables and file names (default: the folder's name)")
        overrepresent: int = param(1, help="times the target trains on each training image of 'overrepresented'",
                                   low=1)
        overrepresented: str = param("", help="the private identity folder that 'overrepresent' repeats")

    @classmethod
    def display_name(cls, params: Any) -> str:
        return params.label or Path(params.root).expanduser().resolve().name

    def check(self) -> None:
        p = self.params
        root = Path(p.root).expanduser()
        if not root.is_dir():
            raise ConfigError(f"dataset 'imagefolder': parameter 'root' is '{root}', which is not a folder")
        if p.overrepresent > 1 and not (root / p.overrepresented).is_dir():
            raise ConfigError(f"dataset 'imagefolder': overrepresent {p.overrepresent} needs 'overrepresented', one "
                              f"identity folder of '{root}'; got '{p.overrepresented}'")
        for key in ("classes", "held_out"):
            value = getattr(p, key)
            if value and not Path(value).expanduser().is_file():
                raise ConfigError(f"dataset 'imagefolder': parameter '{key}' is '{value}', which is not a file")
        if p.held_out and p.evaluator_share > 0:
            raise ConfigError("dataset 'imagefolder': held_out and evaluator_share > 0 cannot be combined (the judge "
                              "of a held_out split trains on the private training images)")
        spared = p.test_fraction + p.evaluator_share + p.population_share
        if spared >= 1:
            raise ConfigError(f"dataset 'imagefolder': test_fraction + evaluator_share + population_share = "
                              f"{spared:g} must be below 1 (the rest trains the target)")
        if p.held_out and p.population_share > 0:
            raise ConfigError("dataset 'imagefolder': held_out and population_share > 0 cannot be combined (a given "
                              "model's held-out images are its only images known to be unseen)")

    def spares_evaluator_images(self) -> bool:
        return self.params.evaluator_share > 0

    def class_order_given(self) -> bool:
        """Only with ``classes``: folders taken in sorted order need not be the model's class order."""
        return bool(self.params.classes)

    def split_given(self) -> bool:
        """Only with ``held_out``: a random split of the user's folder would call images their
        model trained on 'held out', and its test accuracy and membership labels would be wrong."""
        return bool(self.params.held_out)

    def num_classes(self) -> int | None:
        if self.params.classes:
            return len(self._class_order())
        return len(self.params.private) or None

    def _class_order(self) -> list[str]:
        """The ``classes`` file's folder names."""
        return _lines(self.params.classes)

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
        if p.classes:
            private_names = self._class_order()
            unknown = [n for n in private_names if n not in names]
            if unknown or len(set(private_names)) != len(private_names):
                raise DataError(f"imagefolder: classes file '{p.classes}' must name distinct identity folders of "
                                f"'{root}'; unknown: {unknown}, found: {names}")
        elif p.private:
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
        px, py, paths = self._read(root, private_names)
        if p.held_out:
            parts = self._held_out_split(paths, py, private_names)
        else:
            fractions = [1 - p.test_fraction - p.evaluator_share - p.population_share, p.test_fraction]
            if p.evaluator_share > 0:
                self._check_spare(py, private_names)
                fractions.append(p.evaluator_share)
            if p.population_share > 0:
                fractions.append(p.population_share)
            parts = split_per_class(py, fractions, p.seed, f"imagefolder '{root}'")
        qx, qy, _ = self._read(root, public_names)
        x, y = torch.from_numpy(px), torch.from_numpy(py)
        meta = DatasetMeta(
            name="imagefolder",
            num_classes=len(private_names),
            shape=(p.channels, p.size, p.size),
            identity_names=private_names,
            public_kind="disjoint identities",
            extra={"root": str(root), "public_identities": public_names,
                   "overrepresented_identity": self._overrepresented(private_names),
                   "overrepresent": p.overrepresent},
        )
        train, test, *spare = (Split(x[i], y[i]) for i in parts)
        pool = spare.pop(0) if p.evaluator_share > 0 else None
        splits = DataSplits(train, test, Split(torch.from_numpy(qx), torch.from_numpy(qy)), pool, meta,
                            population=spare[0] if spare else None)
        k = meta.extra["overrepresented_identity"]
        if k is None or p.overrepresent == 1:
            return splits
        repeats = train.of_class(k).repeat(p.overrepresent - 1, 1, 1, 1)
        return splits.with_defended_train(Split(torch.cat([train.x, repeats]),
                                                torch.cat([train.y, torch.full((len(repeats),), k)])))

    def _overrepresented(self, private_names: list[str]) -> int | None:
        """The class index of the named ``overrepresented`` identity (None when none is named; named
        with ``overrepresent: 1`` it is the study's control); it must be a private identity."""
        p = self.params
        if not p.overrepresented:
            return None
        if p.overrepresented not in private_names:
            raise DataError(f"imagefolder: overrepresented identity '{p.overrepresented}' is not private; "
                            f"private: {private_names}")
        return private_names.index(p.overrepresented)

    def _held_out_split(self, paths: list[str], labels: np.ndarray, names: list[str]) -> list[np.ndarray]:
        """Training and held-out indices as the ``held_out`` file says: what a given model never saw."""
        listed = set(_lines(self.params.held_out))
        unknown = sorted(listed - set(paths))
        if unknown:
            raise DataError(f"imagefolder: held_out lists {len(unknown)} image(s) that are not private images of the "
                            f"folder, e.g. {unknown[:3]} (paths are relative to root, like {paths[0]})")
        test = np.array([path in listed for path in paths])
        for k, name in enumerate(names):
            mine = labels == k
            if test[mine].all() or not test[mine].any():
                raise DataError(f"imagefolder: identity '{name}' needs training and held-out images; held_out lists "
                                f"{int(test[mine].sum())} of its {int(mine.sum())}")
        return [np.flatnonzero(~test), np.flatnonzero(test)]

    def _check_spare(self, labels: np.ndarray, names: list[str]) -> None:
        """A disjoint judge needs at least two images per identity beside one to train and one to test on."""
        p = self.params
        for k, name in enumerate(names):
            n = int((labels == k).sum())
            spare = n - max(1, int(np.floor((1 - p.test_fraction - p.evaluator_share) * n))) - max(
                1, int(np.floor(p.test_fraction * n)))
            if spare < 2:
                raise DataError(
                    f"imagefolder: identity '{name}' has {n} distinct images, too few to set {spare} aside for a "
                    f"disjoint evaluator (at least 2 needed beside training and test images); raise evaluator_share, "
                    "add images, or use evaluator: {data: private-train}")

    def _read(self, root: Path, identities: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Images, labels and paths relative to ``root`` (``identity/file``)."""
        images, labels, paths = [], [], []
        mode = "L" if self.params.channels == 1 else "RGB"
        for label, name in enumerate(identities):
            for path in _distinct_images(root / name):
                try:
                    with Image.open(path) as im:
                        im = im.convert(mode).resize((self.params.size,) * 2, Image.Resampling.BILINEAR)
                        array = np.asarray(im, dtype=np.float32) / 255.0
                except (UnidentifiedImageError, OSError) as exc:
                    raise DataError(f"imagefolder: cannot decode image '{path}': {exc}") from exc
                images.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
                labels.append(label)
                paths.append(f"{name}/{path.name}")
        return np.stack(images).astype(np.float32), np.asarray(labels, dtype=np.int64), paths


def _lines(path: str) -> list[str]:
    """A list file's entries: blank lines and ``#`` comments skipped."""
    lines = Path(path).expanduser().read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _images_in(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def _distinct_images(folder: Path) -> list[Path]:
    """The folder's images without byte-identical copies (the first by name is kept; a warning names the rest)."""
    seen: dict[str, Path] = {}
    dropped = []
    for path in _images_in(folder):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:
            dropped.append(f"{path.name} (= {seen[digest].name})")
        else:
            seen[digest] = path
    if dropped:
        warnings.warn(f"imagefolder: dropped {len(dropped)} duplicate image(s) in '{folder.name}': {', '.join(dropped)}",
                      stacklevel=3)
    return list(seen.values())
