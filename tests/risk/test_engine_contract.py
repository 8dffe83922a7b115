"""The engine's Portfolio is a PortfolioView the RiskManager can work with (the contract both sides keep)."""

from __future__ import annotations

import pytest

from metaexpert.core.enums import OrderSide, PositionMode
from metaexpert.core.market import Bar
from metaexpert.core.portfolio import PortfolioView
from metaexpert.core.series import BarSeries
from metaexpert.core.timeframe import HOUR_MS
from metaexpert.risk import RiskConfig, RiskManager
from tests.risk.fakes import START_MS, entry, linear_market

portfolio_module = pytest.importorskip("metaexpert.engine.portfolio")


def make_portfolio():
    portfolio = portfolio_module.Portfolio(
        currency="USDT",
        initial_capital=10_000.0,
        markets={"BTCUSDT": linear_market()},
        position_mode=PositionMode.ONEWAY,
        leverage=2.0,
    )
    portfolio.base_timeframe = "1h"
    portfolio.series[("BTCUSDT", "1h")] = BarSeries("BTCUSDT", "1h")
    portfolio.set_time(START_MS)
    portfolio.mark("BTCUSDT", 100.0)
    return portfolio


def test_engine_portfolio_with_risk_manager_satisfies_the_view_protocol() -> None:
    assert isinstance(make_portfolio(), PortfolioView)


def test_engine_portfolio_with_percent_equity_sizes_with_its_leverage() -> None:
    portfolio = make_portfolio()
    risk = RiskManager(RiskConfig(size_value=10.0, max_open_positions=1))
    decision = risk.check(entry(price=100.0, leverage=portfolio.leverage["BTCUSDT"]), portfolio)
    assert decision.allowed and decision.quantity == 20.0


def test_engine_portfolio_with_daily_loss_reached_halts_entries() -> None:
    portfolio = make_portfolio()
    risk = RiskManager(RiskConfig(daily_loss_limit=100.0))
    bar = Bar("BTCUSDT", "1h", START_MS, 100.0, 100.0, 94.0, 95.0, 10.0)
    portfolio.series[("BTCUSDT", "1h")].append(bar)
    from metaexpert.core.order import Trade

    portfolio.apply_trade(
        Trade("t1", "o1", "c1", "BTCUSDT", OrderSide.BUY, 30.0, 100.0, 0.0, "USDT", START_MS), None
    )
    portfolio.set_time(START_MS + HOUR_MS)
    portfolio.mark("BTCUSDT", 95.0)  # -150 today
    risk.on_bar(bar, portfolio)
    assert risk.halted
    assert not risk.check(entry(price=95.0, quantity=1.0), portfolio).allowed
