"""The attacker's learned image prior: a small GAN trained on the public split only.

GMI, KEDMI, Mirror and BREP-MI search a generator's latent space instead of pixels, so what
they recover stays on the manifold of faces. At CPU scale the family is a DCGAN-shaped
generator (upsample + conv, GroupNorm) against a spectrally normalised discriminator with
the hinge loss, and differentiable augmentation (DiffAugment: Zhao et al., NeurIPS 2020) on
both real and generated images, which is what keeps a discriminator from memorising a
public split of a few thousand images. The attacks reuse the discriminator as GMI's realism
term. Training sees ``public`` images only; a generator that collapsed to one image is
reported as failed, with the measured diversity, rather than handed to an attack.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm
from tqdm import tqdm


@dataclass(frozen=True)
class PriorPlan:
    """How the GAN is trained (the grid's ``prior:`` mapping; its shape is the ``GanPrior``'s)."""

    steps: int
    batch_size: int
    lr: float


def _up_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(8, cout),
                         nn.LeakyReLU(0.2))


def _down_block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2))


def _stages(size: int) -> int:
    """Doublings from a 4×4 seed to the smallest power of two at least ``size`` (and 8): the
    networks work at that side, resized to and from the dataset's own."""
    return max(1, math.ceil(math.log2(size / 4)))


def _resized(x: Tensor, side: int) -> Tensor:
    return x if x.shape[-1] == side and x.shape[-2] == side else F.interpolate(
        x, size=(side, side), mode="bilinear", align_corners=False, antialias=True)


class Generator(nn.Module):
    """Latent ``z`` (N×latent_dim) to images N×C×H×W in [0, 1]; channels halve as the side doubles."""

    def __init__(self, shape: tuple[int, int, int], latent_dim: int, width: int) -> None:
        super().__init__()
        c, h, w = shape
        stages = _stages(max(h, w))
        chans = [width * 2 ** (stages - 1 - i) for i in range(stages)] + [width // 2]
        self.seed_shape = (chans[0], 4, 4)
        self.out_size = (h, w)
        self.project = nn.Sequential(nn.Linear(latent_dim, chans[0] * 16), nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*(_up_block(chans[i], chans[i + 1]) for i in range(stages)))
        self.to_image = nn.Conv2d(chans[-1], c, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        x = self.to_image(self.body(self.project(z).view(len(z), *self.seed_shape)))
        if tuple(x.shape[-2:]) != self.out_size:
            x = F.interpolate(x, size=self.out_size, mode="bilinear", align_corners=False, antialias=True)
        return torch.sigmoid(x)


class Discriminator(nn.Module):
    """Images to one realism score each (higher: more like the public data)."""

    def __init__(self, shape: tuple[int, int, int], width: int) -> None:
        super().__init__()
        c, h, w = shape
        stages = _stages(max(h, w))
        self.side = 4 * 2**stages
        chans = [c] + [width // 2 * 2**i for i in range(stages)]
        self.body = nn.Sequential(*(_down_block(chans[i], chans[i + 1]) for i in range(stages)))
        self.score = spectral_norm(nn.Linear(chans[-1] * 16, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.score(self.body(_resized(2 * x - 1, self.side)).flatten(1)).squeeze(1)


class GanPrior(nn.Module):
    """A trained generator and its discriminator: what a latent-space attack is handed.

    ``generate`` and ``realism`` are all an attack uses (see ``bench.attacks.latent``)."""

    def __init__(self, shape: tuple[int, int, int], latent_dim: int, width: int) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self._arguments = (tuple(shape), latent_dim, width)
        self.generator = Generator(shape, latent_dim, width)
        self.discriminator = Discriminator(shape, width)

    def generate(self, z: Tensor) -> Tensor:
        return self.generator(z)

    def realism(self, x: Tensor) -> Tensor:
        return self.discriminator(x)

    def freeze(self) -> GanPrior:
        """Eval mode, no parameter gradients: attacks differentiate through it, never train it."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its arguments and state dict (spectral norm's parametrizations pickle no
        other way): the prior crosses to the attacker's process like this."""
        frozen = not any(p.requires_grad for p in self.parameters())
        return _rebuilt, (self._arguments, self.state_dict(), self.training, frozen)


def _rebuilt(arguments: tuple[Any, ...], state: dict[str, Tensor], training: bool, frozen: bool) -> GanPrior:
    prior = GanPrior(*arguments)
    prior.load_state_dict(state)
    prior.train(training)
    return prior.freeze() if frozen else prior


def diff_augment(x: Tensor, g: torch.Generator) -> Tensor:
    """Differentiable translation (±1/8 of the side, zero padded) and brightness, per image."""
    n, _, h, w = x.shape
    shift = max(1, h // 8)
    x = x + (torch.rand(n, 1, 1, 1, generator=g) - 0.5) * 0.4
    padded = F.pad(x, (shift, shift, shift, shift))
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=g)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=g)
    rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None].expand(n, x.shape[1], h, w + 2 * shift)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :].expand(n, x.shape[1], h, w)
    return out.gather(3, cols)


def diversity(prior: GanPrior, n: int, g: torch.Generator) -> float:
    """Mean per-pixel standard deviation over ``n`` samples: near 0 when the generator collapsed."""
    with torch.no_grad():
        samples = prior.generate(torch.randn(n, prior.latent_dim, generator=g))
    return float(samples.std(0).mean())


def train_gan(prior: GanPrior, public: Tensor, plan: PriorPlan, seed: int, desc: str = "prior") -> dict[str, Any]:
    """Hinge-loss GAN training on ``public`` images (the only data it is given). Returns the loss
    history, the time, the diversity of samples against the public data's own, and ``failure``:
    why the generator is unusable (non-finite losses, collapse), or None."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    opt_g = torch.optim.Adam(prior.generator.parameters(), lr=plan.lr, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(prior.discriminator.parameters(), lr=plan.lr, betas=(0.0, 0.9))
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    prior.train()
    for step in tqdm(range(plan.steps), desc=desc, leave=False, mininterval=2):
        real = public[torch.randint(len(public), (plan.batch_size,), generator=g)]
        z = torch.randn(plan.batch_size, prior.latent_dim, generator=g)
        fake = prior.generate(z)
        loss_d = (F.relu(1 - prior.realism(diff_augment(real, g))).mean()
                  + F.relu(1 + prior.realism(diff_augment(fake.detach(), g))).mean())
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = -prior.realism(diff_augment(fake, g)).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if not (math.isfinite(loss_d.item()) and math.isfinite(loss_g.item())):
            return {"history": history, "seconds": time.perf_counter() - start,
                    "failure": f"the generator's losses became non-finite at step {step}"}
        if step % 100 == 0 or step == plan.steps - 1:
            history.append({"step": step, "loss_d": loss_d.item(), "loss_g": loss_g.item()})
    prior.freeze()
    spread = diversity(prior, 256, g)
    reference = float(public.std(0).mean())
    failure = None if spread >= 0.2 * reference else (
        f"the generator collapsed: its samples vary {spread:.3f} per pixel against the public data's "
        f"{reference:.3f} (a usable prior varies at least a fifth as much)")
    return {"history": history, "seconds": time.perf_counter() - start, "diversity": spread,
            "public_diversity": reference, "public_images": len(public), "failure": failure}
