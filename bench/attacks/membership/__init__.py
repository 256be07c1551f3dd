"""Membership inference attacks, one file each; importing this package registers them."""

from bench.attacks.membership import label_only, lira, loss_threshold, rmia, shadow  # noqa: F401  (registration)
from bench.attacks.membership.base import (
    MembershipAttack,
    MembershipResult,
    Population,
    ShadowModel,
    ShadowTrainer,
    log_odds,
    true_label_probability,
)
from bench.attacks.membership.label_only import LabelOnlyMIA
from bench.attacks.membership.lira import LiRA
from bench.attacks.membership.loss_threshold import LossThreshold
from bench.attacks.membership.rmia import RMIA
from bench.attacks.membership.shadow import Shadow

__all__ = [
    "RMIA", "LabelOnlyMIA", "LiRA", "LossThreshold", "MembershipAttack", "MembershipResult", "Population", "Shadow",
    "ShadowModel", "ShadowTrainer", "log_odds", "true_label_probability",
]
