"""The process the crash test kills: a paper-mode expert over recorded candles.

The venue is ``ReplayGateway``: real Binance BTCUSDT 1h candles from the shared data,
with a clock the driver moves one bar per step. After a restart the clock resumes at
the bar after the last processed one (the bar cursor in the database), so a run that
is killed and restarted any number of times sees exactly the ticks and bars of an
uninterrupted run: any difference in the stored orders, fills and positions is a
persistence or recovery bug.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import polars as pl

from metaexpert.core.enums import MarketType, TradeMode
from metaexpert.core.market import Bar, MarketSpec, Tick
from metaexpert.core.timeframe import Timeframe
from metaexpert.engine.config import StrategyConfig
from metaexpert.engine.handlers import HandlerRegistry
from metaexpert.engine.persistence import ExpertRecorder, PersistenceConfig
from metaexpert.engine.runtime import TradingRuntime
from metaexpert.engine.wiring import RunParts
from metaexpert.risk import RiskConfig, RiskManager

SYMBOL, TIMEFRAME = "BTCUSDT", "1h"
DATA_FILE = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "binance"
    / "spot"
    / "BTCUSDT-1h.parquet"
)
FIRST_BAR_MS = 1_709_251_200_000  # 2024-03-01 00:00 UTC
LOOKBACK = 20
STEP_MS = Timeframe.parse(TIMEFRAME).milliseconds


class ReplayGateway:
    """The few gateway calls paper mode makes, answered from recorded candles at ``now``."""

    def __init__(self, bars: list[Bar], now_ms: int) -> None:
        self.bars = bars
        self.by_time = {bar.timestamp: bar for bar in bars}
        self.now = now_ms

    async def load_markets(self) -> None:
        return None

    def market_spec(self, symbol: str) -> MarketSpec:
        return MarketSpec(
            symbol=symbol,
            base="BTC",
            quote="USDT",
            amount_step=0.00001,
            price_step=0.01,
            min_notional=5.0,
        )

    def serves_candles(self, symbol: str) -> bool:
        return True

    async def fetch_ticker(self, symbol: str) -> Tick:
        bar = self.by_time[Timeframe.parse(TIMEFRAME).floor(self.now)]
        return Tick(symbol, self.now, bar.open)

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str, *, since: int | None = None, limit: int | None = None
    ) -> list[Bar]:
        visible = [
            bar
            for bar in self.bars
            if bar.timestamp <= self.now and (since is None or bar.timestamp >= since)
        ]
        if limit is None:
            return visible
        return visible[:limit] if since is not None else visible[-limit:]

    async def close(self) -> None:
        return None


def load_bars(count: int) -> list[Bar]:
    frame = (
        pl.scan_parquet(DATA_FILE)
        .filter(pl.col("timestamp") >= FIRST_BAR_MS)
        .sort("timestamp")
        .head(count)
        .collect()
    )
    return [
        Bar(
            SYMBOL,
            TIMEFRAME,
            int(row["timestamp"]),
            row["open"],
            row["high"],
            row["low"],
            row["close"],
            row["volume"],
        )
        for row in frame.iter_rows(named=True)
    ]


def build_handlers() -> HandlerRegistry:
    """A busy expert: market entries with stop-loss/take-profit brackets, resting dip limits
    (placed, cancelled, sometimes filled), exits, and its own counters in ctx.state."""
    handlers = HandlerRegistry()

    def on_bar(ctx: Any, bars: Any) -> None:
        count = ctx.state.get("bars", 0) + 1
        ctx.state["bars"] = count
        position = ctx.position()
        if count % 5 == 0 and position is None:
            ctx.buy(tag="entry")
        elif count % 5 == 3 and position is not None:
            ctx.close()
            ctx.state["exits"] = ctx.state.get("exits", 0) + 1
        if count % 4 == 1:
            previous = ctx.state.get("dip")
            if previous in {order.client_order_id for order in ctx.open_orders()}:
                ctx.cancel(previous)
            dip = ctx.buy(0.005, price=round(bars.last_close * 0.995, 2), tag="dip")
            ctx.state["dip"] = dip.client_order_id

    handlers.add_bar(TIMEFRAME, on_bar)
    return handlers


def run(url: str, journal: str, steps: int, pause_seconds: float, marker: str = "") -> None:
    """Run (or resume) the expert until ``steps`` bars after the lookback are processed."""
    bars = load_bars(LOOKBACK + steps + 2)
    start_now = bars[LOOKBACK].timestamp
    end_now = start_now + steps * STEP_MS
    recorder = ExpertRecorder.open(
        # Commits need not wait for the disk: the test kills processes, never the machine
        # (the journal and SQLite's WAL live in the page cache, which survives SIGKILL).
        PersistenceConfig(
            storage_url=url,
            journal_directory=Path(journal),
            storage_settings={"sqlite_synchronous": "NORMAL"} if url.startswith("sqlite") else {},
        ),
        expert_name="crash-test",
        trade_mode=TradeMode.PAPER,
        exchange="binance",
    )
    cursor = recorder.cursor(SYMBOL, TIMEFRAME)
    gateway = ReplayGateway(bars, start_now if cursor is None else cursor + STEP_MS)
    strategy = StrategyConfig(symbols=SYMBOL, timeframe=TIMEFRAME, lookback_bars=LOOKBACK)
    risk = RiskConfig(
        size_type="fixed_base", size_value=0.01, stop_loss_pct=1.0, take_profit_pct=1.5
    )
    runtime = TradingRuntime(
        handlers=build_handlers(),
        strategy=strategy,
        gateway=gateway,
        trade_mode=TradeMode.PAPER,
        parts=RunParts(risk=RiskManager(risk), recorder=recorder),
        initial_capital=100_000.0,
        market_type=MarketType.SPOT,
        poll_interval=0.0,
    )

    async def trade() -> None:
        await runtime.start()
        if marker:
            Path(
                marker
            ).touch()  # recovered and trading: the parent may now aim its kill at the steps
        while gateway.now < end_now:
            gateway.now += STEP_MS
            await runtime.step()
            if pause_seconds:
                await asyncio.sleep(pause_seconds)  # room for the parent's kill to land anywhere

    asyncio.run(trade())
    recorder.close()


def main(url: str, journal: str, steps: int, pause_seconds: float, marker: str = "") -> None:
    """Entry point of a forked child: exit code 0 means the run completed."""
    try:
        run(url, journal, steps, pause_seconds, marker)
    except BaseException as error:  # noqa: BLE001 - report and fail the child visibly
        print(f"crash child failed: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        os._exit(3)
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
