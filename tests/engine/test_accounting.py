"""Fees per fill (maker vs taker) and cash / wallet arithmetic for spot, linear and inverse."""

from __future__ import annotations

import pytest

from metaexpert.core.enums import LiquidityRole, OrderStatus, PositionSide
from tests.engine.harness import make_harness


def test_spot_round_trip_with_taker_entry_and_maker_exit_books_cash_and_fees():
    harness = make_harness(capital=10_000.0, maker_fee=0.001, taker_fee=0.002)
    entry = harness.place("buy", 2.0)
    harness.bar(101.0, 102.0, 100.0, 101.5)
    cash_after_entry = 10_000 - 2 * 101 - 2 * 101 * 0.002
    assert harness.account.balance == pytest.approx(cash_after_entry)
    assert harness.account.equity == pytest.approx(cash_after_entry + 2 * 101.5)
    exit_ = harness.place("sell", 2.0, price=110.0)
    harness.bar(105.0, 111.0, 104.0, 109.0)
    assert exit_.trades[0].liquidity is LiquidityRole.MAKER
    assert exit_.fee == pytest.approx(2 * 110 * 0.001)
    final = cash_after_entry + 2 * 110 - 2 * 110 * 0.001
    assert harness.account.balance == pytest.approx(final)
    assert harness.account.equity == pytest.approx(final)
    assert harness.account.fees_paid == pytest.approx(entry.fee + exit_.fee)
    trade = harness.engine.closed_trades[-1]
    assert trade.pnl == pytest.approx(2 * (110 - 101) - entry.fee - exit_.fee)
    assert trade.fees == pytest.approx(entry.fee + exit_.fee)
    assert harness.portfolio.realized_pnl == pytest.approx(18.0)


def test_spot_partial_sell_with_two_exits_splits_entry_fee_by_quantity():
    harness = make_harness(taker_fee=0.002)
    entry = harness.place("buy", 4.0)
    harness.bar(100.0, 100.0, 100.0, 100.0)
    harness.place("sell", 1.0)
    harness.bar(110.0, 110.0, 110.0, 110.0)
    harness.place("sell", 3.0)
    harness.bar(90.0, 90.0, 90.0, 90.0)
    first, second = harness.engine.closed_trades
    assert first.quantity == 1.0 and second.quantity == 3.0
    assert first.fees == pytest.approx(entry.fee / 4 + 110 * 0.002)
    assert second.pnl == pytest.approx(3 * (90 - 100) - entry.fee * 3 / 4 - 3 * 90 * 0.002)
    assert sum(t.pnl for t in harness.engine.closed_trades) == pytest.approx(
        harness.account.balance - 10_000
    )


def test_linear_futures_with_leverage_locks_margin_and_settles_pnl_in_wallet():
    harness = make_harness(
        market_type="futures",
        contract_type="linear",
        leverage=5,
        maker_fee=0.0002,
        taker_fee=0.0005,
    )
    harness.place("buy", 2.0)
    harness.bar(100.0, 100.0, 100.0, 100.0)
    wallet = 10_000 - 2 * 100 * 0.0005
    assert harness.account.balance == pytest.approx(
        wallet
    )  # futures: only the fee leaves the wallet
    assert harness.account.used_margin == pytest.approx(2 * 100 / 5)
    harness.bar(100.0, 111.0, 99.0, 110.0)
    assert harness.account.unrealized_pnl == pytest.approx(20.0)
    assert harness.account.equity == pytest.approx(wallet + 20.0)
    assert harness.account.free_margin == pytest.approx(wallet + 20.0 - 40.0)
    harness.place("sell", 2.0, price=112.0)
    harness.bar(110.0, 113.0, 109.0, 111.0)
    wallet += 2 * 12 - 2 * 112 * 0.0002
    assert harness.account.balance == pytest.approx(wallet)
    assert harness.account.equity == pytest.approx(wallet)
    assert harness.account.used_margin == 0.0


def test_inverse_futures_with_contracts_settles_fees_and_pnl_in_coin():
    harness = make_harness(
        market_type="futures",
        contract_type="inverse",
        leverage=2,
        capital=1.0,
        contract_size=100.0,
        maker_fee=0.0002,
        taker_fee=0.0005,
        last_price=20_000.0,
    )
    assert harness.portfolio.account.currency == "BTC"
    entry = harness.place("buy", 10.0)  # 10 contracts of 100 USD = 0.05 BTC at 20000
    harness.bar(20_000.0, 20_000.0, 20_000.0, 20_000.0)
    assert entry.fee == pytest.approx(1000 / 20_000 * 0.0005)
    assert harness.account.used_margin == pytest.approx(0.05 / 2)
    harness.bar(20_000.0, 25_500.0, 19_900.0, 25_000.0)
    pnl = 1000 * (1 / 20_000 - 1 / 25_000)  # 0.01 BTC
    assert harness.account.unrealized_pnl == pytest.approx(pnl)
    harness.place("sell", 10.0)
    harness.bar(25_000.0, 25_000.0, 25_000.0, 25_000.0)
    exit_fee = 1000 / 25_000 * 0.0005
    assert harness.account.balance == pytest.approx(1.0 - entry.fee + pnl - exit_fee)
    assert harness.engine.closed_trades[-1].pnl == pytest.approx(pnl - entry.fee - exit_fee)


