from __future__ import annotations

import polars as pl
import pytest

from metaexpert.data import find_gaps, repair_gaps

HOUR = 3_600_000


def source_fetch(source: pl.DataFrame, calls: list[tuple[str, str, int, int]]):
    def fetch(symbol: str, timeframe: str, start_ms: int, end_ms: int) -> pl.DataFrame:
        calls.append((symbol, timeframe, start_ms, end_ms))
        return source.filter((pl.col("timestamp") >= start_ms) & (pl.col("timestamp") < end_ms))

    return fetch


@pytest.fixture
def window(btc_1h):
    # 2022: a year of real 1h candles without a single exchange outage.
    year = btc_1h.filter(pl.col("timestamp").is_between(1_640_995_200_000, 1_672_531_200_000 - 1))
    assert year.height == 8760 and find_gaps(year, "1h") == []
    return year


def punch(frame: pl.DataFrame, *ranges: tuple[int, int]) -> pl.DataFrame:
    keep = pl.lit(True)
    for start, stop in ranges:
        keep = keep & ~pl.int_range(pl.len()).is_between(start, stop - 1)
    return frame.filter(keep)


def test_repair_gaps_with_complete_source_restores_the_original_frame(window):
    holed = punch(window, (10, 15), (400, 401), (3000, 3100))
    calls: list = []
    result = repair_gaps(holed, "1h", source_fetch(window, calls), symbol="BTC/USDT")
    assert result.frame.equals(window)
    assert len(result.gaps_found) == 3 and result.gaps_left == ()
    assert result.gaps_repaired == 3
    assert result.bars_recovered == 5 + 1 + 100
    assert [(call[2], call[3]) for call in calls] == [
        (g.start_ms, g.end_ms) for g in result.gaps_found
    ]
    assert all(call[0] == "BTC/USDT" and call[1] == "1h" for call in calls)


def test_repair_gaps_with_source_missing_the_same_bars_leaves_them_reported_not_filled(btc_1h):
    # The real outage of 2018-02-08 is missing at the source too: it must stay a gap.
    frame = btc_1h.filter(pl.col("timestamp").is_between(1_517_443_200_000, 1_519_862_400_000 - 1))
    result = repair_gaps(frame, "1h", source_fetch(btc_1h, []), symbol="BTC/USDT")
    assert result.frame.height == frame.height  # nothing invented, no forward fill
    assert [(g.start_ms, g.missing) for g in result.gaps_left] == [(1_518_051_600_000, 33)]
    assert result.gaps_repaired == 0 and result.bars_missing == 33 and not result.complete


def test_repair_gaps_with_partial_source_reports_the_remaining_bars(window):
    holed = punch(window, (100, 110))
    partial_source = punch(window, (104, 106))  # the source lacks 2 of the 10 bars
    result = repair_gaps(holed, "1h", source_fetch(partial_source, []), symbol="BTC/USDT")
    assert result.bars_recovered == 8
    assert [(g.start_ms, g.missing) for g in result.gaps_left] == [(window["timestamp"][104], 2)]


def test_repair_gaps_with_bounds_fills_leading_and_trailing_edges(window):
    inner = window.slice(5, 20)
    start, end = window["timestamp"][0], window["timestamp"][30]
    result = repair_gaps(
        inner, "1h", source_fetch(window, []), symbol="X", start_ms=start, end_ms=end
    )
    assert result.frame.equals(window.head(30))
    assert result.complete


def test_repair_gaps_with_fetch_returning_off_range_rows_never_overwrites_existing_rows(window):
    holed = punch(window, (50, 52))
    tampered = window.with_columns(
        (pl.col("close") * 2).alias("close"),
        pl.max_horizontal(pl.col("high"), pl.col("close") * 2).alias("high"),
    )

    def fetch(symbol, timeframe, start_ms, end_ms):
        return tampered  # the whole series, far beyond the gap

    result = repair_gaps(holed, "1h", fetch, symbol="X")
    kept = result.frame.join(holed, on="timestamp", suffix="_old")
    assert (kept["close"] == kept["close_old"]).all()
    assert result.bars_recovered == 2


def test_repair_gaps_with_failing_fetch_propagates_the_error_unchanged(window):
    class ExchangeDown(Exception):
        pass

    def fetch(*_):
        raise ExchangeDown("503")

    with pytest.raises(ExchangeDown):
        repair_gaps(punch(window, (3, 4)), "1h", fetch, symbol="X")


def test_repair_gaps_with_no_gaps_does_not_call_fetch(window):
    calls: list = []
    frame = window.head(100)
    result = repair_gaps(frame, "1h", source_fetch(window, calls), symbol="X")
    assert calls == [] and result.frame.equals(frame) and result.complete
