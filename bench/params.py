"""Typed, validated plugin parameters.

Every plugin (dataset, defense, attack) and the training spec declares its parameters as a
frozen dataclass; :func:`parse_params` turns a YAML mapping into one, refusing unknown keys,
wrong types and out-of-range values with a message that names the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from bench.errors import ConfigError

_MISSING = dataclasses.MISSING


def param(
    default: Any = _MISSING,
    *,
    help: str,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    choices: Sequence[Any] | None = None,
) -> Any:
    """A dataclass field with its help text and allowed range (closed unless ``low_open``)."""
    meta = {"help": help, "low": low, "high": high, "low_open": low_open, "choices": choices}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def describe(cls: type) -> list[dict[str, Any]]:
    """One dict per parameter (name, type, default, help, range) for `bench list`."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default
        if f.default_factory is not _MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        rows.append(
            {
                "name": f.name,
                "type": _type_name(hints[f.name]),
                "default": None if default is _MISSING else default,
                "help": f.metadata.get("help", ""),
                "allowed": _allowed_text(f.metadata),
            }
        )
    return rows


def parse_params(cls: type, raw: Mapping[str, Any] | None, owner: str) -> Any:
    """Build ``cls`` from ``raw``; ``owner`` (e.g. ``attack 'mi-face'``) prefixes every error."""
    if raw is not None and not isinstance(raw, Mapping):
        raise ConfigError(f"{owner}: parameters must be a mapping of names to values, got {raw!r}")
    raw = dict(raw or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            hint = difflib.get_close_matches(str(key), fields, n=1)
            did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
            allowed = ", ".join(fields) or "none"
            raise ConfigError(f"{owner}: unknown parameter '{key}'{did_you_mean}; allowed: {allowed}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is _MISSING and f.default_factory is _MISSING:  # type: ignore[misc]
                raise ConfigError(f"{owner}: parameter '{name}' is required ({f.metadata.get('help', '')})")
            continue
        value = _coerce(raw[name], hints[name], f"{owner}: parameter '{name}'")
        _check_range(value, f.metadata, f"{owner}: parameter '{name}'")
        values[name] = value
    return cls(**values)


def as_dict(params: Any) -> dict[str, Any]:
    """Plain dict of a params dataclass, for hashing and tables."""
    return dataclasses.asdict(params)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [_coerce(v, item, where) for v in value]
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str) and value.strip().lower() in ("inf", "+inf", "infinity"):
            return math.inf
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{where}: unsupported parameter type {hint!r}")


def _check_range(value: Any, meta: Mapping[str, Any], where: str) -> None:
    if value is None:
        return
    items = value if isinstance(value, list) else [value]
    for item in items:
        choices = meta.get("choices")
        if choices is not None and item not in choices:
            raise ConfigError(f"{where}: {item!r} is not allowed; allowed: {', '.join(map(str, choices))}")
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            if isinstance(item, float) and math.isnan(item):
                raise ConfigError(f"{where}: NaN is not allowed; allowed: {_allowed_text(meta)}")
            low, high = meta.get("low"), meta.get("high")
            too_low = low is not None and (item <= low if meta.get("low_open") else item < low)
            too_high = high is not None and item > high
            if too_low or too_high:
                raise ConfigError(f"{where}: {item!r} is out of range; allowed: {_allowed_text(meta)}")


def _allowed_text(meta: Mapping[str, Any]) -> str:
    if meta.get("choices") is not None:
        return "one of " + ", ".join(map(str, meta["choices"]))
    low, high = meta.get("low"), meta.get("high")
    if low is None and high is None:
        return ""
    left = "" if low is None else (f"> {low}" if meta.get("low_open") else f">= {low}")
    right = "" if high is None else f"<= {high}"
    return " and ".join(p for p in (left, right) if p)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