@pytest.mark.parametrize("leverage", [1.0, 2.0, 10.0, 20.0])
def test_linear_futures_with_leverage_change_scales_used_margin(leverage):
    harness = make_harness(market_type="futures", contract_type="linear")
    harness.portfolio.leverage["BTCUSDT"] = leverage  # what ctx.set_leverage does
    harness.place("buy", 10.0)
    harness.bar(100.0, 100.0, 100.0, 100.0)
    position = harness.portfolio.positions()[0]
    assert position.leverage == leverage
    assert harness.account.used_margin == pytest.approx(1_000 / leverage)
    expected_liquidation = None if leverage == 1.0 else 100 * (1 - 1 / leverage) / (1 - 0.005)
    assert position.liquidation_price == (
        pytest.approx(expected_liquidation) if expected_liquidation else None
    )


def test_oneway_futures_with_opposite_order_reduces_then_flips():
    harness = make_harness(market_type="futures", contract_type="linear", taker_fee=0.0)
    harness.place("buy", 2.0)
    harness.bar(100.0, 100.0, 100.0, 100.0)
    flip = harness.place("sell", 3.0)
    harness.bar(110.0, 110.0, 110.0, 110.0)
    assert flip.status is OrderStatus.FILLED
    [short] = harness.portfolio.positions()
    assert (short.side, short.quantity, short.entry_price) == (PositionSide.SHORT, 1.0, 110.0)
    assert harness.account.balance == pytest.approx(10_020.0)
    actions = [event for name, event in harness.events if name == "position"]
    assert [(a[0], a[1], a[2]) for a in actions[-2:]] == [
        (PositionSide.LONG, "closed", 2.0),
        (PositionSide.SHORT, "opened", 1.0),
    ]


def test_hedge_mode_with_long_and_short_keeps_legs_independent_and_closes_one():
    harness = make_harness(
        market_type="futures", contract_type="linear", position_mode="hedge", taker_fee=0.0
    )
    long_order = harness.place("buy", 2.0)
    short_order = harness.place("sell", 1.0)  # hedge: opens a short leg, does not reduce the long
    assert (long_order.position_side, short_order.position_side) == (
        PositionSide.LONG,
        PositionSide.SHORT,
    )
    harness.bar(100.0, 100.0, 100.0, 100.0)
    legs = {p.side: p.quantity for p in harness.portfolio.positions()}
    assert legs == {PositionSide.LONG: 2.0, PositionSide.SHORT: 1.0}
    assert harness.portfolio.ledger.net_quantity("BTCUSDT") == 1.0
    harness.bar(100.0, 100.0, 90.0, 90.0)
    assert harness.account.unrealized_pnl == pytest.approx(-20.0 + 10.0)
    [close] = harness.engine.close_position("BTCUSDT", PositionSide.SHORT)
    assert close.reduce_only and close.position_side is PositionSide.SHORT
    harness.bar(90.0, 90.0, 90.0, 90.0)
    assert {p.side: p.quantity for p in harness.portfolio.positions()} == {PositionSide.LONG: 2.0}
    assert harness.account.balance == pytest.approx(10_010.0)


def test_hedge_mode_with_reduce_only_sell_without_side_reduces_the_long_leg():
    harness = make_harness(market_type="futures", contract_type="linear", position_mode="hedge")
    harness.place("buy", 2.0)
    harness.bar(100.0, 100.0, 100.0, 100.0)
    reduce = harness.place("sell", 1.0, reduce_only=True)
    assert reduce.position_side is PositionSide.LONG
    harness.bar(100.0, 100.0, 100.0, 100.0)
    assert [(p.side, p.quantity) for p in harness.portfolio.positions()] == [
        (PositionSide.LONG, 1.0)
    ]


def test_hedge_mode_with_order_missing_position_side_at_broker_is_rejected():
    from metaexpert.core.enums import OrderSide, OrderType
    from metaexpert.core.order import Order

    harness = make_harness(market_type="futures", contract_type="linear", position_mode="hedge")
    order = Order("BTCUSDT", OrderSide.BUY, OrderType.MARKET, 1.0)
    harness.broker.submit(order)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == "hedge mode needs a position side (long or short) on every order"


def test_fill_events_with_market_fill_arrive_order_transaction_position_account():
    harness = make_harness()
    order = harness.place("buy", 1.0)
    harness.events.clear()
    harness.bar(100.0, 100.0, 100.0, 100.0)
    assert harness.names() == ["order", "transaction", "position", "account"]
    (_, (order_id, status, _, _)), (_, trade), (_, position), (_, account) = harness.events
    assert (order_id, status) == (order.client_order_id, OrderStatus.FILLED)
    assert trade[0] == order.client_order_id and trade[2] == 1.0
    assert position[:3] == (PositionSide.LONG, "opened", 1.0)
    assert account[0] == pytest.approx(10_000 - 100 - 0.2)


def test_fill_events_with_bracketed_entry_put_brackets_after_account_event():
    harness = make_harness()
    harness.place("buy", 1.0, stop_loss=90.0)
    harness.events.clear()
    harness.bar(100.0, 100.0, 100.0, 100.0)
    names = harness.names()
    assert names[:4] == ["order", "transaction", "position", "account"]
    assert names[4:] == ["order"]  # the stop-loss bracket is submitted after the fill's events
    assert harness.events[4][1][1:3] == (OrderStatus.SUBMITTED, "stop_loss")
