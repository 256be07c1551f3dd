"""The judges of every reconstruction: the paper's closed-set evaluator and a panel beside it.

- the **evaluator** (closed set, the GMI/KEDMI protocol): a residual network by default (the
  evaluator spec's ``model``, e.g. the field's ``ir152``) that must name one of the K private
  identities for any image — a stranger included;
- the **open-set judge**: the same architecture trained also on the public identities, so a
  public look-alike is named as the stranger it is (``acc@1:open``). It learns the public people
  from one half of each one's public photos, repeated to as many as a private person has (else
  it learns to answer "private" and accepts strangers), and is measured on the other half: its
  false-accept rate is the share of those it names as a private identity. Only where the public data are
  other people (not other samples of the same classes);
- the **second judge**: another architecture family (the spec's ``second``, VGG-style by default) on the
  evaluator's images, so its reading (``acc@1:second``) and the two judges' agreement show how
  much of an acc@1 is one judge's habit (Ho et al. 2025 measured 80.5 % by the standard
  evaluator against 65.7 % by an independent one on the same reconstructions).

None depends on a cell's seed: the same judges score every seed of a dataset.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from bench.config import CellSpec, JobSpec
from bench.data.base import DataSplits, Split
from bench.metrics.identification import predictions
from bench.models import ArtifactCache, Classifier, TrainedModel, TrainingPlan, accuracy, build, fit
from bench.models.judge import JudgeTraining

EVALUATOR_SEED = 10_000  # one judge per dataset for the whole grid, never a target's seed
SECOND_SEED, OPEN_SEED = EVALUATOR_SEED + 1, EVALUATOR_SEED + 2


@dataclass
class JudgePanel:
    """The judges beside the evaluator: the open-set one (None where the public data are the
    private classes) and one of another architecture family."""

    open: TrainedModel | None
    second: TrainedModel

    @property
    def models(self) -> tuple[Classifier | None, Classifier]:
        """The open-set judge's model (None where there is none) and the second judge's."""
        return (self.open.model if self.open is not None else None), self.second.model

    @property
    def info(self) -> dict[str, float]:
        """Their accuracies on held-out private photos, and the open judge's false-accept rate."""
        out = {"second_judge_acc": float(self.second.info["judge_acc"])}
        if self.open is not None:
            out.update(open_judge_acc=float(self.open.info["judge_acc"]),
                       open_judge_far=float(self.open.info["false_accept_rate"]))
        return out


def _fit_judge(cell: CellSpec, cache_dir: str | Path, role: str, arch: str, shape: tuple[int, ...], images: Split,
               num_classes: int, seed: int, measure: Callable[[Classifier], dict[str, Any]],
               paced_by: int | None = None) -> TrainedModel:
    """One judge of ``arch`` on ``images``: the evaluator spec's recipe (at least its ``steps``),
    identity-preserving augmentation where the dataset keeps identities under it; cached. With
    ``paced_by`` (the evaluator's image count) it takes the evaluator's number of optimiser
    steps, not its epochs: a judge on more images is not trained longer."""
    spec = cell.evaluator
    dataset = cell.dataset.build()
    protocol = dataset.evaluator_protocol(spec.data)
    augment = spec.augment == "true" or (spec.augment == "auto" and dataset.judge_augmentation)
    steps = max(spec.steps, spec.epochs * math.ceil((paced_by or len(images)) / spec.batch_size))
    plan = TrainingPlan.from_spec(spec).replace(epochs=math.ceil(steps / math.ceil(len(images) / spec.batch_size)))

    def train(model: Classifier) -> dict[str, Any]:
        info = fit(model, images, plan, seed=seed, desc=f"{role} {arch} ({protocol})",
                   hooks=[JudgeTraining()] if augment else [])
        return {**info, "arch": arch, "evaluator_data": protocol, "epochs": plan.epochs, **measure(model)}

    key = {"kind": role, "dataset": cell.dataset.to_json(), "evaluator": {**dataclasses.asdict(spec), "data": protocol},
           "seed": seed}
    make = lambda: build(arch, shape, num_classes, seed)  # noqa: E731
    return ArtifactCache(cache_dir).get_or_train(key, make, train)


def train_evaluator(job: JobSpec, splits: DataSplits, cache_dir: str | Path) -> TrainedModel:
    """The independent closed-set judge: another architecture and seed than any target, trained
    on the original images its protocol allows (never a data defense's copies), measured on
    held-out photos and class means."""
    images = splits.evaluator_train(job.first.dataset.build().evaluator_protocol(job.first.evaluator.data))
    return _fit_judge(job.first, cache_dir, "evaluator", job.first.evaluator.model, splits.meta.shape, images,
                      splits.meta.num_classes,
                      EVALUATOR_SEED, lambda m: {"evaluator_acc": accuracy(m, splits.private_test),
                                                 "evaluator_mean_acc": accuracy(m, splits.class_means())})


def public_halves(public: Split) -> tuple[Tensor, Tensor]:
    """Per public identity, alternate photos: the open judge learns the first half (every one of
    an identity with a single photo) and is measured on the second."""
    known = torch.zeros(len(public), dtype=torch.bool)
    for k in public.y.unique():
        idx = torch.nonzero(public.y == k).flatten()
        known[idx[::2]] = True
    return known, ~known


def train_panel(cells: list[CellSpec], splits: DataSplits, cache_dir: str | Path) -> JudgePanel | None:
    """The open-set judge (where the public data are other people) and the second judge, if any
    of ``cells`` reconstructs images (membership cells have nothing for a judge to read)."""
    readers = [c for c in cells if c.attack.cls.kind == "inversion"]
    if not readers:
        return None
    cell = readers[0]
    images = splits.evaluator_train(cell.dataset.build().evaluator_protocol(cell.evaluator.data))
    k, shape = splits.meta.num_classes, splits.meta.shape
    second = _fit_judge(cell, cache_dir, "second-judge", cell.evaluator.second, shape, images, k, SECOND_SEED,
                        lambda m: {"judge_acc": accuracy(m, splits.private_test)})
    if splits.meta.public_kind == "disjoint samples":
        return JudgePanel(None, second)
    known, held_out = public_halves(splits.public)  # a public person's photos repeat to a private person's count
    public = splits.public
    repeat = max(1, round(len(images) / k / (int(known.sum()) / len(public.y.unique()))))
    both = Split(torch.cat([images.x, public.x[known].repeat(repeat, 1, 1, 1)]),
                 torch.cat([images.y, (public.y[known] + k).repeat(repeat)]))
    strangers = public.x[held_out]

    def measure(model: Classifier) -> dict[str, Any]:
        far = float((predictions(model, strangers) < k).float().mean()) if len(strangers) else math.nan
        return {"judge_acc": accuracy(model, splits.private_test), "false_accept_rate": far}

    open_judge = _fit_judge(cell, cache_dir, "open-judge", cell.evaluator.model, shape, both,
                            k + int(public.y.max()) + 1, OPEN_SEED, measure, paced_by=len(images))
    return JudgePanel(open_judge, second)


__all__ = ["EVALUATOR_SEED", "JudgePanel", "public_halves", "train_evaluator", "train_panel"]
