"""Keeping secrets out of the database, and values in a JSON-safe form.

Configuration is stored so that a run can be explained later, but credentials must
never reach the database: keys named like secrets are dropped (not masked, so that
not even their length leaks), and credentials inside URL strings are masked.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any

from metaexpert.storage.urls import redact_text

_SECRET_KEY = re.compile(
    r"(api_?key|api_?secret|secret|passphrase|password|passwd|token|private_?key|credential)",
    re.IGNORECASE,
)
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<key>\b[\w-]*(?:api_?key|secret|passphrase|password|passwd|token)[\w-]*)(?P<sep>\s*[=:]\s*)(?P<value>[^\s,;&'\"]+)",
    re.IGNORECASE,
)


def is_secret_key(key: object) -> bool:
    """True for keys such as ``api_key``, ``apiSecret``, ``api-passphrase``, ``password``, ``token``."""
    return isinstance(key, str) and bool(_SECRET_KEY.search(key.replace("-", "_")))


def sanitize_configuration(configuration: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of ``configuration`` without secret keys, at any depth."""
    if not isinstance(configuration, Mapping):
        raise TypeError(f"configuration must be a mapping, got {type(configuration).__name__}")
    return _drop_secrets(to_json_compatible(configuration))


def _drop_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _drop_secrets(item) for key, item in value.items() if not is_secret_key(key)}
    if isinstance(value, list):
        return [_drop_secrets(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def scrub_text(text: str) -> str:
    """Mask URL credentials and ``secret=...``-style assignments in free text (error messages)."""
    masked = redact_text(text)
    return _SECRET_ASSIGNMENT.sub(lambda m: f"{m['key']}{m['sep']}***", masked)


def to_json_compatible(value: Any) -> Any:
    """Convert ``value`` into plain JSON types, losslessly where JSON allows.

    Enums become their value, datetimes ISO 8601 text, tuples and sets lists,
    Decimals floats, and non-finite floats the strings ``"NaN"``, ``"Infinity"`` and
    ``"-Infinity"`` (PostgreSQL's JSONB refuses the bare tokens). Anything else that is
    not JSON raises ``TypeError`` naming the offending type, so a bad value fails at
    the call site and not inside a background flush.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Enum):
        return to_json_compatible(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, Decimal):
        return to_json_compatible(float(value))
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if isinstance(key, Enum):
                key = key.value
            if not isinstance(key, (str, int, float, bool)):
                raise TypeError(f"JSON object keys must be text, got {type(key).__name__} {key!r}")
            result[str(key)] = to_json_compatible(item)
        return result
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [to_json_compatible(item) for item in items]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_json_compatible(
            {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        )
    item_method = getattr(value, "item", None)  # numpy scalars
    if callable(item_method) and type(value).__module__.startswith("numpy"):
        return to_json_compatible(item_method())
    raise TypeError(f"value of type {type(value).__name__} cannot be stored as JSON: {value!r}")
