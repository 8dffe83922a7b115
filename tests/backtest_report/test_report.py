"""Terminal summary, JSON and HTML reports built from hand-made results."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import plotly.offline
import pytest
from rich.console import Console
from rich.table import Table

from metaexpert.backtest.metrics import compute_metrics
from metaexpert.backtest.report import (
    aggregate_candles,
    downsample_indices,
    local_time_strings,
    print_summary,
    render_summary,
    resolve_timezone,
    to_json,
    write_html_report,
    write_json,
)
from metaexpert.backtest.result import PriceSeries
from metaexpert.core.enums import PositionSide
from metaexpert.core.errors import ConfigurationError

from .factories import DAY, HOUR, T0, make_prices, make_result, make_trade

MINUTE = 60_000


def _report_result():
    """Ten daily bars, 100 -> 110 (total return exactly 10 %), two trades, risk counts."""
    trades = [
        make_trade(
            12.5,
            entry_time=T0 + DAY,
            exit_time=T0 + 3 * DAY,
            entry_price=42_000.0,
            exit_price=43_050.0,
            exit_reason="take_profit",
        ),
        make_trade(
            -2.5,
            side=PositionSide.SHORT,
            entry_time=T0 + 5 * DAY,
            exit_time=T0 + 6 * DAY,
            entry_price=43_100.0,
            exit_price=43_200.0,
            exit_reason="stop_loss",
        ),
    ]
    prices = {
        "BTCUSDT": make_prices(
            [42_000 + 100 * i for i in range(10)], [42_050 + 100 * i for i in range(10)]
        )
    }
    return make_result(
        [100, 101, 103, 112.5, 112.5, 112.5, 110, 110, 110, 110],
        exposure=[False, True, True, False, False, True, False, False, False, False],
        trades=trades,
        prices=prices,
        risk_counts={"max_open_positions": 7, "daily_loss_limit": 2},
        parameters={
            "fast_period": 10,
            "threshold": float("nan"),
            "api_secret": "s3cr3t-value",
            "side": PositionSide.LONG,
            "label": "<b>bold</b>",
        },
        errors=["handler bar raised ValueError"],
    )


@pytest.fixture(scope="module")
def html_report(tmp_path_factory) -> str:
    path = write_html_report(
        _report_result(),
        tmp_path_factory.mktemp("html") / "sub" / "report.html",
        display_timezone="Europe/Berlin",
    )
    assert path.exists()
    return path.read_text(encoding="utf-8")


def test_render_summary_with_result_returns_table_with_metric_values():
    table = render_summary(_report_result())
    assert isinstance(table, Table)
    console = Console(record=True, width=120, color_system=None)
    console.print(table)
    text = console.export_text()
    assert re.search(r"Total return\s*│\s*10\.00%", text)
    assert "Blocked by max_open_positions" in text


def test_print_summary_with_errors_prints_table_and_errors():
    console = Console(record=True, width=120, color_system=None)
    print_summary(_report_result(), console=console)
    text = console.export_text()
    assert re.search(r"Profit factor\s*│\s*5\.00", text)  # 12.5 / 2.5
    assert "handler bar raised ValueError" in text


def test_to_json_with_nan_parameter_is_strict_json_with_null_and_redacted_secret():
    document = to_json(_report_result())
    text = json.dumps(document, allow_nan=False)
    assert "s3cr3t-value" not in text
    assert document["parameters"]["api_secret"] == "***"
    assert document["parameters"]["threshold"] is None
    assert document["parameters"]["side"] == "long"
    assert document["metrics"]["total_return_pct"] == pytest.approx(10.0)
    assert document["risk_counts"] == {"max_open_positions": 7, "daily_loss_limit": 2}
    assert document["start"] == {"ms": T0, "utc": "2024-01-01T00:00:00.000Z"}


def test_to_json_with_trades_lists_them_with_utc_iso_and_epoch_ms():
    trade = to_json(_report_result())["closed_trades"][1]
    assert trade["side"] == "short"
    assert trade["entry_time_ms"] == T0 + 5 * DAY
    assert trade["entry_time_utc"] == "2024-01-06T00:00:00.000Z"
    assert trade["exit_reason"] == "stop_loss"
    assert trade["pnl"] == -2.5


def test_to_json_with_long_equity_downsamples_and_keeps_extremes():
    # 20,000 points; a single spike and a single crash must survive the reduction.
    equity = np.full(20_000, 100.0)
    equity[7_777] = 250.0
    equity[13_131] = 10.0
    document = to_json(make_result(equity, timeframe="1m"))
    curve = document["equity_curve"]
    assert curve["points"] == 20_000
    assert curve["downsampled"] is True
    assert len(curve["equity"]) <= 5_000
    assert max(curve["equity"]) == 250.0
    assert min(curve["equity"]) == 10.0
    assert T0 + 7_777 * MINUTE in curve["timestamps_ms"]
    assert curve["timestamps_ms"][0] == T0
    assert curve["timestamps_ms"][-1] == T0 + 19_999 * MINUTE
    assert len(curve["timestamps_utc"]) == len(curve["equity"]) == len(curve["drawdown_pct"])


def test_write_json_with_nested_path_writes_readable_file(tmp_path: Path):
    path = write_json(_report_result(), tmp_path / "a" / "b" / "run.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["expert_name"] == "hand_made"
    assert len(document["closed_trades"]) == 2
    assert document["equity_curve"]["equity"][0] == 100


def test_downsample_indices_with_short_series_keeps_every_point():
    assert downsample_indices(np.arange(10.0), None, 100).tolist() == list(range(10))


def test_downsample_indices_with_too_small_budget_raises():
    with pytest.raises(ConfigurationError, match="at least 4"):
        downsample_indices(np.arange(10.0), None, 3)


def test_aggregate_candles_with_ten_minutes_merges_into_five_minute_candles():
    # 10 one-minute bars, at most 4 candles: 10 min / 3 min > 3, 10 / 5 = 2 -> 5m candles.
    # opens 0..9, highs open+2, lows open-1, closes open+1.
    opens = np.arange(10.0)
    series = PriceSeries(T0 + np.arange(10) * MINUTE, opens, opens + 2, opens - 1, opens + 1)
    candles = aggregate_candles(series, MINUTE, 4)
    assert candles.span_ms == 5 * MINUTE
    assert candles.timestamps.tolist() == [T0, T0 + 5 * MINUTE]
    assert candles.open.tolist() == [0.0, 5.0]
    assert candles.high.tolist() == [6.0, 11.0]
    assert candles.low.tolist() == [-1.0, 4.0]
    assert candles.close.tolist() == [5.0, 10.0]


def test_aggregate_candles_with_gap_does_not_bridge_it():
    # Bars at minutes 0-4 and 20-24 (a 15-minute hole); 5m candles -> two candles, not one.
    stamps = T0 + np.array([0, 1, 2, 3, 4, 20, 21, 22, 23, 24]) * MINUTE
    opens = np.arange(10.0)
    candles = aggregate_candles(PriceSeries(stamps, opens, opens, opens, opens), MINUTE, 7)
    assert candles.span_ms == 5 * MINUTE
    assert candles.timestamps.tolist() == [T0, T0 + 20 * MINUTE]


def test_aggregate_candles_with_year_of_minutes_stays_under_budget():
    stamps = T0 + np.arange(525_600, dtype=np.int64) * MINUTE
    values = np.linspace(1.0, 2.0, stamps.size)
    candles = aggregate_candles(PriceSeries(stamps, values, values, values, values), MINUTE, 3_000)
    assert candles.timestamps.size <= 3_000
    assert candles.span_ms == 4 * HOUR  # 365 days * 6 = 2,190 candles
    assert candles.close[-1] == 2.0


def test_local_time_strings_with_berlin_zone_follow_daylight_saving():
    zone = resolve_timezone("Europe/Berlin")
    stamps = np.array(
        [
            T0,  # winter, UTC+1
            1_711_846_740_000,  # 2024-03-31 00:59 UTC, just before the switch, still UTC+1
            1_711_846_800_000,  # 2024-03-31 01:00 UTC, clocks jump to 03:00, UTC+2
            1_719_792_000_000,  # 2024-07-01 00:00 UTC, summer, UTC+2
        ]
    )
    assert local_time_strings(stamps, zone) == [
        "2024-01-01 01:00:00",
        "2024-03-31 01:59:00",
        "2024-03-31 03:00:00",
        "2024-07-01 02:00:00",
    ]


def test_resolve_timezone_with_unknown_name_raises_configuration_error():
    with pytest.raises(ConfigurationError, match="unknown display time zone 'Mars/Base'"):
        resolve_timezone("Mars/Base")


def test_write_html_report_with_bad_timezone_raises_before_writing(tmp_path: Path):
    target = tmp_path / "report.html"
    with pytest.raises(ConfigurationError):
        write_html_report(_report_result(), target, display_timezone="Nowhere/Else")
    assert not target.exists()


def test_html_report_with_result_is_self_contained(html_report: str):
    bundle = plotly.offline.get_plotlyjs()
    assert bundle[:500] in html_report
    assert bundle[-500:] in html_report
    assert re.search(r"<script[^>]*\bsrc\s*=", html_report, re.IGNORECASE) is None
    assert re.search(r"<link[^>]*\bhref\s*=\s*[\"']?https?:", html_report, re.IGNORECASE) is None


def _metric_cell(html: str, label: str) -> str:
    match = re.search(rf"<td>{re.escape(label)}</td><td class=\"number\">([^<]*)</td>", html)
    assert match, f"no metric row {label!r}"
    return match.group(1)


def test_html_report_with_result_contains_metric_values(html_report: str):
    assert _metric_cell(html_report, "Total return") == "10.00%"  # 100 -> 110
    assert _metric_cell(html_report, "Profit factor") == "5.00"  # 12.5 / 2.5
    assert _metric_cell(html_report, "Win rate") == "50.00%"  # 1 of 2
    assert _metric_cell(html_report, "Max drawdown") == f"{(1 - 110 / 112.5) * 100:.2f}%"
    assert _metric_cell(html_report, "Exposure (bars in market)") == "30.00%"  # 3 of 10
    assert _metric_cell(html_report, "Final equity") == "110.00 USDT"


def test_html_report_with_trades_shows_rows_in_display_timezone(html_report: str):
    rows = re.findall(r'<tr class="trade">(.*?)</tr>', html_report, re.DOTALL)
    assert len(rows) == 2
    first = rows[0]
    assert "take_profit" in first
    assert "42,000.00" in first and "43,050.00" in first
    assert "2024-01-02 01:00:00" in first  # T0 + 1 day, shown in Berlin (UTC+1)
    assert "12.50" in first


def test_html_report_with_risk_counts_and_parameters_lists_them_safely(html_report: str):
    assert re.search(r"<td>max_open_positions</td><td[^>]*>7</td>", html_report)
    assert re.search(r"<td>daily_loss_limit</td><td[^>]*>2</td>", html_report)
    assert "fast_period" in html_report
    assert "s3cr3t-value" not in html_report
    assert "&lt;b&gt;bold&lt;/b&gt;" in html_report
    assert "handler bar raised ValueError" in html_report


def test_html_report_with_prices_draws_candles_and_trade_markers(html_report: str):
    assert '"type":"candlestick"' in html_report
    assert "long entry" in html_report
    assert "short entry" in html_report
    assert "Drawdown (underwater)" in html_report


def test_html_report_with_empty_result_still_renders(tmp_path: Path):
    result = make_result([100.0])
    result.symbols = []
    path = write_html_report(result, tmp_path / "empty.html")
    text = path.read_text(encoding="utf-8")
    assert "No closed trades." in text
    assert "No entry was blocked by a risk rule." in text


def test_html_report_with_computed_metrics_reuses_them(tmp_path: Path):
    result = _report_result()
    compute_metrics(result, periods_per_year=8760)
    text = write_html_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "square root of 8760 return periods" in text


def _failed_result():
    return make_result(
        [100, 100, 100],
        bars_processed=3,
        errors=["handler:on_bar: KeyError: 'close' (5 times)"],
        error_count=5,
        stopped_by_error=True,
        parameters={
            "stop_reason": "stopped after 5 consecutive errors in on_bar: KeyError: 'close' "
            "(max_consecutive_errors=5)"
        },
    )


def test_print_summary_with_handler_errors_says_so_before_the_table():
    console = Console(record=True, width=200, color_system=None)
    print_summary(_failed_result(), console=console)
    text = console.export_text()
    first_line = text.splitlines()[0]
    assert first_line.startswith(
        "This run had errors: 5 handler errors in 3 bars; stopped after 5 consecutive errors"
    )
    assert text.index("KeyError: 'close' (5 times)") < text.index("Total return")


def test_print_summary_with_clean_run_has_no_error_headline():
    console = Console(record=True, width=200, color_system=None)
    print_summary(make_result([100, 101]), console=console)
    assert "had errors" not in console.export_text()


def test_to_json_with_handler_errors_puts_a_failed_status_first():
    document = to_json(_failed_result())
    assert list(document)[:2] == ["schema_version", "status"]
    assert document["status"]["ok"] is False and document["status"]["error_count"] == 5
    assert document["status"]["stopped_by_error"] is True
    assert document["status"]["stop_reason"].startswith("stopped after 5 consecutive errors")
    assert to_json(make_result([100, 101]))["status"]["ok"] is True


def test_html_report_with_handler_errors_shows_the_banner_before_the_metrics(tmp_path: Path):
    html = write_html_report(_failed_result(), tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="run-failed"' in html
    assert html.index('id="run-failed"') < html.index('id="metrics"')
    assert "5 handler errors" in html
    clean = write_html_report(make_result([100, 101]), tmp_path / "clean.html").read_text(
        encoding="utf-8"
    )
    assert 'id="run-failed"' not in clean
