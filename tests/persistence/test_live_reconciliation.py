"""Live restart: reconcile recovered orders with the venue (the loopback Binance sandbox).

A resting limit is placed, the runtime stops, the sandbox price moves through the limit
while the expert is down, and the runtime starts again: the fill must be booked exactly
once, and the expert's positions must equal the sandbox's own ledger.
"""

from __future__ import annotations

import asyncio

import pytest

from metaexpert.core.enums import OrderStatus, TradeMode
from metaexpert.sandbox import make_ccxt_client
from tests.persistence.conftest import KEY, SECRET, drive, make_expert, make_runtime, open_recorder

pytestmark = pytest.mark.network


def _futures_expert(sandbox):
    expert = make_expert(
        sandbox,
        market_type="futures",
        contract_type="linear",
        position_mode="hedge",
        margin_mode="isolated",
        api_key=KEY,
        api_secret=SECRET,
    )

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe="1m",
        lookback_bars=5,
        size_type="fixed_base",
        size_value=0.01,
        leverage=2,
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        if "resting" not in ctx.state:
            order = ctx.buy(0.01, position_side="long", price=round(bars.last_close * 0.9, 1))
            ctx.state["resting"] = order.client_order_id
            ctx.state["limit"] = order.price

    return expert


def _venue_positions(sandbox):
    account = sandbox.ledger()["accounts"][KEY]
    return {
        (p["position_side"].lower(), round(abs(p["amount"]), 8))
        for p in account["positions"]
        if p["amount"]
    }


def test_live_restart_with_fill_while_down_books_it_once_and_matches_venue(
    sandbox, tmp_path, secret_values
):
    secret_values.update({KEY, SECRET})
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    recorder = open_recorder(url, tmp_path, TradeMode.LIVE)
    first = asyncio.run(
        drive(make_runtime(_futures_expert(sandbox), TradeMode.LIVE, recorder), sandbox, 2)
    )
    resting_id = first.engine.context.state["resting"]
    limit = first.engine.context.state["limit"]
    assert (
        next(o for o in first.engine.orders if o.client_order_id == resting_id).status
        is OrderStatus.SUBMITTED
    )
    assert first.engine.portfolio.positions() == []
    recorder.close()

    sandbox.set_price(
        "BTCUSDT", round(limit * 0.98, 1)
    )  # the venue fills the limit while we are down
    venue_order = next(
        o for o in sandbox.ledger()["orders"] if o.get("client_order_id") == resting_id
    )
    assert venue_order["status"].upper() == "FILLED", venue_order

    recorder = open_recorder(url, tmp_path, TradeMode.LIVE)
    second = asyncio.run(
        drive(make_runtime(_futures_expert(sandbox), TradeMode.LIVE, recorder), sandbox, 2)
    )
    recorder.flush()
    engine = second.engine
    order = next(o for o in engine.orders if o.client_order_id == resting_id)
    assert order.status is OrderStatus.FILLED
    assert recorder.reconciled_fills == 1
    assert [t.client_order_id for t in engine.fills].count(resting_id) == 1, "booked exactly once"
    stored = [
        t for t in recorder.store.trades.list(recorder.expert_id) if t.client_order_id == resting_id
    ]
    assert len(stored) == 1 and stored[0].quantity == pytest.approx(0.01)
    positions = {(p.side.value, round(p.quantity, 8)) for p in engine.portfolio.positions()}
    assert positions == {("long", 0.01)} == _venue_positions(sandbox)
    assert [o for o in engine.orders if o.client_order_id != resting_id] == [], (
        "nothing placed twice"
    )
    assert not [e for e in engine.errors if "reconcile" in e], engine.errors
    recorder.close()


