"""Recorded market data the sandbox replays: candles (the price clock) and tick recordings.

Why two sources: candles drive the matching engine's current price and the kline API, which must
match the Parquet files bar for bar; tick recordings (trades, best bid/ask, depth snapshot plus
diffs) drive the trade, bookTicker and depth streams with Binance's own update ids, so a client
can build a local order book exactly as it would against the real exchange.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from metaexpert.core.timeframe import Timeframe
from metaexpert.sandbox.errors import BinanceError, invalid_interval

BINANCE_INTERVALS = (
    "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w",
)


@dataclass(frozen=True, slots=True)
class Kline:
    """One aggregated candle as the kline endpoints serve it."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    close_time: int

    def to_binance(self) -> list[object]:
        quote_volume = self.volume * (self.open + self.close) / 2.0
        return [
            self.open_time,
            _fmt(self.open),
            _fmt(self.high),
            _fmt(self.low),
            _fmt(self.close),
            _fmt(self.volume),
            self.close_time,
            _fmt(quote_volume),
            0,
            "0",
            "0",
            "0",
        ]


def _fmt(value: float) -> str:
    return f"{value:.8f}".rstrip("0").rstrip(".") if value == value else "0"


class CandleSeries:
    """Candles of one symbol at the base timeframe, with a replay cursor.

    Bars ``0..cursor`` are history; the bar at ``cursor`` is the latest complete bar and its close
    is the current price. Larger intervals are aggregated from the base bars on request.
    """

    def __init__(self, symbol: str, path: Path, timeframe: Timeframe) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"no candle file for {symbol}: {path}")
        frame = pl.read_parquet(path, columns=["timestamp", "open", "high", "low", "close", "volume"])
        frame = frame.sort("timestamp")
        self.symbol = symbol
        self.path = path
        self.timeframe = timeframe
        self.timestamps = frame["timestamp"].cast(pl.Int64).to_numpy()
        self.opens = frame["open"].cast(pl.Float64).to_numpy()
        self.highs = frame["high"].cast(pl.Float64).to_numpy()
        self.lows = frame["low"].cast(pl.Float64).to_numpy()
        self.closes = frame["close"].cast(pl.Float64).to_numpy()
        self.volumes = frame["volume"].cast(pl.Float64).to_numpy()
        if len(self.timestamps) == 0:
            raise ValueError(f"candle file {path} is empty")
        self.cursor = 0

    def __len__(self) -> int:
        return len(self.timestamps)

    def index_at_or_before(self, timestamp_ms: int) -> int:
        """Index of the last bar whose open time is <= ``timestamp_ms`` (0 if none)."""
        position = int(np.searchsorted(self.timestamps, timestamp_ms, side="right")) - 1
        return max(position, 0)

    @property
    def exhausted(self) -> bool:
        return self.cursor >= len(self.timestamps) - 1

    @property
    def current_open_time(self) -> int:
        return int(self.timestamps[self.cursor])

    @property
    def current_time(self) -> int:
        """Market time: the close time of the latest complete bar."""
        return int(self.timestamps[self.cursor]) + self.timeframe.milliseconds

    def bar(self, index: int) -> Kline:
        open_time = int(self.timestamps[index])
        return Kline(
            open_time=open_time,
            open=float(self.opens[index]),
            high=float(self.highs[index]),
            low=float(self.lows[index]),
            close=float(self.closes[index]),
            volume=float(self.volumes[index]),
            close_time=open_time + self.timeframe.milliseconds - 1,
        )

    def klines(
        self,
        interval: str,
        start_time: int | None,
        end_time: int | None,
        limit: int,
    ) -> list[Kline]:
        """Klines as Binance serves them: startTime forward, endTime backward, else the latest."""
        target = _interval(interval, self.timeframe)
        visible_end = self.cursor + 1
        stamps = self.timestamps[:visible_end]
        if start_time is not None:
            first = int(np.searchsorted(stamps, target.floor(start_time), side="left"))
            upper = end_time if end_time is not None else None
            return self._aggregate(target, first, visible_end, limit, upper, from_start=True)
        if end_time is not None:
            last = int(np.searchsorted(stamps, end_time, side="right"))
            return self._aggregate(target, 0, last, limit, end_time, from_start=False)
        return self._aggregate(target, 0, visible_end, limit, None, from_start=False)

    def _aggregate(
        self,
        target: Timeframe,
        first: int,
        last: int,
        limit: int,
        end_time: int | None,
        *,
        from_start: bool,
    ) -> list[Kline]:
        ratio = max(target.milliseconds // self.timeframe.milliseconds, 1)
        span = (limit + 1) * ratio
        if from_start:
            last = min(last, first + span)
        else:
            first = max(first, last - span)
        if first >= last:
            return []
        stamps = self.timestamps[first:last]
        if ratio == 1:
            buckets = stamps
        else:
            buckets = np.array([target.floor(int(stamp)) for stamp in stamps], dtype=np.int64)
        boundaries = np.flatnonzero(np.diff(buckets)) + 1
        starts = np.concatenate(([0], boundaries))
        ends = np.concatenate((boundaries, [len(buckets)]))
        result: list[Kline] = []
        for start, end in zip(starts, ends, strict=True):
            open_time = int(buckets[start])
            if end_time is not None and open_time > end_time:
                break
            lo, hi = first + int(start), first + int(end)
            result.append(
                Kline(
                    open_time=open_time,
                    open=float(self.opens[lo]),
                    high=float(self.highs[lo:hi].max()),
                    low=float(self.lows[lo:hi].min()),
                    close=float(self.closes[hi - 1]),
                    volume=float(self.volumes[lo:hi].sum()),
                    close_time=open_time + target.milliseconds - 1,
                )
            )
        if from_start:
            return result[:limit]
        return result[-limit:]

    def window(self, milliseconds: int) -> tuple[float, float, float, float, float, int]:
        """open, high, low, close, volume and first open time over the trailing window."""
        end = self.cursor + 1
        start_time = self.current_time - milliseconds
        first = int(np.searchsorted(self.timestamps[:end], start_time, side="left"))
        first = min(first, self.cursor)
        return (
            float(self.opens[first]),
            float(self.highs[first:end].max()),
            float(self.lows[first:end].min()),
            float(self.closes[end - 1]),
            float(self.volumes[first:end].sum()),
            int(self.timestamps[first]),
        )


def _interval(interval: str, base: Timeframe) -> Timeframe:
    if interval not in BINANCE_INTERVALS:
        raise invalid_interval()
    target = Timeframe.parse(interval)
    if target.milliseconds < base.milliseconds or target.milliseconds % base.milliseconds:
        raise BinanceError(
            -1120,
            f"Invalid interval: the sandbox replays {base} candles and can serve only multiples of it.",
        )
    return target


def find_candle_file(data_dir: Path, symbol: str, timeframe: Timeframe) -> Path:
    """Where the candles of ``symbol`` live (``binance/spot/<SYMBOL>-<tf>.parquet``)."""
    return data_dir / "binance" / "spot" / f"{symbol}-{timeframe}.parquet"


@dataclass(slots=True)
class DepthEvent:
    """One diff-depth event: update-id range, previous final id (futures ``pu``) and levels."""

    event_time: int
    first_update_id: int
    last_update_id: int
    previous_update_id: int
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]


