"""Keep secrets out of logs, reports and exception messages.

API keys, secrets and passphrases pass through code that logs liberally (ccxt request
dumps, exception messages that quote a URL with its ``signature=``). Rather than trusting
every call site, secrets are registered once (``register_secret``) and scrubbed on the way
out: ``SecretMasker`` is a ``logging.Filter`` that rewrites a record's message, arguments,
exception text, stack text and extra fields; ``mask_text`` does the same for any string
(report text, an error shown by the CLI).

Besides registered values, a few well-known shapes are always masked because they carry
credentials even when nobody registered them: ``signature=...`` query parameters,
exchange authentication headers (``X-MBX-APIKEY``, ``X-BAPI-*``, ``OK-ACCESS-*``),
``Authorization: Bearer ...`` and ``apiKey``/``secret``/``password``/``passphrase`` entries
in dict reprs, JSON and keyword-style text.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MASK",
    "MINIMUM_SECRET_LENGTH",
    "SecretMasker",
    "clear_secrets",
    "is_sensitive_key",
    "mask_text",
    "mask_value",
    "register_secret",
    "registered_secret_count",
    "unregister_secret",
]

MASK = "***"

# Masking a two-character "secret" would shred every log line that happens to contain
# those characters; real credentials are far longer, so short values are refused loudly.
MINIMUM_SECRET_LENGTH = 4

_SENSITIVE_KEY_WORDS = (
    "apikey",
    "api_key",
    "api-key",
    "apisecret",
    "api_secret",
    "secret",
    "password",
    "passphrase",
    "privatekey",
    "private_key",
    "token",
    "signature",
    "authorization",
    "x-mbx-apikey",
    "ok-access-key",
    "ok-access-sign",
    "ok-access-passphrase",
    "x-bapi-api-key",
    "x-bapi-sign",
)

# Key names (in dict reprs, JSON, headers, keyword text) whose value is a credential.
_KEY_NAMES = (
    r"api[_-]?key|api[_-]?secret|secret(?:[_-]?key)?|password|passphrase|private[_-]?key"
    r"|access[_-]?token|refresh[_-]?token|token|signature|sign"
    r"|x-mbx-apikey|x-bapi-api-key|x-bapi-sign|ok-access-key|ok-access-sign"
    r"|ok-access-passphrase"
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # 'apiKey': 'abc' / "secret": "abc" (dict repr or JSON), any quote style.
    (
        re.compile(
            r"""(?P<prefix>(?P<q1>['"])(?:""" + _KEY_NAMES + r""")(?P=q1)\s*:\s*)"""
            r"""(?P<q2>['"])(?P<value>(?:(?!(?P=q2)).)*)(?P=q2)""",
            re.IGNORECASE,
        ),
        r"\g<prefix>\g<q2>" + MASK + r"\g<q2>",
    ),
    # 'apiKey': b'abc' is rare; unquoted dict values such as 'secret': None are harmless.
    # Authorization: Bearer xyz / Basic xyz
    (
        re.compile(
            r"(?P<prefix>\bauthorization\s*[:=]\s*(?:bearer|basic|token)?\s*)[^\s,;'\"}]+",
            re.IGNORECASE,
        ),
        r"\g<prefix>" + MASK,
    ),
    # Header or keyword style: X-MBX-APIKEY: abc, signature=abc, api_key=abc, secret: abc
    (
        re.compile(
            r"(?P<prefix>(?<![\w-])(?:" + _KEY_NAMES + r")\s*[:=]\s*)"
            r"(?!['\"])(?P<value>[^\s&,;'\"}\])]+)",
            re.IGNORECASE,
        ),
        r"\g<prefix>" + MASK,
    ),
)

# One cheap scan decides whether the credential patterns can match at all; most log
# lines contain none of these words and skip the three pattern scans.
_TRIGGER = re.compile(
    r"key|secret|passw|passphrase|token|sign|authorization|ok-access|x-bapi|x-mbx",
    re.IGNORECASE,
)

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def register_secret(value: str | bytes | None) -> None:
    """Remember ``value`` so that it is replaced with ``***`` wherever it is logged.

    ``None`` and empty values are ignored (an unset credential is not a secret). Values
    shorter than ``MINIMUM_SECRET_LENGTH`` are refused with ``ValueError`` because masking
    them would corrupt ordinary text. Registering is idempotent and thread-safe.
    """
    if value is None:
        return
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        raise TypeError(f"a secret must be str or bytes, not {type(value).__name__}")
    value = value.strip()
    if not value:
        return
    if len(value) < MINIMUM_SECRET_LENGTH:
        raise ValueError(
            f"refusing to register a secret shorter than {MINIMUM_SECRET_LENGTH} characters: "
            "masking it would corrupt ordinary log text"
        )
    global _secret_pattern
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        _secret_pattern = _compile(_secrets)


