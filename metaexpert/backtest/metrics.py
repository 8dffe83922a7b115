"""Performance metrics of a backtest, computed with numpy from a ``BacktestResult``.

Conventions, chosen once so every report and optimisation agrees:

* Percentages are expressed in percent (``12.5`` means 12.5 %).
* A year is 365 days: crypto markets trade every day, so there are no trading-day
  calendars. CAGR uses a 365-day year over the covered span, and Sharpe, Sortino and
  volatility annualise daily returns with ``sqrt(365)``.
* Sharpe and Sortino come from *daily* returns: the per-bar equity is resampled to the
  last point of each UTC day (day closes) and the initial capital is the close before the
  first day. Daily returns make the ratio independent of the bar length (a 1m and a 1h
  run of the same strategy give comparable numbers) and match how funds report them.
  Passing ``periods_per_year`` switches to per-bar returns annualised with
  ``sqrt(periods_per_year)`` instead.
* Sharpe = mean(excess return) / sample standard deviation (ddof=1) * sqrt(N).
  Sortino = mean(excess return) / downside deviation * sqrt(N), where the downside
  deviation is sqrt(mean(min(excess, 0)^2)) over *all* periods (target return = the
  risk-free rate). Both are ``None`` when undefined: fewer than two returns, zero
  variance, or (Sortino) no period below the target.
* The equity curve starts at the initial capital: a loss on the first bar is a drawdown.
  Equity point ``i`` is the equity after bar ``i`` closed, so it is dated at the bar's
  open time plus one bar; the initial capital is dated at the first bar's open.
* Max drawdown duration is the longest time from a peak to the first point at or above
  that peak again, or to the last point when the equity never recovered.
* Profit factor = gross profit / |gross loss| of closed trades, ``None`` when there is
  no losing trade (the ratio is undefined, and ``None`` stays JSON-safe where ``inf``
  would not). Break-even trades (pnl == 0) count neither as wins nor as losses, but they
  do count in the number of trades and the win rate's denominator.
* Expectancy is the mean net pnl per closed trade, in the account currency.
  ``expectancy_r`` expresses it in R, with R = the average losing trade's size (the
  classic "expectancy per unit risked" when the initial stop risk of each trade is not
  recorded); ``None`` when there is no losing trade.
* Buy & hold is the first symbol's last close over its first open, for reference.
* Funding (perpetuals): ``funding_net`` is what the account received minus what it paid,
  in the settlement currency (already in the equity and in the closed trades' pnl);
  ``funding_paid`` and ``funding_received`` are both positive amounts.
* Per symbol (``result.symbol_metrics``, a portfolio's summary table): the closed trades of
  that symbol (count, wins, losses, win rate, net pnl, fees, funding, best and worst trade,
  average bars held), its share of the portfolio's return (net pnl over the initial
  capital, in percent), its time in market (the union of its trades' holding spans over
  the run) and its buy & hold return over the candles of the run.

Every value is a plain ``float``/``int`` or ``None``: never NaN, never a numpy scalar.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from metaexpert.backtest.result import BacktestResult
from metaexpert.core.errors import DataError
from metaexpert.core.timeframe import DAY_MS, Timeframe

DAYS_PER_YEAR: Final = 365
YEAR_MS: Final = DAYS_PER_YEAR * DAY_MS

MetricValue = float | int | None


def compute_metrics(
    result: BacktestResult,
    *,
    periods_per_year: float | None = None,
    risk_free_rate: float = 0.0,
) -> dict[str, MetricValue]:
    """Compute every headline metric of ``result`` and store them in ``result.metrics``.

    ``risk_free_rate`` is an annual rate as a fraction (``0.04`` for 4 % a year),
    converted to a per-period rate geometrically. ``periods_per_year`` (``None`` by
    default) replaces the daily resampling by per-bar returns annualised with that
    many bars per year. Returns the same dictionary it stores.
    """
    if periods_per_year is not None and not (
        math.isfinite(periods_per_year) and periods_per_year > 0
    ):
        raise DataError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
    if not math.isfinite(risk_free_rate) or risk_free_rate <= -1.0:
        raise DataError(
            f"risk_free_rate must be a finite annual fraction > -1, got {risk_free_rate!r}"
        )
    if not (math.isfinite(result.initial_capital) and result.initial_capital > 0):
        raise DataError(f"initial_capital must be positive, got {result.initial_capital!r}")

    timestamps, equity, exposure = _validated_curve(result)
    bar_ms = bar_milliseconds(result.timeframe)
    point_times = equity_point_times(timestamps, bar_ms)

    metrics: dict[str, MetricValue] = {}
    metrics.update(_return_metrics(result, timestamps, bar_ms))
    metrics.update(
        _risk_adjusted_metrics(
            result,
            timestamps,
            equity,
            periods_per_year=periods_per_year,
            risk_free_rate=risk_free_rate,
        )
    )
    metrics.update(_drawdown_metrics(result.initial_capital, equity, point_times))
    annualized = metrics["annualized_return_pct"]
    depth = metrics["max_drawdown_pct"]
    metrics["calmar_ratio"] = (
        float(annualized) / float(depth) if annualized is not None and depth else None
    )
    metrics["exposure_pct"] = float(exposure.mean() * 100.0) if exposure.size else 0.0
    metrics["bars"] = int(equity.size)
    metrics.update(trade_metrics(result))
    metrics["fees_paid"] = float(result.fees_paid)
    metrics.update(funding_metrics(result))
    result.symbol_metrics = symbol_metrics(result)
    metrics["buy_and_hold_return_pct"] = _buy_and_hold_pct(result)

    clean = {key: _clean(value) for key, value in metrics.items()}
    result.metrics.update(clean)
    return clean


def bar_milliseconds(timeframe: str) -> int:
    """Length of one base bar in ms (months count as their nominal 30 days)."""
    return Timeframe.parse(timeframe).milliseconds


def equity_point_times(timestamps: np.ndarray, bar_ms: int) -> np.ndarray:
    """Times (epoch ms) of [initial capital, equity after bar 0, after bar 1, ...]."""
    if timestamps.size == 0:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(([timestamps[0]], timestamps + bar_ms)).astype(np.int64)


def drawdown_pct(initial_capital: float, equity: np.ndarray) -> np.ndarray:
    """Underwater curve in percent (<= 0) for each equity point, peaks starting at capital."""
    equity = np.asarray(equity, dtype=np.float64)
    peaks = np.maximum.accumulate(np.concatenate(([initial_capital], equity)))[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        underwater = np.where(peaks > 0, (equity / peaks - 1.0) * 100.0, 0.0)
    return np.minimum(underwater, 0.0)


def daily_closes(timestamps: np.ndarray, equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Last equity value of each UTC day present in the series: (day start ms, equity)."""
    if timestamps.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    days = timestamps // DAY_MS
    last_of_day = np.flatnonzero(np.diff(days) != 0)
    last_of_day = np.append(last_of_day, days.size - 1)
    return days[last_of_day] * DAY_MS, equity[last_of_day]


