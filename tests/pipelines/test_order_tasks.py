"""Order tasks: a Prefect retry after the venue accepted an order returns it, never places a second."""

from __future__ import annotations

import pytest

from metaexpert.core.errors import ConfigurationError
from metaexpert.exchanges import ExchangeConfig
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer
from tasks.orders import cancel_order, order_from_spec, submit_order
from tests.pipelines.conftest import sandbox_url

pytestmark = pytest.mark.network

KEY, SECRET = "orders-key-" + "k" * 53, "orders-secret-" + "s" * 50


@pytest.fixture(scope="module")
def order_sandbox(shared_data):
    config = SandboxConfig(
        data_dir=shared_data,
        timeframe="1m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=[],
        speed=0.0,
        start_time_ms=1_748_995_200_000,
        tick_replay=False,
        accounts=[AccountConfig(api_key=KEY, secret=SECRET, spot_balances={"USDT": 100_000})],
    )
    with SandboxServer(config) as server:
        yield server


def exchange_config(server) -> ExchangeConfig:
    return ExchangeConfig(
        exchange="binance",
        market_type="spot",
        api_key=KEY,
        api_secret=SECRET,
        base_url=sandbox_url(server),
        trade_mode="live",
        timeout_ms=2_000,
    )


def venue_orders(server, client_order_id: str) -> list[dict]:
    return [
        order for order in server.ledger()["orders"] if order["client_order_id"] == client_order_id
    ]


def test_submit_order_with_connection_dropped_after_accept_retries_without_duplicate(
    prefect_harness, order_sandbox
):
    order_sandbox.clear_faults()
    order_sandbox.inject(
        {"kind": "drop_after_accept", "count": 1, "path": "/api/v3/order", "method": "POST"}
    )
    spec = {
        "symbol": "BTCUSDT",
        "side": "buy",
        "quantity": 0.01,
        "client_order_id": "pipeline-once-1",
    }
    result = submit_order.with_options(retry_delay_seconds=0.01)(
        exchange_config(order_sandbox), spec, gateway_attempts=1
    )
    assert result["already_at_venue"] is True  # the first attempt's order, found by the retry
    assert len(venue_orders(order_sandbox, "pipeline-once-1")) == 1
    assert len(order_sandbox.fault_history()) >= 1


def test_cancel_order_with_resting_limit_order_cancels_it_by_client_id(
    prefect_harness, order_sandbox
):
    order_sandbox.clear_faults()
    config = exchange_config(order_sandbox)
    price = round(order_sandbox.price("BTCUSDT") * 0.5, 2)
    placed = submit_order(
        config,
        {
            "symbol": "BTCUSDT",
            "side": "buy",
            "quantity": 0.01,
            "price": price,
            "client_order_id": "pipeline-rest-1",
        },
    )
    assert placed["status"] in ("submitted", "open") and placed["already_at_venue"] is False
    cancelled = cancel_order(config, "BTCUSDT", "pipeline-rest-1")
    assert cancelled["status"] == "cancelled"
    (venue,) = venue_orders(order_sandbox, "pipeline-rest-1")
    assert venue["status"].lower() in ("canceled", "cancelled")


def test_order_spec_without_client_order_id_raises_clear_error():
    with pytest.raises(ConfigurationError, match="client_order_id"):
        order_from_spec({"symbol": "BTCUSDT", "side": "buy", "quantity": 1})
