"""Smoke test of the backtest benchmark: a tiny run of both frameworks and the comparison logic."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from bench import bench_backtest
from bench.__main__ import Outcome, module_source, run_module, summary
from bench.bench_backtest import (
    TradeRecord,
    compare_trades,
    equity_difference,
    format_report,
    generate_minute_bars,
    run_case,
)
from metaexpert.data import CandleStore

BARS = 4_000


@pytest.fixture(scope="module")
def tiny_case(tmp_path_factory: pytest.TempPathFactory) -> bench_backtest.CaseReport:
    root = tmp_path_factory.mktemp("bench-store")
    frame = generate_minute_bars(BARS)
    store = CandleStore(root)
    store.write("binance", "spot", bench_backtest.SYMBOL, "1m", frame)
    candle_file = store.path("binance", "spot", bench_backtest.SYMBOL, "1m")
    return run_case("tiny", candle_file, root, frame, isolate=False)


def _trade(**changes: float) -> TradeRecord:
    base = TradeRecord(1_000, 61_000, 100.0, 101.0, 2.0, 1.6)
    return dataclasses.replace(base, **changes)


def test_generate_minute_bars_with_same_seed_is_identical_and_valid():
    first, second = generate_minute_bars(500), generate_minute_bars(500)
    assert first.equals(second)
    assert not first.equals(generate_minute_bars(500, seed=1))
    assert (np.diff(first["timestamp"].to_numpy()) == bench_backtest.MINUTE_MS).all()
    assert (first["high"] >= first[["open", "close"]].max_horizontal()).all()
    assert (first["low"] <= first[["open", "close"]].min_horizontal()).all()


def test_generate_minute_bars_with_too_few_bars_raises_clear_error():
    with pytest.raises(ValueError, match="at least 62 bars"):
        generate_minute_bars(10)


def test_compare_trades_with_identical_lists_reports_all_matching():
    trades = [_trade(), _trade(entry_time=2_000, exit_time=3_000)]
    comparison = compare_trades(trades, list(trades))
    assert comparison.equal
    assert comparison.matching == 2
    assert comparison.first_mismatch is None


def test_compare_trades_with_changed_size_reports_that_trade_first():
    left = [_trade(), _trade(entry_time=2_000), _trade(entry_time=3_000)]
    right = [
        left[0],
        _trade(entry_time=2_000, size=2.0000001),
        _trade(entry_time=3_000, exit_time=1),
    ]
    comparison = compare_trades(left, right, names=("a", "b"))
    assert not comparison.equal
    assert comparison.matching == 1
    assert comparison.first_mismatch is not None
    assert comparison.first_mismatch.startswith("trade #1: size 2.0 != 2.0000001")


def test_compare_trades_with_extra_trade_names_the_longer_side():
    comparison = compare_trades(
        [_trade()], [_trade(), _trade(entry_time=9)], names=("mine", "theirs")
    )
    assert not comparison.equal
    assert comparison.matching == 1
    assert "exists only in theirs" in (comparison.first_mismatch or "")


def test_equity_difference_with_different_lengths_is_infinite():
    assert equity_difference(np.ones(3), np.ones(4)) == math.inf
    assert equity_difference(np.array([100.0, 200.0]), np.array([100.0, 202.0])) == pytest.approx(
        2 / 202
    )


def test_tiny_run_with_both_frameworks_has_same_trade_times_prices_and_equity(tiny_case):
    mine, theirs = tiny_case.metaexpert, tiny_case.backtesting
    assert theirs is not None and tiny_case.comparison is not None
    assert mine.bars == theirs.bars == BARS
    assert len(mine.trades) == len(theirs.trades) > 10
    for ours, other in zip(mine.trades, theirs.trades, strict=True):
        assert (ours.entry_time, ours.exit_time) == (other.entry_time, other.exit_time)
        assert ours.entry_price == pytest.approx(other.entry_price, rel=1e-12)
        assert ours.exit_price == pytest.approx(other.exit_price, rel=1e-12)
        # Both round 95 % of equity down to whole satoshis; allow a few satoshis (see the report).
        assert ours.size == pytest.approx(other.size, rel=1e-7)
        assert ours.pnl == pytest.approx(
            other.pnl, rel=1e-6, abs=1e-6 * ours.size * ours.entry_price
        )
    assert mine.final_equity == pytest.approx(theirs.final_equity, rel=1e-8)
    assert tiny_case.equity_gap is not None and tiny_case.equity_gap < 1e-8
    assert tiny_case.comparison.left_count == tiny_case.comparison.right_count == len(mine.trades)


def test_tiny_run_with_risk_variant_blocks_entries_and_reports_ratio(tiny_case):
    risk = tiny_case.risk
    assert risk is not None
    assert any("risk blocks" in note for note in risk.notes)
    assert tiny_case.risk_ratio is not None and tiny_case.risk_ratio > 0
    table = format_report(tiny_case)
    for expected in ("bars/s", "speed ratio", "trades equal", "final equity", "MetaExpert+risk"):
        assert expected in table


def test_runner_with_missing_module_reports_missing_without_running():
    assert module_source("no_such_benchmark") is None
    outcome = run_module("no_such_benchmark", quick=True, timeout=5)
    assert outcome.status == "missing"
    assert "bench.no_such_benchmark" in outcome.detail
    assert module_source("bench_backtest") == Path(bench_backtest.__file__).resolve()


def test_runner_with_failing_module_reports_failure(tmp_path):
    outcome = run_module(
        "bench_backtest", quick=False, timeout=60, python=str(tmp_path / "no-python")
    )
    assert outcome.status == "failed"
    text = summary([outcome, Outcome("bench_data", "ok", 1.5)])
    assert "bench_backtest" in text and "failed" in text and "ok" in text