def trade_metrics(result: BacktestResult) -> dict[str, MetricValue]:
    """Statistics of the closed trades (round trips)."""
    trades = result.closed_trades
    count = len(trades)
    pnl = np.fromiter((trade.pnl for trade in trades), dtype=np.float64, count=count)
    returns = np.fromiter((trade.return_pct for trade in trades), dtype=np.float64, count=count)
    bars_held = np.fromiter((trade.bars_held for trade in trades), dtype=np.float64, count=count)
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    gross_profit = float(wins.sum())
    gross_loss = float(losses.sum())
    average_loss = float(losses.mean()) if losses.size else None
    expectancy = float(pnl.mean()) if count else None
    longest_wins, longest_losses = _longest_streaks(pnl)
    return {
        "number_of_trades": count,
        "winning_trades": int(wins.size),
        "losing_trades": int(losses.size),
        "win_rate_pct": float(wins.size / count * 100.0) if count else None,
        "gross_profit": gross_profit,
        "gross_loss": gross_loss,
        "net_trade_pnl": float(pnl.sum()),
        "profit_factor": gross_profit / -gross_loss if losses.size else None,
        "expectancy": expectancy,
        "expectancy_pct": float(returns.mean()) if count else None,
        "expectancy_r": (
            expectancy / -average_loss
            if expectancy is not None and average_loss is not None
            else None
        ),
        "average_win": float(wins.mean()) if wins.size else None,
        "average_loss": average_loss,
        "best_trade": float(pnl.max()) if count else None,
        "worst_trade": float(pnl.min()) if count else None,
        "best_trade_pct": float(returns.max()) if count else None,
        "worst_trade_pct": float(returns.min()) if count else None,
        "average_bars_held": float(bars_held.mean()) if count else None,
        "max_consecutive_wins": longest_wins,
        "max_consecutive_losses": longest_losses,
    }


