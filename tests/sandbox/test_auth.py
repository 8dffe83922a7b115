"""Binance authentication: key header, HMAC signature and timestamp window, seen through ccxt."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

import ccxt
import pytest

from metaexpert.sandbox import SandboxServer, make_ccxt_client
from tests.sandbox.conftest import API_KEY, SECRET


def test_private_call_with_wrong_secret_raises_authentication_error(sandbox: SandboxServer) -> None:
    client = make_ccxt_client("binance", sandbox, API_KEY, "not-the-secret")
    client.load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="-1022"):
        client.fetch_balance()


def test_private_call_with_unknown_key_raises_authentication_error(sandbox: SandboxServer) -> None:
    client = make_ccxt_client("binanceusdm", sandbox, "unknown-key-123", SECRET)
    client.load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        client.fetch_balance()


def test_private_call_with_stale_timestamp_raises_invalid_nonce(sandbox: SandboxServer) -> None:
    client = make_ccxt_client("binance", sandbox, API_KEY, SECRET)
    client.load_markets()
    client.nonce = lambda: client.milliseconds() - 120_000  # a clock two minutes behind
    with pytest.raises(ccxt.InvalidNonce):
        client.fetch_balance()


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_signed_request_with_missing_key_header_returns_2014_and_401(
    sandbox: SandboxServer,
) -> None:
    status, body = _get(f"{sandbox.base_url}/api/v3/account?timestamp=1&signature=00", {})
    assert (status, body["code"]) == (401, -2014)


def test_signed_request_with_handmade_signature_is_accepted(sandbox: SandboxServer) -> None:
    query = f"timestamp={int(time.time() * 1000)}&recvWindow=5000"
    signature = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    status, body = _get(
        f"{sandbox.base_url}/api/v3/account?{query}&signature={signature}",
        {"X-MBX-APIKEY": API_KEY},
    )
    assert status == 200
    assert {"asset": "BTC", "free": "1", "locked": "0"} in body["balances"]


def test_signed_request_without_timestamp_returns_1102(sandbox: SandboxServer) -> None:
    status, body = _get(
        f"{sandbox.base_url}/fapi/v2/account?signature=ab", {"X-MBX-APIKEY": API_KEY}
    )
    assert (status, body["code"]) == (400, -1102)
