"""MI-Face: white-box model inversion by gradient descent on the input."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from bench.attacks.base import AttackResult, InversionAttack
from bench.attacks.basis import BasisParams, image_basis
from bench.attacks.priors import initial_images, total_variation
from bench.oracle import OracleView, ThreatModel
from bench.params import param
from bench.registry import attack


@attack("mi-face")
class MIFace(InversionAttack):
    """Fredrikson, Jha & Ristenpart, CCS 2015, "Model Inversion Attacks that Exploit
    Confidence Information and Basic Countermeasures".

    White-box: descend the cost ``1 - p_target(x)`` (or cross-entropy) plus total-variation
    and L2 priors, projecting onto [0, 1]; in pixel space as the paper, or in a low-dimensional
    ``basis`` (as NES) to give the white-box attacker the same public-data prior. The paper's
    stopping rules per identity: stop at ``confidence``, after ``patience`` steps without
    improvement, or at ``steps``. All target identities run in one batch.
    Example: ``bench run smoke --only attack=mi-face``.
    """

    threat_model = ThreatModel.WHITE_BOX
    needs_public_data = False

    @dataclass(frozen=True)
    class Params(BasisParams):
        steps: int = param(500, help="maximum gradient steps (the paper's alpha)", low=1)
        lr: float = param(0.1, help="Adam step size", low=0, low_open=True)
        patience: int = param(100, help="stop an identity after this many steps without improvement (beta)", low=1)
        confidence: float = param(1.0, help="stop an identity once its target confidence reaches this (gamma; 1: never)", low=0, high=1)
        loss: str = param("1-p", help="cost to descend: the paper's '1-p', or 'ce' (-log p)", choices=("ce", "1-p"))
        tv: float = param(0.0, help="total-variation prior weight", low=0)
        l2: float = param(0.0, help="L2 prior weight (mean squared pixel value)", low=0)
        init: str = param("zeros", help="starting image (its best approximation in the basis), or the basis' "
                          "mean image (gray; the public mean face for 'pca')", choices=("gray", "zeros", "noise", "mean"))
        basis: str = param("pixel", help="search space: pixels (the paper), public-data principal components, or a "
                           "coarse grid", choices=("pixel", "pca", "lowres"))

    def run(self, oracle: OracleView, identities: Tensor, public: Tensor | None, rng: torch.Generator) -> AttackResult:
        p = self.params
        k = len(identities)
        basis = image_basis(self.name, p, oracle.input_shape, public)
        start = torch.zeros((k, basis.dims)) if p.init == "mean" else basis.encode(
            initial_images(p.init, (k, *oracle.input_shape), rng))
        z = start.requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=p.lr)
        best_cost = torch.full((k,), float("inf"))
        best_x = basis.decode(z.detach()).clamp(0, 1)
        stale = torch.zeros(k, dtype=torch.long)
        active = torch.ones(k, dtype=torch.bool)
        for step in range(p.steps):
            idx = active.nonzero().squeeze(1)
            if len(idx) == 0:
                break
            xa = basis.decode(z if len(idx) == k else z[idx]).clamp(0, 1)
            logp = F.log_softmax(oracle.logits(xa), dim=1).gather(1, identities[idx, None]).squeeze(1)
            confidence = logp.exp()
            cost = -logp if p.loss == "ce" else 1 - confidence
            if p.tv > 0:
                cost = cost + p.tv * total_variation(xa)
            if p.l2 > 0:
                cost = cost + p.l2 * (xa**2).flatten(1).mean(1)
            optimizer.zero_grad()
            cost.sum().backward()
            with torch.no_grad():
                improved = cost.detach() < best_cost[idx]
                best_cost[idx] = torch.where(improved, cost.detach(), best_cost[idx])
                best_x[idx[improved]] = xa.detach()[improved]
                stale[idx] = torch.where(improved, 0, stale[idx] + 1)
                done = (confidence.detach() >= p.confidence) | (stale[idx] >= p.patience)
                active[idx[done]] = False
                optimizer.step()
                z.copy_(basis.encode(basis.decode(z).clamp(0, 1)))  # project back onto images in [0, 1]
            if step % 25 == 0:
                self.checkpoint(oracle, best_x, confidence=float(confidence.detach().mean()))
        return AttackResult(reconstructions=best_x.clamp(0, 1))
