"""Fill rules of the simulated broker on hand-made bars, booked through the real engine.

Default harness market: spot BTCUSDT, maker fee 0.1%, taker fee 0.2%, last price 100.
Every bar is matched at its open time and then marked at its close, as the runner does.
"""

from __future__ import annotations

import pytest

from metaexpert.core.enums import LiquidityRole, OrderStatus, OrderType, TimeInForce
from tests.engine.harness import HOUR_MS, START_MS, make_harness

MAKER, TAKER = 0.001, 0.002


def _open_long(harness, quantity: float = 1.0, price: float = 100.0):
    """Buy at market and fill it on a flat bar at ``price``."""
    order = harness.place("buy", quantity)
    harness.bar(price, price, price, price)
    assert order.status is OrderStatus.FILLED
    return order


def test_market_order_with_next_open_fills_at_next_bar_open_as_taker():
    harness = make_harness()
    order = harness.place("buy", 2.0)
    assert order.status is OrderStatus.SUBMITTED and order.filled_quantity == 0
    opened = harness.bar(101.0, 103.0, 99.0, 102.0)
    assert order.status is OrderStatus.FILLED
    trade = order.trades[0]
    assert (trade.price, trade.liquidity, trade.timestamp) == (101.0, LiquidityRole.TAKER, opened)
    assert trade.fee == pytest.approx(2 * 101 * TAKER)


def test_market_order_with_fill_on_close_fills_at_once_at_last_price():
    harness = make_harness(fill_market_on="close", last_price=100.0)
    order = harness.place("buy", 1.0)
    assert order.status is OrderStatus.FILLED and order.average_price == 100.0


def test_limit_order_with_intrabar_touch_fills_at_limit_as_maker():
    harness = make_harness()
    order = harness.place("buy", 1.0, price=95.0)
    harness.bar(100.0, 100.5, 94.0, 97.0)
    assert order.status is OrderStatus.FILLED
    assert (order.average_price, order.trades[0].liquidity) == (95.0, LiquidityRole.MAKER)
    assert order.fee == pytest.approx(95 * MAKER)


def test_limit_order_with_no_touch_keeps_resting():
    harness = make_harness()
    order = harness.place("buy", 1.0, price=95.0)
    harness.bar(100.0, 101.0, 95.5, 96.0)
    assert order.status is OrderStatus.SUBMITTED and order in harness.broker.open_orders()


def test_limit_order_with_gap_through_while_resting_fills_at_limit_as_maker():
    harness = make_harness()
    order = harness.place("buy", 1.0, price=95.0)
    harness.bar(100.0, 101.0, 96.0, 97.0)  # rests a full bar
    harness.bar(90.0, 92.0, 89.0, 91.0)  # opens below the limit
    assert (order.average_price, order.trades[0].liquidity) == (95.0, LiquidityRole.MAKER)


def test_limit_order_with_gap_through_on_its_first_bar_fills_at_limit_as_maker():
    # Not marketable at 100 when placed, so it rests in the book: the gap to 90 fills it at 95.
    harness = make_harness()
    order = harness.place("buy", 1.0, price=95.0)
    harness.bar(90.0, 92.0, 89.0, 91.0)
    assert (order.average_price, order.trades[0].liquidity) == (95.0, LiquidityRole.MAKER)
    assert order.fee == pytest.approx(95 * MAKER)


def test_limit_order_with_marketable_price_fills_at_open_as_taker():
    harness = make_harness()
    order = harness.place("buy", 1.0, price=105.0)  # above the last price 100: marketable
    harness.bar(101.0, 104.0, 100.0, 103.0)
    assert (order.average_price, order.trades[0].liquidity) == (101.0, LiquidityRole.TAKER)
    assert order.fee == pytest.approx(101 * TAKER)


def test_sell_limit_with_marketable_price_fills_at_open_as_taker():
    harness = make_harness()
    _open_long(harness)
    order = harness.place("sell", 1.0, price=95.0)
    harness.bar(99.0, 99.5, 97.0, 98.0)
    assert (order.average_price, order.trades[0].liquidity) == (99.0, LiquidityRole.TAKER)


