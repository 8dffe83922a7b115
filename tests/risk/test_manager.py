"""RiskManager as a whole: rule order, registry, exits, counts, events and alerts."""

from __future__ import annotations

import logging

import pytest

from metaexpert.core.enums import OrderSide, PositionMode, PositionSide
from metaexpert.core.intent import OrderIntent
from metaexpert.core.portfolio import PortfolioView
from metaexpert.risk import (
    RiskConfig,
    RiskManager,
    RiskRule,
    Verdict,
    build_rules,
    register_rule,
    registered_rules,
)
from tests.risk.fakes import (
    START_MS,
    FakePortfolio,
    RecordingNotifier,
    entry,
    exit_intent,
    linear_market,
)


def test_registry_with_builtin_rules_lists_every_family_in_check_order() -> None:
    names = list(registered_rules())
    for expected in (
        "leverage",
        "max_drawdown",
        "daily_loss_limit",
        "circuit_breaker",
        "trade_hours",
        "allowed_days",
        "max_open_positions",
        "max_positions_per_symbol",
        "max_position_size",
        "max_spread",
        "max_slippage",
        "min_volume",
        "volatility_filter",
        "trend_filter",
        "breakeven",
    ):
        assert expected in names
    assert names.index("max_drawdown") < names.index("trade_hours") < names.index("trend_filter")


def test_registry_with_unconfigured_rules_builds_only_leverage() -> None:
    assert [rule.name for rule in build_rules(RiskConfig())] == ["leverage"]


def test_registry_with_duplicate_name_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):

        @register_rule
        class Impostor(RiskRule):
            name = "trade_hours"

            @classmethod
            def from_config(cls, config: RiskConfig) -> RiskRule | None:
                return None


def test_registry_with_custom_rule_runs_it_in_check() -> None:
    @register_rule
    class NoDoge(RiskRule):
        name = "test_no_doge"
        priority = 5

        @classmethod
        def from_config(cls, config: RiskConfig) -> RiskRule | None:
            return cls()

        def check(
            self, intent: OrderIntent, quantity: float, view: PortfolioView
        ) -> Verdict | None:
            return Verdict.block("no doge") if intent.symbol.startswith("DOGE") else None

    try:
        view = FakePortfolio({"DOGEUSDT": linear_market("DOGEUSDT"), "BTCUSDT": linear_market()})
        risk = RiskManager(RiskConfig())
        assert risk.check(entry("DOGEUSDT", quantity=100.0), view).rule == "test_no_doge"
        assert risk.check(entry("BTCUSDT", quantity=1.0), view).allowed
    finally:
        from metaexpert.risk import registry

        registry._RULES.pop("test_no_doge")


def test_manager_with_wrong_config_type_raises_type_error() -> None:
    with pytest.raises(TypeError, match="needs a RiskConfig"):
        RiskManager({"stop_loss_pct": 2})  # type: ignore[arg-type]


def test_manager_with_several_blocking_rules_reports_the_first_in_order() -> None:
    view = FakePortfolio(
        {"BTCUSDT": linear_market()}, clock_ms=START_MS + 5 * 86_400_000
    )  # Saturday 00:00
    risk = RiskManager(RiskConfig(trade_hours="08:00-20:00", allowed_days=["mon"], min_volume=1.0))
    decision = risk.check(entry(quantity=1.0), view)
    assert decision.rule == "trade_hours"
    assert risk.counts == {"trade_hours": 1}


def test_manager_with_blocks_counts_each_rule() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, clock_ms=START_MS)
    risk = RiskManager(RiskConfig(trade_hours="08:00-20:00", min_volume=1.0))
    for _ in range(3):
        risk.check(entry(quantity=1.0), view)
    view.set_time(START_MS + 9 * 3_600_000)
    risk.check(entry(quantity=1.0), view)
    assert risk.counts == {"trade_hours": 3, "min_volume": 1}


