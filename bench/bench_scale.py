"""Backtests at scale: whole process, risk overhead, many symbols, the 126-pair portfolio.

Run: ``.venv/bin/python -m bench.bench_scale`` (``--quick`` for smaller sizes). Every case
runs in a fresh child process (``python -m bench.bench_scale --child CASE``), so each one's
imports, peak memory (``ru_maxrss``) and CPU time are its own. The cases:

* ``plain-loop``: the SMA(20)/SMA(60) cross of ``bench_backtest`` written as a plain Python
  loop over numpy arrays read with polars: the floor any framework is measured against.
* ``metaexpert``: the same strategy through MetaExpert's public API (import, constructor,
  run), ``backtesting.py`` beside it; trades are compared with the plain loop's.
* ``metaexpert-risk``: the same with a 2 % stop, 4 % target, 1 % trailing stop, a 99 %
  drawdown limit and a daily loss limit that never binds (the price of watching them).
* ``symbols-N``: N generated symbols of the same length each (per-symbol state), against one.
* ``portfolio-126``: the 126-pair 1h universe of ``../shared/data`` (about 630,000 bars)
  with ``max_open_positions=10``.

"process s" is the child's whole life (interpreter start, imports, data, run), "backtest
s" the ``run`` call alone; both also in CPU seconds, which the verdicts use because the
machine is shared (wall time measures the neighbours as much as the code). The machine's
load (``uptime``) is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
UNIVERSE_FILE = SHARED / "binance" / "spot" / "multi-126pairs-1h-20201201-20210717.parquet"
MINUTE_MS = 60_000
FEE = 0.001
CASH = 100_000.0
FAST, SLOW = 20, 60
RISK_OPTIONS: dict[str, Any] = {
    "stop_loss_pct": 2.0,
    "take_profit_pct": 4.0,
    "trailing_stop_pct": 1.0,
    "max_drawdown_pct": 99.0,
    "daily_loss_limit": 1e12,
}
TARGETS = {"process": 1.5, "memory": 1.3, "risk": 1.3, "symbols": 1.1, "portfolio_seconds": 3.0}


# ---------------------------------------------------------------------------------- children
def _usage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024.0}


def _sma_cross_expert(
    symbols: list[str],
    *,
    size_value: float,
    risk: dict[str, Any] | None = None,
    timeframe: str = "1m",
    max_open: int | None = None,
):
    from metaexpert import MetaExpert

    expert = MetaExpert(
        exchange="binance",
        market_type="spot",
        log_level="WARNING",
        log_to_file=False,
        log_to_console=False,
    )
    options = dict(risk or {})
    if max_open is not None:
        options["max_open_positions"] = max_open

    @expert.on_init(
        symbol=symbols,
        timeframe=timeframe,
        lookback_bars=0,
        size_type="percent_equity",
        size_value=size_value,
        **options,
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe=timeframe)
    def bar(ctx, bars):
        fast, slow = bars.sma(FAST), bars.sma(SLOW)
        state = ctx.state.get(bars.symbol)
        if state is None:
            state = ctx.state[bars.symbol] = [math.nan, math.nan]
        previous_fast, previous_slow = state
        state[0], state[1] = fast, slow
        if previous_fast < previous_slow and fast > slow:
            if ctx.position() is None:
                ctx.buy()
        elif previous_fast > previous_slow and fast < slow and ctx.position() is not None:
            ctx.close()

    return expert


def child_metaexpert(spec: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    import logging

    import metaexpert  # noqa: F401 - part of the measured process

    symbols = spec["symbols"]
    candle_source = None
    if spec.get("universe"):
        from metaexpert.backtest.universe import UniverseSource

        candle_source = UniverseSource(spec["universe"])
        symbols = candle_source.symbols
    expert = _sma_cross_expert(
        symbols,
        size_value=spec["size_value"],
        risk=spec.get("risk"),
        timeframe=spec.get("timeframe", "1m"),
        max_open=spec.get("max_open"),
    )
    logging.getLogger("metaexpert").setLevel(logging.ERROR)
    before = _usage()
    run_started = time.perf_counter()
    result = expert.run(
        "backtest",
        backtest_start=spec["start_ms"],
        backtest_end=spec["end_ms"],
        initial_capital=CASH,
        data_dir=spec.get("data_dir"),
        candle_source=candle_source,
        report=False,
        configure_logs=False,
        simulation={"taker_fee": FEE, "maker_fee": FEE},
        market_specs={symbol: {"amount_step": 1e-8} for symbol in symbols},
    )
    run_wall = time.perf_counter() - run_started
    after = _usage()
    return {
        "bars": int(sum(len(p.timestamps) for p in result.prices.values())),
        "moments": result.bars_processed,
        "trades": len(result.closed_trades),
        "backtest_wall": run_wall,
        "backtest_cpu": after["cpu"] - before["cpu"],
        "final_equity": float(result.final_equity),
        "process_wall": time.perf_counter() - started,
        "entries": [int(t.entry_time) for t in result.closed_trades[:2000]],
    }


def child_plain_loop(spec: dict[str, Any]) -> dict[str, Any]:
    """The strategy as a plain loop: read, two SMAs, signals at the close, fills at the next open."""
    started = time.perf_counter()
    import numpy as np
    import polars as pl

    frame = (
        pl.read_parquet(spec["file"])
        .filter((pl.col("timestamp") >= spec["start_ms"]) & (pl.col("timestamp") < spec["end_ms"]))
        .sort("timestamp")
    )
    before = _usage()
    run_started = time.perf_counter()
    stamps = frame.get_column("timestamp").to_list()
    opens = frame.get_column("open").to_list()
    closes_array = frame.get_column("close").to_numpy()
    closes = closes_array.tolist()

    def sma(period: int) -> list[float]:
        out = np.full(closes_array.shape[0], np.nan)
        sums = np.cumsum(closes_array)
        out[period - 1 :] = (sums[period - 1 :] - np.concatenate(([0.0], sums[:-period]))) / period
        return out.tolist()

    fast, slow = sma(FAST), sma(SLOW)
    cash, held, held_to_buy, entry_time = CASH, 0.0, 0.0, 0
    pending = 0  # +1 buy, -1 sell at the next open
    trades: list[int] = []
    equity: list[float] = []
    previous_fast = previous_slow = math.nan
    for index in range(len(closes)):
        if pending:
            price = opens[index]
            if pending > 0:
                cost = held_to_buy * price
                cash -= cost + cost * FEE
                held, entry_time = held_to_buy, stamps[index]
            else:
                value = held * price
                cash += value - value * FEE
                held = 0.0
                trades.append(entry_time)
            pending = 0
        close = closes[index]
        equity.append(cash + held * close)
        current_fast, current_slow = fast[index], slow[index]
        if previous_fast < previous_slow and current_fast > current_slow and held == 0.0:
            held_to_buy = math.floor(equity[-1] * 0.95 / close / 1e-8) * 1e-8
            pending = 1
        elif previous_fast > previous_slow and current_fast < current_slow and held > 0.0:
            pending = -1
        previous_fast, previous_slow = current_fast, current_slow
    run_wall = time.perf_counter() - run_started
    after = _usage()
    return {
        "bars": len(closes),
        "moments": len(closes),
        "trades": len(trades),
        "backtest_wall": run_wall,
        "backtest_cpu": after["cpu"] - before["cpu"],
        "final_equity": equity[-1] if equity else CASH,
        "process_wall": time.perf_counter() - started,
        "entries": trades[:2000],
    }


def child_backtesting(spec: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    import polars as pl

    from bench.bench_backtest import run_backtesting_py

    frame = (
        pl.read_parquet(spec["file"])
        .filter((pl.col("timestamp") >= spec["start_ms"]) & (pl.col("timestamp") < spec["end_ms"]))
        .sort("timestamp")
    )
    before = _usage()
    side = run_backtesting_py(frame)
    after = _usage()
    return {
        "bars": side.bars,
        "moments": side.bars,
        "trades": len(side.trades),
        "backtest_wall": side.backtest_seconds,
        "backtest_cpu": after["cpu"] - before["cpu"],
        "final_equity": side.final_equity,
        "process_wall": time.perf_counter() - started,
        "entries": [t.entry_time for t in side.trades[:2000]],
    }


CHILDREN = {
    "metaexpert": child_metaexpert,
    "plain": child_plain_loop,
    "backtesting": child_backtesting,
}


# ---------------------------------------------------------------------------------- parent
@dataclass(slots=True)
class Measured:
    name: str
    bars: int
    trades: int
    backtest_wall: float
    backtest_cpu: float
    process_wall: float
    process_cpu: float
    peak_mb: float
    entries: list[int]

    @property
    def us_per_bar(self) -> float:
        return self.backtest_cpu / self.bars * 1e6 if self.bars else math.nan


def measure(name: str, kind: str, spec: dict[str, Any], timeout: float = 1800.0) -> Measured:
    """Run one case in a fresh interpreter; CPU and peak memory of that whole process."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), environment.get("PYTHONPATH", "")])
    )
    environment.setdefault("POLARS_MAX_THREADS", "2")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [sys.executable, "-m", "bench.bench_scale", "--child", kind, json.dumps(spec)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(f"case {name} failed:\n{completed.stderr[-4000:]}")
    data = json.loads(completed.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Measured(
        name,
        data["bars"],
        data["trades"],
        data["backtest_wall"],
        data["backtest_cpu"],
        data["process_wall"],
        cpu,
        data["peak_mb"],
        data["entries"],
    )


def generate_store(root: Path, symbols: Sequence[str], bars: int) -> tuple[int, int]:
    from bench.bench_backtest import START_MS, generate_minute_bars
    from metaexpert.data import CandleStore

    store = CandleStore(root)
    for number, symbol in enumerate(symbols):
        store.write(
            "binance", "spot", symbol, "1m", generate_minute_bars(bars, seed=20_241_125 + number)
        )
    return START_MS, START_MS + bars * MINUTE_MS


def table(rows: Sequence[Measured]) -> str:
    header = (
        "case",
        "bars",
        "trades",
        "backtest s",
        "backtest cpu",
        "us/bar cpu",
        "process s",
        "process cpu",
        "peak MB",
    )
    lines = [header] + [
        (
            r.name,
            f"{r.bars:,}",
            f"{r.trades:,}",
            f"{r.backtest_wall:.2f}",
            f"{r.backtest_cpu:.2f}",
            f"{r.us_per_bar:.2f}",
            f"{r.process_wall:.2f}",
            f"{r.process_cpu:.2f}",
            f"{r.peak_mb:.0f}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  "
        + "  ".join(
            cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(line)
        )
        for line in lines
    )


def verdict(label: str, value: float, target: float, *, lower_is_better: bool = True) -> str:
    met = value <= target if lower_is_better else value >= target
    return f"  {label}: {value:.2f} ({'meets' if met else 'MISSES'} the target {target:g})"


def _uptime() -> str:
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "uptime unavailable"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_scale", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes (100,000 bars; 5,000 per symbol)"
    )
    parser.add_argument(
        "--bars", type=int, default=None, help="1m bars of the one-symbol year (default 525,600)"
    )
    parser.add_argument(
        "--symbol-bars", type=int, default=None, help="bars per symbol of the N-symbol cases"
    )
    parser.add_argument("--no-backtesting", action="store_true", help="skip backtesting.py")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, spec = args.child
        outcome = CHILDREN[kind](json.loads(spec))
        outcome["peak_mb"] = _usage()["peak_mb"]  # this process's own peak resident set
        print(json.dumps(outcome))
        return 0
    bars = args.bars or (100_000 if args.quick else 525_600)
    symbol_bars = args.symbol_bars or (5_000 if args.quick else 20_000)
    print(f"load before: {_uptime()}")
    print(
        "CPU time is the child process's user+system time; the machine is shared, so read CPU, not wall."
    )
    with tempfile.TemporaryDirectory(prefix="metaexpert-scale-") as folder:
        root = Path(folder)
        start, end = generate_store(root, ["BTCUSDT"], bars)
        candle_file = str(root / "binance" / "spot" / "BTCUSDT-1m.parquet")
        one = {
            "symbols": ["BTCUSDT"],
            "size_value": 95.0,
            "start_ms": start,
            "end_ms": end,
            "data_dir": str(root),
        }
        file_spec = {"file": candle_file, "start_ms": start, "end_ms": end}
        rows = [
            measure("plain Python loop", "plain", file_spec),
            measure("MetaExpert", "metaexpert", one),
        ]
        if not args.no_backtesting:
            rows.append(measure("backtesting.py", "backtesting", file_spec))
        rows.append(
            measure(
                "MetaExpert + stop/target/trailing/drawdown/daily",
                "metaexpert",
                {**one, "risk": RISK_OPTIONS},
            )
        )
        plain, mine, risky = rows[0], rows[1], rows[-1]
        print(f"\n== one symbol, {bars:,} generated 1m bars")
        print(table(rows))
        same = plain.entries == mine.entries and plain.trades == mine.trades
        print(
            f"  trades: plain loop {plain.trades:,}, MetaExpert {mine.trades:,}: "
            f"{'identical entry times' if same else 'DIFFERENT'}"
        )
        print(
            verdict(
                "whole process, CPU, MetaExpert / plain loop",
                mine.process_cpu / plain.process_cpu,
                TARGETS["process"],
            )
        )
        print(
            verdict(
                "peak memory, MetaExpert / plain loop",
                mine.peak_mb / plain.peak_mb,
                TARGETS["memory"],
            )
        )
        print(
            verdict(
                "backtest CPU with the risk set / without",
                risky.backtest_cpu / mine.backtest_cpu,
                TARGETS["risk"],
            )
        )

        names = [f"S{number:03d}USDT" for number in range(126)]
        s_start, s_end = generate_store(root / "many", names, symbol_bars)
        scaled: list[Measured] = []
        for count in (1, 2, 10, 126):
            spec = {
                "symbols": names[:count],
                "size_value": 95.0 / count,
                "start_ms": s_start,
                "end_ms": s_end,
                "data_dir": str(root / "many"),
            }
            scaled.append(measure(f"{count} symbol{'s' if count > 1 else ''}", "metaexpert", spec))
        print(
            f"\n== N symbols of {symbol_bars:,} generated 1m bars each (shared cash, per-symbol state)"
        )
        print(table(scaled))
        for row, count in zip(scaled[1:], (2, 10, 126), strict=True):
            ratio = row.backtest_cpu / scaled[0].backtest_cpu / count
            print(
                verdict(
                    f"{count} symbols: backtest CPU / ({count} x one symbol)",
                    ratio,
                    TARGETS["symbols"],
                )
            )
            # The short one-symbol run above is mostly setup; the year's per-bar cost is the steadier reference.
            print(
                verdict(
                    f"{count} symbols: CPU per bar / the one-symbol year's",
                    row.us_per_bar / mine.us_per_bar,
                    TARGETS["symbols"],
                )
            )

    if UNIVERSE_FILE.is_file():
        spec = {
            "symbols": [],
            "universe": str(UNIVERSE_FILE),
            "size_value": 9.5,
            "max_open": 10,
            "timeframe": "1h",
            "start_ms": 1_606_780_800_000,
            "end_ms": 1_626_566_400_000,
        }
        portfolio = measure("126-pair 1h portfolio", "metaexpert", spec)
        print(f"\n== the 126-pair 1h universe ({UNIVERSE_FILE.name}), max_open_positions=10")
        print(table([portfolio]))
        print(
            verdict("backtest seconds (CPU)", portfolio.backtest_cpu, TARGETS["portfolio_seconds"])
        )
    else:
        print(f"\n126-pair portfolio skipped: {UNIVERSE_FILE} not found")
    print(f"\nload after: {_uptime()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