def test_stop_order_with_intrabar_touch_fills_at_stop_price():
    harness = make_harness()
    _open_long(harness)
    stop = harness.place("sell", 1.0, stop_price=95.0, reduce_only=True)
    assert stop.order_type is OrderType.STOP_MARKET
    harness.bar(100.0, 100.5, 93.0, 94.0)
    assert (stop.status, stop.average_price) == (OrderStatus.FILLED, 95.0)
    assert stop.fee == pytest.approx(95 * TAKER)


def test_stop_order_with_gap_through_fills_at_open():
    harness = make_harness()
    _open_long(harness)
    stop = harness.place("sell", 1.0, stop_price=95.0, reduce_only=True)
    harness.bar(90.0, 96.0, 89.0, 92.0)
    assert stop.average_price == 90.0


def test_buy_stop_with_gap_up_fills_at_open():
    harness = make_harness()
    stop = harness.place("buy", 1.0, stop_price=105.0)
    harness.bar(110.0, 111.0, 108.0, 109.0)
    assert stop.average_price == 110.0


def test_stop_limit_with_trigger_becomes_limit_and_fills_at_limit():
    harness = make_harness()
    order = harness.place("buy", 1.0, stop_price=105.0, price=106.0)
    assert order.order_type is OrderType.STOP_LIMIT
    harness.bar(100.0, 104.0, 99.0, 103.0)
    assert order.status is OrderStatus.SUBMITTED and not order.triggered
    harness.bar(
        103.0, 108.0, 102.0, 107.0
    )  # path: 103 -> 102 -> 108: triggers at 105, fills at once
    assert order.triggered and order.status is OrderStatus.FILLED
    assert order.average_price == pytest.approx(105.0)


@pytest.mark.parametrize(
    ("path", "bar", "winner", "price"),
    [
        ("open_high_low_close", (100.0, 106.0, 94.0, 100.0), "take_profit", 105.0),
        ("open_low_high_close", (100.0, 106.0, 94.0, 100.0), "stop_loss", 95.0),
        ("open_nearest_first", (100.0, 105.5, 94.0, 100.0), "take_profit", 105.0),  # high is nearer
        ("open_nearest_first", (100.0, 110.0, 94.0, 100.0), "stop_loss", 95.0),  # low is nearer
    ],
)
def test_bracket_with_stop_and_target_in_one_bar_first_on_path_wins_and_other_is_cancelled(
    path, bar, winner, price
):
    harness = make_harness(intrabar_path=path)
    entry = harness.place("buy", 1.0, stop_loss=95.0, take_profit=105.0)
    harness.bar(100.0, 100.5, 99.5, 100.0)
    assert entry.status is OrderStatus.FILLED
    brackets = {o.tag: o for o in harness.broker.open_orders()}
    assert set(brackets) == {"stop_loss", "take_profit"}
    harness.bar(*bar)
    loser = "stop_loss" if winner == "take_profit" else "take_profit"
    assert (brackets[winner].status, brackets[winner].average_price) == (OrderStatus.FILLED, price)
    assert brackets[loser].status is OrderStatus.CANCELLED and brackets[loser].filled_quantity == 0
    assert harness.portfolio.positions() == []
    assert harness.engine.closed_trades[-1].exit_reason == winner
    reasons = [
        event[3]
        for name, event in harness.events
        if name == "order" and event[0] == brackets[loser].client_order_id
    ]
    assert reasons[-1] == "position closed" or reasons[-1].startswith("OCO:")


def test_trailing_stop_with_rising_high_follows_it_and_triggers_at_callback():
    harness = make_harness(intrabar_path="open_nearest_first")
    _open_long(harness)
    trailing = harness.place("sell", 1.0, stop_price=90.0, trailing_pct=10.0, reduce_only=True)
    harness.bar(100.0, 120.0, 99.0, 110.0)  # path 100 -> 99 -> 120 -> 110: water 120, stop 108
    assert trailing.status is OrderStatus.SUBMITTED
    assert trailing.stop_price == pytest.approx(108.0)
    harness.bar(110.0, 125.0, 109.0, 124.0)  # 110 -> 109 -> 125 -> 124: water 125, stop 112.5
    assert trailing.stop_price == pytest.approx(112.5)
    harness.bar(
        124.0, 124.5, 100.0, 101.0
    )  # 124 -> 124.5 -> 100: water 125 (124.5 < 125) -> fills at 112.5
    assert trailing.status is OrderStatus.FILLED
    assert trailing.average_price == pytest.approx(112.5)


