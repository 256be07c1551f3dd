"""``HttpOracle``: black-box or label-only access to any prediction URL, as an oracle.

Sieve's own ``bench serve`` or someone else's API: a small :class:`HttpAdapter` says where the
images go in the request and where the probabilities or the label are in the answer. The oracle
keeps the in-process oracle's accounting (:class:`~bench.oracle.BaseOracle`): a batch is
refused before it is sent when it would pass the budget, one image is one query, counted when
its answer arrives. 429 and 5xx answers and dropped connections are retried with exponential
back-off, honouring ``Retry-After``; 403 means an endpoint guard stopped this client
(:class:`~bench.oracle.QueryBlocked`); any other failure is an :class:`EndpointError`.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx
import torch
from torch import Tensor

from bench.errors import ConfigError
from bench.oracle import AccessDenied, BaseOracle, QueryBlocked, ThreatModel
from bench.params import param
from bench.serve.codec import encode_png

RETRIED = {429, 500, 502, 503, 504}


class EndpointError(RuntimeError):
    """The endpoint failed or answered something the adapter cannot read."""


@dataclass(frozen=True)
class HttpAdapter:
    """How to talk to one prediction endpoint (parsed with ``bench.params.parse_params``)."""

    url: str = param(help="the prediction URL, e.g. http://127.0.0.1:8000/predict")
    encoding: str = param("json", help="images as nested arrays in [0, 1] or base64 PNGs", choices=("json", "png"))
    field: str = param("", help="dotted path of the images in the request body (default: images for json, png for png)")
    probabilities: str = param("probabilities", help="dotted path of the N×K probabilities in the answer")
    labels: str = param("labels", help="dotted path of the N labels in the answer (used when there are no probabilities)")
    access: str = param("black-box", help="what the endpoint gives", choices=("black-box", "label-only"))
    headers: list[str] = param([], help="request headers, each 'Name: value' (e.g. 'X-API-Key: k')")
    batch_size: int = param(256, help="images per request", low=1)
    retries: int = param(5, help="retries of a request answered 429 or 5xx, or dropped", low=0)
    backoff: float = param(0.5, help="seconds before the first retry, doubling after each (Retry-After wins)", low=0)
    timeout: float = param(30.0, help="seconds to wait for an answer", low=0, low_open=True)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"adapter: parameter 'url' is {self.url!r}; allowed: an http:// or https:// URL")
        for header in self.headers:
            name, sep, value = header.partition(":")
            if not sep or not name.strip() or not value.strip():
                raise ConfigError(f"adapter: header {header!r} is not 'Name: value'")
        for key in ("field", "probabilities", "labels"):
            if any(not part for part in getattr(self, key).split(".")) and getattr(self, key):
                raise ConfigError(f"adapter: parameter '{key}' is {getattr(self, key)!r}; allowed: a dotted path")

    @property
    def image_field(self) -> str:
        return self.field or ("images" if self.encoding == "json" else "png")

    def header_map(self) -> dict[str, str]:
        return {name.strip(): value.strip() for name, _, value in (h.partition(":") for h in self.headers)}


class HttpOracle(BaseOracle):
    """An oracle whose answers come from ``adapter.url``; no logits, no model, whatever the endpoint."""

    def __init__(self, adapter: HttpAdapter, num_classes: int, input_shape: tuple[int, ...],
                 budget: int | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(ThreatModel(adapter.access), num_classes, input_shape, budget)
        self.adapter = adapter
        self.retried = 0  # requests sent again after a 429, 5xx or dropped connection
        self.waited = 0.0  # seconds spent backing off
        self._sleep = sleep
        self._http = httpx.Client(timeout=adapter.timeout, headers=adapter.header_map())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HttpOracle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def logits(self, x: Tensor) -> Tensor:
        """Never: an endpoint gives no gradients."""
        raise AccessDenied(f"a {self.threat_model.value} oracle does not give logits (needs white-box)")

    @torch.no_grad()
    def probabilities(self, x: Tensor) -> Tensor:
        """Black-box: the endpoint's probability vectors (float32, N×K)."""
        self._require(ThreatModel.BLACK_BOX, "probabilities")
        return torch.cat(self._ask(x, want_labels=False))

    @torch.no_grad()
    def labels(self, x: Tensor) -> Tensor:
        """The endpoint's top-1 class (int64, N): its label, or the argmax of its probabilities."""
        return torch.cat(self._ask(x, want_labels=True))

    def _ask(self, x: Tensor, want_labels: bool) -> list[Tensor]:
        self._admit(x)  # shape and budget: refused before anything is sent
        out = []
        for chunk in x.split(self.adapter.batch_size):
            out.append(self._read(self._post(chunk), len(chunk), want_labels))
            self.queries += len(chunk)  # counted once answered
        return out

    def _post(self, x: Tensor) -> Any:
        a = self.adapter
        images = encode_png(x) if a.encoding == "png" else x.tolist()
        body: Any = images
        for part in reversed(a.image_field.split(".")):
            body = {part: body}
        for attempt in range(a.retries + 1):
            try:
                response = self._http.post(a.url, json=body)
            except httpx.TransportError as exc:
                failure, wait = f"{type(exc).__name__}: {exc}", None
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError:
                        raise EndpointError(f"{a.url} answered 200 with a body that is not JSON") from None
                if response.status_code == 403:
                    raise QueryBlocked(f"{a.url} refused the client (403): {_message(response)}")
                if response.status_code not in RETRIED:
                    raise EndpointError(f"{a.url} answered {response.status_code}: {_message(response)}")
                failure, wait = f"{response.status_code}: {_message(response)}", retry_after(response)
            if attempt == a.retries:
                break
            wait = a.backoff * 2**attempt if wait is None else wait
            self.retried += 1
            self.waited += wait
            self._sleep(wait)
        raise EndpointError(f"{a.url} failed after {a.retries + 1} attempts; last: {failure}")

    def _read(self, answer: Any, n: int, want_labels: bool) -> Tensor:
        a = self.adapter
        probs = _dig(answer, a.probabilities)
        if probs is not None:
            p = torch.tensor(probs, dtype=torch.float32) if _numeric(probs) else None
            if p is None or tuple(p.shape) != (n, self.num_classes):
                raise EndpointError(f"'{a.probabilities}' in the answer is not {n}×{self.num_classes} numbers")
            return p.argmax(dim=1) if want_labels else p
        labels = _dig(answer, a.labels)
        if labels is None or not want_labels:
            keys = sorted(answer) if isinstance(answer, dict) else type(answer).__name__
            hint = " (a label-only endpoint? use access: label-only)" if labels is not None else ""
            raise EndpointError(f"the answer has no '{a.probabilities}'{hint}; it holds {keys}")
        y = torch.tensor(labels) if _numeric(labels) else None
        if y is None or tuple(y.shape) != (n,) or y.dtype.is_floating_point or ((y < 0) | (y >= self.num_classes)).any():
            raise EndpointError(f"'{a.labels}' in the answer is not {n} labels in 0..{self.num_classes - 1}")
        return y.long()


def retry_after(response: httpx.Response) -> float | None:
    """The seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _dig(obj: Any, path: str) -> Any:
    """``obj`` at a dotted path (integer parts index lists); None where the path leads nowhere."""
    for part in path.split("."):
        if isinstance(obj, dict) and part in obj:
            obj = obj[part]
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return None
    return obj


def _numeric(value: Any) -> bool:
    try:
        return torch.tensor(value).dtype != torch.bool
    except (TypeError, ValueError, RuntimeError):
        return False


def _message(response: httpx.Response) -> str:
    try:
        blob = response.json()
    except ValueError:
        return response.text[:200]
    return str(blob.get("error", blob))[:200] if isinstance(blob, dict) else str(blob)[:200]
