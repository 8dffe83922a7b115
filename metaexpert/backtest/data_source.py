"""Where a backtest's candles come from, and the one place they are validated.

Resolution order for ``<exchange>/<market_type>/<SYMBOL>-<timeframe>`` in a store:
1. the candle store at ``data_dir`` (the shared recordings are laid out this way; Binance
   futures are also found under ``binance/usdm``, the venue's name the recordings use);
2. a finer timeframe of the same series in that store, resampled (complete bars only);
3. Binance spot candles of the same symbol as a price proxy (logged, and named in the
   result), because recorded data often exists only for the most liquid venue;
4. when ``allow_download`` is set, the exchange itself through ccxt (public endpoints),
   stored into the writable cache store for next time.

A user's own candles need no store: ``candle_source_for(data)`` accepts a polars or pandas
frame, a dict ``symbol -> frame``, a long-format frame with a ``symbol`` column, a CSV or
Parquet file, or a store folder. Every source validates what it serves (``checked_candles``:
the pandera schema on the rows as given, never sorted or de-duplicated first), so a bad
candle stops the run before the engine exists.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.core.timeframe import Timeframe
from metaexpert.data import CandleStore, download_candles, normalize_symbol, resample

# The store's lazy wrapper: pandera is imported only when a frame really needs validating (a file
# the store stamped as validated is trusted), so a plain backtest does not pay its import.
from metaexpert.data.store import checked_candles

logger = logging.getLogger("metaexpert.backtest.data")

_FINER = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")
_INFERABLE = (*_FINER, "3d", "1w")
_SYMBOL_COLUMN = "symbol"
_TIME_ALIASES = ("timestamp", "open_time", "time", "date", "datetime")


@dataclass(slots=True)
class LoadedCandles:
    frame: pl.DataFrame
    source: str


class CandleSource:
    def __init__(
        self,
        data_dir: str | Path | None,
        *,
        cache_dir: str | Path | None = None,
        allow_download: bool = False,
    ) -> None:
        self.stores = [CandleStore(Path(data_dir), read_only=True)] if data_dir else []
        self.cache = CandleStore(Path(cache_dir)) if cache_dir else None
        if self.cache is not None:
            self.stores.append(self.cache)
        self.allow_download = allow_download

    def load(
        self,
        exchange: str,
        market_type: str,
        symbol: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
    ) -> LoadedCandles:
        candidates = [(exchange, market_type)]
        if market_type == "futures":
            if exchange != "binance":
                candidates.append(("binance", "futures"))
            candidates.append(
                ("binance", "usdm")
            )  # Binance's own name for its USD-M perpetuals (shared data)
        if (exchange, market_type) != ("binance", "spot"):
            candidates.append(("binance", "spot"))
        target = Timeframe.parse(timeframe)
        for venue, market in candidates:
            for store in self.stores:
                found = self._from_store(store, venue, market, symbol, target, start_ms, end_ms)
                if found is not None:
                    if venue != exchange or market not in (market_type, "usdm"):
                        logger.warning(
                            "no %s %s candles for %s; using %s %s candles as a price proxy",
                            exchange,
                            market_type,
                            symbol,
                            venue,
                            market,
                        )
                    return found
        if self.allow_download:
            return self._download(exchange, market_type, symbol, target, start_ms, end_ms)
        where = ", ".join(str(store.root) for store in self.stores) or "no data folder"
        options = (
            " An options backtest needs the option's own recorded candles (its premiums, in the "
            "settle coin): they are never derived from the underlying's prices; pass them with "
            "data= (a frame or file) or store them under options/."
            if market_type == "options"
            else ""
        )
        raise DataError(
            f"no candles for {exchange} {market_type} {symbol} {timeframe} in {where}; pass --data DIR "
            "with <exchange>/<market_type>/<SYMBOL>-<timeframe>.parquet files, or allow downloading."
            + options
        )

    def _from_store(
        self,
        store: CandleStore,
        exchange: str,
        market_type: str,
        symbol: str,
        target: Timeframe,
        start_ms: int,
        end_ms: int,
    ) -> LoadedCandles | None:
        # CandleStore.read validates what it reads (or trusts the file's validation stamp).
        if store.exists(exchange, market_type, symbol, str(target)):
            frame = store.read(exchange, market_type, symbol, str(target), start_ms, end_ms)
            return LoadedCandles(frame, f"{store.root}/{exchange}/{market_type}/{symbol}-{target}")
        for finer in reversed(_FINER):
            source = Timeframe.parse(finer)
            if source.milliseconds >= target.milliseconds or not target.is_multiple_of(source):
                continue
            if store.exists(exchange, market_type, symbol, finer):
                frame = store.read(exchange, market_type, symbol, finer, start_ms, end_ms)
                return LoadedCandles(
                    resample(frame, source, target),
                    f"{store.root}/{exchange}/{market_type}/{symbol}-{finer} resampled to {target}",
                )
        return None

    def _download(
        self,
        exchange: str,
        market_type: str,
        symbol: str,
        target: Timeframe,
        start_ms: int,
        end_ms: int,
    ) -> LoadedCandles:
        import ccxt  # imported lazily: only a download needs it

        if exchange == "binance" and market_type != "spot":
            client = ccxt.binanceusdm({"enableRateLimit": True})
        else:
            client = getattr(ccxt, exchange)({"enableRateLimit": True})
        try:
            client.load_markets()
            market = client.markets_by_id.get(symbol)
            if not market:
                raise DataError(f"{exchange} has no market {symbol}")
            ccxt_symbol = market[0]["symbol"] if isinstance(market, list) else market["symbol"]
            logger.info(
                "downloading %s %s %s candles from %s", symbol, target, market_type, exchange
            )
            frame = download_candles(client, ccxt_symbol, str(target), start_ms, end_ms)
        except DataError:
            raise
        except Exception as error:
            searched = ", ".join(str(store.root) for store in self.stores) or "no data folder given"
            raise DataError(
                f"no local {exchange} {market_type} {symbol} {target} candles (searched: {searched}) and "
                f"the download failed: {error}. Point the run at recorded candles: METAEXPERT_DATA_DIR=DIR, "
                "--data DIR|FILE, or data_dir=/data= in expert.run (the repository's ../shared/data is "
                "found by itself when it sits beside the project)"
            ) from error
        frame = checked_candles(
            frame, target, label=f"{exchange}/{market_type} {symbol} {target} (downloaded)"
        )
        if self.cache is not None and frame.height:
            self.cache.write(exchange, market_type, symbol, str(target), frame)
        return LoadedCandles(frame, f"downloaded from {exchange}")


class FrameCandleSource(CandleSource):
    """Candles the user handed over in memory (or read from one file), validated once per symbol.

    ``frames`` maps exchange-native symbols (``BTCUSDT``) to frames; the key ``None`` is a
    frame without a ``symbol`` column, which serves one symbol (whichever is asked first).
    The frame's own timeframe is read from its timestamps; a coarser timeframe the expert
    needs is resampled from it, a finer one is an error.
    """

    def __init__(self, frames: Mapping[str | None, pl.DataFrame], *, label: str) -> None:
        super().__init__(None)
        self.frames = dict(frames)
        self.label = label
        self._checked: dict[tuple[str, str], tuple[pl.DataFrame, str]] = {}
        self._unnamed_symbol: str | None = None

    def load(
        self,
        exchange: str,
        market_type: str,
        symbol: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
    ) -> LoadedCandles:
        key = normalize_symbol(symbol)
        target = Timeframe.parse(timeframe)
        cached = self._checked.get((key, str(target)))
        if cached is None:
            cached = self._prepare(key, target)
            self._checked[(key, str(target))] = cached
        frame, source = cached
        stamps = frame.get_column("timestamp").to_numpy()
        first = int(np.searchsorted(stamps, start_ms, side="left"))
        last = int(np.searchsorted(stamps, end_ms, side="left"))
        return LoadedCandles(frame.slice(first, last - first), source)

    def _prepare(self, symbol: str, target: Timeframe) -> tuple[pl.DataFrame, str]:
        raw = self._frame_for(symbol)
        label = f"{self.label} ({symbol})"
        native = native_timeframe(raw, target) or target
        frame = checked_candles(raw, native, label=f"{label} {native}", allow_empty=False)
        if native == target:
            return frame, label
        if native.milliseconds > target.milliseconds or not target.is_multiple_of(native):
            raise ConfigurationError(
                f"{label}: the candles are {native} bars; the expert needs {target} bars, which cannot be "
                f"built from them (give {target} candles or a finer timeframe that divides it)"
            )
        return resample(frame, native, target), f"{label} {native} resampled to {target}"

    def _frame_for(self, symbol: str) -> pl.DataFrame:
        if symbol in self.frames:
            return self.frames[symbol]
        if None in self.frames and self._unnamed_symbol in (None, symbol):
            self._unnamed_symbol = symbol
            return self.frames[None]
        held = sorted(key for key in self.frames if key is not None)
        if None in self.frames:
            raise ConfigurationError(
                f"{self.label}: candles without a 'symbol' column serve one symbol ({self._unnamed_symbol}); "
                f"for {symbol} as well add a 'symbol' column or pass a dict {{symbol: frame}}"
            )
        raise DataError(
            f"{self.label}: no candles for {symbol}; it holds {', '.join(held) or 'no symbol'}"
        )


def candle_source_for(
    data: Any,
    *,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    allow_download: bool = False,
) -> CandleSource:
    """The candle source for whatever ``expert.run(data=...)`` or ``backtest --data`` was given.

    ``None`` is the default store (``data_dir``); a ``CandleSource`` is used as it is; a folder
    is a store; a ``.parquet`` / ``.csv`` file, a polars ``DataFrame`` / ``LazyFrame``, a pandas
    ``DataFrame`` or a dict ``symbol -> frame`` become a ``FrameCandleSource``.
    """
    if data is None:
        return CandleSource(data_dir, cache_dir=cache_dir, allow_download=allow_download)
    if isinstance(data, CandleSource):
        return data
    if isinstance(data, str | os.PathLike):
        path = Path(data).expanduser()
        if path.is_dir():
            return CandleSource(path)
        if not path.is_file():
            raise ConfigurationError(f"data: no such file or folder: {path}")
        return FrameCandleSource(split_symbols(read_candle_file(path), str(path)), label=str(path))
    if isinstance(data, Mapping):
        frames: dict[str | None, pl.DataFrame] = {}
        for symbol, frame in data.items():
            if not isinstance(symbol, str):
                raise ConfigurationError(
                    f"data: dict keys must be symbols like 'BTCUSDT', got {symbol!r}"
                )
            frames[normalize_symbol(symbol)] = _to_polars(frame, f"data[{symbol!r}]")
        return FrameCandleSource(frames, label="data")
    return FrameCandleSource(split_symbols(_to_polars(data, "data"), "data"), label="data frame")


def read_candle_file(path: Path) -> pl.DataFrame:
    """A CSV or Parquet file as a polars frame, as it is (validated later, by the source)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pl.read_parquet(path)
        elif suffix == ".csv":
            frame = pl.read_csv(path, try_parse_dates=True)
        else:
            raise ConfigurationError(
                f"data file {path}: expected a .parquet or .csv file, or a store folder"
            )
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DataError(f"cannot read candle file {path}: {error}") from None
    return _named_columns(frame, str(path))


