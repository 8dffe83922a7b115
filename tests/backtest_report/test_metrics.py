"""compute_metrics against values worked out by hand (the arithmetic is in each test)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from metaexpert.backtest.metrics import compute_metrics, daily_closes, drawdown_pct
from metaexpert.core.errors import ConfigurationError, DataError

from .factories import DAY, HOUR, T0, make_prices, make_result, make_trade

SQRT_365 = math.sqrt(365)


def test_drawdown_with_recovery_then_new_dip_reports_deepest_and_longest():
    # 1h bars. Points: initial 100 at T0, then equity after bars 0..5 at T0+1h .. T0+6h.
    # values 100, 110, 99, 88, 105, 121, 110; running peaks 100, 110, 110, 110, 110, 121, 121.
    # depths: 1-99/110 = 10 %, 1-88/110 = 20 %, 1-105/110 = 4.5 %, 1-110/121 = 9.1 % -> 20 %.
    # episode 1: peak 110 at T0+1h, back to 121 >= 110 at T0+5h -> 4 h.
    # episode 2: peak 121 at T0+5h, never recovered, runs to the end T0+6h -> 1 h.
    result = make_result([110, 99, 88, 105, 121, 110], timeframe="1h")
    metrics = compute_metrics(result)
    assert metrics["max_drawdown_pct"] == pytest.approx(20.0)
    assert metrics["max_drawdown_duration_ms"] == 4 * HOUR
    assert metrics["max_drawdown_duration_days"] == pytest.approx(4 / 24)


def test_drawdown_with_loss_from_start_never_recovered_runs_to_end():
    # 1d bars. Peak is the initial capital 100 at T0; 90, 95, 99 stay below it.
    # depth 1-90/100 = 10 %; duration from T0 to the last point T0+3d = 3 days.
    result = make_result([90, 95, 99], timeframe="1d")
    metrics = compute_metrics(result)
    assert metrics["max_drawdown_pct"] == pytest.approx(10.0)
    assert metrics["max_drawdown_duration_ms"] == 3 * DAY
    assert metrics["max_drawdown_duration_days"] == pytest.approx(3.0)


def test_drawdown_series_with_peak_then_dip_gives_underwater_percent():
    # peaks 100 (capital), 120, 120, 120 -> 0, 0, -25 %, -10 %.
    underwater = drawdown_pct(100.0, np.array([100.0, 120.0, 90.0, 108.0]))
    assert underwater == pytest.approx([0.0, 0.0, -25.0, -10.0])


def test_sharpe_and_sortino_with_tiny_daily_series_match_hand_values():
    # 1d bars, capital 100, day closes 110, 99, 108.9, 108.9.
    # returns: +10 %, -10 %, +10 %, 0 %  -> mean 0.025.
    # deviations from the mean: 0.075, -0.125, 0.075, -0.025; squares sum 0.0275;
    # sample variance 0.0275 / 3; Sharpe = 0.025 / sqrt(0.0275 / 3) * sqrt(365) = 4.9887.
    # downside deviation: sqrt((0 + 0.01 + 0 + 0) / 4) = 0.05; Sortino = 0.025 / 0.05 * sqrt(365).
    result = make_result([110, 99, 108.9, 108.9], timeframe="1d")
    metrics = compute_metrics(result)
    assert metrics["sharpe_ratio"] == pytest.approx(0.025 / math.sqrt(0.0275 / 3) * SQRT_365)
    assert metrics["sharpe_ratio"] == pytest.approx(4.98866, rel=1e-5)
    assert metrics["sortino_ratio"] == pytest.approx(0.5 * SQRT_365)
    assert metrics["annualized_volatility_pct"] == pytest.approx(
        math.sqrt(0.0275 / 3) * SQRT_365 * 100
    )
    assert metrics["return_periods"] == 4


def test_sharpe_with_hourly_bars_uses_only_utc_day_closes():
    # Three UTC days of 1h bars. Intraday values are noise; only the last bar of each
    # day counts: closes 110, 99, 108.9 -> returns +0.1, -0.1, +0.1.
    # mean 1/30; sample variance ((2/30)^2 * 2 + (4/30)^2) / 2 = 1/75.
    # Sharpe = (1/30) / sqrt(1/75) * sqrt(365) = 5.5153.
    rng = np.random.default_rng(7)
    equity = rng.uniform(50, 150, size=72)
    equity[23], equity[47], equity[71] = 110.0, 99.0, 108.9
    result = make_result(equity, timeframe="1h")
    metrics = compute_metrics(result)
    assert metrics["return_periods"] == 3
    assert metrics["sharpe_ratio"] == pytest.approx((1 / 30) / math.sqrt(1 / 75) * SQRT_365)
    days, closes = daily_closes(result.equity_timestamps, result.equity)
    assert days.tolist() == [T0, T0 + DAY, T0 + 2 * DAY]
    assert closes == pytest.approx([110.0, 99.0, 108.9])


def test_sharpe_with_risk_free_rate_subtracts_daily_compounded_rate():
    # rf 5 % a year -> per day (1.05)^(1/365) - 1; returns +10 %, -10 %, +10 %, 0 %.
    daily = 1.05 ** (1 / 365) - 1
    result = make_result([110, 99, 108.9, 108.9], timeframe="1d")
    metrics = compute_metrics(result, risk_free_rate=0.05)
    assert metrics["sharpe_ratio"] == pytest.approx(
        (0.025 - daily) / math.sqrt(0.0275 / 3) * SQRT_365
    )


def test_sharpe_with_periods_per_year_uses_per_bar_returns():
    # 1h bars all inside one day: daily resampling would leave a single return (None).
    # Per bar: returns +10 %, -10 %, +10 %, 0 % annualised with sqrt(8760).
    result = make_result([110, 99, 108.9, 108.9], timeframe="1h")
    assert compute_metrics(result)["sharpe_ratio"] is None
    metrics = compute_metrics(result, periods_per_year=8760)
    assert metrics["sharpe_ratio"] == pytest.approx(0.025 / math.sqrt(0.0275 / 3) * math.sqrt(8760))
    assert metrics["return_periods_per_year"] == 8760


def test_trade_statistics_with_mixed_trades_match_hand_values():
    # pnl 30, -10, 20, -20, 0: gross profit 50, gross loss -30, profit factor 50/30.
    # win rate 2 of 5 = 40 % (break-even counts as a trade, not a win or a loss).
    # expectancy (30-10+20-20+0)/5 = 4; average win 25, average loss -15; R = 4/15.
    trades = [
        make_trade(30, bars_held=2),
        make_trade(-10, bars_held=4),
        make_trade(20, bars_held=6),
        make_trade(-20, bars_held=8),
        make_trade(0, bars_held=10),
    ]
    metrics = compute_metrics(make_result([100, 120], trades=trades))
    assert metrics["number_of_trades"] == 5
    assert metrics["winning_trades"] == 2
    assert metrics["losing_trades"] == 2
    assert metrics["profit_factor"] == pytest.approx(50 / 30)
    assert metrics["win_rate_pct"] == pytest.approx(40.0)
    assert metrics["expectancy"] == pytest.approx(4.0)
    assert metrics["expectancy_r"] == pytest.approx(4 / 15)
    assert metrics["average_win"] == pytest.approx(25.0)
    assert metrics["average_loss"] == pytest.approx(-15.0)
    assert metrics["best_trade"] == 30
    assert metrics["worst_trade"] == -20
    assert metrics["average_bars_held"] == pytest.approx(6.0)  # (2+4+6+8+10)/5
    assert metrics["gross_profit"] == pytest.approx(50.0)
    assert metrics["gross_loss"] == pytest.approx(-30.0)


def test_streaks_with_runs_of_wins_and_losses_count_longest():
    # W W W L L W L L L L -> longest wins 3, longest losses 4.
    pnls = [1, 2, 3, -1, -1, 5, -2, -2, -2, -2]
    metrics = compute_metrics(make_result([100], trades=[make_trade(p) for p in pnls]))
    assert metrics["max_consecutive_wins"] == 3
    assert metrics["max_consecutive_losses"] == 4


def test_cagr_with_two_year_span_and_dip_gives_ten_percent_and_calmar():
    # 730 daily bars = 730 days = 2 years of 365 days. 100 -> 121: (1.21)^(1/2) - 1 = 10 %.
    # one dip to 80 before the end: drawdown 20 %, Calmar 10 / 20 = 0.5.
    equity = np.full(730, 100.0)
    equity[728] = 80.0
    equity[729] = 121.0
    metrics = compute_metrics(make_result(equity, timeframe="1d"))
    assert metrics["total_return_pct"] == pytest.approx(21.0)
    assert metrics["annualized_return_pct"] == pytest.approx(10.0)
    assert metrics["span_days"] == pytest.approx(730.0)
    assert metrics["max_drawdown_pct"] == pytest.approx(20.0)
    assert metrics["calmar_ratio"] == pytest.approx(0.5)


def test_exposure_with_three_of_four_bars_in_market_is_75_percent():
    result = make_result([100, 101, 102, 103], exposure=[True, False, True, True])
    assert compute_metrics(result)["exposure_pct"] == pytest.approx(75.0)


def test_metrics_with_no_trades_leave_trade_ratios_undefined():
    metrics = compute_metrics(make_result([100, 105]))
    assert metrics["number_of_trades"] == 0
    assert metrics["profit_factor"] is None
    assert metrics["win_rate_pct"] is None
    assert metrics["expectancy"] is None
    assert metrics["expectancy_r"] is None
    assert metrics["best_trade"] is None
    assert metrics["max_consecutive_wins"] == 0
    assert metrics["gross_profit"] == 0.0


def test_metrics_with_flat_equity_have_no_risk_and_undefined_ratios():
    metrics = compute_metrics(make_result([100.0] * 10))
    assert metrics["total_return_pct"] == 0.0
    assert metrics["annualized_return_pct"] == 0.0
    assert metrics["max_drawdown_pct"] == 0.0
    assert metrics["max_drawdown_duration_ms"] == 0
    assert metrics["sharpe_ratio"] is None
    assert metrics["sortino_ratio"] is None
    assert metrics["calmar_ratio"] is None
    assert metrics["annualized_volatility_pct"] == 0.0


def test_metrics_with_single_bar_compute_returns_but_no_sharpe():
    # One day from 100 to 101: total 1 %, CAGR 1.01^365 - 1, one return -> no Sharpe.
    metrics = compute_metrics(make_result([101.0], timeframe="1d"))
    assert metrics["total_return_pct"] == pytest.approx(1.0)
    assert metrics["annualized_return_pct"] == pytest.approx((1.01**365 - 1) * 100)
    assert metrics["sharpe_ratio"] is None
    assert metrics["max_drawdown_pct"] == 0.0
    assert metrics["bars"] == 1


def test_metrics_with_all_losing_trades_give_zero_profit_factor():
    # pnl -10, -20: gross profit 0 -> profit factor 0 / 30 = 0; win rate 0 %;
    # expectancy -15 = average loss -> -1 R; no average win.
    metrics = compute_metrics(make_result([70.0], trades=[make_trade(-10), make_trade(-20)]))
    assert metrics["profit_factor"] == 0.0
    assert metrics["win_rate_pct"] == 0.0
    assert metrics["expectancy"] == pytest.approx(-15.0)
    assert metrics["expectancy_r"] == pytest.approx(-1.0)
    assert metrics["average_win"] is None
    assert metrics["max_consecutive_losses"] == 2


def test_metrics_with_equity_wiped_out_give_minus_hundred_cagr():
    metrics = compute_metrics(make_result([50.0, 0.0]))
    assert metrics["total_return_pct"] == pytest.approx(-100.0)
    assert metrics["annualized_return_pct"] == -100.0
    assert metrics["max_drawdown_pct"] == pytest.approx(100.0)


def test_buy_and_hold_with_prices_uses_first_open_and_last_close():
    # first symbol opens at 100 and closes at 150 -> +50 %; second symbol is ignored.
    prices = {
        "BTCUSDT": make_prices([100, 120, 130], [120, 130, 150]),
        "ETHUSDT": make_prices([10, 10, 10], [10, 10, 1]),
    }
    result = make_result([100, 101, 102], prices=prices, symbols=("BTCUSDT", "ETHUSDT"))
    assert compute_metrics(result)["buy_and_hold_return_pct"] == pytest.approx(50.0)
    assert compute_metrics(make_result([100]))["buy_and_hold_return_pct"] is None


def test_compute_metrics_with_result_stores_json_safe_values():
    result = make_result([100.0] * 3)
    metrics = compute_metrics(result)
    assert result.metrics == metrics
    json.dumps(metrics, allow_nan=False)
    assert all(value is None or type(value) in (int, float) for value in metrics.values())


def test_compute_metrics_with_mismatched_arrays_raises_data_error():
    result = make_result([100, 101, 102])
    result.exposure = np.array([True])
    with pytest.raises(DataError, match="same length, got 3, 3 and 1"):
        compute_metrics(result)


def test_compute_metrics_with_unsorted_timestamps_raises_data_error():
    result = make_result([100, 101, 102], timestamps=[T0, T0 + DAY, T0 + DAY])
    with pytest.raises(DataError, match="strictly increasing; point 2"):
        compute_metrics(result)


def test_compute_metrics_with_nan_equity_raises_data_error():
    with pytest.raises(DataError, match="non-finite value at point 1"):
        compute_metrics(make_result([100, float("nan"), 102]))


def test_compute_metrics_with_bad_arguments_raises_clear_errors():
    result = make_result([100, 101])
    with pytest.raises(DataError, match="periods_per_year must be a positive number"):
        compute_metrics(result, periods_per_year=0)
    with pytest.raises(DataError, match="risk_free_rate"):
        compute_metrics(result, risk_free_rate=float("nan"))
    result.initial_capital = 0.0
    with pytest.raises(DataError, match="initial_capital must be positive"):
        compute_metrics(result)
    bad_timeframe = make_result([100, 101])
    bad_timeframe.timeframe = "soon"
    with pytest.raises(ConfigurationError, match="invalid timeframe 'soon'"):
        compute_metrics(bad_timeframe)
