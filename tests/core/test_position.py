"""Position PnL, margin, the isolated/cross liquidation formulas, and ledger netting."""

from __future__ import annotations

import pytest

from metaexpert.core.enums import OrderSide, PositionMode, PositionSide
from metaexpert.core.position import Position, PositionLedger, liquidation_price_cross

M = 0.005  # maintenance margin rate used throughout


def _position(
    side: str,
    *,
    leverage: float = 10.0,
    inverse: bool = False,
    quantity: float = 2.0,
    entry: float = 100.0,
    contract_size: float = 1.0,
) -> Position:
    return Position(
        "BTCUSDT",
        PositionSide(side),
        quantity=quantity,
        entry_price=entry,
        leverage=leverage,
        inverse=inverse,
        contract_size=contract_size,
        maintenance_margin_rate=M,
    )


# Hand-computed from the formulas in core/position.py's docstring, entry 100, 10x, m = 0.5%:
#   linear long   100 * 0.9 / 0.995 = 90.45226130653266
#   linear short  100 * 1.1 / 1.005 = 109.45273631840796
#   inverse long  100 * 1.005 / 1.1 = 91.36363636363636
#   inverse short 100 * 0.995 / 0.9 = 110.55555555555556
@pytest.mark.parametrize(
    ("side", "inverse", "expected"),
    [
        ("long", False, 90.45226130653266),
        ("short", False, 109.45273631840796),
        ("long", True, 91.36363636363636),
        ("short", True, 110.55555555555556),
    ],
)
def test_liquidation_price_with_isolated_10x_matches_hand_computed_value(side, inverse, expected):
    position = _position(side, inverse=inverse, contract_size=100.0 if inverse else 1.0)
    price = position.liquidation_price
    assert price == pytest.approx(expected, rel=1e-12)
    # ... and it is where margin + unrealised PnL equals the maintenance margin.
    assert position.initial_margin + position.pnl_at(price) == pytest.approx(
        position.maintenance_margin(price), rel=1e-9
    )


@pytest.mark.parametrize(("side", "inverse"), [("long", False), ("short", True)])
def test_liquidation_price_with_1x_where_impossible_is_none(side, inverse):
    assert _position(side, leverage=1.0, inverse=inverse).liquidation_price is None


def test_liquidation_price_with_short_at_1x_linear_is_about_double_entry():
    assert _position("short", leverage=1.0).liquidation_price == pytest.approx(200 / 1.005)


def test_liquidation_price_with_higher_leverage_is_closer_to_entry():
    prices = [_position("long", leverage=leverage).liquidation_price for leverage in (2, 5, 10, 50)]
    assert prices == sorted(prices)
    assert prices[-1] < 100


def test_liquidation_price_with_extra_margin_moves_away_from_entry():
    plain = _position("long")
    padded = _position("long")
    padded.extra_margin = 10.0  # 20 initial + 10 extra on a 200 notional -> 15% margin
    assert padded.initial_margin == pytest.approx(30.0)
    assert padded.liquidation_price == pytest.approx(100 * 0.85 / 0.995)
    assert padded.liquidation_price < plain.liquidation_price


def test_liquidation_price_cross_with_single_long_solves_wallet_equation():
    position = _position("long", quantity=50.0)
    wallet = 997.5
    price = liquidation_price_cross(position, wallet, 0.0, 0.0)
    assert price == pytest.approx((50 * 100 - wallet) / (50 * (1 - M)))  # 80.4522613...
    assert wallet + position.pnl_at(price) == pytest.approx(position.maintenance_margin(price))


def test_liquidation_price_cross_with_short_and_other_positions_counts_their_margin():
    position = _position("short", quantity=10.0)
    price = liquidation_price_cross(
        position, 500.0, other_unrealized=-100.0, other_maintenance=20.0
    )
    assert price == pytest.approx((10 * 100 + 380.0) / (10 * (1 + M)))
    assert 500 - 100 + position.pnl_at(price) == pytest.approx(
        20 + position.maintenance_margin(price)
    )


def test_liquidation_price_cross_with_wallet_covering_everything_is_none():
    assert liquidation_price_cross(_position("long", quantity=1.0), 1_000_000.0, 0.0, 0.0) is None


@pytest.mark.parametrize("side", ["long", "short"])
def test_liquidation_price_cross_with_inverse_contract_solves_the_coin_wallet_equation(side):
    position = _position(side, inverse=True, quantity=10.0, entry=100.0, contract_size=100.0)
    wallet = 3.0  # BTC; the contracts are worth 1000 USD = 10 BTC at the entry
    price = liquidation_price_cross(position, wallet, other_unrealized=-0.5, other_maintenance=0.1)
    sign = 1 if side == "long" else -1
    assert price == pytest.approx(1000 * (sign + M) / (2.4 + sign * 10))
    assert 3.0 - 0.5 + position.pnl_at(price) == pytest.approx(
        0.1 + position.maintenance_margin(price)
    )


