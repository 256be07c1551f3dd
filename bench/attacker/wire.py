"""Messages between the job and the attacker's process: a JSON header and raw arrays, never pickle.

The attacker's process is not trusted, so what it sends is parsed, not unpickled: a message is
a 4-byte header length, a JSON header naming each array's dtype and shape, then the arrays'
bytes. Decoding checks every declared dtype against an allow-list and every shape against the
bytes that actually arrived, so a batch counts as the rows it holds and nothing else.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

DTYPES = ("float32", "float64", "int64")
MAX_MESSAGE = 1 << 30  # bytes: a larger message is refused before it is read


class WireError(ValueError):
    """A message that is not what the protocol allows."""


def encode(header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """``header`` (JSON-able) and ``arrays`` (by name) as one message."""
    arrays = arrays or {}
    blobs, specs = [], []
    for name, array in arrays.items():
        array = np.ascontiguousarray(array)
        if array.dtype.name not in DTYPES:
            raise WireError(f"array '{name}' has dtype {array.dtype.name}; the wire carries {', '.join(DTYPES)}")
        specs.append({"name": name, "dtype": array.dtype.name, "shape": list(array.shape)})
        blobs.append(array.tobytes())
    head = json.dumps({**header, "arrays": specs}).encode()
    return struct.pack(">I", len(head)) + head + b"".join(blobs)


def decode(message: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and arrays of ``message``; a :class:`WireError` for anything malformed."""
    if len(message) < 4:
        raise WireError("message shorter than its header length")
    (size,) = struct.unpack(">I", message[:4])
    try:
        header = json.loads(message[4:4 + size])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays", []), list):
        raise WireError("header must be a JSON object with a list of arrays")
    arrays: dict[str, np.ndarray] = {}
    offset = 4 + size
    for spec in header.pop("arrays", []):
        name, dtype, shape = _spec(spec)
        count = int(np.prod(shape, dtype=np.int64))
        nbytes = count * np.dtype(dtype).itemsize
        if offset + nbytes > len(message):
            raise WireError(f"array '{name}' declares shape {shape} but the message ends {offset + nbytes - len(message)}"
                            " bytes short of it")
        arrays[name] = np.frombuffer(message, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
        offset += nbytes
    if offset != len(message):
        raise WireError(f"{len(message) - offset} bytes follow the declared arrays")
    return header, arrays


def _spec(spec: Any) -> tuple[str, str, tuple[int, ...]]:
    if not isinstance(spec, dict):
        raise WireError("each array spec must be an object")
    name, dtype, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
    if not isinstance(name, str) or dtype not in DTYPES:
        raise WireError(f"array spec {str(spec)[:80]}: a name and a dtype of {', '.join(DTYPES)} are required")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise WireError(f"array '{name}': shape must be a list of non-negative integers, got {str(shape)[:80]}")
    return name, dtype, tuple(shape)
