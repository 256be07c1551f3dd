"""SynthFaces: a procedural face generator, the embedded stand-in for face datasets.

Each identity has fixed facial parameters (face shape, skin and hair tone, hair style, eye
spacing and size, brows, nose, mouth, and marks: glasses, beard, mole); each image adds
nuisance variation (shift, rotation, scale, lighting gradient, expression, background,
noise). Rendering is vectorised over a batch with soft (anti-aliased) shapes, so it draws
thousands of images per second on a CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from bench.data.base import Dataset, DatasetMeta, DataSplits, Split
from bench.errors import ConfigError
from bench.params import param
from bench.registry import dataset

_HAIR_COLORS = torch.tensor(
    [[0.08, 0.06, 0.05], [0.35, 0.22, 0.12], [0.85, 0.72, 0.45], [0.65, 0.25, 0.10], [0.70, 0.70, 0.70]]
)
_SKIN_TINT = torch.tensor([1.0, 0.82, 0.70])
MAX_DRAWS = 50  # rounds of public candidates before a too-strict min_identity_distance is refused


def _uniform(g: torch.Generator, n: int, low: float, high: float) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=g)


def sample_identities(n: int, g: torch.Generator) -> dict[str, Tensor]:
    """Fixed facial parameters of ``n`` identities (one value per identity and key)."""
    u = lambda lo, hi: _uniform(g, n, lo, hi)  # noqa: E731
    bern = lambda p: (torch.rand(n, generator=g) < p).float()  # noqa: E731
    hair_idx = torch.randint(len(_HAIR_COLORS), (n,), generator=g)
    return {
        "face_w": u(0.50, 0.72), "face_h": u(0.68, 0.88), "chin": u(0.0, 0.35),
        "skin": u(0.45, 0.95), "hair_rgb": _HAIR_COLORS[hair_idx] * u(0.7, 1.1)[:, None],
        "hairline": u(-0.62, -0.28), "hair_len": u(0.0, 1.1), "hair_vol": u(1.02, 1.22),
        "eye_dx": u(0.17, 0.30), "eye_y": u(-0.18, 0.0), "eye_size": u(0.055, 0.10),
        "brow_dy": u(0.09, 0.16), "brow_thick": u(0.02, 0.05), "brow_tilt": u(-0.35, 0.35),
        "nose_len": u(0.10, 0.24), "nose_w": u(0.035, 0.08),
        "mouth_y": u(0.30, 0.48), "mouth_w": u(0.12, 0.28), "lip": u(0.02, 0.05),
        "glasses": bern(0.3), "beard": bern(0.25), "mole": bern(0.35),
        "mole_u": u(-0.35, 0.35), "mole_v": u(-0.1, 0.45),
    }


def sample_nuisance(n: int, g: torch.Generator) -> dict[str, Tensor]:
    """Per-image variation that does not belong to the identity."""
    u = lambda lo, hi: _uniform(g, n, lo, hi)  # noqa: E731
    return {
        "du": u(-0.08, 0.08), "dv": u(-0.08, 0.08), "angle": u(-0.17, 0.17), "scale": u(0.92, 1.08),
        "light_dir": u(0.0, 2 * math.pi), "light": u(0.0, 0.3), "background": u(0.1, 0.9),
        "smile": u(-0.08, 0.25), "eye_open": u(0.45, 1.1), "brow_raise": u(-0.02, 0.04),
    }


def neutral_nuisance(n: int) -> dict[str, Tensor]:
    """The nuisance of an identity's template: centred, upright, evenly lit, mid-grey background."""
    values = {"du": 0.0, "dv": 0.0, "angle": 0.0, "scale": 1.0, "light_dir": 0.0, "light": 0.0, "background": 0.5,
              "smile": 0.08, "eye_open": 0.8, "brow_raise": 0.01}
    return {k: torch.full((n,), v) for k, v in values.items()}


def templates(identity: dict[str, Tensor], size: int, channels: int) -> Tensor:
    """Each identity drawn once without nuisance or noise, flattened: what makes two people look alike."""
    n = len(next(iter(identity.values())))
    return render(identity, neutral_nuisance(n), size, channels, 0.0, torch.Generator()).flatten(1)


def identity_distances(a: dict[str, Tensor], b: dict[str, Tensor], size: int, channels: int) -> Tensor:
    """Root-mean-square pixel differences between the templates of identities ``a`` (rows) and
    ``b``: comparable across image sizes and channels."""
    return torch.cdist(templates(a, size, channels), templates(b, size, channels)) / math.sqrt(channels * size * size)


def subset(identity: dict[str, Tensor], keep: Tensor) -> dict[str, Tensor]:
    return {k: v[keep] for k, v in identity.items()}


