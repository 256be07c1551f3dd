"""The served target's access defenses made real, one state per API key.

``rate-limit`` becomes a token bucket on the wall clock (its ``per_minute`` and ``burst``): a
batch it cannot cover yet is refused with 429 and ``Retry-After`` (the whole seconds until it
can be); a batch larger than ``burst`` never can be and is refused with 413. Every other access
defense keeps its grid guard, calibrated once at start-up (the query monitor's threshold) and
copied fresh for each client, so one client's history never flags another; a guard that raises
:class:`~bench.oracle.QueryBlocked` refuses the request with 403, and keeps refusing that
client. Callers hold the server's lock: nothing here is thread-safe on its own.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import math
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from torch import Tensor

from bench.oracle import AccessGuard, QueryBlocked
from bench.serve.codec import BadRequest


class Refused(BadRequest):
    """A guard's refusal: its status (429 or 403) and any headers (``Retry-After``)."""

    def __init__(self, message: str, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, status)
        self.headers = headers or {}


class WallClockBucket:
    """A token bucket refilled at ``per_minute`` tokens per minute up to ``burst``, on a real clock."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_minute / 60
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock()

    def take(self, n: int) -> float:
        """Take ``n`` tokens and return 0, or leave the bucket as it is and return the seconds to wait."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.per_second)
        self.updated = now
        if n > self.burst:
            return math.inf
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.per_second


@dataclass
class Client:
    """One API key's state: its bucket, its copies of the guards, what it was served and refused."""

    bucket: WallClockBucket | None
    guards: list[AccessGuard]
    queries: int = 0
    rate_limited: int = 0
    blocked: str | None = None


@dataclass
class Gate:
    """Admits or refuses each batch per API key. ``keys`` None: any non-empty key is a client of its own."""

    rate: tuple[float, int] | None  # the rate limit's (per_minute, burst), if the stack has one
    guards: Sequence[AccessGuard]  # calibrated templates, never used directly
    keys: frozenset[str] | None = None
    clients: dict[str, Client] = field(default_factory=dict)

    def client(self, key: str | None) -> Client:
        """The key's state (created on first use); 401 without a key or for one the server does not know."""
        if not key:
            raise BadRequest("missing X-API-Key header: every request needs an API key", 401)
        if self.keys is not None and key not in self.keys:
            raise BadRequest("unknown API key", 401)
        if key not in self.clients:
            bucket = None if self.rate is None else WallClockBucket(*self.rate)
            self.clients[key] = Client(bucket, [copy.deepcopy(g) for g in self.guards])
        return self.clients[key]

    def admit(self, client: Client, x: Tensor) -> None:
        """Raise :class:`Refused` (429, 413 or 403) unless ``client`` may have ``x`` answered now."""
        if client.blocked is not None:
            raise Refused(client.blocked, 403)
        if client.bucket is not None:
            wait = client.bucket.take(len(x))
            if math.isinf(wait):
                raise Refused(f"batch of {len(x)} images is larger than the rate limit's burst of "
                              f"{client.bucket.burst}; send smaller batches", 413)
            if wait > 0:
                client.rate_limited += 1
                raise Refused(f"rate limit: {client.bucket.per_second * 60:g} images per minute; retry in {wait:.1f} s",
                              429, {"Retry-After": str(math.ceil(wait))})
        for guard in client.guards:
            try:
                guard.admit(x, client.queries)
            except QueryBlocked as exc:
                client.blocked = str(exc)
                raise Refused(client.blocked, 403) from None


_PROCESS_SECRET = secrets.token_bytes(32)


def client_id(key: str) -> str:
    """How ``/metrics`` names a client: a hash keyed with a secret of the server process (or
    ``BENCH_METRICS_SECRET``, to keep ids across restarts), so the page never shows an API key,
    nor one that a dictionary of short keys would recover."""
    secret = os.environ.get("BENCH_METRICS_SECRET", "").encode() or _PROCESS_SECRET
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:12]
