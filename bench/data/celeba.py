"""CelebA in the field's model-inversion protocol (GMI, Zhang et al. CVPR 2020; KEDMI, Chen et
al. ICCV 2021): the 1,000 identities with the most photos are private, photos of the other
identities (or an FFHQ folder) are the attacker's public data, 64×64 RGB crops of the aligned
faces. Not shipped: the user downloads CelebA and names the folder.

The root holds ``img_align_celeba/`` and CelebA's ``identity_CelebA.txt`` (``<image> <identity>``
per line). Where the user has the GMI/KEDMI split files (``<image> <label>`` per line, labels
0..999), ``train_file`` and ``test_file`` fix the private training and test images exactly as
the papers used them; otherwise each private identity's photos are split by ``test_fraction``.
"""

from __future__ import annotations

from collections import Counter
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

IDENTITY_FILE = "identity_CelebA.txt"
IMAGES = "img_align_celeba"
CROP = 108  # the GMI/KEDMI centre crop of the 178×218 aligned faces, then resized
FFHQ_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataset("celeba")
class CelebA(Dataset):
    """CelebA's most-photographed identities as the private people, the others (or FFHQ) as the
    public: the GMI/KEDMI protocol at 64×64."""

    judge_data = "private-train (the protocol's: the evaluator trains on the private training images)"
    unlabelled = ("root", "train_file", "test_file", "public_root")

    @dataclass(frozen=True)
    class Params:
        root: str = param(help=f"the CelebA folder holding {IMAGES}/ and {IDENTITY_FILE}")
        identities: int = param(1000, help="private identities, the ones with the most photos (with split files: "
                                           "theirs)", low=2)
        public: str = param("celeba", help="the public data: photos of the other CelebA identities, or the "
                                           "images of an FFHQ folder (public_root)", choices=("celeba", "ffhq"))
        public_root: str = param("", help="with public: ffhq, the folder of FFHQ images (any depth)")
        public_images: int = param(30000, help="public images at most (GMI used 30,000)", low=1)
        train_file: str = param("", help="the GMI/KEDMI private training split file (<image> <label> per line)")
        test_file: str = param("", help="the GMI/KEDMI private test split file (<image> <label> per line)")
        test_fraction: float = param(0.1, help="share of each private identity's photos held out, without split "
                                               "files", low=0, high=1, low_open=True)
        size: int = param(64, help="images are resized to size×size after the centre crop", low=8, high=256)
        seed: int = param(0, help="seed of the split without split files, and of the public sample", low=0)

    def check(self) -> None:
        p = self.params
        root = Path(p.root).expanduser()
        missing = [str(root / name) for name in (IMAGES, IDENTITY_FILE) if not (root / name).exists()]
        if missing:
            raise ConfigError(f"dataset 'celeba': {', '.join(missing)} not found. Download CelebA's aligned images "
                              f"(img_align_celeba.zip) and {IDENTITY_FILE} from "
                              "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, unpack them into one folder and "
                              "give it as root")
        if bool(p.train_file) != bool(p.test_file):
            raise ConfigError("dataset 'celeba': give both train_file and test_file (the GMI/KEDMI split), or neither")
        for key in ("train_file", "test_file"):
            value = getattr(p, key)
            if value and not Path(value).expanduser().is_file():
                raise ConfigError(f"dataset 'celeba': parameter '{key}' is '{value}', which is not a file")
        if p.public == "ffhq" and not Path(p.public_root).expanduser().is_dir():
            raise ConfigError(f"dataset 'celeba': public: ffhq needs public_root, a folder of FFHQ images; got "
                              f"'{p.public_root}'")

    def num_classes(self) -> int | None:
        return self.params.identities

    def split_given(self) -> bool:
        """Only with the split files: then a model trained on the papers' split can be audited."""
        return bool(self.params.train_file)

    def load(self) -> DataSplits:
        self.check()
        p = self.params
        root = Path(p.root).expanduser()
        owner = read_identities(root / IDENTITY_FILE)
        if p.train_file:
            train, test = read_split(p.train_file, owner), read_split(p.test_file, owner)
            label = split_labels({**train, **test}, owner)
            if set(train) & set(test):
                raise DataError(f"celeba: {len(set(train) & set(test))} images are in both split files, "
                                f"e.g. {sorted(set(train) & set(test))[:3]}")
            names = [*train, *test]
            parts = [np.arange(len(train)), np.arange(len(train), len(names))]
        else:
            label = {identity: k for k, identity in enumerate(most_photographed(owner, p.identities))}
            names = sorted(image for image, identity in owner.items() if identity in label)
            parts = split_per_class(np.array([label[owner[n]] for n in names]), [1 - p.test_fraction, p.test_fraction],
                                    p.seed, "celeba")
        x, y = self._read(root, names), torch.tensor([label[owner[n]] for n in names])
        private = sorted(label, key=label.get)
        meta = DatasetMeta(name="celeba", num_classes=len(private), shape=(3, p.size, p.size),
                           identity_names=[f"celeba-{i}" for i in private], public_kind="disjoint identities",
                           extra={"root": str(root), "public": p.public, "split_files": bool(p.train_file)})
        train_split, test_split = (Split(x[i], y[i]) for i in parts)
        return DataSplits(train_split, test_split, self._public(root, owner, label), None, meta)

    def _public(self, root: Path, owner: dict[str, str], label: dict[str, int]) -> Split:
        """Up to ``public_images`` public photos: of the other identities (their labels, from 0), or FFHQ (one label)."""
        p = self.params
        rng = np.random.default_rng(p.seed)
        if p.public == "ffhq":
            files = sorted(f for f in Path(p.public_root).expanduser().rglob("*") if f.suffix.lower() in FFHQ_SUFFIXES)
            if not files:
                raise DataError(f"celeba: public_root '{p.public_root}' holds no images ({', '.join(FFHQ_SUFFIXES)})")
            files = [files[i] for i in sorted(rng.permutation(len(files))[: p.public_images])]
            return Split(torch.stack([self._image(f, crop=False) for f in files]), torch.zeros(len(files), dtype=torch.long))
        others = sorted(image for image, identity in owner.items() if identity not in label)
        if not others:
            raise DataError("celeba: every identity is private; lower 'identities' to leave public ones")
        chosen = [others[i] for i in sorted(rng.permutation(len(others))[: p.public_images])]
        public_ids = {identity: k for k, identity in enumerate(sorted({owner[n] for n in chosen}, key=int))}
        return Split(self._read(root, chosen), torch.tensor([public_ids[owner[n]] for n in chosen]))

    def _read(self, root: Path, names: list[str]) -> torch.Tensor:
        return torch.stack([self._image(root / IMAGES / name, crop=True) for name in names])

    def _image(self, path: Path, crop: bool) -> torch.Tensor:
        """One RGB image in [0, 1], C×H×W: the aligned face's centre crop (GMI/KEDMI) or the whole image, resized."""
        try:
            with Image.open(path) as im:
                im = im.convert("RGB")
                if crop:
                    w, h = im.size
                    left, top = (w - CROP) // 2, (h - CROP) // 2
                    im = im.crop((left, top, left + CROP, top + CROP))
                im = im.resize((self.params.size,) * 2, Image.Resampling.BILINEAR)
                array = np.asarray(im, dtype=np.float32) / 255.0
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"celeba: cannot read image '{path}': {exc}") from exc
        return torch.from_numpy(array.transpose(2, 0, 1).copy())