def render(identity: dict[str, Tensor], nuisance: dict[str, Tensor], size: int, channels: int,
           noise: float, g: torch.Generator) -> Tensor:
    """Draw one face per row of ``identity``/``nuisance`` (same length) as N×C×S×S in [0, 1]."""
    n = len(nuisance["du"])
    c = lambda t: t.view(n, 1, 1)  # noqa: E731
    grid = torch.linspace(-1, 1, size)
    v0, u0 = torch.meshgrid(grid, grid, indexing="ij")
    cos, sin = c(torch.cos(nuisance["angle"])), c(torch.sin(nuisance["angle"]))
    uu, vv = u0 - c(nuisance["du"]), v0 - c(nuisance["dv"])
    u = (cos * uu + sin * vv) / c(nuisance["scale"])
    v = (-sin * uu + cos * vv) / c(nuisance["scale"])
    sharp = size * 0.9

    def soft(dist: Tensor) -> Tensor:  # 1 inside (dist < 0), anti-aliased edge
        return torch.sigmoid(-dist * sharp)

    def ellipse(cu: Tensor | float, cv: Tensor | float, a: Tensor | float, b: Tensor | float) -> Tensor:
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        r = torch.sqrt(((u - cu) / a) ** 2 + ((v - cv) / b) ** 2 + 1e-9)
        return soft((r - 1) * torch.minimum(a, b))

    def paint(img: Tensor, mask: Tensor, rgb: Tensor) -> Tensor:
        return img + mask[:, None] * (rgb.view(n, 3, 1, 1) - img)

    idn = identity
    skin_rgb = c(idn["skin"]).view(n, 1) * _SKIN_TINT
    hair_rgb = idn["hair_rgb"]
    img = c(nuisance["background"])[:, None].expand(n, 3, size, size).clone()
    face_w, face_h = c(idn["face_w"]), c(idn["face_h"])
    # hair behind the head: a larger ellipse, cut off below by the hair length
    hair_back = ellipse(0.0, 0.0, face_w * c(idn["hair_vol"]), face_h * c(idn["hair_vol"]) * 1.02)
    hair_back = hair_back * soft(v - (c(idn["hairline"]) + c(idn["hair_len"])))
    img = paint(img, hair_back, hair_rgb)
    # face, narrowed toward the chin
    narrow = 1 - c(idn["chin"]) * torch.clamp(v / face_h, 0, 1) ** 2
    face = ellipse(0.0, 0.05, face_w * narrow, face_h)
    img = paint(img, face, skin_rgb)
    # fringe: hair over the forehead above the hairline
    img = paint(img, face * soft(v - c(idn["hairline"]) + 0.04 * torch.cos(6 * u)), hair_rgb)
    beard = c(idn["beard"]) * face * soft(c(idn["mouth_y"]) - 0.12 - v) * 0.85
    img = paint(img, beard, hair_rgb * 0.8)
    dark = torch.full((n, 3), 0.08)
    eye_y, eye_dx, eye_size = c(idn["eye_y"]), c(idn["eye_dx"]), c(idn["eye_size"])
    for side in (-1.0, 1.0):
        eye = ellipse(side * eye_dx, eye_y, eye_size * 1.3, eye_size * c(nuisance["eye_open"]))
        img = paint(img, eye, dark)
        brow_v = eye_y - c(idn["brow_dy"]) - c(nuisance["brow_raise"]) + side * c(idn["brow_tilt"]) * (u - side * eye_dx)
        brow = soft((v - brow_v).abs() - c(idn["brow_thick"])) * soft((u - side * eye_dx).abs() - eye_size * 1.8)
        img = paint(img, brow, hair_rgb * 0.7)
        ring = c(idn["glasses"]) * soft(
            (torch.sqrt((u - side * eye_dx) ** 2 + (v - eye_y) ** 2) - eye_size * 2.2).abs() - 0.025
        )
        img = paint(img, ring, dark)
    bridge = c(idn["glasses"]) * soft((v - eye_y).abs() - 0.02) * soft(u.abs() - (eye_dx - eye_size * 2.2))
    img = paint(img, bridge, dark)
    nose_top = eye_y + 0.05
    nose = soft((u.abs() - c(idn["nose_w"]) * torch.clamp((v - nose_top) / c(idn["nose_len"]), 0, 1)))
    nose = nose * soft(nose_top - v) * soft(v - nose_top - c(idn["nose_len"]))
    img = paint(img, nose * 0.5, skin_rgb * 0.55)
    mouth_v = c(idn["mouth_y"]) + c(nuisance["smile"]) * (1 - (u / c(idn["mouth_w"])) ** 2)
    mouth = soft((v - mouth_v).abs() - c(idn["lip"])) * soft(u.abs() - c(idn["mouth_w"]))
    img = paint(img, mouth, torch.tensor([0.55, 0.18, 0.2]).expand(n, 3) * c(idn["skin"]).view(n, 1))
    mole = c(idn["mole"]) * ellipse(c(idn["mole_u"]), c(idn["mole_v"]), 0.035, 0.035) * face
    img = paint(img, mole, dark)
    a = nuisance["light_dir"]
    light = 1 + c(nuisance["light"]) * (c(torch.cos(a)) * u0 + c(torch.sin(a)) * v0)
    img = img * light[:, None]
    if channels == 1:
        img = (img * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    img = img + noise * torch.randn(img.shape, generator=g)
    return img.clamp(0, 1).float()


@dataset("synthfaces")
class SynthFaces(Dataset):
    """Procedural faces: private identities, disjoint public identities, fresh evaluator images
    and fresh images of the private identities for a membership attacker's population.

    Public people come from the same generator and distribution as the private ones; only a
    near-duplicate of a private person (template nearer than ``min_identity_distance`` in RMS
    pixel difference; at 32×32 grey the median pair of people lies 0.12 apart, and without the
    rule the nearest public person to a private one lies 0.054 away, the nearest of all 0.033) is
    redrawn, so a public look-alike cannot stand in for a private face.

    ``overrepresent`` gives identity ``overrepresented_identity`` that many times more
    training images (the "CEO in the training set" case); at 1 that identity is the control.
    """

    judge_data = "disjoint (default: fresh images of the private identities) or private-train"

    @dataclass(frozen=True)
    class Params:
        identities: int = param(20, help="private identities (classes)", low=2)
        images_per_identity: int = param(30, help="private training images per identity", low=1)
        test_images: int = param(10, help="held-out private images per identity", low=1)
        public_identities: int = param(40, help="other identities given to the attacker", low=1)
        evaluator_images: int = param(60, help="fresh images per private identity for the evaluator", low=1)
        population_images: int = param(60, help="fresh images per private identity for a membership attacker's "
                                                "population (0: none)", low=0)
        min_identity_distance: float = param(
            0.06, help="least template distance (RMS pixel difference) of a public identity from every private "
                       "one: near-duplicates of a private person are redrawn", low=0)
        size: int = param(32, help="image side in pixels", low=8, high=256)
        channels: int = param(1, help="1 (grayscale) or 3 (RGB)", choices=(1, 3))
        noise: float = param(0.03, help="pixel noise standard deviation", low=0)
        overrepresent: int = param(1, help="training-image multiplier of one identity", low=1)
        overrepresented_identity: int = param(0, help="which identity is over-represented", low=0)
        seed: int = param(0, help="seed of identities and images", low=0)

    def check(self) -> None:
        p = self.params
        if p.overrepresented_identity >= p.identities:
            raise ConfigError(
                f"dataset 'synthfaces': parameter 'overrepresented_identity' is {p.overrepresented_identity}; "
                f"allowed: 0..{p.identities - 1}"
            )

    def num_classes(self) -> int:
        return self.params.identities

    def spares_evaluator_images(self) -> bool:
        return True

    def load(self) -> DataSplits:
        self.check()
        p = self.params
        g = torch.Generator().manual_seed(p.seed)
        people = self.identities(g)
        counts = torch.full((p.identities,), p.images_per_identity)
        counts[p.overrepresented_identity] *= p.overrepresent
        private = torch.arange(p.identities)
        public = torch.arange(p.identities, p.identities + p.public_identities)
        meta = DatasetMeta(
            name="synthfaces",
            num_classes=p.identities,
            shape=(p.channels, p.size, p.size),
            identity_names=[f"person-{i:03d}" for i in range(p.identities)],
            public_kind="disjoint identities",
            extra={"overrepresented_identity": p.overrepresented_identity, "overrepresent": p.overrepresent},
        )
        return DataSplits(
            private_train=self.draw(people, torch.repeat_interleave(private, counts), 1),
            private_test=self.draw(people, private.repeat_interleave(p.test_images), 2),
            public=self.draw(people, public.repeat_interleave(p.images_per_identity), 3, label_offset=p.identities),
            evaluator_pool=self.draw(people, private.repeat_interleave(p.evaluator_images), 4),
            meta=meta,
            population=self.draw(people, private.repeat_interleave(p.population_images), 5)
            if p.population_images else None,
        )

    def identities(self, g: torch.Generator) -> dict[str, Tensor]:
        """The private identities, then public ones from the same distribution, each redrawn
        while it lies nearer than ``min_identity_distance`` to a private identity's template."""
        p = self.params
        private = sample_identities(p.identities, g)
        public: list[dict[str, Tensor]] = []
        accepted = 0
        for _ in range(MAX_DRAWS):
            candidates = sample_identities(2 * p.public_identities, g)
            near = identity_distances(candidates, private, p.size, p.channels).min(1).values
            keep = torch.nonzero(near >= p.min_identity_distance).flatten()[: p.public_identities - accepted]
            public.append(subset(candidates, keep))
            accepted += len(keep)
            if accepted == p.public_identities:
                return {k: torch.cat([private[k], *(d[k] for d in public)]) for k in private}
        raise ConfigError(
            f"dataset 'synthfaces': only {accepted} of {p.public_identities} public identities lie at least "
            f"min_identity_distance={p.min_identity_distance} from every private one after {MAX_DRAWS} draws; "
            "allowed: a smaller min_identity_distance or fewer identities")

    def draw(self, people: dict[str, Tensor], who: Tensor, stream: int, label_offset: int = 0) -> Split:
        """Images of identities ``who`` from an independent random stream of this dataset seed."""
        p = self.params
        g = torch.Generator().manual_seed(p.seed * 1009 + stream)
        identity = {k: v[who] for k, v in people.items()}
        x = render(identity, sample_nuisance(len(who), g), p.size, p.channels, p.noise, g)
        return Split(x, (who - label_offset).long())