def test_live_restart_with_unknown_venue_order_reports_it(sandbox, tmp_path, secret_values):
    secret_values.update({KEY, SECRET})
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    client = make_ccxt_client("binanceusdm", sandbox, KEY, SECRET, async_=False)
    price = sandbox.price("BTCUSDT")
    client.load_markets()
    client.set_position_mode(True, "BTC/USDT:USDT")  # the expert trades in hedge mode
    client.create_order(
        "BTC/USDT:USDT",
        "limit",
        "buy",
        0.01,
        round(price * 0.5, 1),
        {"positionSide": "LONG", "newClientOrderId": "foreign-order-1"},
    )
    recorder = open_recorder(url, tmp_path, TradeMode.LIVE)
    runtime = asyncio.run(
        drive(make_runtime(_futures_expert(sandbox), TradeMode.LIVE, recorder), sandbox, 1)
    )
    recorder.flush()
    assert [o.client_order_id for o in recorder.unknown_orders] == ["foreign-order-1"]
    decisions = [
        d
        for d in recorder.store.decisions.list(recorder.expert_id)
        if d.rule == "reconciliation" and d.action == "unknown_order"
    ]
    assert len(decisions) == 1 and "foreign-order-1" in decisions[0].reason
    assert all(o.client_order_id != "foreign-order-1" for o in runtime.engine.orders), (
        "left untouched"
    )
    venue = [o for o in sandbox.ledger()["orders"] if o.get("client_order_id") == "foreign-order-1"]
    assert venue and venue[0]["status"].upper() == "NEW"
    recorder.close()


def test_live_restart_with_order_still_open_adopts_it_and_books_later_fill_once(
    sandbox, tmp_path, secret_values
):
    secret_values.update({KEY, SECRET})
    url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    recorder = open_recorder(url, tmp_path, TradeMode.LIVE)
    first = asyncio.run(
        drive(make_runtime(_futures_expert(sandbox), TradeMode.LIVE, recorder), sandbox, 1)
    )
    resting_id, limit = first.engine.context.state["resting"], first.engine.context.state["limit"]
    recorder.close()

    recorder = open_recorder(url, tmp_path, TradeMode.LIVE)
    runtime = make_runtime(_futures_expert(sandbox), TradeMode.LIVE, recorder)

    async def scenario():
        try:
            await runtime.start()
            assert recorder.unknown_orders == [], "our own resting order is not 'unknown'"
            assert resting_id in runtime.broker.orders, "the live broker polls the recovered order"
            await runtime.step()
            sandbox.set_price("BTCUSDT", round(limit * 0.98, 1))  # fills now, while we run
            for _ in range(2):
                await runtime.step()
        finally:
            await runtime.gateway.close()

    asyncio.run(scenario())
    recorder.flush()
    engine = runtime.engine
    assert [t.client_order_id for t in engine.fills].count(resting_id) == 1
    assert (
        next(o for o in engine.orders if o.client_order_id == resting_id).status
        is OrderStatus.FILLED
    )
    assert {
        (p.side.value, round(p.quantity, 8)) for p in engine.portfolio.positions()
    } == _venue_positions(sandbox)
    assert (
        len(
            [
                t
                for t in recorder.store.trades.list(recorder.expert_id)
                if t.client_order_id == resting_id
            ]
        )
        == 1
    )
    recorder.close()


def _spot_expert(sandbox):
    expert = make_expert(sandbox, market_type="spot", api_key=KEY, api_secret=SECRET)

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.01
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        if "bought" not in ctx.state:
            ctx.state["bought"] = ctx.buy().client_order_id

    return expert


def test_live_restart_with_spot_holding_keeps_it_without_a_position_mismatch(
    sandbox, tmp_path, secret_values
):
    """Spot venues report balances, not positions: a recovered spot holding must survive."""
    secret_values.update({KEY, SECRET})
    url = f"sqlite:///{tmp_path / 'spot.sqlite'}"
    recorder = open_recorder(url, tmp_path, TradeMode.LIVE)
    first = asyncio.run(
        drive(make_runtime(_spot_expert(sandbox), TradeMode.LIVE, recorder), sandbox, 2)
    )
    held = 0.01 - 0.01 * 0.001  # the sandbox takes the 0.1% buy fee in BTC, as Binance does
    assert [(p.side.value, p.quantity) for p in first.engine.portfolio.positions()] == [
        ("long", held)
    ]
    recorder.close()

    recorder = open_recorder(url, tmp_path, TradeMode.LIVE)
    second = asyncio.run(
        drive(make_runtime(_spot_expert(sandbox), TradeMode.LIVE, recorder), sandbox, 1)
    )
    engine = second.engine
    assert [(p.side.value, p.quantity) for p in engine.portfolio.positions()] == [("long", held)]
    assert len(engine.orders) == 0, "nothing bought twice after the restart"
    assert not [e for e in engine.errors if "mismatch" in e], engine.errors
    recorder.close()
