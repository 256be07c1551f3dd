"""Access-stage defenses: guard the endpoint. Each builds an oracle guard for the cell.

A white-box attacker holds the model and never passes the endpoint, so guards apply to
black-box and label-only attackers only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from bench.defenses.base import AccessDefense
from bench.oracle import QueryBlocked
from bench.params import param
from bench.registry import defense


class TokenBucket:
    """A token bucket on a simulated clock: the attacker queries back to back and waits only
    when the bucket is empty, so the clock is the least time the attack needs."""

    def __init__(self, per_second: float, burst: int, patience_seconds: float) -> None:
        self.per_second = per_second
        self.burst = burst
        self.patience_seconds = patience_seconds
        self.tokens = float(burst)
        self.clock = 0.0

    def admit(self, x: Tensor, served: int) -> None:
        n = len(x)
        if self.tokens >= n:
            self.tokens -= n
            return
        self.clock += (n - self.tokens) / self.per_second
        self.tokens = 0.0

    def report(self) -> dict[str, float]:
        return {"simulated_hours": self.clock / 3600, "within_patience": float(self.clock <= self.patience_seconds)}


@defense("rate-limit")
class RateLimit(AccessDefense):
    """Token-bucket rate limit; the tables gain ``simulated_hours`` (the least time the attack
    needs against it) and ``within_patience`` (whether that fits the attacker's patience)."""

    citation = "rate limiting, the API guard recommended against query-based extraction (Tramèr et al., USENIX Security 2016)"

    @dataclass(frozen=True)
    class Params:
        per_minute: float = param(60.0, help="tokens added per minute", low=0, low_open=True)
        burst: int = param(100, help="bucket size", low=1)
        patience_hours: float = param(24.0, help="how long the attacker is willing to wait", low=0, low_open=True)

    def guard(self, calibration: Tensor, held_out: Tensor, generator: torch.Generator) -> TokenBucket:
        p = self.params
        return TokenBucket(p.per_minute / 60, p.burst, p.patience_hours * 3600)

    def wall_clock_rate(self) -> tuple[float, int]:
        """Behind ``bench serve`` the bucket runs on the wall clock (``bench.serve.guards.WallClockBucket``)."""
        return self.params.per_minute, self.params.burst


class QueryMonitor:
    """Stateful detection (Chen, Carlini & Wagner 2019): a query whose mean distance to its
    ``k`` nearest earlier queries (in a fixed random projection) is below ``threshold`` flags
    the client, which is then blocked."""

    def __init__(self, k: int, window: int, projection: Tensor, threshold: float = -math.inf) -> None:
        self.k = k
        self.window = window
        self.projection = projection
        self.threshold = threshold
        self.history = torch.empty(0, projection.shape[1])
        self.detected_at: int | None = None
        self.benign: dict[str, float] = {}

    def scores(self, x: Tensor) -> Tensor:
        """Mean distance of each query to its k nearest earlier ones (inf with fewer than k); remembers x."""
        z = x.flatten(1) @ self.projection
        pool = torch.cat([self.history, z])
        d = torch.cdist(z, pool)
        earlier = torch.arange(len(pool))[None, :] < (len(self.history) + torch.arange(len(z)))[:, None]
        d = d.masked_fill(~earlier, math.inf)
        near = d.topk(min(self.k, len(pool)), dim=1, largest=False).values
        enough = torch.isfinite(near).sum(1) >= self.k
        score = torch.where(enough, near.mean(1), torch.full((len(z),), math.inf))
        self.history = pool[-self.window :]
        return score

    def for_client(self) -> QueryMonitor:
        """A fresh monitor for one more client: the calibrated projection and threshold shared, an empty history."""
        return QueryMonitor(self.k, self.window, self.projection, self.threshold)

    def admit(self, x: Tensor, served: int) -> None:
        if self.detected_at is not None:
            raise QueryBlocked(f"client blocked by the query monitor at query {self.detected_at}")
        flagged = (self.scores(x) < self.threshold).nonzero()
        if len(flagged):
            self.detected_at = served + int(flagged[0]) + 1
            raise QueryBlocked(f"query monitor flagged the client at query {self.detected_at}")

    def report(self) -> dict[str, float]:
        detected = math.nan if self.detected_at is None else float(self.detected_at)
        return {"detected_at_query": detected, "monitor_threshold": self.threshold, **self.benign}


@defense("monitor")
class Monitor(AccessDefense):
    """Query monitoring calibrated on benign traffic of two kinds, from the defender's own
    training images: distinct images in random order, and honest users who resubmit each image
    once, slightly changed. The threshold keeps both under ``fpr``; the tables gain
    ``detected_at_query``, and ``false_positive_rate`` / ``false_positive_rate_repeats`` measured
    on the same two kinds of traffic made of held-out images."""

    citation = "Chen, Carlini & Wagner, 2019, 'Stateful Detection of Black-Box Adversarial Attacks'"

    @dataclass(frozen=True)
    class Params:
        k: int = param(5, help="nearest earlier queries averaged", low=1)
        window: int = param(5000, help="recent queries remembered", low=1)
        dims: int = param(64, help="random-projection dimension of the query space", low=1)
        fpr: float = param(0.01, help="benign false-positive rate to calibrate to", low=0, high=1, low_open=True)

    def guard(self, calibration: Tensor, held_out: Tensor, generator: torch.Generator) -> QueryMonitor:
        p = self.params
        projection = torch.randn(calibration[0].numel(), p.dims, generator=generator) / math.sqrt(p.dims)
        fresh = lambda threshold=-math.inf: QueryMonitor(p.k, p.window, projection, threshold)  # noqa: E731
        calibration = calibration[torch.randperm(len(calibration), generator=generator)]
        held_out = held_out[torch.randperm(len(held_out), generator=generator)]
        threshold = min(_quantile(fresh().scores(stream), p.fpr)
                        for stream in (calibration, _resubmitted(calibration, generator)))
        monitor = fresh(threshold)
        monitor.benign = {
            "false_positive_rate": _flag_rate(fresh(threshold), held_out),
            "false_positive_rate_repeats": _flag_rate(fresh(threshold), _resubmitted(held_out, generator)),
        }
        return monitor


def _resubmitted(images: Tensor, generator: torch.Generator) -> Tensor:
    """Honest repeat traffic: every image sent twice, the second time slightly changed, in random order."""
    again = (images + 0.01 * torch.randn(images.shape, generator=generator)).clamp(0, 1)
    stream = torch.cat([images, again])
    return stream[torch.randperm(len(stream), generator=generator)]


def _quantile(scores: Tensor, q: float) -> float:
    return float(torch.quantile(scores[torch.isfinite(scores)], q))


def _flag_rate(monitor: QueryMonitor, stream: Tensor) -> float:
    """Share of a benign stream's queries (with k predecessors) that the monitor would flag."""
    scores = monitor.scores(stream)
    finite = scores[torch.isfinite(scores)]
    return float((finite < monitor.threshold).float().mean()) if len(finite) else math.nan
