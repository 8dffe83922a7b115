"""Property tests: every well-formed candle frame passes; any single corrupted cell is caught and named."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from metaexpert.data import CandleValidationError, checked_candles

HOUR = 3_600_000
T0 = 1_704_067_200_000


@st.composite
def candle_frames(draw) -> pl.DataFrame:
    rows = draw(st.integers(min_value=2, max_value=40))
    price = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
    records = []
    for index in range(rows):
        a, b = draw(price), draw(price)
        up = draw(st.floats(min_value=0, max_value=10))
        down = draw(st.floats(min_value=0, max_value=0.99))
        low = min(a, b) * (1 - down)
        records.append(
            (
                T0 + index * HOUR,
                a,
                max(a, b) + up,
                low,
                b,
                draw(st.floats(min_value=0, max_value=1e9)),
            )
        )
    return pl.DataFrame(
        records, schema=["timestamp", "open", "high", "low", "close", "volume"], orient="row"
    )


# corruption -> the check that must report it
CORRUPTIONS = {
    "nan": ("close", float("nan"), "prices_and_volume_finite"),
    "inf": ("volume", float("inf"), "prices_and_volume_finite"),
    "negative": ("low", -1.0, "greater_than(0)"),
    "zero": ("open", 0.0, "greater_than(0)"),
    "high_below_low": ("high", 0.001, "high_at_least_open_and_close"),
    "microseconds": ("timestamp", T0 * 1000, "timestamps_in_epoch_milliseconds"),
    "off_grid": ("timestamp", T0 + 1, "timestamps_on_1h_grid"),
}


@settings(max_examples=40, deadline=None)
@given(candle_frames())
def test_checked_candles_with_any_well_formed_frame_returns_it(frame):
    assert checked_candles(frame, "1h").equals(frame)


@settings(max_examples=80, deadline=None)
@given(candle_frames(), st.sampled_from(sorted(CORRUPTIONS)), st.data())
def test_checked_candles_with_one_corrupted_cell_names_the_failed_check(frame, kind, data):
    column, value, check = CORRUPTIONS[kind]
    row = data.draw(st.integers(min_value=0, max_value=frame.height - 1))
    if kind == "off_grid" or kind == "microseconds":
        value = value + row * HOUR if kind == "off_grid" else (T0 + row * HOUR) * 1000
    corrupted = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row)
        .then(pl.lit(value))
        .otherwise(pl.col(column))
        .alias(column)
    )
    try:
        checked_candles(corrupted, "1h")
    except CandleValidationError as error:
        assert check in str(error), str(error)
        assert f"row {row}" in str(error) or error.report.failures[0].failed_rows is None, str(
            error
        )
    else:
        raise AssertionError(f"{kind} at row {row} was accepted")
