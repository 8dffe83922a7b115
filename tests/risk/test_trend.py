"""trend_filter: long only above the moving average, short only below."""

from __future__ import annotations

import numpy as np

from metaexpert.core.enums import OrderSide, PositionMode, PositionSide
from metaexpert.risk import RiskConfig, RiskManager
from tests.risk.fakes import FakePortfolio, entry, exit_intent, linear_market, series_from_closes


def uptrend_view() -> FakePortfolio:
    view = FakePortfolio({"BTCUSDT": linear_market()}, mode=PositionMode.HEDGE)
    view.series[("BTCUSDT", "1h")] = series_from_closes("BTCUSDT", np.linspace(80.0, 120.0, 60))
    return view


def test_trend_filter_with_price_above_ema_allows_long_and_blocks_short() -> None:
    view = uptrend_view()
    risk = RiskManager(RiskConfig(trend_filter={"period": 20}))
    assert risk.check(
        entry(quantity=1.0, price=120.0, position_side=PositionSide.LONG), view
    ).allowed
    decision = risk.check(
        entry(side=OrderSide.SELL, quantity=1.0, price=120.0, position_side=PositionSide.SHORT),
        view,
    )
    assert (
        not decision.allowed
        and decision.rule == "trend_filter"
        and "not below EMA(20)" in decision.reason
    )


def test_trend_filter_with_price_below_sma_blocks_long() -> None:
    view = uptrend_view()
    risk = RiskManager(RiskConfig(trend_filter={"indicator": "sma", "period": 50}))
    decision = risk.check(entry(quantity=1.0, price=90.0), view)
    assert not decision.allowed and "SMA(50)" in decision.reason


def test_trend_filter_with_short_history_blocks_entry() -> None:
    view = uptrend_view()
    decision = RiskManager(RiskConfig(trend_filter={"period": 200})).check(
        entry(quantity=1.0, price=120.0), view
    )
    assert not decision.allowed and "needs 200 closed bars" in decision.reason


def test_trend_filter_with_shorts_disallowed_blocks_every_short() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    view.series[("BTCUSDT", "1h")] = series_from_closes("BTCUSDT", np.linspace(120.0, 80.0, 60))
    risk = RiskManager(RiskConfig(trend_filter={"period": 20, "allow_short": False}))
    assert not risk.check(entry(side=OrderSide.SELL, quantity=1.0, price=80.0), view).allowed


def test_trend_filter_with_price_against_trend_never_blocks_exit() -> None:
    view = uptrend_view()
    risk = RiskManager(RiskConfig(trend_filter={"period": 20}))
    intent = exit_intent(
        side=OrderSide.BUY, quantity=1.0, price=120.0, position_side=PositionSide.SHORT
    )
    assert risk.check(intent, view).allowed
