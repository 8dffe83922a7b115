"""Benchmark: cost of the risk layer in a backtest-shaped loop, with and without rules.

Not a test (pytest does not collect ``bench_*``). Run:

    .venv/bin/python -m tests.risk.bench_risk [bars]

It replays real BTCUSDT 1h candles from ../shared/data the way the engine does in a
backtest (one BarSeries holding the whole replay, ``visible`` moving forward, cached
causal indicators), calls ``on_bar`` after every bar and ``check`` + ``protective_levels``
for every order of a small SMA-cross strategy, and compares the run with sizing only
against the run with stop-loss, take-profit, trailing, breakeven and two filters
(volatility and trend). The target is a ratio at or below 1.5.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import polars as pl

from metaexpert.core.enums import OrderSide, OrderType, PositionSide
from metaexpert.core.intent import OrderIntent
from metaexpert.core.market import Bar
from metaexpert.core.series import BarSeries
from metaexpert.core.timeframe import HOUR_MS
from metaexpert.risk import RiskConfig, RiskManager
from tests.risk.fakes import FakePortfolio, linear_market

DATA = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "binance"
    / "spot"
    / "BTCUSDT-1h.parquet"
)

BASELINE = RiskConfig(size_type="percent_equity", size_value=10.0)
WITH_RULES = RiskConfig(
    size_type="percent_equity",
    size_value=10.0,
    stop_loss_pct=2.0,
    take_profit_pct=4.0,
    trailing_stop_pct=1.5,
    trailing_activation_pct=1.0,
    breakeven_pct=1.0,
    volatility_filter={"measure": "atr", "period": 14, "max_pct": 3.0},
    trend_filter={"indicator": "ema", "period": 50},
)


def load(bars: int) -> pl.DataFrame:
    return pl.read_parquet(DATA).tail(bars)


def run(config: RiskConfig, frame: pl.DataFrame) -> tuple[float, int, int]:
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000.0)
    columns = {
        name: frame[name].to_numpy()
        for name in ("timestamp", "open", "high", "low", "close", "volume")
    }
    series = BarSeries(
        "BTCUSDT",
        "1h",
        columns["timestamp"],
        columns["open"],
        columns["high"],
        columns["low"],
        columns["close"],
        columns["volume"],
        visible=0,
    )
    view.series[("BTCUSDT", "1h")] = series
    risk = RiskManager(config)
    stop = target = None
    orders = blocked = 0
    was_above = False
    timestamps, opens, highs, lows, closes, volumes = (
        columns[k].tolist() for k in ("timestamp", "open", "high", "low", "close", "volume")
    )
    started = time.perf_counter()
    for index in range(len(timestamps)):
        series.visible = index + 1
        close = closes[index]
        bar = Bar(
            "BTCUSDT",
            "1h",
            timestamps[index],
            opens[index],
            highs[index],
            lows[index],
            close,
            volumes[index],
        )
        view.set_time(timestamps[index] + HOUR_MS)
        view.mark("BTCUSDT", close)
        for action in risk.on_bar(bar, view):
            if action.kind == "move_stop":
                stop = action.stop_price
        positions = view.positions("BTCUSDT")
        if positions and (
            (stop is not None and lows[index] <= stop)
            or (target is not None and highs[index] >= target)
        ):
            exit_price = stop if stop is not None and lows[index] <= stop else target
            view.fill("BTCUSDT", OrderSide.SELL, positions[0].quantity, exit_price)
            stop = target = None
            positions = []
        if index < 21:
            continue
        average = series.sma(20)
        above = close > average
        # Signals are SMA crosses, independent of risk outcomes, so both runs ask the same questions.
        if above and not was_above:
            intent = OrderIntent(
                "BTCUSDT", OrderSide.BUY, OrderType.MARKET, None, close, view.now_ms
            )
            decision = risk.check(intent, view)
            orders += 1
            if not decision.allowed:
                blocked += 1
            elif not positions:
                view.fill("BTCUSDT", OrderSide.BUY, decision.quantity, close)
                levels = risk.protective_levels("BTCUSDT", PositionSide.LONG, close, view)
                stop, target = levels.stop_loss, levels.take_profit
        elif was_above and not above:
            intent = OrderIntent(
                "BTCUSDT",
                OrderSide.SELL,
                OrderType.MARKET,
                None,
                close,
                view.now_ms,
                reduce_only=True,
                opens_exposure=False,
            )
            decision = risk.check(intent, view)
            orders += 1
            if decision.quantity > 0:
                view.fill("BTCUSDT", OrderSide.SELL, decision.quantity, close)
            stop = target = None
        was_above = above
    return time.perf_counter() - started, orders, blocked


def main() -> None:
    bars = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    frame = load(bars)
    run(BASELINE, frame.head(500))  # warm up imports and caches
    results = {}
    for name, config in (("baseline", BASELINE), ("with_rules", WITH_RULES)):
        timings = []
        for _ in range(3):
            elapsed, orders, blocked = run(config, frame)
            timings.append(elapsed)
        results[name] = (min(timings), orders, blocked)
        print(
            f"{name:>10}: {min(timings) * 1000:8.1f} ms for {len(frame)} bars "
            f"({min(timings) / len(frame) * 1e6:.2f} us/bar), {orders} checks, {blocked} blocked"
        )
    ratio = results["with_rules"][0] / results["baseline"][0]
    print(f"ratio with_rules / baseline: {ratio:.2f} (target <= 1.5)")
    print(
        f"per call: check() {check_cost(BASELINE, frame):.1f} us baseline, "
        f"{check_cost(WITH_RULES, frame):.1f} us with rules"
    )


def check_cost(config: RiskConfig, frame: pl.DataFrame, calls: int = 20_000) -> float:
    """Microseconds per check() of an entry on a long replayed series (indicators cached)."""
    view = FakePortfolio({"BTCUSDT": linear_market()}, capital=10_000.0)
    columns = [
        frame[name].to_numpy() for name in ("timestamp", "open", "high", "low", "close", "volume")
    ]
    series = BarSeries("BTCUSDT", "1h", *columns, visible=len(frame))
    view.series[("BTCUSDT", "1h")] = series
    risk = RiskManager(config)
    close = float(columns[4][-1])
    intent = OrderIntent("BTCUSDT", OrderSide.BUY, OrderType.MARKET, None, close, view.now_ms)
    risk.check(intent, view)
    started = time.perf_counter()
    for _ in range(calls):
        risk.check(intent, view)
    return (time.perf_counter() - started) / calls * 1e6


if __name__ == "__main__":
    main()
