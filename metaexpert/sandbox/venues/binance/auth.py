"""Binance request authentication: API key header, HMAC-SHA256 signature, timestamp window.

Why it is checked for real: a client that signs wrongly, sends a stale timestamp or loses its key
must fail here exactly as it would on Binance, or the first contact with the exchange is the test.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from metaexpert.sandbox.venues.binance.errors import BinanceError, missing_parameter

DEFAULT_RECV_WINDOW_MS = 5_000


def server_time_ms() -> int:
    """Wall-clock time in ms: what /time answers and what timestamps are checked against."""
    return int(time.time() * 1000)


def strip_signature(raw: str) -> tuple[str, str | None]:
    """Split ``a=1&b=2&signature=xx`` into the signed payload and the signature."""
    if not raw:
        return "", None
    kept: list[str] = []
    signature: str | None = None
    for piece in raw.split("&"):
        if piece.startswith("signature="):
            signature = piece[len("signature=") :]
        else:
            kept.append(piece)
    return "&".join(kept), signature


def sign(payload: str, secret: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def check_api_key(api_key: str | None, secrets: Mapping[str, str]) -> str:
    if not api_key:
        raise BinanceError(-2014, "API-key format invalid.", status=401)
    if api_key not in secrets:
        raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
    return api_key


def check_timestamp(params: Mapping[str, str], recv_window_max_ms: int) -> None:
    raw_timestamp = params.get("timestamp")
    if not raw_timestamp:
        raise missing_parameter("timestamp")
    try:
        timestamp = int(raw_timestamp)
        recv_window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
    except ValueError as exc:
        raise BinanceError(-1100, "Illegal characters found in parameter 'timestamp'.") from exc
    if recv_window > recv_window_max_ms or recv_window <= 0:
        raise BinanceError(-1131, f"recvWindow must be less than {recv_window_max_ms}.")
    now = server_time_ms()
    if timestamp >= now + 1_000 or now - timestamp > recv_window:
        raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def verify_signed_request(
    api_key: str | None,
    raw_query: str,
    raw_body: str,
    params: Mapping[str, str],
    secrets: Mapping[str, str],
    recv_window_max_ms: int,
) -> str:
    """Check a SIGNED endpoint request; return the API key it belongs to."""
    key = check_api_key(api_key, secrets)
    query_payload, query_signature = strip_signature(raw_query)
    body_payload, body_signature = strip_signature(raw_body)
    signature = query_signature or body_signature
    if not signature:
        raise missing_parameter("signature")
    check_timestamp(params, recv_window_max_ms)
    payload = query_payload + body_payload
    expected = sign(payload, secrets[key])
    if not hmac.compare_digest(expected, signature.lower()):
        raise BinanceError(-1022, "Signature for this request is not valid.")
    return key


def verify_ws_api_params(
    params: Mapping[str, object], secrets: Mapping[str, str], recv_window_max_ms: int
) -> str:
    """Check a websocket-API request: parameters sorted by name, joined, HMAC-signed."""
    api_key = params.get("apiKey")
    key = check_api_key(str(api_key) if api_key is not None else None, secrets)
    signature = params.get("signature")
    if not signature:
        raise missing_parameter("signature")
    string_params = {name: str(value) for name, value in params.items() if name != "signature"}
    check_timestamp(string_params, recv_window_max_ms)
    payload = "&".join(f"{name}={string_params[name]}" for name in sorted(string_params))
    if not hmac.compare_digest(sign(payload, secrets[key]), str(signature).lower()):
        raise BinanceError(-1022, "Signature for this request is not valid.")
    return key
