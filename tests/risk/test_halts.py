"""Halts: max_drawdown (latches, may flatten) and daily_loss_limit (lifts at UTC midnight)."""

from __future__ import annotations

from metaexpert.core.enums import OrderSide
from metaexpert.core.timeframe import DAY_MS, HOUR_MS
from metaexpert.risk import RiskConfig, RiskManager
from tests.risk.fakes import (
    START_MS,
    FakePortfolio,
    RecordingNotifier,
    entry,
    exit_intent,
    linear_market,
)


def test_max_drawdown_with_loss_beyond_limit_halts_entries_and_alerts() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    events, notifier = [], RecordingNotifier()
    risk = RiskManager(RiskConfig(max_drawdown_pct=10), emit=events.append, notifier=notifier)
    view.fill("BTCUSDT", OrderSide.BUY, 100.0, 100.0)
    view.mark("BTCUSDT", 110.0)  # equity 11 000: new peak
    view.mark("BTCUSDT", 99.0)  # equity 9 900: 10% below the peak
    bar = view.add_bar("BTCUSDT", 100, 100, 99, 99)
    actions = risk.on_bar(bar, view)
    assert risk.halted
    assert [action.kind for action in actions] == ["cancel_entries"]
    assert [(event.rule, event.action) for event in events] == [("max_drawdown", "halted")]
    assert notifier.sent and "max_drawdown halted" in notifier.sent[0][0]
    decision = risk.check(entry(quantity=1.0), view)
    assert not decision.allowed and decision.rule == "max_drawdown"


def test_max_drawdown_with_equity_recovering_stays_halted() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    risk = RiskManager(RiskConfig(max_drawdown_pct=5))
    view.fill("BTCUSDT", OrderSide.BUY, 100.0, 100.0)
    view.mark("BTCUSDT", 94.0)
    risk.on_bar(view.add_bar("BTCUSDT", 100, 100, 94, 94), view)
    view.mark("BTCUSDT", 120.0)
    risk.on_bar(view.add_bar("BTCUSDT", 94, 120, 94, 120), view)
    assert risk.halted and not risk.check(entry(quantity=1.0), view).allowed


def test_max_drawdown_with_flatten_configured_asks_to_flatten_all() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    events = []
    risk = RiskManager(
        RiskConfig(max_drawdown_pct=5, flatten_on_max_drawdown=True), emit=events.append
    )
    view.fill("BTCUSDT", OrderSide.BUY, 100.0, 100.0)
    view.mark("BTCUSDT", 90.0)
    actions = risk.on_bar(view.add_bar("BTCUSDT", 100, 100, 90, 90), view)
    assert [action.kind for action in actions] == ["cancel_entries", "flatten_all"]
    assert "forced_exit" in [event.action for event in events]


def test_max_drawdown_with_halt_detected_inside_check_returns_actions_on_next_bar() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    risk = RiskManager(RiskConfig(max_drawdown_pct=5, flatten_on_max_drawdown=True))
    view.fill("BTCUSDT", OrderSide.BUY, 100.0, 100.0)
    view.mark("BTCUSDT", 90.0)
    decision = risk.check(entry(quantity=1.0), view)
    assert not decision.allowed
    assert [event.action for event in decision.events] == ["halted", "forced_exit", "blocked"]
    assert [action.kind for action in risk.take_actions()] == ["cancel_entries", "flatten_all"]


def test_max_drawdown_with_halt_never_blocks_exits() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    risk = RiskManager(RiskConfig(max_drawdown_pct=5))
    view.fill("BTCUSDT", OrderSide.BUY, 100.0, 100.0)
    view.mark("BTCUSDT", 90.0)
    risk.on_bar(view.add_bar("BTCUSDT", 100, 100, 90, 90), view)
    decision = risk.check(exit_intent(quantity=100.0), view)
    assert decision.allowed and decision.quantity == 100.0


def test_max_drawdown_with_small_dip_does_not_halt() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    risk = RiskManager(RiskConfig(max_drawdown_pct=5))
    view.fill("BTCUSDT", OrderSide.BUY, 100.0, 100.0)
    view.mark("BTCUSDT", 96.0)
    risk.on_bar(view.add_bar("BTCUSDT", 100, 100, 96, 96), view)
    assert not risk.halted and risk.check(entry(quantity=1.0), view).allowed


def test_daily_loss_limit_with_loss_reached_halts_until_next_utc_day() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000, clock_ms=START_MS + HOUR_MS)
    events = []
    risk = RiskManager(RiskConfig(daily_loss_limit=300), emit=events.append)
    view.fill("BTCUSDT", OrderSide.BUY, 100.0, 100.0)
    view.mark("BTCUSDT", 97.0)  # -300 today
    decision = risk.check(entry(quantity=1.0), view)
    assert not decision.allowed and decision.rule == "daily_loss_limit"
    assert risk.halted
    view.set_time(START_MS + DAY_MS + HOUR_MS)  # next day: day_start_equity = 9 700
    decision = risk.check(entry(quantity=1.0), view)
    assert decision.allowed and not risk.halted
    assert [event.action for event in events] == ["halted", "blocked", "resumed"]


def test_daily_loss_limit_with_loss_below_limit_allows_entries() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    risk = RiskManager(RiskConfig(daily_loss_limit=300))
    view.fill("BTCUSDT", OrderSide.BUY, 100.0, 100.0)
    view.mark("BTCUSDT", 97.5)
    assert risk.check(entry(quantity=1.0), view).allowed


def test_daily_loss_limit_with_new_day_losses_counts_only_today() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    risk = RiskManager(RiskConfig(daily_loss_limit=300))
    view.fill("BTCUSDT", OrderSide.BUY, 100.0, 100.0)
    view.mark("BTCUSDT", 98.0)  # -200 on day one
    view.set_time(START_MS + DAY_MS)
    view.mark("BTCUSDT", 96.0)  # -200 more on day two: -400 in total, -200 today
    assert risk.check(entry(quantity=1.0), view).allowed
