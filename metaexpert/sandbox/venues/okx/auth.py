"""OKX v5 request authentication as OKX checks it.

Headers ``OK-ACCESS-KEY``, ``OK-ACCESS-PASSPHRASE``, ``OK-ACCESS-TIMESTAMP`` (ISO 8601 with ms,
UTC) and ``OK-ACCESS-SIGN`` = base64 HMAC-SHA256 of ``timestamp + METHOD + requestPath(+?query)
+ body``. The sandbox's keys are demo-trading keys, so every private request must also carry
``x-simulated-trading: 1`` (ccxt sends it after ``set_sandbox_mode(True)``), as OKX demands.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import datetime

from metaexpert.sandbox.venues.okx.errors import OkxError

MAX_SKEW_MS = 30_000


def verify(
    headers: Mapping[str, str],
    method: str,
    path_qs: str,
    body: str,
    secrets: Mapping[str, str],
    passphrases: Mapping[str, str],
) -> str:
    api_key = headers.get("OK-ACCESS-KEY", "")
    if not api_key or api_key not in secrets:
        raise OkxError(50111, "Invalid OK-ACCESS-KEY", status=401)
    if headers.get("x-simulated-trading") != "1":
        raise OkxError(50101, "APIKey does not match current environment.", status=401)
    if not hmac.compare_digest(
        headers.get("OK-ACCESS-PASSPHRASE", ""), passphrases.get(api_key, "")
    ):
        raise OkxError(50105, "Your API Key's passphrase is incorrect.", status=401)
    timestamp = headers.get("OK-ACCESS-TIMESTAMP", "")
    try:
        sent = datetime.fromisoformat(timestamp).timestamp() * 1000
    except ValueError as exc:
        raise OkxError(50112, "Invalid OK-ACCESS-TIMESTAMP", status=401) from exc
    if abs(time.time() * 1000 - sent) > MAX_SKEW_MS:
        raise OkxError(50102, "Timestamp request expired", status=401)
    origin = f"{timestamp}{method}{path_qs}{body}"
    digest = hmac.new(secrets[api_key].encode(), origin.encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(
        base64.b64encode(digest).decode(), headers.get("OK-ACCESS-SIGN", "")
    ):
        raise OkxError(50113, "Invalid Sign", status=401)
    return api_key
