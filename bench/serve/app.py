"""``bench serve``: one target of a grid behind HTTP, with its defenses, as a deployed model is.

Endpoints (JSON in and out; every error is ``{"error": "<message>"}`` with a 4xx status):

``POST /predict`` — header ``X-API-Key: <key>`` required. Body, one of::

    {"images": [[[[0.0, 0.5, ...], ...]]]}     N×C×H×W nested arrays of numbers in [0, 1]
    {"png": ["iVBORw0KGgo...", ...]}           N base64 PNG images, C of 1 (L) or 3 (RGB), H×W as the target's

Answer 200: ``{"probabilities": [[p_0, ..., p_{K-1}], ...]}`` after the stack's inference
defenses (rounding, top-k, noise, bins), or ``{"labels": [k, ...]}`` when a label-only defense
is in the stack. One image is one query.

Refusals: 400 malformed JSON, missing or both fields, ragged or non-numeric arrays, wrong shape,
NaN/Infinity or values outside [0, 1], undecodable or wrongly sized PNGs; 401 no ``X-API-Key``
or (with ``--api-key``/``--keys-file``) an unknown one — checked before the body is read; 415 a
``Content-Type`` other than ``application/json``; 413 a body over ``max_body`` bytes (a declared
``Content-Length`` over it is refused before reading), a batch over ``max_batch`` images, or
(under ``rate-limit``) over the bucket's ``burst``; 429 with ``Retry-After: <seconds>`` when the
key's rate-limit bucket cannot cover the batch yet, and 429 for a new key beyond the server's
client caps (in all, and per remote address); 403 once the key's query monitor has flagged it
(for good; other keys are unaffected).

``GET /health`` — ``{"status": "ok", "input_shape": [C, H, W]}``: nothing about the defenses.

``GET /metrics`` — header ``X-Admin-Key`` (the server's ``--admin-key``; without one the page is
off, 404): ``{"requests": n, "errors": n, "statuses": {"200": n, ...}, "clients": {id:
{"queries": n, "rate_limited": n, "blocked": bool}}, "flagged": [id, ...]}``, clients named by a
hash of their key (``guards.client_id``), never the key.

Handlers decode in a worker thread and evaluate the model under one lock (torch with one
thread; parallelism would come from processes), so the clients' states and counters never race.
"""

from __future__ import annotations

import hmac
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.oracle import ThreatModel
from bench.serve.codec import BadRequest, decode_images, parse_body
from bench.serve.guards import Gate, Refused, client_id
from bench.serve.target import ServedTarget

MAX_BATCH = 1024  # images per request
MAX_BODY = 16 * 2**20  # bytes per request
MAX_CLIENTS = 10_000  # distinct API keys served
PER_ADDRESS = 64  # distinct API keys served from one remote address


@dataclass(frozen=True)
class Limits:
    """What one request and the server's client table may hold, and who may read ``/metrics``."""

    max_batch: int = MAX_BATCH
    max_body: int = MAX_BODY
    max_clients: int = MAX_CLIENTS
    per_address: int = PER_ADDRESS
    admin_key: str | None = None


class Served:
    """The target, its gate and the counters, behind one lock."""

    def __init__(self, target: ServedTarget, keys: frozenset[str] | None, limits: Limits) -> None:
        self.target = target
        self.gate = Gate(target.rate, target.guards, keys, limits.max_clients, limits.per_address)
        self.limits = limits
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()

    def admit(self, key: str | None, content_type: str, length: str | None) -> None:
        """What is refused before a body is read: a missing or unknown key, a body that is not
        JSON, a declared length over the limit."""
        self.gate.check(key)
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise BadRequest(f"Content-Type must be application/json, got '{content_type[:60]}'", 415)
        if length is not None and (not length.isdigit() or int(length) > self.limits.max_body):
            raise BadRequest(f"body of {length[:20]} bytes is larger than this server's limit of "
                             f"{self.limits.max_body}", 413)

    def answer(self, key: str | None, address: str, body: bytes) -> dict[str, Any]:
        """The /predict answer for ``body`` from ``key``; raises :class:`BadRequest` for a 4xx."""
        with self.lock:
            client = self.gate.client(key, address)
        x = decode_images(parse_body(body), self.target.input_shape, self.limits.max_batch)
        with self.lock:
            self.gate.admit(client, x)
            probs = self.target.predict(x)
            client.queries += len(x)
        if self.target.access == ThreatModel.LABEL_ONLY:
            return {"labels": probs.argmax(dim=1).tolist()}
        return {"probabilities": probs.tolist()}

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "input_shape": list(self.target.input_shape)}

    def metrics(self) -> dict[str, Any]:
        with self.lock:
            clients = {client_id(k): {"queries": c.queries, "rate_limited": c.rate_limited,
                                      "blocked": c.blocked is not None} for k, c in self.gate.clients.items()}
            statuses = dict(self.statuses)
        return {"requests": sum(statuses.values()), "errors": sum(n for s, n in statuses.items() if s >= 400),
                "statuses": {str(s): n for s, n in sorted(statuses.items())}, "clients": clients,
                "flagged": sorted(i for i, c in clients.items() if c["blocked"])}

    def count(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1


def create_app(target: ServedTarget, keys: frozenset[str] | None = None, limits: Limits = Limits()) -> ASGIApp:
    """The ASGI app serving ``target``; ``keys`` None accepts any non-empty API key as its own client
    (only where the stack has no guards: ``bench serve`` refuses guards without keys)."""
    torch.set_num_threads(1)
    served = Served(target, keys, limits)

    async def predict(request: Request) -> JSONResponse:
        try:
            key = request.headers.get("x-api-key")
            served.admit(key, request.headers.get("content-type", ""), request.headers.get("content-length"))
            body = await request.body()
            address = request.client.host if request.client is not None else ""
            return JSONResponse(await run_in_threadpool(served.answer, key, address, body))
        except Refused as exc:
            return JSONResponse({"error": str(exc)}, exc.status, headers=exc.headers)
        except BadRequest as exc:
            return JSONResponse({"error": str(exc)}, exc.status)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(served.health())

    async def metrics(request: Request) -> JSONResponse:
        if limits.admin_key is None:
            return JSONResponse({"error": "metrics are off: start the server with --admin-key"}, 404)
        given = request.headers.get("x-admin-key", "")
        if not hmac.compare_digest(given.encode(), limits.admin_key.encode()):
            return JSONResponse({"error": "/metrics needs the server's X-Admin-Key"}, 401)
        return JSONResponse(served.metrics())

    app = Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/health", health),
                            Route("/metrics", metrics)], max_body_size=limits.max_body)
    return CountStatuses(app, served)


class CountStatuses:
    """Outermost ASGI layer: counts every response by status, the body limit's 413s and 404s included."""

    def __init__(self, app: ASGIApp, served: Served) -> None:
        self.app = app
        self.served = served

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.served.count(message["status"])
            await send(message)

        await self.app(scope, receive, counted)


def serve(target: ServedTarget, host: str, port: int, keys: frozenset[str] | None, limits: Limits = Limits(),
          tls: dict[str, str] | None = None) -> None:
    """Run the server until interrupted (one process, one event loop; inference under one lock).
    ``tls`` passes uvicorn's own ``ssl_keyfile``/``ssl_certfile`` (and friends) through."""
    uvicorn.run(create_app(target, keys, limits), host=host, port=port, log_level="warning", access_log=False,
                **(tls or {}))
