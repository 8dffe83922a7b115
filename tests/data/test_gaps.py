from __future__ import annotations

import itertools

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaexpert.core.errors import DataError
from metaexpert.core.timeframe import Timeframe
from metaexpert.data import Gap, find_gaps, gap_report

HOUR = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC (a Monday)


def loop_gaps(timestamps: list[int], step: int) -> list[tuple[int, int, int]]:
    """Independent reference: walk the timestamps one by one."""
    result = []
    for previous, current in itertools.pairwise(timestamps):
        if current - previous != step:
            result.append((previous + step, current, (current - previous) // step - 1))
    return result


def frame_of(timestamps: list[int]) -> pl.DataFrame:
    n = len(timestamps)
    return pl.DataFrame(
        {
            "timestamp": timestamps,
            "open": [1.0] * n,
            "high": [1.0] * n,
            "low": [1.0] * n,
            "close": [1.0] * n,
            "volume": [0.0] * n,
        },
        schema_overrides={"timestamp": pl.Int64},
    )


@pytest.mark.parametrize(
    ("name", "timeframe", "expected_count"),
    [
        ("BTCUSDT-1h", "1h", 28),
        ("BTCUSDT-5m", "5m", 2),
        ("BTCUSDT-1m", "1m", 0),
        ("ETHUSDT-1h", "1h", 1),
    ],
)
def test_find_gaps_with_real_binance_file_matches_loop_reference(
    shared_data, name, timeframe, expected_count
):
    frame = pl.read_parquet(shared_data / "binance" / "spot" / f"{name}.parquet")
    step = Timeframe.parse(timeframe).milliseconds
    expected = loop_gaps(frame["timestamp"].to_list(), step)
    gaps = find_gaps(frame, timeframe)
    assert [(g.start_ms, g.end_ms, g.missing) for g in gaps] == expected
    assert len(gaps) == expected_count


def test_find_gaps_with_btcusdt_5m_finds_the_missing_day_of_2023_12_31(btc_5m):
    gaps = find_gaps(btc_5m, "5m")
    assert Gap(1_703_980_800_000, 1_704_067_200_000, 288) in gaps
    assert "2023-12-31 00:00 UTC -> 2024-01-01 00:00 UTC (288 bar(s) missing)" in [
        str(g) for g in gaps
    ]


def test_find_gaps_with_bounds_reports_leading_and_trailing_missing_bars():
    frame = frame_of([T0 + 2 * HOUR, T0 + 3 * HOUR, T0 + 5 * HOUR])
    gaps = find_gaps(frame, "1h", start_ms=T0, end_ms=T0 + 8 * HOUR)
    assert gaps == [
        Gap(T0, T0 + 2 * HOUR, 2),
        Gap(T0 + 4 * HOUR, T0 + 5 * HOUR, 1),
        Gap(T0 + 6 * HOUR, T0 + 8 * HOUR, 2),
    ]


def test_find_gaps_with_bounds_ignores_rows_outside_the_range():
    frame = frame_of([T0 - 5 * HOUR, T0, T0 + HOUR, T0 + 9 * HOUR])
    assert find_gaps(frame, "1h", start_ms=T0, end_ms=T0 + 2 * HOUR) == []


def test_find_gaps_with_empty_frame_and_bounds_returns_whole_range():
    gaps = find_gaps(frame_of([]), "1h", start_ms=T0 + 1, end_ms=T0 + 3 * HOUR + 1)
    assert gaps == [Gap(T0 + HOUR, T0 + 4 * HOUR, 3)]


def test_find_gaps_with_off_grid_timestamp_raises_data_error():
    with pytest.raises(DataError, match="not on the 1h grid"):
        find_gaps(frame_of([T0, T0 + HOUR + 1]), "1h")


def test_find_gaps_with_unsorted_timestamps_raises_data_error():
    with pytest.raises(DataError, match="strictly increasing"):
        find_gaps(frame_of([T0 + HOUR, T0]), "1h")


def test_find_gaps_with_monthly_bars_counts_calendar_months():
    months = [1_704_067_200_000, 1_706_745_600_000, 1_714_521_600_000]  # Jan, Feb, May 2024
    (gap,) = find_gaps(frame_of(months), "1M")
    assert gap == Gap(1_709_251_200_000, 1_714_521_600_000, 2)  # March and April


def test_find_gaps_with_weekly_bars_uses_monday_grid():
    week = 7 * 24 * HOUR
    assert find_gaps(frame_of([T0, T0 + 3 * week]), "1w") == [Gap(T0 + week, T0 + 3 * week, 2)]


def test_gap_report_with_real_btcusdt_1h_totals_missing_bars(btc_1h):
    report = gap_report(btc_1h, "1h")
    step = HOUR
    reference = loop_gaps(btc_1h["timestamp"].to_list(), step)
    assert report.missing_bars == sum(m for _, _, m in reference)
    assert report.expected_rows == (report.last_ms - report.first_ms) // step + 1
    assert report.largest.missing == max(m for _, _, m in reference)
    assert "28 gap(s)" in str(report)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.booleans(), min_size=2, max_size=300))
def test_find_gaps_with_random_deletions_matches_loop_reference(keep):
    timestamps = [T0 + i * 300_000 for i, kept in enumerate(keep) if kept]
    expected = loop_gaps(timestamps, 300_000)
    assert [
        (g.start_ms, g.end_ms, g.missing) for g in find_gaps(frame_of(timestamps), "5m")
    ] == expected
