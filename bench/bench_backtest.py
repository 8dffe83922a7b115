"""MetaExpert's backtest against backtesting.py: speed, memory and identical trades.

Run: ``.venv/bin/python -m bench.bench_backtest`` (``--quick`` for smaller sizes,
``--profile`` for the top functions of the MetaExpert run, ``--in-process`` to skip the
per-side child processes). Nothing is written into the repository: the generated candles
go to a temporary candle store, the real ones are read in place from ``../shared/data``.

The strategy is the same in both frameworks: a long-only SMA(20)/SMA(60) cross on 1m
bars; the fast SMA crossing above the slow one between the previous and the current
closed bar buys, crossing below closes. Market orders fill at the next bar's open, 0.1 %
fee per side, 100,000 starting cash, 95 % of equity per entry. Both sides use the very
same indicator arrays (``metaexpert.core.indicators.sma`` over unscaled closes) and the
very same quantity rule (95 % of equity at the signal bar's close, rounded down to one
satoshi): MetaExpert through its ``percent_equity`` sizing with ``amount_step=1e-8``,
backtesting.py through ``FractionalBacktest(fractional_unit=1e-8)`` and an explicit whole
number of satoshis, because its own fractional ``size=0.95`` sizes at the fill price.

Timing covers the backtest itself: MetaExpert's ``result.wall_seconds`` (it includes
reading the Parquet file and computing metrics) and the ``expert.run`` call; for
backtesting.py the ``Backtest(...)`` construction plus ``run()`` (which includes its
statistics). Process CPU time of the same calls is printed too, and the verdicts use it:
on a shared machine wall time measures the neighbours as much as the code. Peak memory is
the peak resident set size (``resource.ru_maxrss``) of a fresh child process per side,
and its rise over the RSS just before the run (libraries already imported).

A second MetaExpert run adds a 2 % stop loss, a 1 % trailing stop and two entry filters
(``trade_hours`` and ``min_volume``); its time is reported as a ratio to the plain run
(target: at most 1.5x). Its trades differ by design, so it is not compared.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import logging
import math
import multiprocessing
import os
import pstats
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

MINUTE_MS = 60_000
YEAR_OF_MINUTES = 525_600
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
SEED = 20_241_125
SYMBOL = "BTCUSDT"
FAST = 20
SLOW = 60
FEE = 0.001
CASH = 100_000.0
EQUITY_PERCENT = 95.0
SATOSHI = 1e-8
SPEED_TARGET = 5.0
RISK_OVERHEAD_TARGET = 1.5
REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_FILE = REAL_DATA / "binance" / "spot" / f"{SYMBOL}-1m.parquet"

#: Risk settings of the "with stops and filters" variant (on_init keyword arguments).
RISK_OPTIONS: dict[str, Any] = {
    "stop_loss_pct": 2.0,
    "trailing_stop_pct": 1.0,
    "trade_hours": "01:00-23:00",
}


# ---------------------------------------------------------------------------------- data
def generate_minute_bars(
    count: int = YEAR_OF_MINUTES,
    *,
    seed: int = SEED,
    start_ms: int = START_MS,
    start_price: float = 42_000.0,
) -> pl.DataFrame:
    """Deterministic BTC-like 1m candles: a geometric random walk (about 45 % yearly volatility).

    Same ``count`` and ``seed`` give the same frame on every machine (numpy's PCG64).
    """
    if count < SLOW + 2:
        raise ValueError(
            f"need at least {SLOW + 2} bars for an SMA({FAST})/SMA({SLOW}) cross, got {count}"
        )
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.0006, count)
    close = start_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([start_price], close[:-1]))
    body_high = np.maximum(open_, close)
    body_low = np.minimum(open_, close)
    high = body_high * (1.0 + np.abs(rng.normal(0.0, 0.0003, count)))
    low = body_low * (1.0 - np.abs(rng.normal(0.0, 0.0003, count)))
    volume = rng.lognormal(mean=2.5, sigma=0.8, size=count)
    timestamps = start_ms + np.arange(count, dtype=np.int64) * MINUTE_MS
    return pl.DataFrame(
        {
            "timestamp": timestamps,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
        },
        schema={
            "timestamp": pl.Int64,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        },
    )


def read_candles(path: Path, limit: int | None = None) -> pl.DataFrame:
    """Candles from a Parquet file, oldest first, optionally only the first ``limit`` rows."""
    if not path.is_file():
        raise FileNotFoundError(f"no candle file at {path}")
    frame = pl.read_parquet(path).sort("timestamp")
    return frame.head(limit) if limit is not None else frame


# ---------------------------------------------------------------------------------- results
@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One closed round trip, in the units both frameworks share (epoch ms, quote currency)."""

    entry_time: int
    exit_time: int
    entry_price: float
    exit_price: float
    size: float
    pnl: float


@dataclass(slots=True)
class SideResult:
    """What one framework produced on one data set, plus how long and how much memory it took."""

    name: str
    bars: int
    backtest_seconds: float
    total_seconds: float
    cpu_seconds: float
    trades: list[TradeRecord]
    final_equity: float
    equity: np.ndarray
    open_size: float = 0.0
    peak_rss_mb: float | None = None
    rss_rise_mb: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def bars_per_second(self) -> float:
        return self.bars / self.backtest_seconds if self.backtest_seconds > 0 else math.inf


@dataclass(slots=True)
class TradeComparison:
    """Trade-by-trade agreement of two runs."""

    matching: int
    left_count: int
    right_count: int
    first_mismatch: str | None
    same_timing: int = 0  # pairs with equal entry/exit times and prices, whatever their sizes

    @property
    def equal(self) -> bool:
        return self.first_mismatch is None and self.left_count == self.right_count == self.matching


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance * max(abs(a), abs(b), 1e-12)


def compare_trades(
    left: Sequence[TradeRecord],
    right: Sequence[TradeRecord],
    *,
    tolerance: float = 1e-9,
    pnl_tolerance: float = 1e-6,
    names: tuple[str, str] = ("left", "right"),
) -> TradeComparison:
    """Match trades one by one: equal times, prices and sizes within ``tolerance`` (relative).

    PnL gets a looser ``pnl_tolerance`` relative to the trade's entry notional, because it is
    a small difference of large products that two correct implementations round differently.
    The first trade that differs is described field by field.
    """
    matching = same_timing = 0
    first: str | None = None
    for index, (a, b) in enumerate(zip(left, right, strict=False)):
        problems = []
        if a.entry_time != b.entry_time:
            problems.append(f"entry_time {a.entry_time} != {b.entry_time}")
        if a.exit_time != b.exit_time:
            problems.append(f"exit_time {a.exit_time} != {b.exit_time}")
        for label in ("entry_price", "exit_price"):
            x, y = getattr(a, label), getattr(b, label)
            if not _close(x, y, tolerance):
                problems.append(f"{label} {x!r} != {y!r}")
        if not problems:
            same_timing += 1
        if not _close(a.size, b.size, tolerance):
            problems.append(f"size {a.size!r} != {b.size!r}")
        notional = max(abs(a.size * a.entry_price), 1e-12)
        if abs(a.pnl - b.pnl) > pnl_tolerance * notional:
            problems.append(f"pnl {a.pnl!r} != {b.pnl!r}")
        if problems and first is None:
            first = (
                f"trade #{index}: " + "; ".join(problems) + f" ({names[0]}: {a}; {names[1]}: {b})"
            )
        if first is None:
            matching += 1
    if first is None and len(left) != len(right):
        longer, name = (left, names[0]) if len(left) > len(right) else (right, names[1])
        first = f"trade #{matching} exists only in {name}: {longer[matching]}"
    return TradeComparison(matching, len(left), len(right), first, same_timing)


def equity_difference(left: np.ndarray, right: np.ndarray) -> float:
    """Largest relative difference between two equity curves of the same bars (inf if lengths differ)."""
    if left.shape != right.shape:
        return math.inf
    if left.size == 0:
        return 0.0
    scale = np.maximum(np.maximum(np.abs(left), np.abs(right)), 1e-12)
    return float(np.max(np.abs(left - right) / scale))


# ---------------------------------------------------------------------------------- MetaExpert
def build_expert(risk_options: dict[str, Any] | None = None, *, min_volume: float | None = None):
    """The SMA cross written with MetaExpert's public API, as a user would write it."""
    from metaexpert import MetaExpert

    expert = MetaExpert(
        exchange="binance",
        market_type="spot",
        log_level="WARNING",
        log_to_file=False,
        log_to_console=False,
    )
    options: dict[str, Any] = dict(risk_options or {})
    if min_volume is not None:
        options["min_volume"] = min_volume

    @expert.on_init(
        symbol=SYMBOL,
        timeframe="1m",
        lookback_bars=0,
        strategy_name="bench_sma_cross",
        size_type="percent_equity",
        size_value=EQUITY_PERCENT,
        fast=FAST,
        slow=SLOW,
        **options,
    )
    def init(ctx):
        ctx.state["fast"] = ctx.state["slow"] = math.nan

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        fast = bars.sma(ctx.params.fast)
        slow = bars.sma(ctx.params.slow)
        state = ctx.state
        previous_fast, previous_slow = state["fast"], state["slow"]
        state["fast"], state["slow"] = fast, slow
        if previous_fast < previous_slow and fast > slow:
            if ctx.position() is None:
                ctx.buy()
        elif previous_fast > previous_slow and fast < slow and ctx.position() is not None:
            ctx.close()

    return expert


def run_metaexpert(
    data_dir: Path,
    start_ms: int,
    end_ms: int,
    bars: int,
    *,
    risk_options: dict[str, Any] | None = None,
    min_volume: float | None = None,
    name: str = "MetaExpert",
) -> SideResult:
    """Run the expert on the store at ``data_dir`` over ``[start_ms, end_ms)``."""
    expert = build_expert(risk_options, min_volume=min_volume)
    # Rejected entries (risk variant) log a warning each; keep the table readable.
    logging.getLogger("metaexpert").setLevel(logging.ERROR)
    started, cpu_started = time.perf_counter(), time.process_time()
    result = expert.run(
        trade_mode="backtest",
        backtest_start=start_ms,
        backtest_end=end_ms,
        initial_capital=CASH,
        data_dir=data_dir,
        report=False,
        configure_logs=False,
        simulation={"taker_fee": FEE, "maker_fee": FEE, "fill_market_on": "next_open"},
        market_specs={SYMBOL: {"amount_step": SATOSHI}},
    )
    total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    trades = [
        TradeRecord(
            int(t.entry_time),
            int(t.exit_time),
            float(t.entry_price),
            float(t.exit_price),
            float(t.quantity),
            float(t.pnl),
        )
        for t in result.closed_trades
    ]
    open_size = open_quantity(result.fills)
    notes = (
        []
        if result.bars_processed == bars
        else [f"processed {result.bars_processed} of {bars} bars"]
    )
    if result.risk_counts:
        notes.append("risk blocks: " + ", ".join(f"{k}={v}" for k, v in result.risk_counts.items()))
    return SideResult(
        name,
        result.bars_processed,
        result.wall_seconds,
        total,
        cpu,
        trades,
        float(result.final_equity),
        np.asarray(result.equity, dtype=np.float64),
        open_size=open_size,
        notes=notes,
    )


def open_quantity(fills: Sequence[Any]) -> float:
    """Base quantity still held at the end of a long-only run, from its fills (the result keeps no portfolio)."""
    held = 0.0
    for fill in fills:
        held += fill.quantity if fill.side == "buy" else -fill.quantity
    return held if held > 1e-12 else 0.0


# ---------------------------------------------------------------------------------- backtesting.py
def run_backtesting_py(frame: pl.DataFrame) -> SideResult:
    """The same strategy in backtesting.py (its fractional-unit mode, satoshi units)."""
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    from metaexpert.core.indicators import sma

    timestamps = frame.get_column("timestamp").to_numpy()
    close = frame.get_column("close").to_numpy()
    data = pd.DataFrame(
        {
            "Open": frame.get_column("open").to_numpy(),
            "High": frame.get_column("high").to_numpy(),
            "Low": frame.get_column("low").to_numpy(),
            "Close": close,
            "Volume": frame.get_column("volume").to_numpy(),
        },
        index=pd.to_datetime(timestamps, unit="ms"),
    )

    class SmaCross(Strategy):
        fast = FAST
        slow = SLOW

        def init(self) -> None:
            # The unscaled closes: the same arrays MetaExpert computes, bit for bit.
            self.sma_fast = self.I(sma, close, self.fast, plot=False)
            self.sma_slow = self.I(sma, close, self.slow, plot=False)

        def next(self) -> None:
            fast, slow = self.sma_fast, self.sma_slow
            previous_fast, previous_slow, current_fast, current_slow = (
                fast[-2],
                slow[-2],
                fast[-1],
                slow[-1],
            )
            if previous_fast < previous_slow and current_fast > current_slow:
                if not self.position:
                    # 95 % of equity at this bar's close, whole satoshis: MetaExpert's rule.
                    # self.data.Close is scaled by the fractional unit, so this is in satoshis.
                    units = math.floor(
                        self.equity * EQUITY_PERCENT / 100.0 / close[len(self.data) - 1] / SATOSHI
                        + 1e-9
                    )
                    if units > 0:
                        self.buy(size=units)
            elif previous_fast > previous_slow and current_fast < current_slow and self.position:
                self.position.close()

    started, cpu_started = time.perf_counter(), time.process_time()
    # Its progress bar goes to stderr; warnings are about the open trade at the end (expected).
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        backtest = FractionalBacktest(
            data,
            SmaCross,
            cash=CASH,
            commission=FEE,
            trade_on_close=False,
            exclusive_orders=False,
            finalize_trades=False,
            fractional_unit=SATOSHI,
        )
        stats = backtest.run()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    table = stats["_trades"]
    entry_ms = (table["EntryTime"].to_numpy().astype("datetime64[ms]").astype(np.int64)).tolist()
    exit_ms = (table["ExitTime"].to_numpy().astype("datetime64[ms]").astype(np.int64)).tolist()
    trades = [
        TradeRecord(
            int(entry), int(exit_), float(entry_price), float(exit_price), float(size), float(pnl)
        )
        for entry, exit_, entry_price, exit_price, size, pnl in zip(
            entry_ms,
            exit_ms,
            table["EntryPrice"].tolist(),
            table["ExitPrice"].tolist(),
            table["Size"].tolist(),
            table["PnL"].tolist(),
            strict=True,
        )
    ]
    equity = stats["_equity_curve"]["Equity"].to_numpy(dtype=np.float64)
    strategy = stats["_strategy"]
    open_size = float(sum(t.size for t in strategy.trades)) * SATOSHI if strategy.trades else 0.0
    return SideResult(
        "backtesting.py",
        len(data),
        elapsed,
        elapsed,
        cpu,
        trades,
        float(equity[-1]),
        equity,
        open_size=open_size,
    )


# ---------------------------------------------------------------------------------- one side per process
@dataclass(frozen=True, slots=True)
class SideJob:
    """A picklable description of one side's run (the child rebuilds everything from it)."""

    side: str  # "metaexpert", "metaexpert_risk" or "backtesting"
    candle_file: Path
    data_dir: Path
    start_ms: int
    end_ms: int
    bars: int
    min_volume: float | None = None


def run_side(job: SideJob) -> SideResult:
    """Run one side and measure its memory; meant to run in a fresh child process."""
    frame = None
    if job.side == "backtesting":
        import backtesting.lib  # noqa: F401 - imported before the baseline, like MetaExpert below

        frame = read_candles(job.candle_file)
        frame = frame.filter(
            (pl.col("timestamp") >= job.start_ms) & (pl.col("timestamp") < job.end_ms)
        )
    else:
        import metaexpert.expert  # noqa: F401 - library import cost is not part of the run
    before = _rss_mb()
    if job.side == "metaexpert":
        result = run_metaexpert(job.data_dir, job.start_ms, job.end_ms, job.bars)
    elif job.side == "metaexpert_risk":
        result = run_metaexpert(
            job.data_dir,
            job.start_ms,
            job.end_ms,
            job.bars,
            risk_options=RISK_OPTIONS,
            min_volume=job.min_volume,
            name="MetaExpert+risk",
        )
    elif job.side == "backtesting":
        assert frame is not None
        result = run_backtesting_py(frame)
    else:
        raise ValueError(
            f"unknown side {job.side!r}: expected metaexpert, metaexpert_risk or backtesting"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    result.peak_rss_mb = peak
    result.rss_rise_mb = max(peak - before, 0.0)
    return result


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / (1024.0 * 1024.0)


def run_isolated(job: SideJob) -> SideResult:
    """``run_side`` in a fresh spawned process, so each side's peak RSS is its own."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(run_side, job).result()


# ---------------------------------------------------------------------------------- a whole case
@dataclass(slots=True)
class CaseReport:
    title: str
    bars: int
    metaexpert: SideResult
    backtesting: SideResult | None
    risk: SideResult | None
    comparison: TradeComparison | None
    equity_gap: float | None
    repeat: int = 1

    @property
    def speed_ratio(self) -> float | None:
        """backtesting.py's backtest wall time over MetaExpert's."""
        if self.backtesting is None:
            return None
        return self.backtesting.backtest_seconds / self.metaexpert.backtest_seconds

    @property
    def cpu_ratio(self) -> float | None:
        """The same ratio in process CPU time (steadier than wall time on a busy machine)."""
        if self.backtesting is None:
            return None
        return self.backtesting.cpu_seconds / self.metaexpert.cpu_seconds

    @property
    def risk_ratio(self) -> float | None:
        if self.risk is None:
            return None
        return self.risk.backtest_seconds / self.metaexpert.backtest_seconds

    @property
    def risk_cpu_ratio(self) -> float | None:
        if self.risk is None:
            return None
        return self.risk.cpu_seconds / self.metaexpert.cpu_seconds


def run_case(
    title: str,
    candle_file: Path,
    data_dir: Path,
    frame: pl.DataFrame,
    *,
    isolate: bool = True,
    with_backtesting: bool = True,
    with_risk: bool = True,
    repeat: int = 1,
    runner: Callable[[SideJob], SideResult] | None = None,
) -> CaseReport:
    """Run MetaExpert, backtesting.py and the risk variant on ``frame`` (stored at ``data_dir``).

    With ``repeat`` > 1 the three sides run in turn that many times and each keeps its best
    times (a busy machine only ever makes a run slower); trades come from the first run.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat}")
    timestamps = frame.get_column("timestamp")
    start_ms, end_ms = int(timestamps[0]), int(timestamps[-1]) + MINUTE_MS
    bars = frame.height
    min_volume = float(frame.get_column("volume").quantile(0.2))
    execute = runner or (run_isolated if isolate else run_side)

    def job(side: str) -> SideJob:
        return SideJob(side, candle_file, data_dir, start_ms, end_ms, bars, min_volume)

    sides = (
        ["metaexpert"]
        + (["backtesting"] if with_backtesting else [])
        + (["metaexpert_risk"] if with_risk else [])
    )
    runs: dict[str, list[SideResult]] = {side: [] for side in sides}
    for _ in range(repeat):
        for side in sides:
            runs[side].append(execute(job(side)))
    best = {side: _fastest(results) for side, results in runs.items()}
    mine, theirs, risk = best["metaexpert"], best.get("backtesting"), best.get("metaexpert_risk")
    comparison = gap = None
    if theirs is not None:
        comparison = compare_trades(mine.trades, theirs.trades, names=(mine.name, theirs.name))
        gap = equity_difference(mine.equity, theirs.equity)
    return CaseReport(title, bars, mine, theirs, risk, comparison, gap, repeat)


def _fastest(results: list[SideResult]) -> SideResult:
    first = results[0]
    first.backtest_seconds = min(r.backtest_seconds for r in results)
    first.total_seconds = min(r.total_seconds for r in results)
    first.cpu_seconds = min(r.cpu_seconds for r in results)
    return first


# ---------------------------------------------------------------------------------- output
def _number(value: float | None, pattern: str) -> str:
    return "n/a" if value is None else format(value, pattern)


def format_report(report: CaseReport) -> str:
    """A compact, comparable table for one case."""
    rows = [
        (
            "",
            "bars/s",
            "backtest s",
            "total s",
            "cpu s",
            "peak RSS MB",
            "RSS rise MB",
            "trades",
            "final equity",
        )
    ]
    for side in (report.metaexpert, report.backtesting, report.risk):
        if side is None:
            continue
        rows.append(
            (
                side.name,
                f"{side.bars_per_second:,.0f}",
                f"{side.backtest_seconds:.2f}",
                f"{side.total_seconds:.2f}",
                f"{side.cpu_seconds:.2f}",
                _number(side.peak_rss_mb, ".0f"),
                _number(side.rss_rise_mb, ".0f"),
                f"{len(side.trades)}",
                f"{side.final_equity:,.4f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    best = f", times are the best of {report.repeat} runs" if report.repeat > 1 else ""
    lines = [f"== {report.title}: {report.bars:,} bars{best}"]
    for row in rows:
        lines.append(
            "  "
            + "  ".join(
                cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            )
        )
    if report.backtesting is not None and report.comparison is not None:
        ratio, cpu_ratio = report.speed_ratio or 0.0, report.cpu_ratio or 0.0
        verdict = "meets" if cpu_ratio >= SPEED_TARGET else "MISSES"
        lines.append(
            f"  speed ratio (backtesting.py / MetaExpert): {ratio:.2f}x wall, {cpu_ratio:.2f}x cpu "
            f"({verdict} the {SPEED_TARGET:g}x target in cpu time)"
        )
        comparison = report.comparison
        lines.append(
            f"  trades equal: {'yes' if comparison.equal else 'NO'} "
            f"({comparison.matching} matching in a row of {comparison.left_count} / {comparison.right_count}; "
            f"{comparison.same_timing} pairs with the same times and prices)"
        )
        if comparison.first_mismatch:
            lines.append(f"  first mismatch: {comparison.first_mismatch}")
        mine, theirs = report.metaexpert.final_equity, report.backtesting.final_equity
        relative = abs(mine - theirs) / max(abs(theirs), 1e-12)
        lines.append(
            f"  final equity (incl. open position at the last close): MetaExpert {mine:,.6f}, "
            f"backtesting.py {theirs:,.6f}, relative difference {relative:.2e}"
        )
        lines.append(
            f"  open at the end: MetaExpert {report.metaexpert.open_size:.8f}, "
            f"backtesting.py {report.backtesting.open_size:.8f} BTC; "
            f"equity curves max relative difference {_number(report.equity_gap, '.2e')}"
        )
    if report.risk is not None:
        ratio, cpu_ratio = report.risk_ratio or 0.0, report.risk_cpu_ratio or 0.0
        verdict = "meets" if cpu_ratio <= RISK_OVERHEAD_TARGET else "MISSES"
        lines.append(
            f"  with stop 2%, trailing 1%, trade_hours, min_volume: {ratio:.2f}x wall, {cpu_ratio:.2f}x cpu of the plain run "
            f"({verdict} the {RISK_OVERHEAD_TARGET:g}x target in cpu time)"
        )
    for side in (report.metaexpert, report.backtesting, report.risk):
        for note in side.notes if side is not None else ():
            lines.append(f"  note ({side.name}): {note}")
    return "\n".join(lines)


def profile_metaexpert(data_dir: Path, frame: pl.DataFrame, top: int = 20) -> str:
    """cProfile of one MetaExpert run: the functions that take the time, by own time."""
    timestamps = frame.get_column("timestamp")
    profiler = cProfile.Profile()
    profiler.enable()
    run_metaexpert(data_dir, int(timestamps[0]), int(timestamps[-1]) + MINUTE_MS, frame.height)
    profiler.disable()
    buffer = io.StringIO()
    pstats.Stats(profiler, stream=buffer).sort_stats("tottime").print_stats(top)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------- command line
def _write_store(root: Path, frame: pl.DataFrame) -> Path:
    from metaexpert.data import CandleStore

    store = CandleStore(root)
    store.write("binance", "spot", SYMBOL, "1m", frame)
    return store.path("binance", "spot", SYMBOL, "1m")


def engine_build() -> str:
    """Which MetaExpert is measured: the mypyc-compiled engine or the pure-Python one."""
    from metaexpert._compiled import COMPILED_MODULES, compiled_modules, stale_modules

    compiled = compiled_modules()
    if not compiled:
        return "MetaExpert engine: pure Python (no compiled modules; `make build` compiles them)"
    stale = stale_modules()
    note = f"; STALE, older than their sources: {', '.join(stale)}" if stale else ""
    return f"MetaExpert engine: {len(compiled)} of {len(COMPILED_MODULES)} hot modules compiled with mypyc{note}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_backtest", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes (100,000 generated bars, 30,000 real bars)",
    )
    parser.add_argument(
        "--bars", type=int, default=None, help="generated 1m bars (default one year: 525,600)"
    )
    parser.add_argument(
        "--real-bars", type=int, default=None, help="use only the first N real 1m bars"
    )
    parser.add_argument("--no-real", action="store_true", help="skip the real Binance 1m data")
    parser.add_argument("--no-risk", action="store_true", help="skip the stops-and-filters variant")
    parser.add_argument(
        "--in-process", action="store_true", help="run every side in this process (no memory peaks)"
    )
    parser.add_argument(
        "--profile", action="store_true", help="print cProfile's top functions of a MetaExpert run"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each side N times and keep its best times"
    )
    args = parser.parse_args(argv)
    bars = args.bars or (100_000 if args.quick else YEAR_OF_MINUTES)
    real_bars = args.real_bars or (30_000 if args.quick else None)
    if bars < SLOW + 2:
        parser.error(f"--bars must be at least {SLOW + 2}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if real_bars is not None and real_bars < SLOW + 2:
        parser.error(f"--real-bars must be at least {SLOW + 2}")

    print(engine_build())
    with tempfile.TemporaryDirectory(prefix="metaexpert-bench-") as folder:
        root = Path(folder)
        started = time.perf_counter()
        frame = generate_minute_bars(bars)
        candle_file = _write_store(root, frame)
        print(
            f"generated {bars:,} 1m bars (seed {SEED}) into a temporary store in {time.perf_counter() - started:.1f} s"
        )
        report = run_case(
            f"generated 1m bars, seed {SEED}",
            candle_file,
            root,
            frame,
            isolate=not args.in_process,
            with_risk=not args.no_risk,
            repeat=args.repeat,
        )
        print(format_report(report))
        if args.profile:
            print(profile_metaexpert(root, frame))
        sys.stdout.flush()

    if not args.no_real:
        if not REAL_FILE.is_file():
            print(f"real data skipped: {REAL_FILE} not found")
        else:
            real = read_candles(REAL_FILE, real_bars)
            report = run_case(
                f"real Binance {SYMBOL} 1m ({REAL_FILE.name})",
                REAL_FILE,
                REAL_DATA,
                real,
                isolate=not args.in_process,
                with_risk=not args.no_risk,
                repeat=args.repeat,
            )
            print(format_report(report))
    print(
        f"peak memory: {'not measured (--in-process)' if args.in_process else 'ru_maxrss of a fresh child process per side; rise = peak minus RSS just before the run'}"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("POLARS_MAX_THREADS", "2")
    raise SystemExit(main())