def test_trailing_stop_with_new_high_inside_trigger_bar_uses_that_high():
    harness = make_harness(intrabar_path="open_high_low_close")
    _open_long(harness)
    trailing = harness.place("sell", 1.0, stop_price=90.0, trailing_pct=10.0, reduce_only=True)
    harness.bar(100.0, 130.0, 100.0, 112.0)
    # 100 -> 130 -> 100: water 130, stop 117, fills on the way down at 117.
    assert trailing.average_price == pytest.approx(117.0)


def test_trailing_stop_protecting_short_follows_the_low():
    harness = make_harness(
        market_type="futures", contract_type="linear", intrabar_path="open_low_high_close"
    )
    harness.place("sell", 1.0)
    harness.bar(100.0, 100.0, 100.0, 100.0)
    trailing = harness.place("buy", 1.0, stop_price=110.0, trailing_pct=10.0, reduce_only=True)
    harness.bar(100.0, 101.0, 80.0, 85.0)  # 100 -> 80 -> 101: water 80, stop 88 -> fills at 88
    assert trailing.average_price == pytest.approx(88.0)


def test_trailing_stop_with_gap_through_initial_stop_fills_at_open():
    harness = make_harness()
    _open_long(harness)
    trailing = harness.place("sell", 1.0, stop_price=90.0, trailing_pct=10.0, reduce_only=True)
    harness.bar(85.0, 86.0, 84.0, 85.0)
    assert (trailing.status, trailing.average_price) == (OrderStatus.FILLED, 85.0)


def test_trailing_stop_with_activation_price_waits_until_reached():
    harness = make_harness(intrabar_path="open_high_low_close")
    _open_long(harness)
    trailing = harness.place(
        "sell", 1.0, stop_price=90.0, trailing_pct=5.0, activation_price=110.0, reduce_only=True
    )
    harness.bar(100.0, 105.0, 85.0, 90.0)  # never activated: no trigger even far below 90
    assert trailing.status is OrderStatus.SUBMITTED
    harness.bar(90.0, 120.0, 88.0, 101.0)  # 90 -> 120 -> 88: activates at 110, water 120, stop 114
    assert trailing.average_price == pytest.approx(114.0)


def test_limit_order_with_volume_participation_fills_partially_over_bars():
    harness = make_harness(max_volume_participation=0.1)
    order = harness.place("buy", 25.0, price=95.0)
    statuses = []
    for _ in range(3):
        harness.bar(100.0, 100.0, 94.0, 96.0, volume=100.0)  # 10 per bar may fill
        statuses.append((order.status, order.filled_quantity))
    assert statuses == [
        (OrderStatus.PARTIALLY_FILLED, 10.0),
        (OrderStatus.PARTIALLY_FILLED, 20.0),
        (OrderStatus.FILLED, 25.0),
    ]
    assert [t.quantity for t in order.trades] == [10.0, 10.0, 5.0]
    assert all(t.price == 95.0 and t.liquidity is LiquidityRole.MAKER for t in order.trades)
    assert [t.fee for t in order.trades] == pytest.approx(
        [10 * 95 * MAKER, 10 * 95 * MAKER, 5 * 95 * MAKER]
    )
    assert order.fee == pytest.approx(25 * 95 * MAKER)
    assert harness.portfolio.positions()[0].quantity == 25.0


def test_ioc_limit_with_price_not_reached_is_cancelled_unfilled():
    harness = make_harness()
    order = harness.place("buy", 1.0, price=95.0, time_in_force=TimeInForce.IOC)
    harness.bar(100.0, 101.0, 94.0, 96.0)  # reaches 95 later in the bar, not immediately
    assert order.status is OrderStatus.CANCELLED and order.filled_quantity == 0


def test_ioc_limit_with_marketable_price_fills_at_open():
    harness = make_harness()
    order = harness.place("buy", 1.0, price=102.0, time_in_force=TimeInForce.IOC)
    harness.bar(101.0, 103.0, 100.0, 101.0)
    assert (order.status, order.average_price) == (OrderStatus.FILLED, 101.0)


