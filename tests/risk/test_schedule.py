"""Time filters: trade_hours and allowed_days on the engine clock (UTC)."""

from __future__ import annotations

import pytest

from metaexpert.core.timeframe import DAY_MS, HOUR_MS, MINUTE_MS
from metaexpert.risk import RiskConfig, RiskManager
from metaexpert.risk.schedule import weekday
from tests.risk.fakes import START_MS, FakePortfolio, entry, exit_intent, linear_market


def view_at(timestamp: int) -> FakePortfolio:
    return FakePortfolio({"BTCUSDT": linear_market()}, clock_ms=timestamp)


@pytest.mark.parametrize(
    ("hour", "minute", "allowed"), [(7, 59, False), (8, 0, True), (19, 59, True), (20, 0, False)]
)
def test_trade_hours_with_day_window_allows_only_inside(
    hour: int, minute: int, allowed: bool
) -> None:
    risk = RiskManager(RiskConfig(trade_hours="08:00-20:00"))
    decision = risk.check(
        entry(quantity=1.0), view_at(START_MS + hour * HOUR_MS + minute * MINUTE_MS)
    )
    assert decision.allowed is allowed
    if not allowed:
        assert (
            decision.rule == "trade_hours" and "outside trade_hours 08:00-20:00" in decision.reason
        )


@pytest.mark.parametrize(
    ("hour", "allowed"), [(21, False), (22, True), (23, True), (0, True), (1, True), (2, False)]
)
def test_trade_hours_with_window_across_midnight_wraps(hour: int, allowed: bool) -> None:
    risk = RiskManager(RiskConfig(trade_hours="22:00-02:00"))
    assert risk.check(entry(quantity=1.0), view_at(START_MS + hour * HOUR_MS)).allowed is allowed


def test_trade_hours_with_closed_window_never_blocks_exit() -> None:
    risk = RiskManager(RiskConfig(trade_hours="08:00-09:00"))
    assert risk.check(exit_intent(quantity=1.0), view_at(START_MS)).allowed


def test_weekday_with_known_dates_matches_calendar() -> None:
    assert weekday(START_MS) == 0  # 2024-01-01 was a Monday
    assert weekday(0) == 3  # 1970-01-01 was a Thursday
    assert weekday(START_MS + 6 * DAY_MS + 23 * HOUR_MS) == 6


def test_allowed_days_with_weekend_excluded_blocks_saturday() -> None:
    risk = RiskManager(RiskConfig(allowed_days=["mon", "tue", "wed", "thu", "fri"]))
    saturday = START_MS + 5 * DAY_MS
    decision = risk.check(entry(quantity=1.0), view_at(saturday))
    assert not decision.allowed and decision.rule == "allowed_days" and "sat" in decision.reason
    assert risk.check(entry(quantity=1.0), view_at(START_MS + 4 * DAY_MS)).allowed
