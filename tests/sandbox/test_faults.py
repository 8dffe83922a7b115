"""Fault injection as ccxt sees it: each failure kind raises the exception a client must handle."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import ccxt
import pytest

from metaexpert.sandbox import Fault, SandboxServer

BTC = "BTC/USDT:USDT"


def test_rate_limit_fault_with_429_raises_ddos_protection_then_recovers(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    sandbox.inject(Fault(kind="rate_limit", count=2, path="/fapi/v1/ticker", retry_after_seconds=3))
    for _ in range(2):
        with pytest.raises(ccxt.DDoSProtection, match="429"):
            usdm.fetch_ticker(BTC)
        assert usdm.last_response_headers["Retry-After"] == "3"
    assert usdm.fetch_ticker(BTC)["last"] > 0


def test_ip_ban_fault_with_418_raises_ddos_protection(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    sandbox.inject({"kind": "ip_ban", "path": "/api/v3/account"})
    with pytest.raises(ccxt.DDoSProtection, match="418"):
        spot.fetch_balance()
    assert spot.fetch_balance()["USDT"]["free"] == 100_000


def test_unavailable_fault_with_503_raises_operation_failed_not_network_error(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    sandbox.inject(Fault(kind="unavailable", path="/fapi/v1/order", method="POST"))
    with pytest.raises(ccxt.OperationFailed, match="-1001") as caught:
        usdm.create_order(BTC, "market", "buy", 0.01)
    assert not isinstance(caught.value, ccxt.NetworkError)
    assert sandbox.ledger()["orders"] == []  # a 503 never reaches the matching engine


def test_timeout_after_accept_fault_with_short_client_timeout_applies_order(
    usdm: ccxt.binanceusdm, sandbox: SandboxServer
) -> None:
    usdm.timeout = 300
    sandbox.inject(Fault(kind="timeout_after_accept", path="/fapi/v1/order", latency_seconds=1.0))
    with pytest.raises(ccxt.RequestTimeout):
        usdm.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "retry-safe-1"})
    usdm.timeout = 5_000
    order = usdm.fetch_order(None, BTC, params={"clientOrderId": "retry-safe-1"})
    assert order["status"] == "closed"  # the order was accepted: a blind retry would double it
    assert [o["client_order_id"] for o in sandbox.ledger()["orders"]] == ["retry-safe-1"]


def test_drop_after_accept_fault_raises_network_error_and_keeps_order(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    sandbox.inject(Fault(kind="drop_after_accept", path="/api/v3/order", method="POST"))
    with pytest.raises(ccxt.NetworkError):
        spot.create_order("BTC/USDT", "market", "buy", 0.001, params={"clientOrderId": "dropped-1"})
    assert (
        spot.fetch_order(None, "BTC/USDT", params={"clientOrderId": "dropped-1"})["filled"] == 0.001
    )


def test_drop_connection_fault_raises_network_error_without_applying(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    sandbox.inject(Fault(kind="drop_connection", path="/api/v3/order"))
    with pytest.raises(ccxt.NetworkError):
        spot.create_order("BTC/USDT", "market", "buy", 0.001)
    assert sandbox.ledger()["orders"] == []


def test_latency_fault_with_delay_slows_answer_but_succeeds(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    sandbox.inject(Fault(kind="latency", path="/api/v3/ticker", latency_seconds=0.3))
    started = time.monotonic()
    assert spot.fetch_ticker("BTC/USDT")["last"] > 0
    assert time.monotonic() - started >= 0.3


def _chaos_outcomes(sandbox: SandboxServer, spot: ccxt.binance) -> list[bool]:
    sandbox.clear_faults()
    sandbox.inject(
        Fault(kind="unavailable", path="/api/v3/ticker", probability=0.3, count=None, seed=42)
    )
    outcomes = []
    for _ in range(30):
        try:
            spot.fetch_ticker("BTC/USDT")
            outcomes.append(True)
        except ccxt.OperationFailed:
            outcomes.append(False)
    return outcomes


def test_probability_fault_with_seed_is_reproducible(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    first = _chaos_outcomes(sandbox, spot)
    second = _chaos_outcomes(sandbox, spot)
    assert first == second
    assert 3 <= first.count(False) <= 18


def test_admin_api_with_fault_post_injects_and_lists_rule(sandbox: SandboxServer) -> None:
    body = json.dumps({"kind": "rate_limit", "count": 3, "path": "/api/v3/time"}).encode()
    request = urllib.request.Request(
        f"{sandbox.base_url}/sandbox/faults",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        active = json.loads(response.read())["active"]
    assert active[0]["kind"] == "rate_limit" and active[0]["remaining"] == 3
    bad = urllib.request.Request(
        f"{sandbox.base_url}/sandbox/faults",
        data=b'{"kind": "meteor"}',
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(bad, timeout=5)
    assert caught.value.code == 400


def test_fault_model_with_latency_kind_and_no_delay_is_invalid() -> None:
    with pytest.raises(ValueError, match="latency_seconds"):
        Fault(kind="timeout_after_accept")


def _admin(sandbox: SandboxServer, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{sandbox.base_url}/sandbox/{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def test_admin_api_with_advance_and_price_moves_replay_and_ledger(
    spot: ccxt.binance, sandbox: SandboxServer
) -> None:
    before = _admin(sandbox, "GET", "status")["time"]
    assert _admin(sandbox, "POST", "advance", {"bars": 3})["time"] == before + 3 * 60_000
    _admin(sandbox, "POST", "price", {"symbol": "ETHUSDT", "price": 1234.5})
    assert spot.fetch_ticker("ETH/USDT")["last"] == 1234.5
    spot.create_order("ETH/USDT", "market", "buy", 0.01)
    ledger = _admin(sandbox, "GET", "ledger")
    assert ledger["fills"][0]["price"] == 1234.5
    assert ledger["accounts"]["test-api-key-0001"]["spot_balances"]["ETH"]["free"] == pytest.approx(
        0.01 * 0.999
    )
    assert _admin(sandbox, "POST", "drop_websockets", {})["dropped"] == 0