def read_identities(path: Path) -> dict[str, str]:
    """CelebA's ``identity_CelebA.txt``: image file name -> identity number (as text)."""
    owner = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit():
            raise DataError(f"celeba: {path}:{number} is not '<image> <identity>': {line!r}")
        owner[fields[0]] = fields[1]
    return owner


def most_photographed(owner: dict[str, str], k: int) -> list[str]:
    """The ``k`` identities with the most photos, most first (ties by identity number)."""
    counts = Counter(owner.values())
    if len(counts) < k + 1:
        raise DataError(f"celeba: {len(counts)} identities in the identity file; {k} private ones and at least one "
                        "public one are needed")
    return sorted(counts, key=lambda i: (-counts[i], int(i)))[:k]


def read_split(path: str, owner: dict[str, str]) -> dict[str, int]:
    """A GMI/KEDMI split file: image name -> its class label (``<image> <label>`` per line), every
    image one of CelebA's."""
    out = {}
    for number, line in enumerate(Path(path).expanduser().read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit() or fields[0] not in owner:
            raise DataError(f"celeba: {path}:{number} is not '<image> <label>' of a CelebA image: {line!r}")
        out[fields[0]] = int(fields[1])
    return out


def split_labels(labelled: dict[str, int], owner: dict[str, str]) -> dict[str, int]:
    """CelebA identity -> the split files' class label (0..K-1), which must name one identity each:
    a published checkpoint's class k is that identity."""
    label: dict[str, int] = {}
    for image, k in labelled.items():
        if label.setdefault(owner[image], k) != k:
            raise DataError(f"celeba: the split files give identity {owner[image]}'s photos labels {label[owner[image]]} "
                            f"and {k}")
    if sorted(label.values()) != list(range(len(label))):
        raise DataError(f"celeba: the split files' labels must be 0..{len(label) - 1}, one identity each")
    return label
