"""Fixtures: a loopback Binance sandbox per module, and gateways pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from metaexpert.exchanges import CcxtGateway, ExchangeConfig, RetryPolicy
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer

SANDBOX_KEY = "sandbox-key-0123456789abcdef"
SANDBOX_SECRET = "sandbox-secret-fedcba9876543210"
FAST_RETRY = RetryPolicy(
    attempts=6, initial_delay=0.01, maximum_delay=0.05, jitter=0.01, maximum_retry_after=0.05
)


def _sandbox_config(**overrides: Any) -> SandboxConfig:
    values: dict[str, Any] = {
        "spot_symbols": ["BTCUSDT"],
        "futures_symbols": ["BTCUSDT"],
        "warmup_bars": 50,
        "tick_replay": False,
        "accounts": [
            AccountConfig(
                api_key=SANDBOX_KEY,
                secret=SANDBOX_SECRET,
                spot_balances={"USDT": 10_000_000.0, "BTC": 100.0},
                futures_balances={"USDT": 10_000_000.0},
            )
        ],
    }
    values.update(overrides)
    return SandboxConfig(**values)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxServer]:
    """One sandbox per test module (start-up costs about half a second)."""
    with SandboxServer(_sandbox_config()) as server:
        yield server


@pytest.fixture
def fresh_sandbox() -> Iterator[SandboxServer]:
    """A sandbox of its own, for tests that need a clean account (position mode changes)."""
    with SandboxServer(_sandbox_config()) as server:
        yield server


def ledger_orders(sandbox: SandboxServer, client_order_id: str) -> list[dict[str, Any]]:
    """The sandbox's own record of orders with this client order id (the source of truth)."""
    return [
        order for order in sandbox.ledger()["orders"] if order["client_order_id"] == client_order_id
    ]


def sandbox_config(
    sandbox: SandboxServer, market: str = "spot", **overrides: Any
) -> ExchangeConfig:
    """An ExchangeConfig for the sandbox: ``market`` is ``spot`` or ``usdm``."""
    urls = sandbox.urls("usdm")
    websocket_urls = urls.pop("ws")
    base_url = urls["public"].rsplit("/api/v3", 1)[0]
    values: dict[str, Any] = {
        "exchange": "binance",
        "market_type": "spot" if market == "spot" else "futures",
        "contract_type": None if market == "spot" else "linear",
        "api_key": SANDBOX_KEY,
        "api_secret": SANDBOX_SECRET,
        "base_url": base_url,
        "websocket_urls": websocket_urls,
        "trade_mode": "live",
        "timeout_ms": 1500,
    }
    values.update(overrides)
    return ExchangeConfig.parse(**values)


def sandbox_gateway(
    sandbox: SandboxServer,
    market: str = "spot",
    *,
    config_overrides: dict[str, Any] | None = None,
    **gateway_options: Any,
) -> CcxtGateway:
    gateway_options.setdefault("retry_policy", FAST_RETRY)
    return CcxtGateway(
        sandbox_config(sandbox, market, **(config_overrides or {})), **gateway_options
    )
