"""Pass execution: candles read once, parallel equals serial, failures kept, expert fitness hooks."""

import pytest

from metaexpert.backtest.optimization import (
    BacktestSettings,
    LocalExecutor,
    PassEvaluator,
    PassRequest,
    load_expert_file,
    optimize,
)
from metaexpert.core.errors import ConfigurationError

from .conftest import HOUR_MS, PERIOD, START_MS

END_MS = START_MS + PERIOD * 10 * HOUR_MS


def test_memory_candle_source_with_many_periods_reads_disk_once(
    cycle_expert_file, synthetic_data_dir
):
    evaluator = PassEvaluator(
        load_expert_file(cycle_expert_file),
        BacktestSettings(data_dir=str(synthetic_data_dir)),
        span=(START_MS, START_MS + PERIOD * 40 * HOUR_MS),
    )
    for offset in range(4):
        start = START_MS + offset * PERIOD * 5 * HOUR_MS
        outcome = evaluator.evaluate(
            PassRequest({"phase": 36, "hold": 24}, start, start + PERIOD * 5 * HOUR_MS)
        )
        assert outcome.error is None
        assert outcome.metrics["bars"] == PERIOD * 5
    assert evaluator.candles.disk_reads == 1


def test_memory_candle_source_slices_with_exclusive_end(synthetic_data_dir):
    from metaexpert.backtest.optimization import MemoryCandleSource

    source = MemoryCandleSource(str(synthetic_data_dir))
    frame = source.load(
        "binance", "spot", "BTCUSDT", "1h", START_MS + 5 * HOUR_MS, START_MS + 9 * HOUR_MS
    ).frame
    assert frame["timestamp"].to_list() == [START_MS + k * HOUR_MS for k in range(5, 9)]


def test_parallel_search_with_two_workers_equals_serial_search(
    cycle_expert_file, synthetic_data_dir
):
    options = {
        "start": START_MS,
        "end": END_MS,
        "method": "random",
        "trials": 6,
        "seed": 5,
        "fitness": {"name": "total_return", "min_trades": 1},
        "backtest": {"data_dir": str(synthetic_data_dir)},
    }
    serial = optimize(cycle_expert_file, workers=1, **options)
    parallel = optimize(cycle_expert_file, workers=2, **options)
    assert [(p.parameters, p.score) for p in serial.passes] == [
        (p.parameters, p.score) for p in parallel.passes
    ]


def test_expert_fitness_from_on_backtest_handler_drives_search_and_pass_hook_runs(
    synthetic_data_dir,
):
    from pathlib import Path

    path = Path(__file__).parent / "experts" / "scored_by_handler.py"
    expert = load_expert_file(path)
    expert.pass_calls.clear()
    result = optimize(
        expert,
        start=START_MS,
        end=END_MS,
        method="grid",
        space={"target": [1, 4, 7, 9]},
        fitness={"name": "expert", "min_trades": 0},
        backtest={"data_dir": str(synthetic_data_dir)},
    )
    assert result.best.parameters == {"target": 7}
    assert result.best.score == 0.0
    assert sorted(expert.pass_calls) == [-6.0, -3.0, -2.0, 0.0]


def test_pass_with_failing_expert_records_error_and_search_continues(synthetic_data_dir):
    from pathlib import Path

    path = Path(__file__).parent / "experts" / "scored_by_handler.py"
    result = optimize(
        path,
        start=START_MS,
        end=END_MS,
        method="grid",
        space={"explode": [0, 1]},
        fitness={"name": "expert", "min_trades": 0},
        backtest={"data_dir": str(synthetic_data_dir)},
    )
    broken = next(p for p in result.passes if p.parameters["explode"] == 1)
    assert broken.score is None and "broken on purpose" in broken.error
    assert result.best.parameters == {"explode": 0}


def test_local_executor_with_zero_workers_raises_configuration_error(cycle_expert_file):
    evaluator = PassEvaluator(load_expert_file(cycle_expert_file))
    with pytest.raises(ConfigurationError, match="workers"):
        LocalExecutor(evaluator, workers=0)


def test_load_expert_file_with_missing_file_raises_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="expert file not found"):
        load_expert_file(tmp_path / "nope.py")


def test_pass_with_data_gap_inside_lookback_reaches_further_back(tmp_path):
    """Real recordings have gaps; a window start just after one still gets its full lookback."""
    import polars as pl

    from metaexpert.data import CandleStore

    from .conftest import sine_candles

    candles = sine_candles(PERIOD * 10)
    gap = [
        START_MS + (PERIOD * 5 - k) * HOUR_MS for k in range(1, 4)
    ]  # 3 bars missing before the start
    CandleStore(tmp_path).write(
        "binance", "spot", "BTCUSDT", "1h", candles.filter(~pl.col("timestamp").is_in(gap))
    )
    from pathlib import Path

    expert = load_expert_file(
        Path(__file__).parent / "experts" / "bar_recorder.py"
    )  # lookback_bars=24
    evaluator = PassEvaluator(expert, BacktestSettings(data_dir=str(tmp_path)))
    start = START_MS + PERIOD * 5 * HOUR_MS
    outcome = evaluator.evaluate(
        PassRequest({"phase": 12, "hold": 12}, start, start + PERIOD * 2 * HOUR_MS)
    )
    assert outcome.error is None
    assert outcome.metrics["bars"] == PERIOD * 2
