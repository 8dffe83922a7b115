"""Recording a paper session and restarting it after a clean stop (real ccxt, loopback sandbox)."""

from __future__ import annotations

import asyncio

import pytest

from metaexpert.core.enums import OrderStatus, TradeMode
from metaexpert.storage import AuditKind
from tests.persistence.conftest import drive, make_expert, make_runtime, open_recorder

pytestmark = pytest.mark.network


def _spot_expert(sandbox, log):
    expert = make_expert(sandbox, market_type="spot")

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.01
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        log.append(bars.last.timestamp)
        ctx.state["bars_seen"] = ctx.state.get("bars_seen", 0) + 1
        seen = ctx.state["bars_seen"]
        if seen == 1:
            ctx.buy()
        elif seen == 2:
            resting = ctx.buy(0.01, price=round(bars.last_close * 0.5, 2))  # far below: rests
            ctx.state["resting"] = resting.client_order_id
        elif seen in (3, 5):
            ctx.buy()

    return expert


def test_recorder_with_paper_session_stores_every_order_fill_and_position(sandbox, tmp_path):
    recorder = open_recorder(f"sqlite:///{tmp_path / 'state.sqlite'}", tmp_path, TradeMode.PAPER)
    log: list[int] = []
    runtime = asyncio.run(
        drive(make_runtime(_spot_expert(sandbox, log), TradeMode.PAPER, recorder), sandbox, 5)
    )
    recorder.flush()
    engine, store, eid = runtime.engine, recorder.store, recorder.expert_id
    assert len(engine.fills) >= 2 and len(engine.orders) >= 3
    for order in engine.orders:
        stored = store.orders.get(eid, order.client_order_id)
        assert stored is not None, f"order {order.client_order_id} not stored"
        assert (stored.status, stored.filled_quantity, stored.average_price) == (
            order.status,
            order.filled_quantity,
            order.average_price,
        )
        assert [s for s, _ in store.orders.status_history(eid, order.client_order_id)] == [
            s for s, _ in order.status_history
        ]
    stored_fills = {(t.trade_id, t.quantity, t.price, t.fee) for t in store.trades.list(eid)}
    assert stored_fills == {(t.trade_id, t.quantity, t.price, t.fee) for t in engine.fills}
    positions = {(p.symbol, p.side, round(p.quantity, 10)) for p in store.positions.current(eid)}
    assert positions == {
        (p.symbol, p.side, round(p.quantity, 10)) for p in engine.portfolio.positions()
    }
    intents = store.audit.list(expert_id=eid, kind=AuditKind.ORDER_INTENT)
    assert {a.client_order_id for a in intents} == {o.client_order_id for o in engine.orders}
    responses = store.audit.list(expert_id=eid, kind=AuditKind.EXCHANGE_RESPONSE)
    assert {a.client_order_id for a in responses} == {o.client_order_id for o in engine.orders}
    assert store.bar_cursors.all(eid)["BTCUSDT:1m"] == log[-1]
    assert store.state.get(eid, "bars_seen") == len(log)
    recorder.close()


def test_restart_with_clean_stop_restores_positions_orders_and_state(sandbox, tmp_path):
    url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    first_log: list[int] = []
    recorder = open_recorder(url, tmp_path, TradeMode.PAPER)
    first = asyncio.run(
        drive(make_runtime(_spot_expert(sandbox, first_log), TradeMode.PAPER, recorder), sandbox, 3)
    )
    before_positions = {
        (p.symbol, p.side, round(p.quantity, 10), round(p.entry_price, 6))
        for p in first.engine.portfolio.positions()
    }
    resting_id = first.engine.context.state["resting"]
    recorder.close()
    assert before_positions, "the first run must leave a position open"

    second_log: list[int] = []
    recorder = open_recorder(url, tmp_path, TradeMode.PAPER)
    second = asyncio.run(
        drive(
            make_runtime(_spot_expert(sandbox, second_log), TradeMode.PAPER, recorder), sandbox, 0
        )
    )
    engine = second.engine
    assert {
        (p.symbol, p.side, round(p.quantity, 10), round(p.entry_price, 6))
        for p in engine.portfolio.positions()
    } == before_positions
    resting = [o for o in second.broker.open_orders() if o.client_order_id == resting_id]
    assert len(resting) == 1 and resting[0].status is OrderStatus.SUBMITTED, (
        "the resting limit rests again"
    )
    assert engine.context.state["bars_seen"] == len(first_log) == 3
    assert engine.context.state["resting"] == resting_id

    # Going on: the next bars are new ones, never one the first run handled.
    recorder.close()
    recorder = open_recorder(url, tmp_path, TradeMode.PAPER)
    second = asyncio.run(
        drive(
            make_runtime(_spot_expert(sandbox, second_log), TradeMode.PAPER, recorder), sandbox, 2
        )
    )
    assert second_log and min(second_log) > max(first_log), (
        "a bar handled before the restart came again"
    )
    assert second.engine.context.state["bars_seen"] == 3 + len(second_log)
    first_ids = {o.client_order_id for o in first.engine.orders}
    new_ids = [o.order_id for o in second.engine.orders if o.client_order_id not in first_ids]
    assert new_ids and min(map(int, new_ids)) > max(int(o.order_id) for o in first.engine.orders), (
        f"order ids reused: {new_ids} after {[o.order_id for o in first.engine.orders]}"
    )
    recorder.close()
