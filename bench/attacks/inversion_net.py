"""Inversion-Net: learn to decode prediction vectors into images from public data."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from bench.attacks.base import AttackResult, InversionAttack
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("inversion-net")
class InversionNet(InversionAttack):
    """Yang, Zhang, Chang & Liang, CCS 2019, "Neural Network Inversion in Adversarial Setting
    via Background Knowledge Alignment".

    Black-box, learning-based: query the oracle on public images (and, when the budget allows
    more, on mixtures of two public images), train a decoder from the returned — possibly
    rounded or truncated — vectors (as log-probabilities) back to the images, then decode for
    each target identity the returned vector most confident in it (the mean of the ``top``
    such). Decoding an ideal one-hot vector instead leaves the decoder's training distribution
    when public and private identities differ: on SynthFaces it decodes to chance-level faces.
    Every public image queried counts.
    Example: ``bench run default --only attack=inversion-net``.
    """

    threat_model = ThreatModel.BLACK_BOX
    needs_public_data = True

    @dataclass(frozen=True)
    class Params:
        budget: int = param(100, help="queries per target identity (spent on public images)", low=1)
        epochs: int = param(100, help="decoder training epochs", low=1)
        lr: float = param(1e-3, help="Adam learning rate", low=0, low_open=True)
        hidden: int = param(512, help="decoder hidden width", low=8)
        top: int = param(1, help="returned vectors most confident in an identity averaged into the one decoded for it",
                         low=1)

    def run(self, oracle: OracleView, identities: Tensor, public: Tensor | None, rng: torch.Generator) -> AttackResult:
        assert public is not None
        p = self.params
        n = self.queries_per_identity(oracle) * len(identities)
        images = self.query_set(public, n, rng)
        vectors = torch.cat([oracle.probabilities(images[i : i + 512]) for i in range(0, len(images), 512)])
        k = oracle.num_classes
        decoder = nn.Sequential(
            nn.Linear(k, p.hidden), nn.ReLU(), nn.Linear(p.hidden, p.hidden), nn.ReLU(),
            nn.Linear(p.hidden, images[0].numel()), nn.Sigmoid(),
        )
        optimizer = torch.optim.Adam(decoder.parameters(), lr=p.lr)
        inputs, flat = _encode(vectors), images.flatten(1)
        for _ in range(p.epochs):
            order = torch.randperm(len(images), generator=rng)
            for start in range(0, len(order), 64):
                idx = order[start : start + 64]
                optimizer.zero_grad()
                F.mse_loss(decoder(inputs[idx]), flat[idx]).backward()
                optimizer.step()
        top = min(p.top, len(vectors))
        wanted = torch.stack([inputs[vectors[:, t].topk(top).indices].mean(0) for t in identities.tolist()])
        with torch.no_grad():
            x = decoder(wanted).view(len(identities), *oracle.input_shape)
        return AttackResult(reconstructions=x)

    @staticmethod
    def query_set(public: Tensor, n: int, rng: torch.Generator) -> Tensor:
        """``n`` images: the public set in random order, then random mixtures of two public images."""
        order = torch.randperm(len(public), generator=rng)
        chosen = public[order[: min(n, len(public))]]
        extra = n - len(chosen)
        if extra <= 0:
            return chosen
        a, b = torch.randint(len(public), (2, extra), generator=rng)
        w = torch.rand(extra, *([1] * (public.dim() - 1)), generator=rng)
        return torch.cat([chosen, w * public[a] + (1 - w) * public[b]])


def _encode(vectors: Tensor) -> Tensor:
    """Log-probabilities, floored, and centred per vector: the decoder's input."""
    logp = vectors.clamp_min(1e-6).log()
    return logp - logp.mean(dim=1, keepdim=True)
