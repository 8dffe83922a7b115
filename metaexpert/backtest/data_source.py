"""Where a backtest's candles come from.

Resolution order for ``<exchange>/<market_type>/<SYMBOL>-<timeframe>``:
1. the candle store at ``data_dir`` (the shared recordings are laid out this way; Binance
   futures are also found under ``binance/usdm``, the venue's name the recordings use);
2. a finer timeframe of the same series in that store, resampled (complete bars only);
3. Binance spot candles of the same symbol as a price proxy (logged, and named in the
   result), because recorded data often exists only for the most liquid venue;
4. when ``allow_download`` is set, the exchange itself through ccxt (public endpoints),
   stored into the writable cache store for next time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from metaexpert.core.errors import DataError
from metaexpert.core.timeframe import Timeframe
from metaexpert.data import CandleStore, download_candles, resample

logger = logging.getLogger("metaexpert.backtest.data")

_FINER = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d")


@dataclass(slots=True)
class LoadedCandles:
    frame: pl.DataFrame
    source: str


class CandleSource:
    def __init__(self, data_dir: str | Path | None, *, cache_dir: str | Path | None = None,
                 allow_download: bool = False) -> None:
        self.stores = [CandleStore(Path(data_dir), read_only=True)] if data_dir else []
        self.cache = CandleStore(Path(cache_dir)) if cache_dir else None
        if self.cache is not None:
            self.stores.append(self.cache)
        self.allow_download = allow_download

    def load(self, exchange: str, market_type: str, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> LoadedCandles:
        candidates = [(exchange, market_type)]
        if (exchange, market_type) == ("binance", "futures"):
            candidates.append(("binance", "usdm"))  # Binance's own name for its USD-M perpetuals (shared data)
        if (exchange, market_type) != ("binance", "spot"):
            candidates.append(("binance", "spot"))
        target = Timeframe.parse(timeframe)
        for venue, market in candidates:
            for store in self.stores:
                found = self._from_store(store, venue, market, symbol, target, start_ms, end_ms)
                if found is not None:
                    if (venue, market) != (exchange, market_type) and market != "usdm":
                        logger.warning("no %s %s candles for %s; using %s %s candles as a price proxy",
                                       exchange, market_type, symbol, venue, market)
                    return found
        if self.allow_download:
            return self._download(exchange, market_type, symbol, target, start_ms, end_ms)
        where = ", ".join(str(store.root) for store in self.stores) or "no data folder"
        raise DataError(
            f"no candles for {exchange} {market_type} {symbol} {timeframe} in {where}; pass --data DIR "
            "with <exchange>/<market_type>/<SYMBOL>-<timeframe>.parquet files, or allow downloading"
        )

    def _from_store(self, store: CandleStore, exchange: str, market_type: str, symbol: str, target: Timeframe,
                    start_ms: int, end_ms: int) -> LoadedCandles | None:
        if store.exists(exchange, market_type, symbol, str(target)):
            frame = store.read(exchange, market_type, symbol, str(target), start_ms, end_ms)
            return LoadedCandles(frame, f"{store.root}/{exchange}/{market_type}/{symbol}-{target}")
        for finer in reversed(_FINER):
            source = Timeframe.parse(finer)
            if source.milliseconds >= target.milliseconds or not target.is_multiple_of(source):
                continue
            if store.exists(exchange, market_type, symbol, finer):
                frame = store.read(exchange, market_type, symbol, finer, start_ms, end_ms)
                return LoadedCandles(resample(frame, source, target), f"{store.root}/{exchange}/{market_type}/{symbol}-{finer} resampled to {target}")
        return None

    def _download(self, exchange: str, market_type: str, symbol: str, target: Timeframe, start_ms: int, end_ms: int) -> LoadedCandles:
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
            logger.info("downloading %s %s %s candles from %s", symbol, target, market_type, exchange)
            frame = download_candles(client, ccxt_symbol, str(target), start_ms, end_ms)
        except DataError:
            raise
        except Exception as error:  # noqa: BLE001 - the message must name the cause, not a ccxt type
            raise DataError(f"could not download {symbol} {target} candles from {exchange}: {error}") from error
        if self.cache is not None and frame.height:
            self.cache.write(exchange, market_type, symbol, str(target), frame)
        return LoadedCandles(frame, f"downloaded from {exchange}")
