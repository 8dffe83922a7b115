"""A stand-in for the MetaExpert facade, to test the CLI plumbing on its own.

It records how ``run`` was called, drives the progress callback, and returns a real
``BacktestResult`` built from a small synthetic equity curve, so the real report writers
run on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metaexpert.backtest.result import BacktestResult, PriceSeries

HOUR_MS = 3_600_000
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def synthetic_result(name: str = "fake", bars: int = 48) -> BacktestResult:
    timestamps = START_MS + HOUR_MS * np.arange(bars, dtype=np.int64)
    close = 42_000.0 + 100.0 * np.sin(np.arange(bars) / 5.0)
    equity = 10_000.0 + np.cumsum(np.where(np.arange(bars) % 3 == 0, -5.0, 7.0))
    return BacktestResult(
        expert_name=name,
        symbols=["BTCUSDT"],
        timeframe="1h",
        start_ms=int(timestamps[0]),
        end_ms=int(timestamps[-1]) + HOUR_MS,
        initial_capital=10_000.0,
        currency="USDT",
        final_equity=float(equity[-1]),
        equity_timestamps=timestamps,
        equity=equity,
        exposure=np.arange(bars) % 2 == 0,
        prices={"BTCUSDT": PriceSeries(timestamps, close, close + 50.0, close - 50.0, close)},
        bars_processed=bars,
    )


class FakeExpert:
    """Duck-types ``MetaExpert.run`` for backtests; ``fail_with`` makes ``run`` raise."""

    def __init__(
        self,
        *,
        fail_with: BaseException | None = None,
        display_timezone: str = "UTC",
        accept_overrides: bool = True,
    ) -> None:
        self.fail_with = fail_with
        self.display_timezone = display_timezone
        self.calls: list[dict[str, Any]] = []
        self.progress_seen: list[tuple[int, int]] = []
        if not accept_overrides:
            self.run = self._run_without_overrides  # type: ignore[method-assign]

    def run(
        self,
        trade_mode: str = "backtest",
        backtest_start: str | None = None,
        backtest_end: str | None = None,
        initial_capital: float = 10_000,
        data_dir: str | None = None,
        progress: Any = None,
        output_dir: str | None = None,
        symbol: str | None = None,
        timeframe: str | None = None,
        parameters: dict[str, Any] | None = None,
        report: bool = True,
    ) -> BacktestResult:
        self.calls.append(
            {
                "trade_mode": trade_mode,
                "backtest_start": backtest_start,
                "backtest_end": backtest_end,
                "initial_capital": initial_capital,
                "data_dir": data_dir,
                "output_dir": output_dir,
                "symbol": symbol,
                "timeframe": timeframe,
                "parameters": parameters,
                "progress_is_callable": callable(progress),
                "report": report,
            }
        )
        if self.fail_with is not None:
            raise self.fail_with
        total = 48
        if progress is not None:
            for done in (0, 12, 24, 48):
                progress(done, total)
                self.progress_seen.append((done, total))
        result = synthetic_result(bars=total)
        result.parameters = dict(parameters or {})
        return result

    def _run_without_overrides(
        self,
        trade_mode: str,
        backtest_start: str,
        backtest_end: str,
        initial_capital: float,
        data_dir: str | None = None,
        progress: Any = None,
    ) -> BacktestResult:
        return self.__class__.run(
            self, trade_mode, backtest_start, backtest_end, initial_capital, data_dir, progress
        )
