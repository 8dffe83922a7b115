"""Exposure limits: leverage, max_open_positions, max_positions_per_symbol, max_position_size."""

from __future__ import annotations

import pytest

from metaexpert.core.enums import OrderSide, PositionMode, PositionSide
from metaexpert.core.errors import ConfigurationError
from metaexpert.risk import RiskConfig, RiskManager
from tests.risk.fakes import FakePortfolio, entry, exit_intent, linear_market, spot_market


def markets(*symbols: str) -> dict:
    return {symbol: linear_market(symbol) for symbol in symbols}


def test_leverage_with_value_above_market_max_and_error_policy_raises() -> None:
    risk = RiskManager(RiskConfig(leverage=50))
    with pytest.raises(ConfigurationError, match="exceeds the maximum 20"):
        risk.validate_leverage(50, linear_market())


def test_leverage_with_value_above_market_max_and_clamp_policy_clamps() -> None:
    risk = RiskManager(RiskConfig(leverage=50, leverage_policy="clamp"))
    assert risk.validate_leverage(50, linear_market()) == 20.0


def test_leverage_with_spot_market_and_error_policy_raises() -> None:
    risk = RiskManager(RiskConfig())
    with pytest.raises(ConfigurationError, match="spot trades without leverage"):
        risk.validate_leverage(3, spot_market())


def test_leverage_with_value_below_one_raises() -> None:
    with pytest.raises(ConfigurationError, match=">= 1"):
        RiskManager(RiskConfig()).validate_leverage(0.5, linear_market())


def test_leverage_with_too_high_intent_leverage_blocks_entry() -> None:
    view = FakePortfolio(markets("BTCUSDT"))
    risk = RiskManager(RiskConfig())
    decision = risk.check(entry(quantity=1.0, leverage=40.0), view)
    assert not decision.allowed and decision.rule == "leverage"


def test_leverage_with_clamp_policy_sizes_with_the_clamped_value() -> None:
    view = FakePortfolio(markets("BTCUSDT"), capital=1_000)
    risk = RiskManager(RiskConfig(leverage=50, leverage_policy="clamp", size_value=10))
    decision = risk.check(entry(price=100.0), view)
    assert decision.allowed and decision.quantity == 20.0  # 100 * 20x / 100


def test_max_open_positions_with_limit_reached_blocks_new_symbol() -> None:
    view = FakePortfolio(markets("BTCUSDT", "ETHUSDT", "SOLUSDT"))
    view.fill("BTCUSDT", OrderSide.BUY, 1.0, 100.0)
    view.fill("ETHUSDT", OrderSide.SELL, 1.0, 100.0)
    risk = RiskManager(RiskConfig(max_open_positions=2))
    decision = risk.check(entry("SOLUSDT", quantity=1.0), view)
    assert not decision.allowed and decision.rule == "max_open_positions"
    assert decision.events[0].action == "blocked"
    assert risk.counts == {"max_open_positions": 1}


def test_max_open_positions_with_limit_reached_allows_adding_to_a_held_position() -> None:
    view = FakePortfolio(markets("BTCUSDT", "ETHUSDT"))
    view.fill("BTCUSDT", OrderSide.BUY, 1.0, 100.0)
    view.fill("ETHUSDT", OrderSide.BUY, 1.0, 100.0)
    risk = RiskManager(RiskConfig(max_open_positions=2))
    assert risk.check(entry("BTCUSDT", quantity=1.0), view).allowed


def test_max_open_positions_with_resting_entry_counts_it_as_a_position() -> None:
    view = FakePortfolio(markets("BTCUSDT", "ETHUSDT"))
    view.rest("BTCUSDT", OrderSide.BUY, 1.0, 90.0)
    risk = RiskManager(RiskConfig(max_open_positions=1))
    assert not risk.check(entry("ETHUSDT", quantity=1.0), view).allowed


