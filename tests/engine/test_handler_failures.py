"""Handler failures: one traceback, one line per distinct error with a count, and a stop.

A handler that failed on every bar used to print a full traceback per bar and one summary
line per bar (17,511 lines for three months) and the run continued to the end. Runs use
hand-made hourly candles in a temporary store and ``configure_logs=False``; log records are
captured with ``caplog`` on the engine's logger.
"""

from __future__ import annotations

import logging

import pytest

from metaexpert import MetaExpert
from metaexpert.core.clock import parse_date_ms
from metaexpert.core.errors import ConfigurationError

from .test_runner import _rows

HOUR = 3_600_000
START = parse_date_ms("2024-01-01")


def _expert(**init_options) -> MetaExpert:
    expert = MetaExpert(
        exchange="binance", market_type="spot", log_to_file=False, log_to_console=False
    )

    @expert.on_init(symbol="BTCUSDT", timeframe="1h", lookback_bars=0, **init_options)
    def init(ctx):
        pass

    return expert


def _run(expert: MetaExpert, root, end: str = "2024-01-02", **options):
    return expert.run(
        "backtest",
        backtest_start="2024-01-01",
        backtest_end=end,
        report=False,
        configure_logs=False,
        data_dir=root,
        **options,
    )


def _has_traceback(record) -> bool:
    """The record carries a traceback: as exc_info, or as exc_text once the secret masker (installed
    by any earlier configure_logging in this process) has rendered and scrubbed it."""
    return record.exc_info is not None or bool(record.exc_text)


def _error_records(caplog):
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_handler_failing_every_bar_with_stop_disabled_logs_one_traceback_and_one_counted_line(
    candle_store, caplog
):
    root = candle_store(_rows(START, 24))
    expert = _expert(max_consecutive_errors=0)

    @expert.on_bar("1h")
    def bar(ctx, bars):
        return 1 / 0

    with caplog.at_level(logging.ERROR, logger="metaexpert"):
        result = _run(expert, root)
    assert result.bars_processed == 24
    records = _error_records(caplog)
    assert len(records) == 2, [
        r.getMessage() for r in records
    ]  # the first error, the summary at the end
    assert _has_traceback(records[0]) and "ZeroDivisionError" in records[0].getMessage()
    assert not _has_traceback(records[1])
    assert records[1].getMessage() == (
        "24 handler errors in this run (1 distinct): "
        "handler:on_bar: ZeroDivisionError: division by zero (24 times)"
    )
    assert "test_handler_failures.py" in records[0].getMessage()  # where it was raised
    assert result.errors == ["handler:on_bar: ZeroDivisionError: division by zero (24 times)"]
    assert result.error_count == 24 and result.had_errors and not result.stopped_by_error


def test_handler_failing_every_bar_with_default_settings_stops_after_five_with_reason(candle_store):
    root = candle_store(_rows(START, 24))
    expert = _expert()
    reasons: list[str] = []

    @expert.on_bar("1h")
    def bar(ctx, bars):
        raise KeyError("close")

    @expert.on_deinit
    def deinit(ctx, reason):
        reasons.append(reason)

    result = _run(expert, root)
    assert result.bars_processed == 5
    assert result.stopped_by_error and result.error_count == 5
    assert reasons == [result.parameters["stop_reason"]]
    assert reasons[0] == (
        "stopped after 5 consecutive errors in on_bar: KeyError: 'close' (max_consecutive_errors=5)"
    )


def test_handler_failing_every_other_bar_with_default_settings_runs_to_the_end(candle_store):
    root = candle_store(_rows(START, 24))
    expert = _expert(max_consecutive_errors=2)

    @expert.on_bar("1h")
    def bar(ctx, bars):
        if len(bars) % 2:
            raise ValueError("odd bar")

    result = _run(expert, root)
    assert result.bars_processed == 24 and not result.stopped_by_error
    assert result.errors == ["handler:on_bar: ValueError: odd bar (12 times)"]


def test_handlers_with_distinct_errors_log_each_once_and_count_them(candle_store, caplog):
    root = candle_store(_rows(START, 24))
    expert = _expert(max_consecutive_errors=0)

    @expert.on_bar("1h")
    def bar(ctx, bars):
        raise ValueError("low" if len(bars) < 10 else "high")

    @expert.on_timer("2h")
    def timer(ctx):
        raise RuntimeError("timer down")

    with caplog.at_level(logging.ERROR, logger="metaexpert"):
        result = _run(expert, root)
    records = _error_records(caplog)
    assert [_has_traceback(r) for r in records] == [
        True,
        False,
        False,
        False,
    ]  # only the first has a traceback
    assert records[-1].getMessage().startswith("36 handler errors in this run (3 distinct)")
    assert result.errors == [
        "handler:on_bar: ValueError: low (9 times)",
        "handler:on_timer[2h]: RuntimeError: timer down (12 times)",
        "handler:on_bar: ValueError: high (15 times)",
    ]
    assert result.error_count == 36


def test_several_bar_handlers_with_one_failing_stop_after_its_consecutive_limit(candle_store):
    root = candle_store(_rows(START, 24))
    expert = _expert(max_consecutive_errors=3)
    calls: list[int] = []

    @expert.on_bar("1h")
    def fine(ctx, bars):
        calls.append(len(bars))

    @expert.on_bar("1h")
    def broken(ctx, bars):
        raise TypeError("bad operand")

    result = _run(expert, root)
    assert result.bars_processed == 3 and result.stopped_by_error
    assert "3 consecutive errors in on_bar broken: TypeError" in result.parameters["stop_reason"]
    assert result.errors == [
        "handler:on_bar broken: TypeError: bad operand (3 times)"
    ] and calls == [1, 2, 3]


def test_messages_changing_every_bar_with_many_distinct_errors_are_grouped_after_twenty(
    candle_store,
):
    root = candle_store(_rows(START, 48))
    expert = _expert(max_consecutive_errors=0)

    @expert.on_bar("1h")
    def bar(ctx, bars):
        raise ValueError(f"price {bars.last.close} at {ctx.now_ms}")

    result = _run(expert, root, end="2024-01-03")
    assert len(result.errors) == 21
    assert result.errors[-1] == "handler:on_bar: ValueError: (other messages) (28 times)"


def test_warmup_bars_with_more_than_the_run_has_is_a_configuration_error(candle_store):
    root = candle_store(_rows(START, 24))
    expert = _expert(warmup_bars=24)
    with pytest.raises(ConfigurationError, match="warmup_bars=24 skips every one of the 24 bars"):
        _run(expert, root)
