"""Futures liquidation in the simulated broker: isolated and cross margin.

Liquidation prices are hand computed from the formulas in core/position.py (entry 100,
maintenance margin rate 0.5%); the loss of an isolated liquidation must equal the
position's margin (the liquidation fee is paid out of what is left of it).
"""

from __future__ import annotations

import pytest

from metaexpert.core.enums import OrderStatus, PositionSide
from tests.engine.harness import make_harness


def _futures(**options):
    values = {
        "market_type": "futures",
        "contract_type": "linear",
        "leverage": 10,
        "maker_fee": 0.0002,
        "taker_fee": 0.0005,
    }
    values.update(options)
    return make_harness(**values)


def _enter(harness, side: str, quantity: float, price: float = 100.0):
    harness.place(side, quantity)
    harness.bar(price, price, price, price)
    [position] = harness.portfolio.positions()
    return position


@pytest.mark.parametrize(
    ("side", "liquidation", "safe_bar", "crossing_bar"),
    [
        ("buy", 100 * 0.9 / 0.995, (100.0, 100.0, 90.5, 95.0), (95.0, 96.0, 90.0, 91.0)),
        ("sell", 100 * 1.1 / 1.005, (100.0, 109.4, 99.0, 105.0), (105.0, 110.0, 104.0, 109.0)),
    ],
)
def test_isolated_position_with_bar_crossing_liquidation_price_loses_exactly_its_margin(
    side, liquidation, safe_bar, crossing_bar
):
    harness = _futures()
    position = _enter(harness, side, 10.0)
    assert position.liquidation_price == pytest.approx(liquidation, rel=1e-12)
    margin = position.initial_margin
    assert margin == pytest.approx(100.0)
    wallet = harness.account.balance
    harness.bar(*safe_bar)
    assert harness.portfolio.positions() == [position]  # close to, but not across, the price
    harness.bar(*crossing_bar)
    assert harness.portfolio.positions() == []
    assert wallet - harness.account.balance == pytest.approx(margin, rel=1e-12)
    liquidation_order = harness.engine.orders[-1]
    assert liquidation_order.tag == "liquidation" and liquidation_order.status is OrderStatus.FILLED
    assert liquidation_order.average_price == pytest.approx(liquidation)
    assert (
        "position",
        (
            position.side,
            "liquidated",
            10.0,
            pytest.approx(liquidation),
            pytest.approx((liquidation - 100.0) * 10 * (1 if side == "buy" else -1)),
        ),
    ) in harness.events


def test_isolated_inverse_long_with_crossing_bar_loses_margin_in_coin():
    harness = _futures(contract_type="inverse", capital=2.0, contract_size=100.0, last_price=100.0)
    position = _enter(
        harness, "buy", 10.0
    )  # 10 contracts of 100 USD = 10 BTC at 100: margin 1 BTC at 10x
    expected = 100 * 1.005 / 1.1
    assert position.liquidation_price == pytest.approx(expected)
    margin = position.initial_margin
    assert margin == pytest.approx(1000 / 100 / 10)
    wallet = harness.account.balance
    harness.bar(95.0, 96.0, 90.0, 92.0)
    assert harness.portfolio.positions() == []
    assert wallet - harness.account.balance == pytest.approx(margin)


def test_liquidation_with_bracket_orders_cancels_them():
    harness = _futures()
    harness.place("buy", 10.0, stop_loss=80.0)
    harness.bar(100.0, 100.0, 100.0, 100.0)
    [stop] = harness.engine.brackets("BTCUSDT", PositionSide.LONG)
    harness.bar(95.0, 96.0, 85.0, 86.0)  # liquidation (90.45) comes before the stop (80)
    assert stop.status is OrderStatus.CANCELLED and stop.filled_quantity == 0
    assert [o.tag for o in harness.engine.orders if o.trades][-1] == "liquidation"
    assert harness.portfolio.positions() == [] and harness.broker.open_orders() == []


