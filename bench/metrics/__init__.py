"""From (AttackResult, DataSplits, evaluator) to tidy metric rows.

Per target identity a row for each of ``acc@1``, ``acc@5``, ``knn_dist``, ``knn_acc@1``,
``ssim``, ``ssim_mean``, ``psnr``, ``ssim_margin``; aggregated over identities as
``target_class = 'all'``. A metric that fails gives rows with its error, never missing rows.

Every similarity compares against the private images as collected (``splits.private_train``),
never against the copies a data-stage defense trained the target on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bench.data.base import DataSplits
from bench.metrics.identification import feature_knn, predictions, top_k_hits
from bench.metrics.similarity import best_psnr, expected_best, ssim, ssims
from bench.models.architectures import Classifier

PER_CLASS_METRICS = ("acc@1", "acc@5", "knn_dist", "knn_acc@1", "ssim", "ssim_mean", "psnr", "ssim_margin")

Row = dict[str, Any]


def reconstruction_rows(
    recon: Tensor, targets: Tensor, splits: DataSplits, evaluator: Classifier
) -> list[Row]:
    """Per-identity and aggregated rows of every reconstruction metric."""
    per_metric: dict[str, tuple[Tensor | None, str | None]] = {}

    def guarded(names: tuple[str, ...], compute: Callable[[], tuple[Tensor, ...]]) -> None:
        try:
            values = compute()
            for name, value in zip(names, values):
                per_metric[name] = (value, None)
        except Exception as exc:  # a failing metric becomes rows with its error
            for name in names:
                per_metric[name] = (None, f"{type(exc).__name__}: {exc}")

    guarded(("acc@1",), lambda: (top_k_hits(evaluator, recon, targets, 1),))
    guarded(("acc@5",), lambda: (top_k_hits(evaluator, recon, targets, 5),))
    guarded(("knn_dist", "knn_acc@1"), lambda: feature_knn(evaluator, recon, targets, splits.private_train))
    guarded(("ssim", "ssim_mean", "psnr", "ssim_margin"), lambda: _similarities(recon, targets, splits))
    rows: list[Row] = []
    for name in PER_CLASS_METRICS:
        values, error = per_metric[name]
        for i, k in enumerate(targets.tolist()):
            value = float("nan") if values is None else float(values[i])
            rows.append({"target_class": str(k), "metric": name, "value": value, "error": error})
        mean = float("nan") if values is None else _finite_mean(values)
        rows.append({"target_class": "all", "metric": name, "value": mean, "error": error})
    return rows


@torch.no_grad()
def extra_rows(extras: dict[str, Tensor], targets: Tensor, evaluator: Classifier) -> list[Row]:
    """``acc@1:<name>`` rows for an attack's extra images: another reconstruction per identity
    (K×C×H×W), or N samples per identity (K×N×C×H×W), scored as the share the judge names."""
    rows: list[Row] = []
    for name, images in extras.items():
        per_sample = images.dim() == 5
        n = images.shape[1] if per_sample else 1
        hits = top_k_hits(evaluator, images.flatten(0, 1) if per_sample else images, targets.repeat_interleave(n), 1)
        share = hits.view(len(targets), n).mean(1)
        metric = f"acc@1:{name}"
        rows += [{"target_class": str(k), "metric": metric, "value": float(v), "error": None}
                 for k, v in zip(targets.tolist(), share)]
        rows.append({"target_class": "all", "metric": metric, "value": float(share.mean()), "error": None})
    return rows


@torch.no_grad()
def panel_rows(recon: Tensor, targets: Tensor, evaluator: Classifier, open_judge: Classifier | None,
               second: Classifier) -> list[Row]:
    """The readings beside the paper's acc@1, per identity and over all: ``acc@1:open`` (the
    judge that also knows the public people names the right private identity; absent where
    there are no public people), ``acc@1:second`` (another architecture family) and
    ``judge_agreement`` (the evaluator and the second judge name the same identity)."""
    named = predictions(evaluator, recon)
    per_metric = {"acc@1:second": (predictions(second, recon) == targets).double(),
                  "judge_agreement": (predictions(second, recon) == named).double()}
    if open_judge is not None:
        per_metric["acc@1:open"] = (predictions(open_judge, recon) == targets).double()
    rows: list[Row] = []
    for metric, values in per_metric.items():
        rows += [{"target_class": str(k), "metric": metric, "value": float(v), "error": None}
                 for k, v in zip(targets.tolist(), values)]
        rows.append({"target_class": "all", "metric": metric, "value": float(values.mean()), "error": None})
    return rows


def scalar_rows(values: dict[str, float]) -> list[Row]:
    """Cell-level metrics (queries, attack_seconds, test_acc, ...) as 'all' rows."""
    return [{"target_class": "all", "metric": k, "value": float(v), "error": None} for k, v in values.items()]


def _similarities(recon: Tensor, targets: Tensor, splits: DataSplits) -> tuple[Tensor, ...]:
    out = {k: [] for k in ("ssim", "ssim_mean", "psnr", "ssim_margin")}
    for r, k in zip(recon.numpy(), targets.tolist()):
        train = splits.private_train.of_class(k)
        to_train, to_held_out = ssims(r, train), ssims(r, splits.private_test.of_class(k))
        out["ssim"].append(float(to_train.max()) if len(to_train) else float("nan"))
        out["ssim_mean"].append(ssim(r, train.mean(0).numpy()))
        out["psnr"].append(best_psnr(r, train))
        out["ssim_margin"].append(ssim_margin(to_train, to_held_out))
    return tuple(torch.tensor(v, dtype=torch.float64) for v in out.values())


def ssim_margin(to_train: np.ndarray, to_held_out: np.ndarray) -> float:
    """Best SSIM to the training images minus best to the held-out ones, best-of-n against
    best-of-n with equal n: zero in expectation for an image the target never saw, above zero
    when training images themselves were recovered."""
    n = min(len(to_train), len(to_held_out))
    return expected_best(to_train, n) - expected_best(to_held_out, n)


def _finite_mean(values: Tensor) -> float:
    finite = values[torch.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


__all__ = ["PER_CLASS_METRICS", "panel_rows", "reconstruction_rows", "scalar_rows", "ssim_margin"]
