"""Images on the wire, both ways: the client encodes a batch, the server decodes and checks it.

Two encodings: ``json`` (nested arrays N×C×H×W of floats in [0, 1]; float32 values survive the
round trip exactly) and ``png`` (one base64 PNG per image, 8 bits per channel: lossy, as real
image APIs are). Every malformed request is a :class:`BadRequest` naming what is wrong, never
an exception of the decoder underneath.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

PNG_MODES = {1: "L", 3: "RGB"}  # channels -> PIL mode


class BadRequest(ValueError):
    """A request the server refuses with a 4xx status and a message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def encode_png(x: Tensor) -> list[str]:
    """Each image of the batch ``x`` (N×C×H×W in [0, 1], C of 1 or 3) as a base64 PNG."""
    if x.shape[1] not in PNG_MODES:
        raise ValueError(f"png encoding takes 1 or 3 channels, got {x.shape[1]}")
    pixels = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    out = []
    for image in pixels:
        buf = io.BytesIO()
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image, PNG_MODES[x.shape[1]]).save(buf, "PNG")
        out.append(base64.b64encode(buf.getvalue()).decode("ascii"))
    return out


def parse_body(body: bytes) -> dict[str, Any]:
    """The request's JSON object; NaN and Infinity literals are refused like any other non-JSON."""
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise BadRequest('body must be a JSON object: {"images": [...]} or {"png": [...]}')
    return payload


def decode_images(payload: dict[str, Any], shape: Sequence[int], max_batch: int) -> Tensor:
    """The batch in ``payload`` (``images`` or ``png``) as float32 N×C×H×W, checked against ``shape``."""
    fields = [k for k in ("images", "png") if k in payload]
    if len(fields) != 1:
        raise BadRequest(f'body must hold exactly one of "images" or "png"; got keys {sorted(payload)[:10]}')
    items = payload[fields[0]]
    if not isinstance(items, list) or not items:
        raise BadRequest(f'"{fields[0]}" must be a non-empty list of images')
    if len(items) > max_batch:
        raise BadRequest(f"batch of {len(items)} images is larger than this server's limit of {max_batch}", 413)
    x = _from_png(items, tuple(shape)) if fields[0] == "png" else _from_arrays(items, tuple(shape))
    return x


def _from_arrays(items: list[Any], shape: tuple[int, ...]) -> Tensor:
    try:
        arr = np.array(items)
    except ValueError:
        raise BadRequest(f'"images" is ragged: expected N×{"×".join(map(str, shape))} nested arrays') from None
    if arr.dtype.kind not in "fiu":
        raise BadRequest(f'"images" must hold only numbers, got {arr.dtype.kind!r} values')
    if arr.shape[1:] != shape:
        raise BadRequest(f'"images" has shape {list(arr.shape)}, expected [N, {", ".join(map(str, shape))}]')
    if not np.isfinite(arr).all():
        raise BadRequest('"images" holds non-finite values')
    if arr.min() < 0 or arr.max() > 1:
        raise BadRequest(f'"images" values must lie in [0, 1], got [{arr.min():g}, {arr.max():g}]')
    return torch.from_numpy(arr.astype(np.float32))


def _from_png(items: list[Any], shape: tuple[int, ...]) -> Tensor:
    channels, height, width = shape
    if channels not in PNG_MODES:
        raise BadRequest(f"this target takes {channels}-channel images, which PNG cannot carry; send \"images\"")
    out = np.empty((len(items), height, width, channels), dtype=np.uint8)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise BadRequest(f'"png"[{i}] must be a base64 string')
        try:
            image = Image.open(io.BytesIO(base64.b64decode(item, validate=True)))
            if image.format != "PNG":
                raise BadRequest(f'"png"[{i}] is a {image.format} image, not a PNG')
            if image.size != (width, height):  # checked before decoding the pixels: no decompression bombs
                raise BadRequest(f'"png"[{i}] is {image.size[0]}×{image.size[1]}, expected {width}×{height}')
            pixels = np.asarray(image.convert(PNG_MODES[channels]))
        except Image.DecompressionBombError as exc:  # its header declares more pixels than PIL will open
            raise BadRequest(f'"png"[{i}] declares too large an image: {exc}', 413) from None
        except (binascii.Error, UnidentifiedImageError, OSError, ValueError) as exc:
            if isinstance(exc, BadRequest):
                raise
            raise BadRequest(f'"png"[{i}] is not a base64 PNG image: {exc}') from None
        out[i] = pixels.reshape(height, width, channels)
    return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255


def _refuse_constant(name: str) -> None:
    raise BadRequest(f"body holds {name}: only finite numbers are allowed")
