"""Volatility controls: volatility_filter (band + alerts) and circuit_breaker (window + cool-down)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from metaexpert.core.enums import OrderSide
from metaexpert.core.market import Bar, Tick
from metaexpert.core.timeframe import HOUR_MS, MINUTE_MS
from metaexpert.risk import RiskConfig, RiskManager
from tests.risk.fakes import (
    START_MS,
    FakePortfolio,
    RecordingNotifier,
    entry,
    exit_intent,
    linear_market,
    series_from_closes,
)

DATA = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "binance"
    / "spot"
    / "BTCUSDT-1h.parquet"
)


def calm_then_wild() -> np.ndarray:
    calm = np.full(40, 100.0)
    wild = 100.0 * np.where(np.arange(40) % 2 == 0, 1.0, 1.06)
    return np.concatenate((calm, wild))


def test_volatility_filter_with_atr_above_max_blocks_entry() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    view.series[("BTCUSDT", "1h")] = series_from_closes("BTCUSDT", calm_then_wild(), spread=0.0)
    risk = RiskManager(RiskConfig(volatility_filter={"max_pct": 3.0}))
    decision = risk.check(entry(quantity=1.0), view)
    assert (
        not decision.allowed
        and decision.rule == "volatility_filter"
        and "outside" in decision.reason
    )


def test_volatility_filter_with_atr_inside_band_allows_entry() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    view.series[("BTCUSDT", "1h")] = series_from_closes("BTCUSDT", np.full(40, 100.0), spread=0.005)
    assert (
        RiskManager(RiskConfig(volatility_filter={"min_pct": 0.5, "max_pct": 3.0}))
        .check(entry(quantity=1.0), view)
        .allowed
    )


def test_volatility_filter_with_dead_market_below_min_blocks_entry() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    view.series[("BTCUSDT", "1h")] = series_from_closes(
        "BTCUSDT", np.full(40, 100.0), spread=0.0001
    )
    decision = RiskManager(RiskConfig(volatility_filter={"min_pct": 0.5})).check(
        entry(quantity=1.0), view
    )
    assert not decision.allowed


def test_volatility_filter_with_realized_measure_and_short_history_blocks_entry() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    view.series[("BTCUSDT", "1h")] = series_from_closes("BTCUSDT", np.full(10, 100.0))
    risk = RiskManager(
        RiskConfig(volatility_filter={"measure": "realized", "period": 20, "max_pct": 5})
    )
    decision = risk.check(entry(quantity=1.0), view)
    assert not decision.allowed and "not known yet" in decision.reason


def test_volatility_filter_with_wild_market_never_blocks_exit() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    view.series[("BTCUSDT", "1h")] = series_from_closes("BTCUSDT", calm_then_wild(), spread=0.0)
    assert (
        RiskManager(RiskConfig(volatility_filter={"max_pct": 3.0}))
        .check(exit_intent(quantity=1.0), view)
        .allowed
    )


def test_volatility_filter_with_band_crossings_alerts_once_each_way() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    notifier, events = RecordingNotifier(), []
    risk = RiskManager(
        RiskConfig(volatility_filter={"max_pct": 3.0, "period": 5}),
        notifier=notifier,
        emit=events.append,
    )
    closes = np.concatenate(
        (
            np.full(10, 100.0),
            100.0 * np.where(np.arange(10) % 2 == 0, 1.0, 1.06),
            np.full(20, 100.0),
        )
    )
    previous = closes[0]
    for close in closes:
        bar = view.add_bar("BTCUSDT", previous, max(previous, close), min(previous, close), close)
        risk.on_bar(bar, view)
        previous = close
    assert [event.action for event in events] == ["volatility_alert", "volatility_normal"]
    assert len(notifier.sent) == 2


def test_circuit_breaker_with_fast_move_pauses_entries_then_resumes_after_cooldown() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    events, notifier = [], RecordingNotifier()
    risk = RiskManager(
        RiskConfig(circuit_breaker={"move_pct": 5, "window_minutes": 10, "cooldown_minutes": 30}),
        emit=events.append,
        notifier=notifier,
    )
    for minute, price in enumerate([100.0, 99.0, 98.0, 94.0]):
        view.set_time(START_MS + minute * MINUTE_MS)
        risk.on_tick(Tick("BTCUSDT", view.now_ms, price), view)
    assert risk.halted
    assert [action.kind for action in risk.take_actions()] == []  # already returned by on_tick
    decision = risk.check(entry(quantity=1.0, timestamp=view.now_ms), view)
    assert not decision.allowed and decision.rule == "circuit_breaker"
    assert risk.check(exit_intent(quantity=1.0), view).allowed
    view.set_time(START_MS + 3 * MINUTE_MS + 30 * MINUTE_MS)
    assert risk.check(entry(quantity=1.0, timestamp=view.now_ms), view).allowed
    assert not risk.halted
    assert [event.action for event in events] == ["breaker_opened", "blocked", "breaker_closed"]
    assert len(notifier.sent) == 2


def test_circuit_breaker_with_opening_trip_asks_to_cancel_entries_for_the_symbol() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    risk = RiskManager(
        RiskConfig(circuit_breaker={"move_pct": 5, "window_minutes": 10, "cooldown_minutes": 30})
    )
    risk.on_tick(Tick("BTCUSDT", START_MS, 100.0), view)
    actions = risk.on_tick(Tick("BTCUSDT", START_MS + MINUTE_MS, 106.0), view)
    assert [(action.kind, action.symbol) for action in actions] == [("cancel_entries", "BTCUSDT")]


def test_circuit_breaker_with_slow_drift_outside_window_stays_closed() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market()})
    risk = RiskManager(
        RiskConfig(circuit_breaker={"move_pct": 5, "window_minutes": 10, "cooldown_minutes": 30})
    )
    price = 100.0
    for minute in range(120):  # -0.1% a minute: 11% in total, never 5% within 10 minutes
        view.set_time(START_MS + minute * MINUTE_MS)
        risk.on_tick(Tick("BTCUSDT", view.now_ms, price), view)
        price *= 0.999
    assert not risk.halted


def test_circuit_breaker_with_trip_on_one_symbol_leaves_others_tradable() -> None:
    view = FakePortfolio({"BTCUSDT": linear_market(), "ETHUSDT": linear_market("ETHUSDT")})
    risk = RiskManager(
        RiskConfig(circuit_breaker={"move_pct": 5, "window_minutes": 60, "cooldown_minutes": 60})
    )
    bar = Bar("BTCUSDT", "1h", START_MS, 100.0, 108.0, 99.0, 107.0, 10.0)
    view.set_time(START_MS + HOUR_MS)
    risk.on_bar(bar, view)
    assert not risk.check(entry("BTCUSDT", quantity=1.0), view).allowed
    assert risk.check(entry("ETHUSDT", side=OrderSide.SELL, quantity=1.0), view).allowed


@pytest.mark.skipif(not DATA.exists(), reason="shared Binance data not present")
def test_circuit_breaker_with_real_may_2021_btc_crash_trips_on_the_crash_days() -> None:
    """Real BTCUSDT 1h candles, 2021-05-01 to 2021-05-20: calm first week, crashes on May 12-13 and 19."""
    import polars as pl

    start = int(datetime(2021, 5, 1, tzinfo=UTC).timestamp() * 1000)
    end = int(datetime(2021, 5, 20, tzinfo=UTC).timestamp() * 1000)
    frame = pl.read_parquet(DATA).filter(
        (pl.col("timestamp") >= start) & (pl.col("timestamp") < end)
    )
    view = FakePortfolio({"BTCUSDT": linear_market()})
    events = []
    risk = RiskManager(
        RiskConfig(
            circuit_breaker={"move_pct": 15, "window_minutes": 360, "cooldown_minutes": 240}
        ),
        emit=events.append,
    )
    for row in frame.iter_rows(named=True):
        bar = Bar(
            "BTCUSDT",
            "1h",
            row["timestamp"],
            row["open"],
            row["high"],
            row["low"],
            row["close"],
            row["volume"],
        )
        view.set_time(row["timestamp"] + HOUR_MS)
        risk.on_bar(bar, view)
    opened = {
        datetime.fromtimestamp(e.timestamp / 1000, UTC).date().isoformat()
        for e in events
        if e.action == "breaker_opened"
    }
    assert opened == {"2021-05-13", "2021-05-19"}