# --------------------------------------------------------------------------- internals


def _validated_curve(result: BacktestResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    timestamps = np.asarray(result.equity_timestamps, dtype=np.int64)
    equity = np.asarray(result.equity, dtype=np.float64)
    exposure = np.asarray(result.exposure, dtype=bool)
    if timestamps.ndim != 1 or equity.ndim != 1 or exposure.ndim != 1:
        raise DataError("equity_timestamps, equity and exposure must be one-dimensional arrays")
    if not timestamps.size == equity.size == exposure.size:
        raise DataError(
            "equity_timestamps, equity and exposure must have the same length, got "
            f"{timestamps.size}, {equity.size} and {exposure.size}"
        )
    if timestamps.size > 1 and not bool(np.all(np.diff(timestamps) > 0)):
        first_bad = int(np.flatnonzero(np.diff(timestamps) <= 0)[0]) + 1
        raise DataError(
            "equity_timestamps must be strictly increasing; point "
            f"{first_bad} ({int(timestamps[first_bad])}) is not after the one before it"
        )
    if not bool(np.all(np.isfinite(equity))):
        first_bad = int(np.flatnonzero(~np.isfinite(equity))[0])
        raise DataError(f"equity contains a non-finite value at point {first_bad}")
    return timestamps, equity, exposure


def _return_metrics(
    result: BacktestResult, timestamps: np.ndarray, bar_ms: int
) -> dict[str, MetricValue]:
    initial = result.initial_capital
    final = float(result.final_equity)
    growth = final / initial
    if timestamps.size:
        span_ms = int(timestamps[-1] + bar_ms - timestamps[0])
    else:
        span_ms = int(result.end_ms - result.start_ms)
    years = span_ms / YEAR_MS
    if years <= 0:
        annualized = None
    elif growth <= 0:
        annualized = -100.0
    else:
        annualized = _safe_power_growth(growth, years)
    return {
        "initial_capital": float(initial),
        "final_equity": final,
        "total_return_pct": (growth - 1.0) * 100.0,
        "annualized_return_pct": annualized,
        "span_days": span_ms / DAY_MS,
    }


def _safe_power_growth(growth: float, years: float) -> float | None:
    """CAGR in percent; ``None`` if it overflows (a huge return over a few hours)."""
    try:
        return (math.exp(math.log(growth) / years) - 1.0) * 100.0
    except OverflowError:
        return None


def _risk_adjusted_metrics(
    result: BacktestResult,
    timestamps: np.ndarray,
    equity: np.ndarray,
    *,
    periods_per_year: float | None,
    risk_free_rate: float,
) -> dict[str, MetricValue]:
    if periods_per_year is None:
        _, closes = daily_closes(timestamps, equity)
        periods = float(DAYS_PER_YEAR)
    else:
        closes = equity
        periods = float(periods_per_year)
    values = np.concatenate(([result.initial_capital], closes))
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.diff(values) / values[:-1]
    returns = returns[np.isfinite(returns)]
    period_rate = (1.0 + risk_free_rate) ** (1.0 / periods) - 1.0
    excess = returns - period_rate
    scale = math.sqrt(periods)

    sharpe = sortino = volatility = None
    if excess.size >= 2:
        deviation = float(returns.std(ddof=1))
        volatility = deviation * scale * 100.0
        if deviation > _tolerance(returns):
            sharpe = float(excess.mean()) / float(excess.std(ddof=1)) * scale
        downside = float(np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2)))
        if downside > _tolerance(returns):
            sortino = float(excess.mean()) / downside * scale
    return {
        "sharpe_ratio": sharpe,
        "sortino_ratio": sortino,
        "annualized_volatility_pct": volatility,
        "return_periods": int(returns.size),
        "return_periods_per_year": periods,
    }


def _tolerance(returns: np.ndarray) -> float:
    """Below this a deviation is floating-point noise of a flat curve, not risk."""
    return 1e-12 * max(1.0, float(np.abs(returns).max(initial=0.0)))


