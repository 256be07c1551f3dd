"""Every architecture by name, its family, and the roles it may play.

A judge reads a reconstruction through its own architecture's habits, so it is never of its
target's family, and the second judge never of the evaluator's: ``vgg`` and ``vgg16`` are one
family, as are the two IR networks.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from bench.models.architectures import OWN_ARCHITECTURES, Classifier, parameter_count
from bench.models.field import FIELD_ARCHITECTURES

ARCHITECTURES: dict[str, Callable[..., Classifier]] = {**OWN_ARCHITECTURES, **FIELD_ARCHITECTURES}
FAMILY = {"mlp": "mlp", "cnn": "cnn", "resnet": "resnet", "vgg": "vgg", "vgg16": "vgg", "ir152": "ir",
          "facenet64": "ir"}
FIELD_MODELS = tuple(FIELD_ARCHITECTURES)
TARGET_MODELS = ("mlp", "cnn", *FIELD_MODELS)
JUDGE_MODELS = ("resnet", "vgg", *FIELD_MODELS)
EVALUATOR_MODEL = "resnet"  # the default evaluator's (and open-set judge's) architecture
SECOND_JUDGE_MODEL = "vgg"  # the default second judge's


def size_at(model: str, shape: tuple[int, int, int], num_classes: int) -> int:
    """``model``'s parameter count for ``shape`` and ``num_classes``, built on the meta device
    (no memory, no time: an IR-152 has tens of millions)."""
    with torch.device("meta"):
        return parameter_count(ARCHITECTURES[model](shape, num_classes))