def test_manager_with_exit_without_quantity_returns_the_held_amount() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, mode=PositionMode.HEDGE)
    view.fill("BTCUSDT", OrderSide.BUY, 2.0, 100.0, PositionSide.LONG)
    view.fill("BTCUSDT", OrderSide.SELL, 3.0, 100.0, PositionSide.SHORT)
    risk = RiskManager(RiskConfig(trade_hours="23:00-23:30"))
    decision = risk.check(exit_intent(side=OrderSide.BUY, position_side=PositionSide.SHORT), view)
    assert decision.allowed and decision.quantity == 3.0
    oneway = FakePortfolio({"BTCUSDT": linear_market()})
    oneway.fill("BTCUSDT", OrderSide.BUY, 2.0, 100.0)
    assert risk.check(exit_intent(), oneway).quantity == 2.0


def test_manager_with_non_positive_quantity_blocks_with_sizing_rule() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    decision = RiskManager(RiskConfig()).check(entry(quantity=-1.0), view)
    assert not decision.allowed and decision.rule == "sizing" and "positive" in decision.reason


def test_manager_with_allowed_entry_and_no_changes_emits_nothing() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    events = []
    decision = RiskManager(RiskConfig(max_open_positions=5), emit=events.append).check(
        entry(quantity=1.0), view
    )
    assert decision.allowed and decision.quantity == 1.0 and decision.events == [] and events == []


def test_manager_with_failing_notifier_keeps_trading_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    risk = RiskManager(RiskConfig(max_drawdown_pct=5), notifier=RecordingNotifier(fail=True))
    view.fill("BTCUSDT", OrderSide.BUY, 100.0, 100.0)
    view.mark("BTCUSDT", 90.0)
    with caplog.at_level(logging.WARNING, logger="metaexpert.risk.manager"):
        decision = risk.check(entry(quantity=1.0), view)
    assert not decision.allowed and risk.halted
    assert "could not be sent" in caplog.text


def test_manager_with_blocked_event_carries_intent_time_and_symbol() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    events = []
    risk = RiskManager(RiskConfig(trade_hours="08:00-09:00"), emit=events.append)
    risk.check(entry(quantity=1.0, timestamp=START_MS + 123), view)
    assert (events[0].rule, events[0].action, events[0].timestamp, events[0].symbol) == (
        "trade_hours",
        "blocked",
        START_MS + 123,
        "BTCUSDT",
    )


def test_manager_with_events_from_bars_hands_them_to_drain_once() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000)
    risk = RiskManager(RiskConfig(max_drawdown_pct=5, trade_hours="08:00-09:00"))
    view.fill("BTCUSDT", OrderSide.BUY, 100.0, 100.0)
    view.mark("BTCUSDT", 90.0)
    risk.on_bar(view.add_bar("BTCUSDT", 100, 100, 90, 90), view)
    decision = risk.check(entry(quantity=1.0), view)
    assert [event.action for event in decision.events] == ["blocked"]
    assert [(event.rule, event.action) for event in risk.drain_events()] == [
        ("max_drawdown", "halted")
    ]
    assert risk.drain_events() == []


def test_manager_with_only_order_rules_needs_no_bars() -> None:
    assert not RiskManager(RiskConfig(max_open_positions=2, trade_hours="08:00-20:00")).needs_bars
    assert RiskManager(RiskConfig(breakeven_pct=1.0)).needs_bars
    assert RiskManager(RiskConfig(daily_loss_limit=100.0)).needs_bars


def test_manager_with_zero_quantity_from_size_explains_the_sizing_reason() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market(min_notional=100.0)})
    risk = RiskManager(RiskConfig(size_type="fixed_quote", size_value=50.0))
    intent = entry(price=100.0)
    intent.quantity = risk.size(intent, view)
    decision = risk.check(intent, view)
    assert not decision.allowed and decision.reason.startswith("order size is zero: order value 50")
