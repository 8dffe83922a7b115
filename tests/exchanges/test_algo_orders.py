"""Binance USD-M conditional orders live in the algo-order API: placed, polled, listed, cancelled there.

Issue 15: lookups, polls, cancels and the restart listing looked only at the plain order
endpoints, so a stop stayed live at the venue after its position closed ("order not found"
on every poll), and a stop whose create timed out was marked rejected while it was live.
"""

from __future__ import annotations

import pytest

from metaexpert.core.enums import OrderSide, OrderStatus, OrderType
from metaexpert.core.order import Order
from metaexpert.exchanges import OrderQueuedError
from metaexpert.sandbox import Fault
from tests.exchanges.conftest import FAST_RETRY, ledger_orders, sandbox_gateway

pytestmark = [pytest.mark.asyncio, pytest.mark.network]


def _stop(price: float) -> Order:
    return Order(
        symbol="BTCUSDT",
        side=OrderSide.SELL,
        order_type=OrderType.STOP_MARKET,
        quantity=0.01,
        stop_price=price,
        reduce_only=True,
    )


async def test_usdm_stop_is_polled_listed_at_restart_and_cancelled_through_algo_api(
    fresh_sandbox,
) -> None:
    sandbox = fresh_sandbox
    gateway = sandbox_gateway(sandbox, "usdm")
    restarted = sandbox_gateway(sandbox, "usdm")
    try:
        await gateway.load_markets()
        await restarted.load_markets()
        await gateway.create_order(
            Order(symbol="BTCUSDT", side=OrderSide.BUY, order_type=OrderType.MARKET, quantity=0.01)
        )
        stop = _stop(round(sandbox.price("BTCUSDT") * 0.9, 1))
        await gateway.create_order(stop)
        assert stop.status is OrderStatus.SUBMITTED
        polled = await gateway.fetch_order("BTCUSDT", client_order_id=stop.client_order_id)
        assert (polled.status, polled.order_type, polled.stop_price) == (
            OrderStatus.SUBMITTED,
            OrderType.STOP_MARKET,
            stop.stop_price,
        )
        listed = {
            order.client_order_id: order for order in await restarted.fetch_open_orders("BTCUSDT")
        }
        assert (
            listed[stop.client_order_id].stop_price == stop.stop_price
        )  # found again after a restart
        await gateway.cancel_order(stop)
        assert stop.status is OrderStatus.CANCELLED
        assert [order["status"] for order in ledger_orders(sandbox, stop.client_order_id)] == [
            "CANCELED"
        ]
    finally:
        await gateway.close()
        await restarted.close()


async def test_usdm_stop_with_create_answer_lost_is_resolved_by_algo_lookup(fresh_sandbox) -> None:
    sandbox = fresh_sandbox
    gateway = sandbox_gateway(
        sandbox, "usdm", client_options={"recvWindow": 300}, order_retry_policy=FAST_RETRY
    )
    try:
        await gateway.load_markets()
        await gateway.create_order(
            Order(symbol="BTCUSDT", side=OrderSide.BUY, order_type=OrderType.MARKET, quantity=0.01)
        )
        sandbox.inject(
            Fault(kind="drop_after_accept", count=1, path="/fapi/v1/algoOrder", method="POST")
        )
        stop = _stop(round(sandbox.price("BTCUSDT") * 0.9, 1))
        await gateway.create_order(stop)
        assert (
            stop.status is OrderStatus.SUBMITTED
        )  # looked up in the algo API, not marked rejected
        assert len(ledger_orders(sandbox, stop.client_order_id)) == 1  # and not placed twice
    finally:
        sandbox.clear_faults()
        await gateway.close()


async def test_usdm_stop_cancel_journalled_before_a_restart_is_replayed_through_algo_api(
    fresh_sandbox, tmp_path
) -> None:
    sandbox = fresh_sandbox
    queue = tmp_path / "orders.sqlite"
    first = sandbox_gateway(sandbox, "usdm", order_queue_path=queue, retry_policy=FAST_RETRY)
    try:
        await first.load_markets()
        await first.create_order(
            Order(symbol="BTCUSDT", side=OrderSide.BUY, order_type=OrderType.MARKET, quantity=0.01)
        )
        stop = _stop(round(sandbox.price("BTCUSDT") * 0.9, 1))
        await first.create_order(stop)
        sandbox.inject(
            Fault(kind="unavailable", count=None, path="/fapi/v1/algoOrder", method="DELETE")
        )
        with pytest.raises(OrderQueuedError):
            await first.cancel_order(stop)
    finally:
        sandbox.clear_faults()
        await first.close()
    restarted = sandbox_gateway(sandbox, "usdm", order_queue_path=queue)  # tracks nothing
    try:
        (outcome,) = await restarted.replay_queue()
        assert outcome.result == "cancelled"
        assert [order["status"] for order in ledger_orders(sandbox, stop.client_order_id)] == [
            "CANCELED"
        ]
    finally:
        await restarted.close()
