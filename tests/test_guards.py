"""Endpoint guards: the token bucket against a hand-worked schedule, the query monitor on
near-duplicate and on distinct streams, and an attack blocked mid-run."""

import math

import pytest
import torch

from bench.config import parse_entry
from bench.defenses.access import TokenBucket
from bench.oracle import Oracle, QueryBlocked, ThreatModel


def batch(n):
    return torch.zeros(n, 1, 8, 8)


def test_token_bucket_hand_worked_schedule():
    # 60 per minute = 1 token/s, burst 10, patience 30 s
    bucket = TokenBucket(per_second=1.0, burst=10, patience_seconds=30)
    bucket.admit(batch(4), 0)   # 10 -> 6 tokens, t = 0
    assert (bucket.tokens, bucket.clock) == (6.0, 0.0)
    bucket.admit(batch(6), 4)   # 6 -> 0 tokens, t = 0
    assert (bucket.tokens, bucket.clock) == (0.0, 0.0)
    bucket.admit(batch(5), 10)  # waits 5 s for 5 tokens
    assert (bucket.tokens, bucket.clock) == (0.0, 5.0)
    bucket.admit(batch(20), 15)  # waits 20 s more
    assert bucket.clock == 25.0
    assert bucket.report() == {"simulated_hours": 25 / 3600, "within_patience": 1.0}
    bucket.admit(batch(10), 35)
    assert bucket.report()["within_patience"] == 0.0  # 35 s > 30 s of patience


def monitor(splits, **params):
    d = parse_entry({"monitor": params}, "defense", "test").build()
    return d.guard(splits.private_train.x, splits.private_test.x, torch.Generator().manual_seed(0))


def test_monitor_calibrates_and_passes_distinct_test_images(digits):
    report = monitor(digits, fpr=0.01).report()
    # calibrated on training images, measured on held-out ones: both kinds of honest traffic near 1 %
    assert report["false_positive_rate"] <= 0.03 and report["false_positive_rate_repeats"] <= 0.03
    assert math.isnan(report["detected_at_query"])
    # honest traffic: 60 distinct held-out images one at a time; at 1 % per query one might be
    # flagged, so calibrate stricter here
    m = monitor(digits, fpr=0.001)
    for i in range(60):
        m.admit(digits.private_test.x[i : i + 1], i)
    assert m.detected_at is None


def test_monitor_flags_a_stream_of_near_duplicates(digits):
    m = monitor(digits, k=3)
    base = digits.public.x[:1]
    g = torch.Generator().manual_seed(1)
    with pytest.raises(QueryBlocked, match="flagged the client at query"):
        for i in range(50):
            m.admit((base + 0.01 * torch.randn(base.shape, generator=g)).clamp(0, 1), i)
    assert m.detected_at is not None and m.detected_at <= 10
    with pytest.raises(QueryBlocked, match="blocked"):
        m.admit(digits.public.x[5:6], 100)  # once flagged, always blocked


def test_blocked_attack_keeps_its_last_checkpoint(tiny_target, digits):
    attack = parse_entry({"hill-climb": {"budget": 500, "checkpoint_every": 20, "init": "noise", "sigma": 0.03}}, "attack", "t").build()
    guard = monitor(digits, k=3)
    oracle = Oracle(tiny_target, ThreatModel.BLACK_BOX, 10, (1, 8, 8), budget=5000, guards=[guard])
    result = attack.execute(oracle, torch.arange(10), None, seed=0)
    assert result.blocked and "query monitor" in result.blocked
    assert result.queries < 5000 and guard.detected_at is not None
    assert torch.equal(result.reconstructions, result.checkpoints[-1].reconstructions)
    assert len(result.checkpoints) >= 1 and result.checkpoints[-1].queries <= result.queries


def test_attack_blocked_at_its_first_query_keeps_nothing(tiny_target, digits):
    attack = parse_entry({"hill-climb": {"budget": 500, "init": "gray"}}, "attack", "t").build()  # ten identical starts
    oracle = Oracle(tiny_target, ThreatModel.BLACK_BOX, 10, (1, 8, 8), budget=5000, guards=[monitor(digits, k=3)])
    result = attack.execute(oracle, torch.arange(10), None, seed=0)
    assert result.blocked and result.queries == 0
    assert torch.equal(result.reconstructions, torch.full((10, 1, 8, 8), 0.5))


def test_attacks_start_from_distinct_images_which_the_monitor_lets_through(tiny_target, digits):
    """The monitor's verdict must measure an attack's query stream, not a shared starting image."""
    for name in ("hill-climb", "nes"):
        attack = parse_entry({name: {"budget": 100}}, "attack", "t").build()
        guard = monitor(digits, k=3)
        oracle = Oracle(tiny_target, ThreatModel.BLACK_BOX, 10, (1, 8, 8), budget=1000, guards=[guard])
        result = attack.execute(oracle, torch.arange(10), digits.public.x, seed=0)
        starts = result.checkpoints[0].reconstructions
        assert len({x.numpy().tobytes() for x in starts}) == 10, name  # one start per identity
        if name == "hill-climb":  # its first batch is the ten starts themselves
            assert guard.detected_at is None or guard.detected_at > 10