def _to_polars(frame: Any, label: str) -> pl.DataFrame:
    if isinstance(frame, pl.LazyFrame):
        try:
            frame = frame.collect()
        except pl.exceptions.PolarsError as error:
            raise DataError(f"{label}: the LazyFrame cannot be collected: {error}") from None
    elif type(frame).__module__.split(".")[0] == "pandas" and type(frame).__name__ == "DataFrame":
        frame = _from_pandas(frame, label)
    if not isinstance(frame, pl.DataFrame):
        raise ConfigurationError(
            f"{label}: expected a polars or pandas DataFrame, a dict of them, a CSV/Parquet file or a store "
            f"folder; got {type(frame).__name__}"
        )
    return _named_columns(frame, label)


def _from_pandas(frame: Any, label: str) -> pl.DataFrame:
    import pandas as pd  # only when the user passed a pandas frame

    if not any(str(column).lower() in _TIME_ALIASES for column in frame.columns) and isinstance(
        frame.index, pd.DatetimeIndex
    ):
        frame = frame.rename_axis(
            "timestamp"
        ).reset_index()  # a time index is the usual pandas layout
    try:
        return pl.from_pandas(frame)
    except Exception as error:  # noqa: BLE001 - pyarrow/pandas raise many types; the user needs the cause
        raise DataError(f"{label}: the pandas frame cannot be converted: {error}") from None


