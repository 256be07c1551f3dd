"""Built-in defenses; importing this package registers them."""

from bench.defenses import (  # noqa: F401  (registration side effect)
    access,
    bido,
    data,
    inference,
    mid,
    none,
    random_erasing,
    training,
    transfer,
    trap_mid,
)
from bench.defenses.base import AccessDefense, DataDefense, Defense, OutputDefense, Stage, TrainingDefense
from bench.defenses.stack import DefenseStack

__all__ = ["AccessDefense", "DataDefense", "Defense", "DefenseStack", "OutputDefense", "Stage", "TrainingDefense"]
