"""The market-data replay: candles step the matching core, tick recordings run on their own clock.

Why separate from the venues: the same recorded candles, trades and depth are replayed on every
venue; a venue only renders what the replay produced (``ReplayListener``) in its own stream
shapes and symbol names. ``bars_sent`` and ``tick_events_sent`` count what was replayed, so a
test can assert on what the replay reports instead of on the wall clock.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from metaexpert.sandbox.config import SandboxConfig
from metaexpert.sandbox.core.exchange import SandboxExchange
from metaexpert.sandbox.core.market_data import Kline, TickEvent, TickRecording, find_tick_directory


class ReplayListener(Protocol):
    def on_bars(self, produced: list[tuple[str, Kline]]) -> None: ...

    def on_ticks(
        self, data_market: str, symbol: str, recording: TickRecording, events: list[TickEvent]
    ) -> None: ...


class Replay:
    """Owns the tick recordings and the tick clock; steps the exchange and tells the venue.

    Recordings are keyed by (data market, candle symbol): a venue maps them to its own symbols.
    """

    def __init__(
        self, config: SandboxConfig, exchange: SandboxExchange, listener: ReplayListener
    ) -> None:
        self.config = config
        self.exchange = exchange
        self.listener = listener
        self.recordings: dict[tuple[str, str], TickRecording] = {}
        if config.tick_replay:
            for market in exchange.markets.values():
                for symbol in market.rules:
                    candle = exchange.candle_of(symbol)
                    key = (market.data_market, candle)
                    if key in self.recordings:
                        continue
                    directory = find_tick_directory(config.data_dir, market.data_market, candle)
                    if directory is not None:
                        self.recordings[key] = TickRecording(candle, directory)
        starts = [recording.first_ns for recording in self.recordings.values() if len(recording)]
        self.tick_clock_ns = min(starts) if starts else 0
        self.synthetic_update_id = 1
        self.bars_sent = 0
        self.tick_events_sent = 0

    def advance(self, bars: int) -> int:
        """Replay ``bars`` bars; returns how many new bars were produced (one per symbol per step,
        0 once the data runs out)."""
        produced = self.exchange.advance(bars)
        self.synthetic_update_id += len(produced)
        self.bars_sent += len(produced)
        self.listener.on_bars(produced)
        return len(produced)

    def advance_ticks(self, milliseconds: float) -> int:
        """Move the tick-replay clock forward and publish every recorded event it passes."""
        if milliseconds <= 0:
            raise ValueError(f"milliseconds must be > 0, got {milliseconds}")
        self.tick_clock_ns += int(milliseconds * 1_000_000)
        published = 0
        for (data_market, symbol), recording in self.recordings.items():
            events = recording.take_until(self.tick_clock_ns)
            published += len(events)
            if not events:
                continue
            self.listener.on_ticks(data_market, symbol, recording, events)
            if self.config.price_source == "trades":
                prices, times = recording.trades["price"], recording.trades["trade_time_ms"]
                for event in events:
                    if event.kind == "trade":
                        self.exchange.apply_trade(
                            data_market, symbol, float(prices[event.index]), int(times[event.index])
                        )
        self.tick_events_sent += published
        return published

    async def run_forever(self) -> None:
        """Real-time replay at ``speed``: bars by market time, ticks by recorded receiver time."""
        bar_ms = self.exchange.timeframe.milliseconds
        owed_ms = 0.0
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            elapsed_ms = (now - last) * 1000.0 * self.config.speed
            last = now
            owed_ms += elapsed_ms
            if owed_ms >= bar_ms:
                bars = int(owed_ms // bar_ms)
                owed_ms -= bars * bar_ms
                self.advance(bars)
            if self.recordings:
                self.advance_ticks(elapsed_ms)

    def describe(self) -> dict[str, object]:
        """What is replayed: symbols per market, timeframe, date range, speed (printed on start)."""
        first = min(int(series.timestamps[0]) for series in self.exchange.series.values())
        last = max(int(series.timestamps[-1]) for series in self.exchange.series.values())
        return {
            "markets": {name: sorted(spec.rules) for name, spec in self.exchange.markets.items()},
            "timeframe": str(self.exchange.timeframe),
            "start_ms": self.exchange.now,
            "data_first_ms": first,
            "data_last_ms": last,
            "speed": self.config.speed,
            "tick_recordings": sorted(f"{market}:{symbol}" for market, symbol in self.recordings),
        }

    def status(self) -> dict[str, object]:
        return {
            "time": self.exchange.now,
            "timeframe": str(self.exchange.timeframe),
            "speed": self.config.speed,
            "prices": {symbol: self.exchange.price(symbol) for symbol in self.exchange.series},
            "tick_clock_ns": self.tick_clock_ns,
            "bars_sent": self.bars_sent,
            "tick_events_sent": self.tick_events_sent,
            "recordings": {
                f"{market}:{symbol}": {
                    "cursor": rec.cursor,
                    "events": len(rec),
                    "last_update_id": rec.book.last_update_id,
                }
                for (market, symbol), rec in self.recordings.items()
            },
        }