def test_max_open_positions_with_resting_reduce_only_order_does_not_count_it() -> None:
    view = FakePortfolio(markets("BTCUSDT", "ETHUSDT"))
    view.rest("BTCUSDT", OrderSide.SELL, 1.0, 110.0, reduce_only=True)
    risk = RiskManager(RiskConfig(max_open_positions=1))
    assert risk.check(entry("ETHUSDT", quantity=1.0), view).allowed


def test_max_open_positions_with_oneway_flip_allows_the_reversal() -> None:
    view = FakePortfolio(markets("BTCUSDT"))
    view.fill("BTCUSDT", OrderSide.BUY, 1.0, 100.0)
    risk = RiskManager(RiskConfig(max_open_positions=1))
    assert risk.check(entry("BTCUSDT", side=OrderSide.SELL, quantity=2.0), view).allowed


def test_max_open_positions_with_limit_reached_never_blocks_an_exit() -> None:
    view = FakePortfolio(markets("BTCUSDT"))
    view.fill("BTCUSDT", OrderSide.BUY, 1.0, 100.0)
    risk = RiskManager(RiskConfig(max_open_positions=1, max_positions_per_symbol=1))
    decision = risk.check(exit_intent("BTCUSDT"), view)
    assert decision.allowed and decision.quantity == 1.0


def test_max_positions_per_symbol_with_hedge_counts_legs_separately() -> None:
    view = FakePortfolio(markets("BTCUSDT"), mode=PositionMode.HEDGE)
    view.fill("BTCUSDT", OrderSide.BUY, 1.0, 100.0, PositionSide.LONG)
    risk = RiskManager(RiskConfig(max_positions_per_symbol=1))
    short = entry(side=OrderSide.SELL, quantity=1.0, position_side=PositionSide.SHORT)
    decision = risk.check(short, view)
    assert not decision.allowed and decision.rule == "max_positions_per_symbol"
    assert RiskManager(RiskConfig(max_positions_per_symbol=2)).check(short, view).allowed


def test_max_positions_per_symbol_with_other_symbol_held_allows_entry() -> None:
    view = FakePortfolio(markets("BTCUSDT", "ETHUSDT"))
    view.fill("BTCUSDT", OrderSide.BUY, 1.0, 100.0)
    risk = RiskManager(RiskConfig(max_positions_per_symbol=1))
    assert risk.check(entry("ETHUSDT", quantity=1.0), view).allowed


def test_max_position_size_with_order_above_cap_resizes_it() -> None:
    view = FakePortfolio(markets("BTCUSDT"))
    view.fill("BTCUSDT", OrderSide.BUY, 3.0, 100.0)
    events = []
    risk = RiskManager(RiskConfig(max_position_size_quote=1_000), emit=events.append)
    decision = risk.check(entry(quantity=10.0, price=100.0), view)
    assert decision.allowed and decision.quantity == 7.0
    assert [(event.rule, event.action) for event in events] == [("max_position_size", "resized")]
    assert events[0].details["requested"] == 10.0


def test_max_position_size_with_cap_already_used_blocks() -> None:
    view = FakePortfolio(markets("BTCUSDT"))
    view.fill("BTCUSDT", OrderSide.BUY, 10.0, 100.0)
    risk = RiskManager(RiskConfig(max_position_size_quote=1_000))
    decision = risk.check(entry(quantity=1.0, price=100.0), view)
    assert not decision.allowed and decision.rule == "max_position_size"


def test_max_position_size_with_room_below_min_notional_blocks() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market(min_notional=50.0)})
    view.fill("BTCUSDT", OrderSide.BUY, 9.8, 100.0)
    risk = RiskManager(RiskConfig(max_position_size_quote=1_000))
    decision = risk.check(entry(quantity=1.0, price=100.0), view)
    assert not decision.allowed and "minimum notional" in decision.reason


def test_max_position_size_with_resting_entry_counts_it() -> None:
    view = FakePortfolio(markets("BTCUSDT"))
    view.rest("BTCUSDT", OrderSide.BUY, 8.0, 100.0)
    risk = RiskManager(RiskConfig(max_position_size_quote=1_000))
    decision = risk.check(entry(quantity=5.0, price=100.0), view)
    assert decision.allowed and decision.quantity == 2.0
