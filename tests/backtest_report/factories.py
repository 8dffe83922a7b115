"""Hand-made ``BacktestResult`` objects for the metric and report tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from metaexpert.backtest.result import BacktestResult, ClosedTrade, PriceSeries
from metaexpert.core.enums import PositionSide
from metaexpert.core.timeframe import Timeframe

# 2024-01-01 00:00:00 UTC, a Monday.
T0 = 1_704_067_200_000
HOUR = 3_600_000
DAY = 86_400_000


def make_result(
    equity: Sequence[float],
    *,
    timeframe: str = "1d",
    initial_capital: float = 100.0,
    start_ms: int = T0,
    timestamps: Sequence[int] | None = None,
    exposure: Sequence[bool] | None = None,
    trades: Sequence[ClosedTrade] = (),
    prices: dict[str, PriceSeries] | None = None,
    symbols: Sequence[str] = ("BTCUSDT",),
    **extra: object,
) -> BacktestResult:
    """A result whose equity point ``i`` belongs to the bar opening at ``start + i * bar``."""
    values = np.asarray(equity, dtype=np.float64)
    bar = Timeframe.parse(timeframe).milliseconds
    stamps = (
        np.asarray(timestamps, dtype=np.int64)
        if timestamps is not None
        else start_ms + np.arange(values.size, dtype=np.int64) * bar
    )
    flags = np.asarray(exposure if exposure is not None else [False] * values.size, dtype=bool)
    return BacktestResult(
        expert_name="hand_made",
        symbols=list(symbols),
        timeframe=timeframe,
        start_ms=int(stamps[0]) if stamps.size else start_ms,
        end_ms=int(stamps[-1]) if stamps.size else start_ms,
        initial_capital=initial_capital,
        currency="USDT",
        final_equity=float(values[-1]) if values.size else initial_capital,
        equity_timestamps=stamps,
        equity=values,
        exposure=flags,
        closed_trades=list(trades),
        prices=prices or {},
        **extra,  # type: ignore[arg-type]
    )


def make_trade(
    pnl: float,
    *,
    symbol: str = "BTCUSDT",
    side: PositionSide = PositionSide.LONG,
    entry_time: int = T0,
    exit_time: int = T0 + HOUR,
    entry_price: float = 100.0,
    exit_price: float = 101.0,
    return_pct: float | None = None,
    bars_held: int = 1,
    fees: float = 0.1,
    exit_reason: str = "signal",
) -> ClosedTrade:
    return ClosedTrade(
        symbol=symbol,
        side=side,
        quantity=1.0,
        entry_time=entry_time,
        exit_time=exit_time,
        entry_price=entry_price,
        exit_price=exit_price,
        pnl=pnl,
        fees=fees,
        return_pct=pnl if return_pct is None else return_pct,
        bars_held=bars_held,
        exit_reason=exit_reason,
    )


def make_prices(
    opens: Sequence[float], closes: Sequence[float], *, timeframe: str = "1d", start_ms: int = T0
) -> PriceSeries:
    opening = np.asarray(opens, dtype=np.float64)
    closing = np.asarray(closes, dtype=np.float64)
    bar = Timeframe.parse(timeframe).milliseconds
    return PriceSeries(
        timestamps=start_ms + np.arange(opening.size, dtype=np.int64) * bar,
        open=opening,
        high=np.maximum(opening, closing) + 1.0,
        low=np.minimum(opening, closing) - 1.0,
        close=closing,
    )
