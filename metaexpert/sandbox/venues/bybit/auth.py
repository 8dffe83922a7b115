"""Bybit v5 request authentication as Bybit checks it.

Headers ``X-BAPI-API-KEY``, ``X-BAPI-TIMESTAMP`` (ms), ``X-BAPI-RECV-WINDOW`` (default 5000) and
``X-BAPI-SIGN`` = hex HMAC-SHA256 of ``timestamp + api_key + recv_window + payload``, where the
payload is the query string of a GET and the raw JSON body of a POST. Failures answer with
retCode 10003 (unknown key), 10004 (bad signature, quoting the origin string as Bybit does) or
10002 (timestamp outside the receive window), all with HTTP status 200 like the venue.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from metaexpert.sandbox.venues.bybit.errors import BybitError


def server_time_ms() -> int:
    return int(time.time() * 1000)


def verify(
    headers: Mapping[str, str], payload: str, secrets: Mapping[str, str], recv_window_max_ms: int
) -> str:
    """Check a private request; return the API key it belongs to."""
    api_key = headers.get("X-BAPI-API-KEY")
    if not api_key or api_key not in secrets:
        raise BybitError(10003, "API key is invalid.")
    raw_timestamp = headers.get("X-BAPI-TIMESTAMP", "")
    raw_window = headers.get("X-BAPI-RECV-WINDOW", "5000")
    try:
        timestamp, window = int(raw_timestamp), int(raw_window)
    except ValueError as exc:
        raise BybitError(
            10001, "X-BAPI-TIMESTAMP and X-BAPI-RECV-WINDOW must be integers."
        ) from exc
    now = server_time_ms()
    if (
        window <= 0
        or window > recv_window_max_ms
        or timestamp > now + 1_000
        or now - timestamp > window
    ):
        raise BybitError(
            10002,
            "invalid request, please check your server timestamp or recv_window param. "
            f"req_timestamp[{timestamp}],server_timestamp[{now}],recv_window[{window}]",
        )
    origin = f"{raw_timestamp}{api_key}{raw_window}{payload}"
    expected = hmac.new(secrets[api_key].encode(), origin.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers.get("X-BAPI-SIGN", "").lower()):
        raise BybitError(10004, f"error sign! origin_string[{origin}]")
    return api_key
