from __future__ import annotations

import polars as pl
import pytest

from metaexpert.core.errors import ConfigurationError
from metaexpert.core.timeframe import Timeframe
from metaexpert.data import resample, validate_candles


def test_resample_with_real_1m_to_1h_equals_the_real_1h_file(btc_1m, btc_1h):
    hourly = resample(btc_1m, "1m", "1h")
    reference = btc_1h.filter(pl.col("timestamp").is_in(hourly["timestamp"].implode()))
    assert hourly.height == reference.height == 2178
    assert hourly.select("timestamp", "open", "high", "low", "close").equals(
        reference.select("timestamp", "open", "high", "low", "close")
    )
    assert (hourly["volume"] - reference["volume"]).abs().max() < 1e-6


@pytest.mark.parametrize("target", ["4h", "1d", "3d", "1w", "1M"])
def test_resample_with_real_1h_produces_valid_bars_on_target_grid(btc_1h, target):
    result = resample(btc_1h, "1h", target)
    validate_candles(result, target)
    assert result.height > 0


def test_resample_with_gap_inside_a_window_drops_only_that_bar(btc_1m):
    day = btc_1m.head(1440)
    holed = day.filter(pl.int_range(pl.len()) != 130)  # a minute missing in hour 2
    result = resample(holed, "1m", "1h")
    assert result.height == 23
    assert day["timestamp"][120] not in result["timestamp"].to_list()


def test_resample_with_last_window_still_forming_leaves_it_out(btc_1m):
    partial = btc_1m.head(150)  # 2.5 hours
    assert (
        resample(partial, "1m", "1h")["timestamp"].to_list()
        == btc_1m["timestamp"].gather([0, 60]).to_list()
    )


def test_resample_with_prefix_has_no_look_ahead(btc_1m):
    whole = resample(btc_1m.head(3000), "1m", "15m")
    cut = btc_1m["timestamp"][2000]
    prefix = resample(btc_1m.head(2000), "1m", "15m")
    expected = whole.filter(pl.col("timestamp") + Timeframe.parse("15m").milliseconds <= cut)
    assert prefix.equals(expected)


@pytest.mark.parametrize(
    ("source", "target"), [("1h", "90m"), ("5m", "1m"), ("1M", "1M"), ("7m", "1h")]
)
def test_resample_with_incompatible_timeframes_raises_configuration_error(source, target):
    frame = pl.DataFrame(
        schema={
            "timestamp": pl.Int64,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        }
    )
    with pytest.raises(ConfigurationError, match="cannot resample"):
        resample(frame, source, target)