def test_fok_limit_with_price_not_available_is_cancelled_and_marketable_fills_whole():
    harness = make_harness()
    missed = harness.place("buy", 1.0, price=95.0, time_in_force=TimeInForce.FOK)
    filled = harness.place("buy", 3.0, price=102.0, time_in_force=TimeInForce.FOK)
    harness.bar(101.0, 103.0, 94.0, 101.0)
    assert missed.status is OrderStatus.CANCELLED and missed.filled_quantity == 0
    assert (filled.status, filled.filled_quantity, filled.average_price) == (
        OrderStatus.FILLED,
        3.0,
        101.0,
    )


def test_gtd_limit_with_expiry_reached_expires_before_matching():
    harness = make_harness()
    order = harness.place(
        "buy", 1.0, price=95.0, time_in_force=TimeInForce.GTD, expire_at=START_MS + HOUR_MS
    )
    harness.bar(100.0, 101.0, 96.0, 97.0)  # START_MS: still valid, not touched
    assert order.status is OrderStatus.SUBMITTED
    harness.bar(97.0, 98.0, 90.0, 92.0)  # opens at expire_at: expires, though it would have filled
    assert order.status is OrderStatus.EXPIRED and order.filled_quantity == 0
    assert order not in harness.broker.open_orders()


def test_reduce_only_with_no_position_is_rejected_with_reason():
    harness = make_harness(market_type="futures", contract_type="linear")
    order = harness.place("sell", 1.0, reduce_only=True)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == "reduce-only order would not reduce a position"


def test_reduce_only_with_quantity_above_position_fills_position_and_cancels_rest():
    harness = make_harness(market_type="futures", contract_type="linear")
    _open_long(harness, quantity=2.0)
    order = harness.place("sell", 5.0, reduce_only=True)
    harness.bar(101.0, 101.0, 101.0, 101.0)
    assert order.filled_quantity == 2.0 and order.status is OrderStatus.CANCELLED
    assert harness.portfolio.positions() == []  # never flipped short


def test_spot_sell_with_nothing_held_is_rejected_as_short_sale():
    harness = make_harness()
    order = harness.place("sell", 1.0)
    assert order.status is OrderStatus.REJECTED
    assert (
        order.reject_reason
        == "insufficient BTC balance: selling 1.0 but holding 0.0 (spot positions cannot be shorted)"
    )


def test_spot_buy_with_insufficient_cash_is_rejected_with_amounts():
    harness = make_harness(capital=1_000.0)
    order = harness.place("buy", 10.0)  # 1000 + 2 taker fee at last price 100
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == "insufficient USDT balance: the order needs 1002, 1000 available"


def test_futures_order_with_insufficient_margin_is_rejected_with_amounts():
    harness = make_harness(
        market_type="futures", contract_type="linear", leverage=5, capital=100.0, taker_fee=0.0005
    )
    order = harness.place("buy", 6.0)  # 600 / 5 = 120 margin + 0.3 fee
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == "insufficient margin: the order needs 120.3, 100 available"


def test_spot_buy_with_resting_take_profit_sell_is_not_blocked_by_it():
    harness = make_harness(capital=1_000.0)
    _open_long(harness, quantity=5.0)  # cash 1000 - 500 - 1 = 499
    take_profit = harness.place("sell", 5.0, price=120.0)
    assert take_profit.status is OrderStatus.SUBMITTED
    more = harness.place(
        "buy", 4.0
    )  # needs 400.8 of the 499 cash; the sell closes, it needs no cash
    assert more.status is OrderStatus.SUBMITTED, more.reject_reason


def test_spot_buy_with_resting_buy_limit_counts_its_reserved_cash():
    harness = make_harness(capital=1_000.0)
    first = harness.place("buy", 6.0, price=90.0)  # reserves 540 + 1.08
    second = harness.place("buy", 5.0)  # needs 501 > 458.92 left
    assert first.status is OrderStatus.SUBMITTED
    assert second.status is OrderStatus.REJECTED and "available" in second.reject_reason


