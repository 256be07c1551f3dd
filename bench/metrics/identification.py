"""Judging reconstructions with the independent evaluator: top-k identification and
nearest-neighbour distances in its penultimate features."""

from __future__ import annotations

import torch
from torch import Tensor

from bench.data.base import Split
from bench.models.architectures import Classifier


@torch.no_grad()
def top_k_hits(evaluator: Classifier, recon: Tensor, identities: Tensor, k: int) -> Tensor:
    """1.0 where the evaluator ranks the right identity within its top ``k`` (k capped at K)."""
    logits = evaluator.eval()(recon)
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (top == identities[:, None]).any(dim=1).float()


@torch.no_grad()
def predictions(judge: Classifier, x: Tensor, batch: int = 1024) -> Tensor:
    """The judge's top-1 class for every image."""
    judge.eval()
    return torch.cat([judge(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)]) if len(x) else \
        torch.zeros(0, dtype=torch.long)


@torch.no_grad()
def feature_knn(evaluator: Classifier, recon: Tensor, identities: Tensor, private: Split) -> tuple[Tensor, Tensor]:
    """Per reconstruction: L2 distance to the nearest private image of its class, and 1.0 where
    the nearest private image over all classes is of the right identity."""
    evaluator.eval()
    f_recon = evaluator.features(recon)
    f_private = torch.cat([evaluator.features(private.x[i : i + 1024]) for i in range(0, len(private), 1024)])
    dist = torch.cdist(f_recon, f_private)
    same = private.y[None, :] == identities[:, None]
    knn_dist = dist.masked_fill(~same, float("inf")).min(dim=1).values
    knn_hit = (private.y[dist.argmin(dim=1)] == identities).float()
    return knn_dist, knn_hit