def unregister_secret(value: str) -> None:
    """Forget one registered secret (for example after a key rotation)."""
    global _secret_pattern
    with _lock:
        _secrets.discard(value.strip())
        _secret_pattern = _compile(_secrets)


def clear_secrets() -> None:
    """Forget every registered secret; meant for tests and process re-initialisation."""
    global _secret_pattern
    with _lock:
        _secrets.clear()
        _secret_pattern = None


def registered_secret_count() -> int:
    """How many distinct secrets are registered (never the secrets themselves)."""
    with _lock:
        return len(_secrets)


def _compile(values: Iterable[str]) -> re.Pattern[str] | None:
    # Longest first so that a secret containing another one is masked whole.
    ordered = sorted(values, key=len, reverse=True)
    if not ordered:
        return None
    return re.compile("|".join(re.escape(v) for v in ordered))


def mask_text(text: str) -> str:
    """Return ``text`` with every registered secret and credential-shaped value masked."""
    if not isinstance(text, str):
        text = str(text)
    if not text:
        return text
    pattern = _secret_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    if _TRIGGER.search(text) is None:
        return text
    for regex, replacement in _PATTERNS:
        text = regex.sub(replacement, text)
    return text


def is_sensitive_key(key: object) -> bool:
    """True when a mapping key names a credential (``apiKey``, ``secret``, ``X-MBX-APIKEY``...)."""
    if not isinstance(key, str):
        return False
    lowered = key.lower()
    return any(word in lowered for word in _SENSITIVE_KEY_WORDS)


def mask_value(value: Any, _depth: int = 0) -> Any:
    """Mask secrets inside strings, mappings and sequences; other objects pass unchanged.

    Values stored under sensitive keys are replaced entirely. Containers are copied, never
    modified in place, so the caller's objects stay intact. Objects that are neither strings
    nor containers are returned as they are; when they end up in text they are masked then.
    """
    if _depth > 8:
        return value
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bytes):
        return mask_text(value.decode("utf-8", errors="replace"))
    if isinstance(value, Mapping):
        return {
            key: (
                MASK
                if is_sensitive_key(key) and item not in (None, "")
                else mask_value(item, _depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_value(item, _depth + 1) for item in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(mask_value(item, _depth + 1) for item in value)
    if isinstance(value, (set, frozenset)):
        return [mask_value(item, _depth + 1) for item in value]
    return value


# Attributes every LogRecord has; anything else on a record came from ``extra=`` or a filter.
_STANDARD_RECORD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
) | {"message", "asctime", "taskName"}


class SecretMasker(logging.Filter):
    """A logging filter that scrubs secrets from everything a handler could print.

    The record's message is rendered (``msg % args``), masked and stored back with
    ``args`` cleared; an exception is rendered to text, masked, and kept as ``exc_text``
    while ``exc_info`` is dropped so that no formatter (plain, JSON or Rich) can re-render
    the raw traceback with the secret in it. Extra fields are masked as values. The
    record is modified in place; applying the filter twice is harmless.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Scrub ``record`` in place (see ``SecretMasker``) and return it."""
    if getattr(record, "_metaexpert_masked", False):
        return record
    if isinstance(record.msg, Mapping):
        record.msg = mask_value(record.msg)
        if record.args:
            record.args = mask_value(record.args)
    else:
        try:
            rendered = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must not hide the line
            rendered = f"{record.msg!s} {record.args!r}"
        record.msg = mask_text(rendered)
        record.args = None
    if record.exc_info and record.exc_info[0] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        record.exc_text = mask_text(text)
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)
    for key, value in list(record.__dict__.items()):
        if key in _STANDARD_RECORD_ATTRIBUTES or key.startswith("_"):
            continue
        if is_sensitive_key(key) and value not in (None, ""):
            record.__dict__[key] = MASK
        else:
            record.__dict__[key] = mask_value(value)
    record._metaexpert_masked = True
    return record