def test_reduce_only_limit_with_volume_participation_keeps_resting_while_position_remains():
    harness = make_harness(
        market_type="futures", contract_type="linear", max_volume_participation=0.1
    )
    _open_long(harness, quantity=25.0)
    order = harness.place("sell", 25.0, price=105.0, reduce_only=True)
    harness.bar(100.0, 106.0, 99.0, 104.0, volume=100.0)
    assert (order.status, order.filled_quantity) == (OrderStatus.PARTIALLY_FILLED, 10.0)
    harness.bar(104.0, 106.0, 103.0, 104.0, volume=100.0)
    harness.bar(104.0, 106.0, 103.0, 104.0, volume=100.0)
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 25.0)
    assert harness.portfolio.positions() == []


def test_hedge_order_on_closing_side_without_that_leg_is_rejected_not_booked():
    harness = make_harness(market_type="futures", contract_type="linear", position_mode="hedge")
    from metaexpert.core.enums import PositionSide

    order = harness.place(
        "buy", 0.5, position_side=PositionSide.SHORT
    )  # would close a short that does not exist
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == (
        "hedge mode: a buy on the short side closes the short position, which holds 0; 0.5 cannot be closed"
    )
    harness.bar(100.0, 100.0, 100.0, 100.0)
    assert harness.portfolio.positions() == [] and harness.engine.fills == []


def test_hedge_closing_orders_with_more_than_the_leg_fill_only_what_is_held():
    from metaexpert.core.enums import PositionSide

    harness = make_harness(market_type="futures", contract_type="linear", position_mode="hedge")
    harness.place("sell", 2.0, position_side=PositionSide.SHORT)
    harness.bar(100.0, 100.0, 100.0, 100.0)
    first = harness.place("buy", 2.0, position_side=PositionSide.SHORT)
    second = harness.place(
        "buy", 1.0, position_side=PositionSide.SHORT
    )  # valid now, the leg is gone at fill
    harness.bar(99.0, 99.0, 99.0, 99.0)
    assert first.status is OrderStatus.FILLED and first.filled_quantity == 2.0
    assert second.status is OrderStatus.CANCELLED and second.filled_quantity == 0.0
    assert harness.portfolio.positions() == []


def _tick(harness, price: float, offset_ms: int) -> None:
    harness.portfolio.set_time(START_MS + offset_ms)
    harness.broker.process_tick("BTCUSDT", START_MS + offset_ms, price)
    harness.portfolio.mark("BTCUSDT", price)


def test_orders_on_ticks_with_paper_feed_fill_at_next_tick_and_limit_price():
    harness = make_harness()
    market = harness.place("buy", 1.0)
    limit = harness.place("buy", 1.0, price=95.0)
    stop = harness.place("buy", 1.0, stop_price=103.0)
    _tick(harness, 100.5, 1_000)
    assert (market.status, market.average_price, market.trades[0].timestamp) == (
        OrderStatus.FILLED,
        100.5,
        START_MS + 1_000,
    )
    assert limit.status is OrderStatus.SUBMITTED and stop.status is OrderStatus.SUBMITTED
    _tick(harness, 94.0, 2_000)  # trades through the resting limit: filled at its price
    assert (limit.average_price, limit.trades[0].liquidity) == (95.0, LiquidityRole.MAKER)
    _tick(harness, 104.0, 3_000)  # the stop is gapped through between ticks: fills at the tick
    assert stop.average_price == 104.0


def test_spot_market_buy_with_gap_up_beyond_cash_is_rejected_at_execution():
    harness = make_harness(capital=1_000.0)
    order = harness.place("buy", 9.9)  # 990 + 1.98 fee fits at the last price 100
    assert order.status is OrderStatus.SUBMITTED
    harness.bar(103.0, 104.0, 102.0, 103.0)  # 1019.7 + 2.04 fee does not fit at the open
    assert order.status is OrderStatus.REJECTED and order.filled_quantity == 0
    assert (
        order.reject_reason
        == "insufficient USDT balance at execution: the fill needs 1021.7394 at 103, 1000 available"
    )
    assert harness.account.balance == 1_000.0 and harness.portfolio.positions() == []


def test_spot_market_buy_with_small_gap_up_still_affordable_fills():
    harness = make_harness(capital=1_000.0)
    order = harness.place("buy", 9.0)
    harness.bar(105.0, 106.0, 104.0, 105.0)  # 945 + 1.89 fee
    assert order.status is OrderStatus.FILLED
    assert harness.account.balance == pytest.approx(1_000 - 945 - 1.89)