@dataclass(slots=True)
class LocalBook:
    """An order book kept up to date by applying diff events in update-id order."""

    last_update_id: int
    bids: dict[float, float] = field(default_factory=dict)
    asks: dict[float, float] = field(default_factory=dict)

    def apply(self, event: DepthEvent) -> None:
        for side, levels in ((self.bids, event.bids), (self.asks, event.asks)):
            for price, quantity in levels:
                if quantity == 0.0:
                    side.pop(price, None)
                else:
                    side[price] = quantity
        self.last_update_id = event.last_update_id

    def top(self, limit: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids = sorted(self.bids.items(), key=lambda level: -level[0])[:limit]
        asks = sorted(self.asks.items(), key=lambda level: level[0])[:limit]
        return bids, asks


@dataclass(slots=True)
class TickEvent:
    """A recorded event at receiver time ``local_ns``: kind is trade, bookTicker or depth."""

    local_ns: int
    kind: str
    payload: object


class TickRecording:
    """The tick recordings of one symbol on one market, replayed in receiver-clock order.

    The order book starts from the recorded REST snapshot; diffs that end at or before the
    snapshot's ``lastUpdateId`` are dropped, as Binance documents for a local book, so the book
    served by the REST depth endpoint and the diffs sent on the stream always agree.
    """

    def __init__(self, symbol: str, directory: Path) -> None:
        self.symbol = symbol
        snapshot = pl.read_parquet(directory / f"{symbol}-depth-snapshot.parquet")
        last_id = int(snapshot["last_update_id"][0])
        self.book = LocalBook(last_update_id=last_id)
        for side, price, quantity in snapshot.select("side", "price", "qty").iter_rows():
            (self.book.bids if side == "bid" else self.book.asks)[float(price)] = float(quantity)
        events: list[TickEvent] = []
        trades = pl.read_parquet(directory / f"{symbol}-trades.parquet").sort("local_ts_ns")
        for row in trades.iter_rows(named=True):
            events.append(TickEvent(int(row["local_ts_ns"]), "trade", row))
        tickers = pl.read_parquet(directory / f"{symbol}-bookticker.parquet").sort("local_ts_ns")
        for row in tickers.iter_rows(named=True):
            events.append(TickEvent(int(row["local_ts_ns"]), "bookTicker", row))
        events.extend(self._depth_events(directory, last_id))
        events.sort(key=lambda event: event.local_ns)
        self.events = events
        self.stamps = [event.local_ns for event in events]
        self.cursor = 0
        self.last_trade: dict[str, object] | None = None
        self.last_book_ticker: dict[str, object] | None = None

    def _depth_events(self, directory: Path, snapshot_id: int) -> list[TickEvent]:
        diffs = pl.read_parquet(directory / f"{self.symbol}-depth-diff.parquet")
        diffs = diffs.filter(pl.col("last_update_id") > snapshot_id).sort(
            "first_update_id", "local_ts_ns", maintain_order=True
        )
        grouped = diffs.group_by(
            "local_ts_ns", "event_time_ms", "first_update_id", "last_update_id", maintain_order=True
        ).agg(pl.col("side"), pl.col("price"), pl.col("qty"))
        result: list[TickEvent] = []
        previous = snapshot_id
        for row in grouped.iter_rows(named=True):
            bids = [(p, q) for s, p, q in zip(row["side"], row["price"], row["qty"], strict=True) if s == "bid"]
            asks = [(p, q) for s, p, q in zip(row["side"], row["price"], row["qty"], strict=True) if s != "bid"]
            event = DepthEvent(
                event_time=int(row["event_time_ms"]),
                first_update_id=int(row["first_update_id"]),
                last_update_id=int(row["last_update_id"]),
                previous_update_id=previous,
                bids=bids,
                asks=asks,
            )
            previous = event.last_update_id
            result.append(TickEvent(int(row["local_ts_ns"]), "depth", event))
        return result

    @property
    def exhausted(self) -> bool:
        return self.cursor >= len(self.events)

    @property
    def current_ns(self) -> int:
        if not self.events:
            return 0
        return self.stamps[min(self.cursor, len(self.stamps) - 1)]

    def take_until(self, local_ns: int) -> list[TickEvent]:
        """Advance past every event at or before ``local_ns``, applying depth to the book."""
        end = bisect.bisect_right(self.stamps, local_ns, lo=self.cursor)
        return self.take(end - self.cursor)

    def take(self, count: int) -> list[TickEvent]:
        end = min(self.cursor + max(count, 0), len(self.events))
        batch = self.events[self.cursor:end]
        self.cursor = end
        for event in batch:
            if event.kind == "depth":
                assert isinstance(event.payload, DepthEvent)
                self.book.apply(event.payload)
            elif event.kind == "trade":
                self.last_trade = event.payload  # type: ignore[assignment]
            else:
                self.last_book_ticker = event.payload  # type: ignore[assignment]
        return batch


def find_tick_directory(data_dir: Path, market: str, symbol: str) -> Path | None:
    directory = data_dir / "binance" / market / "ticks"
    needed = ("trades", "bookticker", "depth-snapshot", "depth-diff")
    if all((directory / f"{symbol}-{name}.parquet").is_file() for name in needed):
        return directory
    return None