def _drawdown_metrics(
    initial_capital: float, equity: np.ndarray, point_times: np.ndarray
) -> dict[str, MetricValue]:
    values = np.concatenate(([initial_capital], equity))
    peaks = np.maximum.accumulate(values)
    depth = float(((1.0 - values / peaks) * 100.0).max())
    underwater = values < peaks
    duration_ms = 0
    if underwater.any():
        flags = underwater.astype(np.int8)
        changes = np.diff(np.concatenate(([0], flags, [0])))
        starts = np.flatnonzero(changes == 1)  # first underwater point of each episode
        ends = np.flatnonzero(changes == -1)  # first point after the episode
        # The peak is the point just before the episode (index 0 is never underwater).
        # Recovery is the first point back at the peak; an unrecovered episode runs to the end.
        ends = np.minimum(ends, values.size - 1)
        duration_ms = int((point_times[ends] - point_times[starts - 1]).max())
    return {
        "max_drawdown_pct": max(depth, 0.0),
        "max_drawdown_duration_ms": duration_ms,
        "max_drawdown_duration_days": duration_ms / DAY_MS,
    }


def _longest_streaks(pnl: np.ndarray) -> tuple[int, int]:
    """Longest runs of consecutive winning and losing trades (in exit order)."""
    return _longest_run(pnl > 0), _longest_run(pnl < 0)


def _longest_run(flags: np.ndarray) -> int:
    if not flags.any():
        return 0
    changes = np.diff(np.concatenate(([0], flags.astype(np.int8), [0])))
    return int((np.flatnonzero(changes == -1) - np.flatnonzero(changes == 1)).max())


def _buy_and_hold_pct(result: BacktestResult) -> float | None:
    if not result.symbols or result.symbols[0] not in result.prices:
        return None
    series = result.prices[result.symbols[0]]
    if len(series.open) == 0 or not series.open[0] > 0:
        return None
    return (float(series.close[-1]) / float(series.open[0]) - 1.0) * 100.0


def _clean(value: object) -> MetricValue:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def funding_metrics(result: BacktestResult) -> dict[str, MetricValue]:
    """Totals of the perpetual funding payments of ``result`` (all zero for spot)."""
    amounts = [float(payment.amount) for payment in result.funding]
    received = sum((amount for amount in amounts if amount > 0), 0.0)
    paid = -sum((amount for amount in amounts if amount < 0), 0.0)
    return {
        "funding_net": received - paid,
        "funding_paid": paid,
        "funding_received": received,
        "funding_payments": len(amounts),
    }


def symbol_metrics(result: BacktestResult) -> dict[str, dict[str, MetricValue]]:
    """One row of closed-trade statistics per symbol of ``result`` (every symbol, traded or not)."""
    by_symbol: dict[str, list] = {symbol: [] for symbol in result.symbols}
    for trade in result.closed_trades:
        by_symbol.setdefault(trade.symbol, []).append(trade)
    span = max(result.end_ms - result.start_ms, 1)
    table: dict[str, dict[str, MetricValue]] = {}
    for symbol, trades in by_symbol.items():
        pnls = [float(trade.pnl) for trade in trades]
        wins = sum(1 for pnl in pnls if pnl > 0)
        losses = sum(1 for pnl in pnls if pnl < 0)
        held = 0
        reach = result.start_ms
        for start, end in sorted((int(trade.entry_time), int(trade.exit_time)) for trade in trades):
            start = max(start, reach)
            if end > start:
                held += end - start
                reach = end
        prices = result.prices.get(symbol)
        buy_and_hold = None
        if prices is not None and prices.close.size and prices.open[0] > 0:
            buy_and_hold = float((prices.close[-1] / prices.open[0] - 1.0) * 100.0)
        net = sum(pnls, 0.0)
        table[symbol] = {
            "number_of_trades": len(trades),
            "winning_trades": wins,
            "losing_trades": losses,
            "win_rate_pct": wins / len(trades) * 100.0 if trades else None,
            "net_trade_pnl": net,
            "return_contribution_pct": net / result.initial_capital * 100.0,
            "fees": sum((float(trade.fees) for trade in trades), 0.0),
            "funding": sum((float(trade.funding) for trade in trades), 0.0),
            "best_trade": max(pnls) if pnls else None,
            "worst_trade": min(pnls) if pnls else None,
            "average_bars_held": float(np.mean([trade.bars_held for trade in trades]))
            if trades
            else None,
            "time_in_market_pct": held / span * 100.0,
            "buy_and_hold_return_pct": buy_and_hold,
        }
    return {
        symbol: {key: _clean(value) for key, value in row.items()} for symbol, row in table.items()
    }
