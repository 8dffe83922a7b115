"""A universe of symbols from one long-format candle file, for portfolio backtests.

Recordings of many pairs often come as one table with a ``symbol`` column (``BTC/USDT``)
beside ``timestamp`` and OHLCV, like ``binance/spot/multi-126pairs-1h-...parquet`` in the
shared data. ``UniverseSource`` reads such a file once and serves each symbol's candles the
way ``CandleSource`` serves files of one symbol, so one expert can run over all of them:

    universe = UniverseSource("../shared/data/binance/spot/multi-126pairs-1h-20201201-20210717.parquet")
    result = expert.run("backtest", symbol=universe.symbols, candle_source=universe, ...)

``symbol="*"`` in ``on_init`` or ``run`` means "every symbol of the candle source".
Symbols are exchange-native (``BTCUSDT``): ``BTC/USDT`` in the file is found as ``BTCUSDT``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from metaexpert.backtest.data_source import LoadedCandles
from metaexpert.core.errors import ConfigurationError, DataError
from metaexpert.core.timeframe import Timeframe
from metaexpert.engine.config import ALL_SYMBOLS, StrategyConfig

#: The symbol that stands for the whole universe of a candle source.
_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")


class UniverseSource:
    """Per-symbol candles out of one long-format Parquet file (``symbol``, ``timestamp``, OHLCV)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"no universe candle file at {self.path}")
        try:
            frame = pl.read_parquet(self.path)
        except (OSError, pl.exceptions.PolarsError) as error:
            raise DataError(f"cannot read universe candle file {self.path}: {error}") from None
        missing = {"symbol", *_COLUMNS} - set(frame.columns)
        if missing:
            raise DataError(
                f"universe candle file {self.path} lacks the column(s) {', '.join(sorted(missing))} "
                "(expected symbol, timestamp, open, high, low, close, volume)"
            )
        frame = frame.select(
            pl.col("symbol").cast(pl.String).str.replace_all(r"[/\-_:]", "").str.to_uppercase(),
            pl.col("timestamp").cast(pl.Int64),
            *(pl.col(name).cast(pl.Float64) for name in _COLUMNS[1:]),
        ).sort("symbol", "timestamp")
        self._frames: dict[str, pl.DataFrame] = {
            str(key[0]): part.drop("symbol")
            for key, part in frame.partition_by("symbol", as_dict=True).items()
        }
        self.symbols: list[str] = sorted(self._frames)
        self.timeframe = self._infer_timeframe()

    def __repr__(self) -> str:
        return f"UniverseSource({str(self.path)!r}: {len(self.symbols)} symbols, {self.timeframe})"

    def _infer_timeframe(self) -> Timeframe:
        steps = [
            np.diff(part.get_column("timestamp").to_numpy())
            for part in self._frames.values()
            if part.height > 1
        ]
        if not steps:
            raise DataError(f"universe candle file {self.path} has no symbol with two candles")
        values, counts = np.unique(np.concatenate(steps), return_counts=True)
        step = int(values[np.argmax(counts)])
        for name in ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d"):
            timeframe = Timeframe.parse(name)
            if timeframe.milliseconds == step:
                return timeframe
        raise DataError(
            f"universe candle file {self.path}: candles are {step} ms apart, not a known timeframe"
        )

    def load(
        self,
        exchange: str,
        market_type: str,
        symbol: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
    ) -> LoadedCandles:
        """``symbol``'s candles with ``start_ms <= timestamp < end_ms`` in ``timeframe``."""
        frame = self._frames.get(symbol.upper().replace("/", "").replace("-", ""))
        if frame is None:
            raise DataError(
                f"{symbol} is not in the universe file {self.path} ({len(self.symbols)} symbols, "
                f"for example {', '.join(self.symbols[:5])})"
            )
        target = Timeframe.parse(timeframe)
        window = frame.filter((pl.col("timestamp") >= start_ms) & (pl.col("timestamp") < end_ms))
        label = f"{self.path}[{symbol}]"
        if target == self.timeframe:
            return LoadedCandles(window, label)
        if target.milliseconds > self.timeframe.milliseconds and target.is_multiple_of(
            self.timeframe
        ):
            from metaexpert.data import resample

            return LoadedCandles(
                resample(window, self.timeframe, target), f"{label} resampled to {target}"
            )
        raise DataError(
            f"universe file {self.path} holds {self.timeframe} candles; {target} cannot be built from them"
        )


def expand_universe(strategy: StrategyConfig, candle_source: Any | None) -> StrategyConfig:
    """``strategy`` with ``symbol="*"`` replaced by every symbol of ``candle_source``."""
    if ALL_SYMBOLS not in strategy.symbols:
        return strategy
    universe = list(getattr(candle_source, "symbols", None) or [])
    if not universe:
        raise ConfigurationError(
            "symbol='*' means every symbol of the candle source, but this one does not list its symbols: "
            "pass candle_source=UniverseSource(<long-format file>) or name the symbols"
        )
    explicit = [symbol for symbol in strategy.symbols if symbol != ALL_SYMBOLS]
    symbols = explicit + [symbol for symbol in universe if symbol not in explicit]
    return strategy.model_copy(update={"symbols": symbols})
