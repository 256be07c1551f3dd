"""The job-side shadow-model trainer handed to membership attacks.

Attacks never import model code (they see the target only through the oracle), yet LiRA and
the shadow-model attack need models trained like the target. The job builds a
:data:`~bench.attacks.membership.ShadowTrainer` here from the target's architecture and
training plan; an attack calls it with the images, labels and seed it chooses. Shadows are
artifacts cached by the content of what they trained on, so every cell that asks for the same
shadow — the same attack and seed under another defense — loads it instead of training it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from bench.attacks.membership import ShadowModel, ShadowTrainer
from bench.data.base import Split
from bench.models.architectures import Classifier
from bench.models.cache import ArtifactCache
from bench.models.training import TrainingPlan, build, fit


def shadow_trainer(model: str, shape: tuple[int, int, int], num_classes: int, plan: TrainingPlan,
                   cache_dir: str | Path, width: float = 1.0) -> ShadowTrainer:
    """Trains ``model`` with ``plan`` (the target's recipe, without its defenses) and the target's
    ``num_classes`` on what an attack hands it, or loads the same shadow from the cache."""
    cache = ArtifactCache(cache_dir)

    def train(x: Tensor, y: Tensor, seed: int) -> ShadowModel:
        if len(y) and int(y.max()) >= num_classes:
            raise ValueError(f"shadow label {int(y.max())} is outside the target's {num_classes} classes")
        data = hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest()
        key = {"kind": "shadow-model", "model": model, "width": width, "plan": vars(plan), "classes": num_classes,
               "data": data, "seed": seed}
        trained = cache.get_or_train(
            key, lambda: build(model, shape, num_classes, seed, width=width),
            lambda net: fit(net, Split(x, y), plan, seed, desc=f"shadow model {seed}"))
        return _logits(trained.model)

    return train


@dataclass(frozen=True)
class ShadowRecipe:
    """How the job's shadows are trained, as plain values: it crosses to the attacker's process,
    which builds its :data:`ShadowTrainer` from it (a closure does not cross)."""

    model: str
    shape: tuple[int, int, int]
    num_classes: int
    plan: TrainingPlan
    cache_dir: str | Path
    width: float = 1.0

    def trainer(self) -> ShadowTrainer:
        return shadow_trainer(self.model, self.shape, self.num_classes, self.plan, self.cache_dir, self.width)


def _logits(net: Classifier) -> ShadowModel:
    """The trained shadow as a function from images to logits, without gradients."""

    @torch.no_grad()
    def logits(x: Tensor) -> Tensor:
        return net.eval()(x)

    return logits


__all__ = ["ShadowRecipe", "shadow_trainer"]
