"""Scrub credentials out of any text before it leaves the gateway.

ccxt puts the request URL (with ``signature=`` for Binance), request headers and response
bodies into exception messages, and ccxt's verbose logging dumps them too. Rather than
trusting every caller, the gateway registers the secrets it was configured with and runs
every message it raises or logs through ``redact``. Known credential shapes (signature
query parameters, authentication headers, key/secret fields in JSON or dict reprs) are
masked even when nobody registered the value.

This module is deliberately self-contained: features never import one another, so the
exchanges package cannot borrow ``metaexpert.observability``'s masker.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

MASK = "***"
_MINIMUM_LENGTH = 6

_lock = threading.Lock()
_registered: set[str] = set()

_PATTERNS: tuple[re.Pattern[str], ...] = (
    # query strings and form bodies: signature=..., apiKey=..., sign=...
    re.compile(
        r"(?i)\b(signature|sign|apikey|api_key|secret|password|passphrase|recvwindow_sig)=([^&\s'\"]+)"
    ),
    # HTTP authentication headers as they appear in dict reprs or raw header dumps
    re.compile(
        r"(?i)(['\"]?(?:x-mbx-apikey|x-bapi-api-key|x-bapi-sign|ok-access-key|ok-access-sign|"
        r"ok-access-passphrase|authorization)['\"]?\s*[:=]\s*['\"]?)([^'\",}\s]+)"
    ),
    # JSON / dict entries: "apiKey": "...", 'secret': '...'
    re.compile(
        r"(?i)(['\"](?:apikey|api_key|api_secret|secret|password|passphrase|signature|sign)['\"]\s*:\s*['\"])"
        r"([^'\"]+)"
    ),
)


def register_secret(value: str | None) -> None:
    """Remember a credential so that every later ``redact`` call masks it."""
    if value and len(value) >= _MINIMUM_LENGTH:
        with _lock:
            _registered.add(value)


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)


def redact(text: object) -> str:
    """Return ``text`` as a string with every known secret and credential shape masked."""
    result = str(text)
    with _lock:
        secrets = sorted(_registered, key=len, reverse=True)
    for secret in secrets:
        if secret in result:
            result = result.replace(secret, MASK)
    for pattern in _PATTERNS:
        result = pattern.sub(_mask_group, result)
    return result


def _mask_group(match: re.Match[str]) -> str:
    prefix = match.group(1)
    if match.re is _PATTERNS[0]:
        return f"{prefix}={MASK}"
    return f"{prefix}{MASK}"


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in a record's final message and exception text.

    Attach it to the handlers (or loggers such as ``ccxt``) whose output may contain
    request dumps. It renders the message once, scrubs it, and clears the arguments so no
    later formatter can re-insert the raw values.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record must not break logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exception = record.exc_info[1]
            exception.args = tuple(redact(argument) for argument in exception.args)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
