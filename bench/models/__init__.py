"""Architectures, the training loop, and the artifact cache of trained targets and evaluators."""

from bench.models.architectures import Classifier
from bench.models.cache import ArtifactCache, TrainedModel
from bench.models.catalogue import ARCHITECTURES, EVALUATOR_MODEL, TARGET_MODELS
from bench.models.training import TrainingHook, TrainingPlan, accuracy, build, fit

__all__ = [
    "ARCHITECTURES", "EVALUATOR_MODEL", "TARGET_MODELS", "ArtifactCache", "Classifier", "TrainedModel", "TrainingHook",
    "TrainingPlan", "accuracy", "build", "fit",
]
