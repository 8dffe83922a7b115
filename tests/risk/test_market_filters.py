"""Market filters: max_spread, max_slippage (walking the book), min_volume."""

from __future__ import annotations

from metaexpert.core.enums import OrderSide, OrderType
from metaexpert.core.intent import OrderIntent
from metaexpert.risk import RiskConfig, RiskManager
from tests.risk.fakes import START_MS, FakePortfolio, book, entry, exit_intent, linear_market


def make_view() -> FakePortfolio:
    return FakePortfolio({"BTCUSDT": linear_market()})


def test_max_spread_with_wide_book_blocks_entry() -> None:
    view = make_view()
    view.books["BTCUSDT"] = book("BTCUSDT", 99.0, 101.0)  # 2% of mid
    risk = RiskManager(RiskConfig(max_spread_pct=0.5))
    decision = risk.check(entry(quantity=1.0), view)
    assert not decision.allowed and decision.rule == "max_spread" and "2.0000%" in decision.reason


def test_max_spread_with_tight_book_allows_entry() -> None:
    view = make_view()
    view.books["BTCUSDT"] = book("BTCUSDT", 99.95, 100.05)
    assert RiskManager(RiskConfig(max_spread_pct=0.5)).check(entry(quantity=1.0), view).allowed


def test_max_spread_with_no_book_lets_entry_pass() -> None:
    assert (
        RiskManager(RiskConfig(max_spread_pct=0.5)).check(entry(quantity=1.0), make_view()).allowed
    )


def test_max_spread_with_wide_book_never_blocks_exit() -> None:
    view = make_view()
    view.books["BTCUSDT"] = book("BTCUSDT", 90.0, 110.0)
    assert (
        RiskManager(RiskConfig(max_spread_pct=0.5)).check(exit_intent(quantity=1.0), view).allowed
    )


def test_max_slippage_with_order_eating_many_levels_blocks() -> None:
    view = make_view()
    view.books["BTCUSDT"] = book("BTCUSDT", 99.9, 100.0, depth=1.0, levels=20, step=0.5)
    risk = RiskManager(RiskConfig(max_slippage_pct=1.0))
    # 10 units over levels 100.0 .. 104.5: average 102.25 -> 2.25% above the reference 100
    decision = risk.check(entry(quantity=10.0, price=100.0), view)
    assert not decision.allowed and decision.rule == "max_slippage"
    assert abs(decision.events[-1].details["slippage_pct"] - 2.25) < 1e-9


def test_max_slippage_with_small_order_allows() -> None:
    view = make_view()
    view.books["BTCUSDT"] = book("BTCUSDT", 99.9, 100.0, depth=1.0, levels=20, step=0.5)
    assert (
        RiskManager(RiskConfig(max_slippage_pct=1.0))
        .check(entry(quantity=2.0, price=100.0), view)
        .allowed
    )


def test_max_slippage_with_sell_walks_the_bids() -> None:
    view = make_view()
    view.books["BTCUSDT"] = book("BTCUSDT", 100.0, 100.1, depth=1.0, levels=20, step=0.5)
    risk = RiskManager(RiskConfig(max_slippage_pct=1.0))
    assert not risk.check(entry(side=OrderSide.SELL, quantity=10.0, price=100.0), view).allowed
    assert risk.check(entry(side=OrderSide.SELL, quantity=2.0, price=100.0), view).allowed


def test_max_slippage_with_book_too_thin_blocks() -> None:
    view = make_view()
    view.books["BTCUSDT"] = book("BTCUSDT", 99.9, 100.0, depth=1.0, levels=3)
    decision = RiskManager(RiskConfig(max_slippage_pct=5.0)).check(entry(quantity=10.0), view)
    assert not decision.allowed and "too thin" in decision.reason


def test_max_slippage_with_limit_order_does_not_apply() -> None:
    view = make_view()
    view.books["BTCUSDT"] = book("BTCUSDT", 99.9, 100.0, depth=1.0, levels=3)
    intent = OrderIntent(
        "BTCUSDT", OrderSide.BUY, OrderType.LIMIT, 10.0, 100.0, START_MS, price=99.0
    )
    assert RiskManager(RiskConfig(max_slippage_pct=0.1)).check(intent, view).allowed


def test_min_volume_with_quiet_last_bar_blocks_entry() -> None:
    view = make_view()
    view.add_bar("BTCUSDT", 100, 101, 99, 100, volume=5.0)
    decision = RiskManager(RiskConfig(min_volume=10.0)).check(entry(quantity=1.0), view)
    assert not decision.allowed and decision.rule == "min_volume"


def test_min_volume_with_busy_last_bar_allows_entry() -> None:
    view = make_view()
    view.add_bar("BTCUSDT", 100, 101, 99, 100, volume=5.0)
    view.add_bar("BTCUSDT", 100, 101, 99, 100, volume=50.0)
    assert RiskManager(RiskConfig(min_volume=10.0)).check(entry(quantity=1.0), view).allowed


def test_min_volume_with_no_closed_bar_blocks_entry() -> None:
    decision = RiskManager(RiskConfig(min_volume=10.0)).check(entry(quantity=1.0), make_view())
    assert not decision.allowed and "no closed bar" in decision.reason
