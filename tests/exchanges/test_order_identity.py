"""Client order ids are unique per venue account, and a run never adopts an order it did not create.

Issue 15 (phantom fills): client ids were ``me<database expert id>x<n>``, so two runs with their
own databases on one venue account both sent ``me1x1``; a run whose order never reached the
venue looked it up by client id, found the other run's filled order and booked its fill.
"""

from __future__ import annotations

import pytest

from metaexpert.core.enums import OrderSide, OrderType, TradeMode
from metaexpert.core.order import Order
from metaexpert.engine.persistence import ExpertRecorder, PersistenceConfig
from tests.exchanges.conftest import ledger_orders, sandbox_gateway


def _prefix(tmp_path, name: str) -> str:
    recorder = ExpertRecorder.open(
        PersistenceConfig(storage_url=f"sqlite:///{tmp_path / name}"),
        expert_name="trend",
        trade_mode=TradeMode.LIVE,
    )
    try:
        assert recorder.client_id_prefix is not None
        return recorder.client_id_prefix
    finally:
        recorder.close()


def test_client_id_prefix_with_two_databases_differs_and_survives_restart(tmp_path) -> None:
    first = _prefix(tmp_path, "a.sqlite")
    second = _prefix(tmp_path, "b.sqlite")
    assert first != second  # both databases hold expert id 1 named "trend"
    assert first.startswith("me") and first.endswith("1x") and len(first) <= 20
    assert _prefix(tmp_path, "a.sqlite") == first  # a restart keeps its own prefix


@pytest.mark.asyncio
@pytest.mark.network
async def test_replayed_create_with_client_id_of_another_run_does_not_adopt_its_fill(
    sandbox, tmp_path
) -> None:
    other_run = sandbox_gateway(sandbox, "spot")
    this_run = sandbox_gateway(sandbox, "spot", order_queue_path=tmp_path / "orders.sqlite")
    try:
        await other_run.load_markets()
        await this_run.load_markets()
        theirs = Order(
            symbol="BTCUSDT",
            side=OrderSide.BUY,
            order_type=OrderType.MARKET,
            quantity=0.002,
            client_order_id="me1x1",
        )
        await other_run.create_order(theirs)
        assert theirs.filled_quantity == pytest.approx(0.002)
        ours = Order(
            symbol="BTCUSDT",
            side=OrderSide.SELL,
            order_type=OrderType.MARKET,
            quantity=0.001,
            client_order_id="me1x1",
        )
        assert this_run.order_queue is not None
        this_run.order_queue.enqueue_create(ours)  # journalled: it never reached the venue
        (outcome,) = await this_run.replay_queue()
        assert outcome.result == "submitted"  # not "already_at_venue": theirs is not ours
        # Binance lets a client id be reused once its order is closed: our sell is placed
        # as our own order and only its own fill is booked, never their 0.002 buy.
        assert outcome.order is not None
        assert (outcome.order.side, outcome.order.filled_quantity) == (
            OrderSide.SELL,
            pytest.approx(0.001),
        )
        placed = ledger_orders(sandbox, "me1x1")
        assert sorted(order["side"] for order in placed) == ["BUY", "SELL"]
    finally:
        await other_run.close()
        await this_run.close()