@pytest.mark.parametrize("side", ["long", "short"])
def test_liquidation_price_cross_with_inverse_wallet_of_its_own_margin_is_the_isolated_price(side):
    position = _position(side, inverse=True, contract_size=100.0)
    cross = liquidation_price_cross(position, position.initial_margin, 0.0, 0.0)
    assert cross == pytest.approx(position.liquidation_price, rel=1e-12)


def test_liquidation_price_cross_with_inverse_short_covered_in_coin_is_none():
    position = _position("short", inverse=True, quantity=10.0, contract_size=100.0)
    assert liquidation_price_cross(position, 10.0, 0.0, 0.0) is None  # 10 BTC back 1000 USD


def test_pnl_at_with_linear_and_inverse_contracts_uses_the_right_currency():
    linear = _position("short", quantity=3.0)
    assert linear.pnl_at(90.0) == pytest.approx(30.0)
    inverse = _position("long", inverse=True, quantity=10.0, entry=20_000.0, contract_size=100.0)
    assert inverse.pnl_at(25_000.0) == pytest.approx(1000 * (1 / 20_000 - 1 / 25_000))  # 0.01 BTC
    assert inverse.notional(25_000.0) == pytest.approx(0.04)


def test_increase_with_inverse_contracts_averages_entry_harmonically():
    position = _position("long", inverse=True, quantity=10.0, entry=20_000.0, contract_size=100.0)
    position.increase(10.0, 30_000.0, 1)
    assert position.entry_price == pytest.approx(20 / (10 / 20_000 + 10 / 30_000))  # 24000


def test_reduce_with_more_than_held_raises():
    position = _position("long")
    with pytest.raises(ValueError, match="only 2.0 open"):
        position.reduce(2.5, 110.0, 1)


def test_ledger_with_oneway_opposite_fill_reduces_then_flips():
    ledger = PositionLedger(PositionMode.ONEWAY)
    template = Position("BTCUSDT", PositionSide.LONG)
    ledger.apply_fill(
        "BTCUSDT", OrderSide.BUY, 2.0, 100.0, 1, position_side=None, template=template
    )
    changes = ledger.apply_fill(
        "BTCUSDT", OrderSide.SELL, 3.0, 110.0, 2, position_side=None, template=template
    )
    assert [(c.position.side, c.closed, c.opened) for c in changes] == [
        (PositionSide.LONG, 2.0, 0.0),
        (PositionSide.SHORT, 0.0, 1.0),
    ]
    assert changes[0].realized_pnl == pytest.approx(20.0)
    assert ledger.get("BTCUSDT", PositionSide.LONG) is None
    short = ledger.get("BTCUSDT", PositionSide.SHORT)
    assert (short.quantity, short.entry_price) == (1.0, 110.0)
    assert ledger.net_quantity("BTCUSDT") == -1.0


def test_ledger_with_hedge_mode_keeps_long_and_short_independent():
    ledger = PositionLedger(PositionMode.HEDGE)
    template = Position("BTCUSDT", PositionSide.LONG)
    ledger.apply_fill(
        "BTCUSDT", OrderSide.BUY, 2.0, 100.0, 1, position_side=PositionSide.LONG, template=template
    )
    ledger.apply_fill(
        "BTCUSDT",
        OrderSide.SELL,
        1.0,
        105.0,
        2,
        position_side=PositionSide.SHORT,
        template=template,
    )
    assert ledger.get("BTCUSDT", PositionSide.LONG).quantity == 2.0
    assert ledger.get("BTCUSDT", PositionSide.SHORT).quantity == 1.0
    assert ledger.closable_quantity("BTCUSDT", OrderSide.BUY, PositionSide.SHORT) == 1.0
    assert ledger.closable_quantity("BTCUSDT", OrderSide.SELL, PositionSide.LONG) == 2.0
    assert ledger.closable_quantity("BTCUSDT", OrderSide.BUY, PositionSide.LONG) == 0.0
    changes = ledger.apply_fill(
        "BTCUSDT", OrderSide.BUY, 1.0, 95.0, 3, position_side=PositionSide.SHORT, template=template
    )
    assert changes[0].realized_pnl == pytest.approx(10.0)
    assert ledger.get("BTCUSDT", PositionSide.SHORT) is None
    assert ledger.get("BTCUSDT", PositionSide.LONG).quantity == 2.0


def test_ledger_with_hedge_mode_and_no_position_side_raises():
    ledger = PositionLedger(PositionMode.HEDGE)
    with pytest.raises(ValueError, match="hedge mode needs a position side"):
        ledger.apply_fill(
            "BTCUSDT",
            OrderSide.BUY,
            1.0,
            100.0,
            1,
            position_side=None,
            template=Position("BTCUSDT", PositionSide.LONG),
        )
