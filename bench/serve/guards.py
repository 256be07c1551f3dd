"""The served target's access defenses made real, one state per API key.

``rate-limit`` becomes a token bucket on the wall clock (its ``per_minute`` and ``burst``): a
batch it cannot cover yet is refused with 429 and ``Retry-After`` (the whole seconds until it
can be); a batch larger than ``burst`` never can be and is refused with 413. Every other access
defense keeps its grid guard, calibrated once at start-up (the query monitor's threshold), and
each client gets its own state of it (``for_client``: the query monitor shares its projection
and threshold and keeps only the client's history), so one client's history never flags
another; a guard that raises :class:`~bench.oracle.QueryBlocked` refuses the request with 403,
and keeps refusing that client. The number of clients is capped, in all and per remote
address, so new keys cannot grow the server's memory without bound. Callers hold the
server's lock: nothing here is thread-safe on its own.
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
    max_clients: int = 10_000  # distinct API keys served, in all
    per_address: int = 64  # distinct API keys served from one remote address
    clients: dict[str, Client] = field(default_factory=dict)
    addresses: dict[str, set[str]] = field(default_factory=dict)

    def check(self, key: str | None) -> str:
        """The key, if the server accepts it: 401 without one or for one it does not know."""
        if not key:
            raise BadRequest("missing X-API-Key header: every request needs an API key", 401)
        if self.keys is not None and key not in self.keys:
            raise BadRequest("unknown API key", 401)
        return key

    def client(self, key: str | None, address: str = "") -> Client:
        """The key's state, created on first use within the caps (429 beyond them)."""
        key = self.check(key)
        if key not in self.clients:
            seen = self.addresses.setdefault(address, set())
            if len(self.clients) >= self.max_clients:
                raise Refused(f"this server serves at most {self.max_clients} clients (API keys)", 429)
            if len(seen) >= self.per_address:
                raise Refused(f"at most {self.per_address} API keys are served from one address", 429)
            bucket = None if self.rate is None else WallClockBucket(*self.rate)
            self.clients[key] = Client(bucket, [_for_client(g) for g in self.guards])
            seen.add(key)
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


def _for_client(guard: AccessGuard) -> AccessGuard:
    """A client's own state of ``guard``: its ``for_client()`` where it has one (sharing what was
    calibrated), else a deep copy."""
    fresh = getattr(guard, "for_client", None)
    return fresh() if callable(fresh) else copy.deepcopy(guard)


_PROCESS_SECRET = secrets.token_bytes(32)


def client_id(key: str) -> str:
    """How ``/metrics`` names a client: a hash keyed with a secret of the server process (or
    ``BENCH_METRICS_SECRET``, to keep ids across restarts), so the page never shows an API key,
    nor one that a dictionary of short keys would recover."""
    secret = os.environ.get("BENCH_METRICS_SECRET", "").encode() or _PROCESS_SECRET
    return hmac.new(secret, key.encode(), hashlib.sha256).hexdigest()[:12]
