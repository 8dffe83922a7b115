"""Recorded market data the sandbox replays: candles (the price clock) and tick recordings.

Why two sources: candles drive the matching engine's current price and the kline API, which must
match the Parquet files bar for bar; tick recordings (trades, best bid/ask, depth snapshot plus
diffs) drive the trade, bookTicker and depth streams with Binance's own update ids, so a client
can build a local order book exactly as it would against the real exchange.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from metaexpert.core.timeframe import Timeframe
from metaexpert.sandbox.core.rejects import Reject, RejectReason


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


@lru_cache(maxsize=32)
def _load_candles(path_name: str) -> tuple[np.ndarray, ...]:
    """Read-only candle columns, loaded once per process and shared by every replay."""
    frame = pl.read_parquet(
        path_name, columns=["timestamp", "open", "high", "low", "close", "volume"]
    )
    frame = frame.sort("timestamp")
    columns = [frame["timestamp"].cast(pl.Int64).to_numpy()]
    columns += [
        frame[name].cast(pl.Float64).to_numpy()
        for name in ("open", "high", "low", "close", "volume")
    ]
    return tuple(_read_only(column) for column in columns)


class CandleSeries:
    """Candles of one symbol at the base timeframe, with a replay cursor.

    Bars ``0..cursor`` are history; the bar at ``cursor`` is the latest complete bar and its close
    is the current price. Larger intervals are aggregated from the base bars on request.
    """

    def __init__(self, symbol: str, path: Path, timeframe: Timeframe) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"no candle file for {symbol}: {path}")
        self.symbol = symbol
        self.path = path
        self.timeframe = timeframe
        columns = _load_candles(str(path))
        self.timestamps, self.opens, self.highs, self.lows, self.closes, self.volumes = columns
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
        target: Timeframe,
        start_time: int | None,
        end_time: int | None,
        limit: int,
    ) -> list[Kline]:
        """Klines of ``target`` (a multiple of the replayed timeframe): from ``start_time``
        forward, back from ``end_time``, else the latest (how the venues serve them)."""
        if (
            target.milliseconds < self.timeframe.milliseconds
            or target.milliseconds % self.timeframe.milliseconds
        ):
            raise Reject(
                RejectReason.INVALID_INTERVAL,
                detail=f"the sandbox replays {self.timeframe} candles "
                "and can serve only multiples of it",
            )
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
    """A recorded event at receiver time ``local_ns``: kind is trade, bookTicker or depth.

    ``index`` points into the recording (trade row, book-ticker row or depth group); payloads are
    built only for events someone is subscribed to, which keeps fast replays cheap.
    """

    local_ns: int
    kind: str
    index: int


_TRADE, _BOOK_TICKER, _DEPTH = 0, 1, 2
_KIND_NAMES = ("trade", "bookTicker", "depth")


@dataclass(frozen=True)
class _RecordingArrays:
    """Read-only columns of one recording, shared by every replay of it (loaded once per process)."""

    snapshot_update_id: int
    snapshot_bids: tuple[tuple[float, float], ...]
    snapshot_asks: tuple[tuple[float, float], ...]
    trades: dict[str, np.ndarray]
    tickers: dict[str, np.ndarray]
    diffs: dict[str, np.ndarray]
    diff_is_bid: np.ndarray
    group_starts: np.ndarray
    group_ends: np.ndarray
    stamps: np.ndarray
    kinds: np.ndarray
    indices: np.ndarray


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@lru_cache(maxsize=16)
def _load_recording(directory_name: str, symbol: str) -> _RecordingArrays:
    directory = Path(directory_name)
    snapshot = pl.read_parquet(directory / f"{symbol}-depth-snapshot.parquet")
    last_id = int(snapshot["last_update_id"][0])
    levels = snapshot.select("side", "price", "qty").rows()
    trades_frame = pl.read_parquet(directory / f"{symbol}-trades.parquet").sort("local_ts_ns")
    trades = {name: _read_only(trades_frame[name].to_numpy()) for name in trades_frame.columns}
    tickers_frame = pl.read_parquet(directory / f"{symbol}-bookticker.parquet").sort("local_ts_ns")
    tickers = {name: _read_only(tickers_frame[name].to_numpy()) for name in tickers_frame.columns}
    diffs_frame = pl.read_parquet(directory / f"{symbol}-depth-diff.parquet")
    diffs_frame = diffs_frame.filter(pl.col("last_update_id") > last_id).sort(
        "first_update_id", "local_ts_ns", maintain_order=True
    )
    diffs = {
        name: _read_only(diffs_frame[name].to_numpy())
        for name in diffs_frame.columns
        if name != "side"
    }
    first_ids = diffs["first_update_id"]
    if len(first_ids):
        change = np.flatnonzero(np.diff(first_ids) != 0) + 1
        group_starts = np.concatenate(([0], change)).astype(np.int64)
    else:
        group_starts = np.zeros(0, dtype=np.int64)
    group_ends = np.concatenate((group_starts[1:], [len(first_ids)])).astype(np.int64)
    group_stamps = diffs["local_ts_ns"][group_starts] if len(first_ids) else np.zeros(0, np.int64)
    stamps = np.concatenate((trades["local_ts_ns"], tickers["local_ts_ns"], group_stamps))
    kinds = np.concatenate(
        (
            np.full(len(trades["local_ts_ns"]), _TRADE, dtype=np.int8),
            np.full(len(tickers["local_ts_ns"]), _BOOK_TICKER, dtype=np.int8),
            np.full(len(group_stamps), _DEPTH, dtype=np.int8),
        )
    )
    indices = np.concatenate(
        (
            np.arange(len(trades["local_ts_ns"])),
            np.arange(len(tickers["local_ts_ns"])),
            np.arange(len(group_stamps)),
        )
    )
    order = np.argsort(stamps, kind="stable")
    return _RecordingArrays(
        snapshot_update_id=last_id,
        snapshot_bids=tuple((float(p), float(q)) for side, p, q in levels if side == "bid"),
        snapshot_asks=tuple((float(p), float(q)) for side, p, q in levels if side != "bid"),
        trades=trades,
        tickers=tickers,
        diffs=diffs,
        diff_is_bid=_read_only((diffs_frame["side"] == "bid").to_numpy()),
        group_starts=_read_only(group_starts),
        group_ends=_read_only(group_ends),
        stamps=_read_only(stamps[order].astype(np.int64)),
        kinds=_read_only(kinds[order]),
        indices=_read_only(indices[order]),
    )


class TickRecording:
    """The tick recordings of one symbol on one market, replayed in receiver-clock order.

    The order book starts from the recorded REST snapshot; diffs that end at or before the
    snapshot's ``lastUpdateId`` are dropped, as Binance documents for a local book, so the book
    served by the REST depth endpoint and the diffs sent on the stream always agree. Columns are
    kept as numpy arrays and events are built only when replayed: loading stays well under a second.
    """

    def __init__(self, symbol: str, directory: Path) -> None:
        self.symbol = symbol
        arrays = _load_recording(str(directory), symbol)
        self.snapshot_update_id = arrays.snapshot_update_id
        self.book = LocalBook(
            last_update_id=arrays.snapshot_update_id,
            bids=dict(arrays.snapshot_bids),
            asks=dict(arrays.snapshot_asks),
        )
        self.trades = arrays.trades
        self.tickers = arrays.tickers
        self.diffs = arrays.diffs
        self.diff_is_bid = arrays.diff_is_bid
        self.group_starts = arrays.group_starts
        self.group_ends = arrays.group_ends
        self.stamps = arrays.stamps
        self.kinds = arrays.kinds
        self.indices = arrays.indices
        self.cursor = 0
        self.trades_replayed = 0

    def __len__(self) -> int:
        return len(self.stamps)

    @property
    def exhausted(self) -> bool:
        return self.cursor >= len(self.stamps)

    @property
    def first_ns(self) -> int:
        return int(self.stamps[0]) if len(self.stamps) else 0

    def trade_row(self, index: int) -> dict[str, object]:
        return {name: column[index].item() for name, column in self.trades.items()}

    def depth_event(self, group: int) -> DepthEvent:
        start, end = int(self.group_starts[group]), int(self.group_ends[group])
        prices = self.diffs["price"][start:end].tolist()
        quantities = self.diffs["qty"][start:end].tolist()
        is_bid = self.diff_is_bid[start:end].tolist()
        if group == 0:
            previous = self.snapshot_update_id
        else:
            previous = int(self.diffs["last_update_id"][self.group_starts[group - 1]])
        return DepthEvent(
            event_time=int(self.diffs["event_time_ms"][start]),
            first_update_id=int(self.diffs["first_update_id"][start]),
            last_update_id=int(self.diffs["last_update_id"][start]),
            previous_update_id=previous,
            bids=[(p, q) for p, q, b in zip(prices, quantities, is_bid, strict=True) if b],
            asks=[(p, q) for p, q, b in zip(prices, quantities, is_bid, strict=True) if not b],
        )

    def ticker_row(self, index: int) -> dict[str, object]:
        return {name: column[index].item() for name, column in self.tickers.items()}

    def take_until(self, local_ns: int) -> list[TickEvent]:
        """Advance past every event at or before ``local_ns``, applying depth to the book."""
        end = int(np.searchsorted(self.stamps, local_ns, side="right"))
        return self.take(end - self.cursor)

    def take(self, count: int) -> list[TickEvent]:
        end = min(self.cursor + max(count, 0), len(self.stamps))
        kinds = self.kinds[self.cursor : end].tolist()
        indices = self.indices[self.cursor : end].tolist()
        stamps = self.stamps[self.cursor : end].tolist()
        batch = [
            TickEvent(stamp, _KIND_NAMES[kind], index)
            for stamp, kind, index in zip(stamps, kinds, indices, strict=True)
        ]
        groups = [index for kind, index in zip(kinds, indices, strict=True) if kind == _DEPTH]
        if groups:
            self._apply_groups(groups[0], groups[-1] + 1)
        trades = [index for kind, index in zip(kinds, indices, strict=True) if kind == _TRADE]
        if trades:
            self.trades_replayed = trades[-1] + 1
        self.cursor = end
        return batch

    def _apply_groups(self, first: int, last: int) -> None:
        """Apply depth groups ``first..last-1`` (contiguous, in update-id order) to the book."""
        start, end = int(self.group_starts[first]), int(self.group_ends[last - 1])
        prices = self.diffs["price"][start:end].tolist()
        quantities = self.diffs["qty"][start:end].tolist()
        is_bid = self.diff_is_bid[start:end].tolist()
        bids, asks = self.book.bids, self.book.asks
        for price, quantity, bid in zip(prices, quantities, is_bid, strict=True):
            side = bids if bid else asks
            if quantity == 0.0:
                side.pop(price, None)
            else:
                side[price] = quantity
        self.book.last_update_id = int(self.diffs["last_update_id"][self.group_starts[last - 1]])


def find_tick_directory(data_dir: Path, market: str, symbol: str) -> Path | None:
    directory = data_dir / "binance" / market / "ticks"
    needed = ("trades", "bookticker", "depth-snapshot", "depth-diff")
    if all((directory / f"{symbol}-{name}.parquet").is_file() for name in needed):
        return directory
    return None
