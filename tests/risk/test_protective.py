"""Protective exits: stop/target/trailing levels and the breakeven stop move."""

from __future__ import annotations

import pytest

from metaexpert.core.enums import OrderSide, PositionMode, PositionSide
from metaexpert.core.market import Tick
from metaexpert.risk import ProtectiveLevels, RiskConfig, RiskManager
from tests.risk.fakes import FakePortfolio, linear_market


def test_protective_levels_with_long_put_stop_below_and_target_above() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market(price_step=0.01)})
    risk = RiskManager(
        RiskConfig(
            stop_loss_pct=2, take_profit_pct=4, trailing_stop_pct=1.5, trailing_activation_pct=1
        )
    )
    levels = risk.protective_levels("BTCUSDT", PositionSide.LONG, 100.0, view)
    assert levels == ProtectiveLevels(
        stop_loss=98.0, take_profit=104.0, trailing_pct=1.5, trailing_activation_price=101.0
    )


def test_protective_levels_with_short_mirror_the_long_levels() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market(price_step=0.5)})
    risk = RiskManager(RiskConfig(stop_loss_pct=2, take_profit_pct=4))
    levels = risk.protective_levels("BTCUSDT", PositionSide.SHORT, 1_000.0, view)
    assert (levels.stop_loss, levels.take_profit, levels.trailing_pct) == (1_020.0, 960.0, None)


def test_protective_levels_with_nothing_configured_are_empty() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    assert (
        RiskManager(RiskConfig())
        .protective_levels("BTCUSDT", PositionSide.LONG, 100.0, view)
        .is_empty
    )


def test_protective_levels_with_price_step_round_to_the_tick() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market(price_step=0.1)})
    levels = RiskManager(RiskConfig(stop_loss_pct=1.234)).protective_levels(
        "BTCUSDT", PositionSide.LONG, 100.0, view
    )
    assert levels.stop_loss == 98.8


def test_protective_levels_with_bad_entry_price_raises() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    with pytest.raises(ValueError, match="entry price must be positive"):
        RiskManager(RiskConfig(stop_loss_pct=1)).protective_levels(
            "BTCUSDT", PositionSide.LONG, 0.0, view
        )


def test_breakeven_with_profit_reached_moves_stop_to_entry_once() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    events = []
    risk = RiskManager(RiskConfig(breakeven_pct=1.0), emit=events.append)
    view.fill("BTCUSDT", OrderSide.BUY, 1.0, 100.0)
    assert risk.on_bar(view.add_bar("BTCUSDT", 100, 100.9, 99.5, 100.5), view) == []
    actions = risk.on_bar(view.add_bar("BTCUSDT", 100.5, 101.5, 100.4, 101.2), view)
    assert [(a.kind, a.symbol, a.position_side, a.stop_price) for a in actions] == [
        ("move_stop", "BTCUSDT", PositionSide.LONG, 100.0)
    ]
    assert risk.on_bar(view.add_bar("BTCUSDT", 101.2, 103, 101, 102.5), view) == []
    assert [event.action for event in events] == ["move_stop"]


def test_breakeven_with_short_in_profit_on_tick_moves_stop() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, mode=PositionMode.HEDGE)
    risk = RiskManager(RiskConfig(breakeven_pct=2.0))
    view.fill("BTCUSDT", OrderSide.SELL, 1.0, 100.0, PositionSide.SHORT)
    view.fill("BTCUSDT", OrderSide.BUY, 1.0, 100.0, PositionSide.LONG)
    assert risk.on_tick(Tick("BTCUSDT", view.now_ms, 98.5), view) == []
    actions = risk.on_tick(Tick("BTCUSDT", view.now_ms, 97.9), view)
    assert [(a.position_side, a.stop_price) for a in actions] == [(PositionSide.SHORT, 100.0)]


def test_breakeven_with_reopened_position_moves_stop_again() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    risk = RiskManager(RiskConfig(breakeven_pct=1.0))
    view.fill("BTCUSDT", OrderSide.BUY, 1.0, 100.0)
    assert len(risk.on_tick(Tick("BTCUSDT", view.now_ms, 102.0), view)) == 1
    view.fill("BTCUSDT", OrderSide.SELL, 1.0, 102.0)
    view.set_time(view.now_ms + 60_000)
    view.fill("BTCUSDT", OrderSide.BUY, 1.0, 102.0)
    actions = risk.on_tick(Tick("BTCUSDT", view.now_ms, 104.0), view)
    assert [a.stop_price for a in actions] == [102.0]


def test_breakeven_with_stop_already_above_entry_does_nothing() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    risk = RiskManager(RiskConfig(breakeven_pct=1.0))
    view.fill("BTCUSDT", OrderSide.BUY, 1.0, 100.0)
    view.positions("BTCUSDT")[0].stop_loss = 100.5
    assert risk.on_tick(Tick("BTCUSDT", view.now_ms, 105.0), view) == []


def test_protective_levels_with_short_target_of_100_percent_leave_it_out() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    risk = RiskManager(RiskConfig(stop_loss_pct=5, take_profit_pct=150))
    levels = risk.protective_levels("BTCUSDT", PositionSide.SHORT, 100.0, view)
    assert levels.take_profit is None and levels.stop_loss == 105.0
    assert risk.protective_levels("BTCUSDT", PositionSide.LONG, 100.0, view).take_profit == 250.0