def test_cross_position_with_crossing_bar_is_liquidated_at_wallet_price_and_wallet_is_emptied():
    harness = _futures(margin_mode="cross", capital=1_000.0)
    position = _enter(harness, "buy", 50.0)
    wallet = harness.account.balance
    assert wallet == pytest.approx(1_000 - 50 * 100 * 0.0005)
    # wallet + 50 * (p - 100) = 0.005 * 50 * p  ->  p = (5000 - wallet) / (50 * 0.995)
    expected = (5_000 - wallet) / (50 * 0.995)
    assert expected == pytest.approx(80.45226130653266)
    harness.bar(100.0, 100.0, 81.0, 82.0)
    assert harness.portfolio.positions() == [position]
    harness.bar(82.0, 83.0, 80.0, 81.0)
    assert harness.portfolio.positions() == []
    assert harness.engine.orders[-1].average_price == pytest.approx(expected)
    assert harness.account.balance == pytest.approx(0.0, abs=1e-9)


def test_cross_position_with_large_wallet_survives_where_isolated_is_liquidated():
    isolated = _futures(margin_mode="isolated")
    cross = _futures(margin_mode="cross")
    for harness in (isolated, cross):
        _enter(harness, "buy", 10.0)
        harness.bar(100.0, 100.0, 85.0, 86.0)  # below the isolated 10x liquidation price 90.45
    assert isolated.portfolio.positions() == []
    assert [p.quantity for p in cross.portfolio.positions()] == [10.0]
    assert cross.account.equity == pytest.approx(10_000 - 0.5 - 140.0)


def test_cross_inverse_long_with_coin_wallet_survives_the_isolated_price_then_is_liquidated():
    harness = _futures(
        contract_type="inverse", margin_mode="cross", capital=2.0, contract_size=100.0,
        last_price=100.0,
    )  # fmt: skip
    position = _enter(harness, "buy", 10.0)  # 1000 USD = 10 BTC at 100, 1 BTC margin at 10x
    wallet = harness.account.balance
    assert wallet == pytest.approx(2.0 - 10 * 0.0005)
    isolated = 100 * 1.005 / 1.1  # 91.36: where the old engine liquidated a cross position
    # wallet + 1000 * (1/100 - 1/p) = 0.005 * 1000 / p  ->  p = 1000 * 1.005 / (wallet + 10)
    expected = 1000 * 1.005 / (wallet + 10)
    assert expected == pytest.approx(83.7849, rel=1e-5) and expected < isolated
    harness.bar(95.0, 96.0, 88.0, 89.0)
    assert harness.portfolio.positions() == [position]
    harness.bar(89.0, 90.0, 83.0, 84.0)
    assert harness.portfolio.positions() == []
    assert harness.engine.orders[-1].average_price == pytest.approx(expected)
    assert harness.account.balance == pytest.approx(0.0, abs=1e-9)


def test_liquidation_with_liquidation_disabled_keeps_position():
    harness = _futures(liquidation=False)
    _enter(harness, "buy", 10.0)
    harness.bar(100.0, 100.0, 50.0, 60.0)
    assert [p.quantity for p in harness.portfolio.positions()] == [10.0]
    assert harness.account.unrealized_pnl == pytest.approx(-400.0)


def test_hedge_liquidation_of_long_leg_with_short_leg_bracket_keeps_the_short_bracket():
    harness = _futures(position_mode="hedge")
    harness.place("buy", 10.0, position_side=PositionSide.LONG, stop_loss=80.0)
    harness.place("sell", 1.0, position_side=PositionSide.SHORT, stop_loss=120.0)
    harness.bar(100.0, 100.0, 100.0, 100.0)
    [long_stop] = harness.engine.brackets("BTCUSDT", PositionSide.LONG)
    [short_stop] = harness.engine.brackets("BTCUSDT", PositionSide.SHORT)
    harness.bar(95.0, 96.0, 85.0, 86.0)  # the long leg is liquidated at 90.45
    assert [(p.side, p.quantity) for p in harness.portfolio.positions()] == [
        (PositionSide.SHORT, 1.0)
    ]
    assert long_stop.status is OrderStatus.CANCELLED
    assert short_stop.status is OrderStatus.SUBMITTED  # the other leg is still protected