def _named_columns(frame: pl.DataFrame, label: str) -> pl.DataFrame:
    """Lower-case column names and the usual time column names as ``timestamp`` (values untouched)."""
    lowered = [str(name).lower() for name in frame.columns]
    if len(set(lowered)) != len(lowered):
        raise DataError(f"{label}: column names differ only by case: {frame.columns}")
    frame = frame.rename(dict(zip(frame.columns, lowered, strict=True)))
    if "timestamp" not in frame.columns:
        for alias in _TIME_ALIASES[1:]:
            if alias in frame.columns:
                return frame.rename({alias: "timestamp"})
    return frame


def split_symbols(frame: pl.DataFrame, label: str) -> dict[str | None, pl.DataFrame]:
    """A long-format frame (``symbol`` column, e.g. ``BTC/USDT``) as one frame per store symbol."""
    if _SYMBOL_COLUMN not in frame.columns:
        return {None: frame}
    if frame.get_column(_SYMBOL_COLUMN).null_count():
        raise DataError(
            f"{label}: {frame.get_column(_SYMBOL_COLUMN).null_count()} row(s) have no symbol"
        )
    frames: dict[str | None, pl.DataFrame] = {}
    for (name,), part in frame.partition_by(
        _SYMBOL_COLUMN, as_dict=True, maintain_order=True
    ).items():
        symbol = normalize_symbol(str(name))
        if symbol in frames:
            raise DataError(f"{label}: symbols {name!r} and another spelling both mean {symbol}")
        frames[symbol] = part.drop(_SYMBOL_COLUMN)
    return frames


def native_timeframe(frame: pl.DataFrame, fallback: Timeframe | None) -> Timeframe | None:
    """The timeframe of ``frame``: its smallest step between distinct timestamps, if that is a known one."""
    if (
        "timestamp" not in frame.columns
        or not frame.schema["timestamp"].is_integer()
        or frame.height < 2
    ):
        return fallback
    steps = frame.get_column("timestamp").unique().sort().diff().drop_nulls()
    step = steps.filter(steps > 0).min()
    if step is None:
        return fallback
    for name in _INFERABLE:
        if Timeframe.parse(name).milliseconds == step:
            return Timeframe.parse(name)
    return fallback
