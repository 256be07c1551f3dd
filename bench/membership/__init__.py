"""Membership inference, job side: did the target train on this image?

- :mod:`bench.membership.challenge` draws the balanced challenge set of members (the target's
  training images as collected) and non-members (private images it never trained on);
- :mod:`bench.membership.shadow` is the shadow-model trainer the attacks are handed;
- :mod:`bench.membership.metrics` turns scores into tidy rows (AUC, TPR at low FPR, advantage).

The attacks themselves (loss threshold, shadow models, LiRA, label-only augmentation) live
with the other attacks, in :mod:`bench.attacks.membership`, behind the same import wall.
"""
