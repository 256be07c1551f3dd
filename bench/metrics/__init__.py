"""The built-in metrics, declared with their direction and caption, and from an inversion cell
to its tidy metric rows.

Every metric with a function is computed per target identity and aggregated over identities
as ``target_class = 'all'``; a metric that fails gives rows with its error, never missing rows.
Every similarity compares against the private images as collected (``splits.private_train``),
never against the copies a data-stage defense trained the target on.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from bench.metrics.base import Judged, Metric, computed, declare, metric, rows_of
from bench.metrics.identification import feature_knn, predictions, top_k_hits
from bench.metrics.similarity import best_psnr, expected_best, ssim, ssims
from bench.models.architectures import Classifier

Row = dict[str, Any]


@metric("acc@1", higher_is_better=True, kind="inversion",
        caption="share of identities the closed-set evaluator names right (the GMI/KEDMI protocol)")
def acc_at_1(j: Judged) -> Tensor:
    return top_k_hits(j.evaluator, j.recon, j.identities, 1)


declare("lift", higher_is_better=True, kind="inversion",
        caption="acc@1 minus the no-inversion baseline's on the same target")


@metric("acc@1:open", higher_is_better=True, kind="inversion",
        caption="share the open-set judge, which also knows the public people, names right")
def acc_at_1_open(j: Judged) -> Tensor | None:
    return None if j.open is None else (_named(j, "open") == j.identities).double()


declare("lift:open", higher_is_better=True, kind="inversion", caption="acc@1:open minus the baseline's")


@metric("acc@1:second", higher_is_better=True, kind="inversion",
        caption="share the second judge, of another architecture family, names right")
def acc_at_1_second(j: Judged) -> Tensor | None:
    return None if j.second is None else (_named(j, "second") == j.identities).double()


declare("lift:second", higher_is_better=True, kind="inversion", caption="acc@1:second minus the baseline's",
        summary=False)


@metric("judge_agreement", higher_is_better=True, kind="inversion",
        caption="share on which the evaluator and the second judge name the same identity")
def judge_agreement(j: Judged) -> Tensor | None:
    return None if j.second is None else (_named(j, "second") == _named(j, "evaluator")).double()


@metric("acc@5", higher_is_better=True, kind="inversion", summary=False,
        caption="share the evaluator ranks in its top 5 for the right identity")
def acc_at_5(j: Judged) -> Tensor:
    return top_k_hits(j.evaluator, j.recon, j.identities, 5)


@metric("knn_dist", higher_is_better=False, kind="inversion", summary=False,
        caption="distance in the evaluator's features to the nearest private image of the identity")
def knn_dist(j: Judged) -> Tensor:
    return _knn(j)[0]


@metric("knn_acc@1", higher_is_better=True, kind="inversion",
        caption="share whose nearest private image, in the evaluator's features, is of the right identity")
def knn_acc_at_1(j: Judged) -> Tensor:
    return _knn(j)[1]


@metric("ssim", higher_is_better=True, kind="inversion", summary=False,
        caption="SSIM to the nearest private image of the identity")
def ssim_best(j: Judged) -> Tensor:
    return _similarities(j)["ssim"]


@metric("ssim_mean", higher_is_better=True, kind="inversion", summary=False,
        caption="SSIM to the identity's mean private image")
def ssim_to_mean(j: Judged) -> Tensor:
    return _similarities(j)["ssim_mean"]


@metric("psnr", higher_is_better=True, kind="inversion", summary=False,
        caption="PSNR to the nearest private image of the identity")
def psnr(j: Judged) -> Tensor:
    return _similarities(j)["psnr"]


@metric("ssim_margin", higher_is_better=True, kind="inversion",
        caption="best SSIM to the training images minus to held-out ones, equal n: above 0 when training images came back")
def ssim_margin_metric(j: Judged) -> Tensor:
    return _similarities(j)["ssim_margin"]


declare("auc", higher_is_better=True, kind="membership", caption="area under the membership ROC curve")
declare("tpr@1%fpr", higher_is_better=True, kind="membership", digits=3,
        caption="members found at 1 % of non-members falsely accused")
declare("tpr@0.1%fpr", higher_is_better=True, kind="membership", digits=3,
        caption="members found at 0.1 % of non-members falsely accused")
declare("gap", higher_is_better=False, kind="utility", caption="the target's train minus test accuracy")
declare("queries", higher_is_better=False, kind="cost", digits=0, caption="oracle queries the attack spent")
declare("oracle_acc", higher_is_better=True, kind="utility",
        caption="an honest user's test accuracy through the defended outputs")


def reconstruction_rows(judged: Judged) -> list[Row]:
    """Per-identity and aggregated rows of every inversion metric that applies."""
    rows: list[Row] = []
    for m in computed("inversion"):
        try:
            values, error = m.compute(judged), None
            if values is None:  # e.g. no open-set judge where there are no public people
                continue
        except Exception as exc:  # a failing metric becomes rows with its error
            values, error = None, f"{type(exc).__name__}: {exc}"
        for i, k in enumerate(judged.identities.tolist()):
            value = float("nan") if values is None else float(values[i])
            rows.append({"target_class": str(k), "metric": m.name, "value": value, "error": error})
        mean = float("nan") if values is None else _finite_mean(values)
        rows.append({"target_class": "all", "metric": m.name, "value": mean, "error": error})
    return rows


@torch.no_grad()
def extra_rows(extras: dict[str, Tensor], identities: Tensor, evaluator: Classifier) -> list[Row]:
    """``acc@1:<name>`` rows for an attack's extra images: another reconstruction per identity
    (K×C×H×W), or N samples per identity (K×N×C×H×W), scored as the share the judge names."""
    rows: list[Row] = []
    for name, images in extras.items():
        per_sample = images.dim() == 5
        n = images.shape[1] if per_sample else 1
        hits = top_k_hits(evaluator, images.flatten(0, 1) if per_sample else images, identities.repeat_interleave(n), 1)
        share = hits.view(len(identities), n).mean(1)
        label = f"acc@1:{name}"
        rows += [{"target_class": str(k), "metric": label, "value": float(v), "error": None}
                 for k, v in zip(identities.tolist(), share)]
        rows.append({"target_class": "all", "metric": label, "value": float(share.mean()), "error": None})
    return rows


def scalar_rows(values: dict[str, float]) -> list[Row]:
    """Cell-level metrics (queries, attack_seconds, test_acc, ...) as 'all' rows."""
    return [{"target_class": "all", "metric": k, "value": float(v), "error": None} for k, v in values.items()]


def _named(j: Judged, judge: str) -> Tensor:
    """The identity the judge ``judge`` (evaluator, open or second) names for each reconstruction."""
    return j.shared(f"named:{judge}", lambda: predictions(getattr(j, judge), j.recon))


def _knn(j: Judged) -> tuple[Tensor, Tensor]:
    return j.shared("knn", lambda: feature_knn(j.evaluator, j.recon, j.identities, j.splits.private_train))


def _similarities(j: Judged) -> dict[str, Tensor]:
    return j.shared("similarities", lambda: _similarity_values(j))


def _similarity_values(j: Judged) -> dict[str, Tensor]:
    out: dict[str, list[float]] = {k: [] for k in ("ssim", "ssim_mean", "psnr", "ssim_margin")}
    for r, k in zip(j.recon.numpy(), j.identities.tolist()):
        train = j.splits.private_train.of_class(k)
        to_train, to_held_out = ssims(r, train), ssims(r, j.splits.private_test.of_class(k))
        out["ssim"].append(float(to_train.max()) if len(to_train) else float("nan"))
        out["ssim_mean"].append(ssim(r, train.mean(0).numpy()))
        out["psnr"].append(best_psnr(r, train))
        out["ssim_margin"].append(ssim_margin(to_train, to_held_out))
    return {name: torch.tensor(v, dtype=torch.float64) for name, v in out.items()}


def ssim_margin(to_train: np.ndarray, to_held_out: np.ndarray) -> float:
    """Best SSIM to the training images minus best to the held-out ones, best-of-n against
    best-of-n with equal n: zero in expectation for an image the target never saw, above zero
    when training images themselves were recovered."""
    n = min(len(to_train), len(to_held_out))
    return expected_best(to_train, n) - expected_best(to_held_out, n)


def _finite_mean(values: Tensor) -> float:
    finite = values[torch.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


__all__ = ["Judged", "Metric", "declare", "extra_rows", "metric", "reconstruction_rows", "rows_of", "scalar_rows",
           "ssim_margin"]
