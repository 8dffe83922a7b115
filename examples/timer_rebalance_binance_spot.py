"""Timer strategy on Binance spot: every 15 minutes, hold BTC while the hourly trend is up.

The decision runs in ``on_timer`` (not on each bar), so its evaluate deployment gets the
timer's cron: ``*/15 * * * *`` (``deployments.schedules.cron_for_expert``). Bars still feed the
hourly series the timer reads.

    metaexpert backtest examples/timer_rebalance_binance_spot.py --start 2024-01-01 --end 2024-03-31
"""

from metaexpert import MetaExpert

expert = MetaExpert(exchange="binance", market_type="spot", log_level="INFO", log_to_file=False)


@expert.on_init(
    symbol="BTCUSDT",
    timeframe="1h",
    lookback_bars=60,
    strategy_name="timer_rebalance_binance_spot",
    size_type="percent_equity",
    size_value=50.0,
    stop_loss_pct=4.0,
    trend=48,
)
def init(ctx):
    ctx.log.info("timer rebalance on %s, trend EMA %s", ctx.symbol, ctx.params.trend)


@expert.on_bar(timeframe="1h")
def bar(ctx, bars):
    ctx.state["trend_up"] = bool(
        len(bars) >= ctx.params.trend and bars.last_close > bars.ema(ctx.params.trend)
    )


@expert.on_timer(interval="15m")
def rebalance(ctx):
    trend_up = ctx.state.get("trend_up")
    position = ctx.position()
    if trend_up and position is None:
        ctx.buy(tag="trend_up")
    elif trend_up is False and position is not None:
        ctx.close(tag="trend_down")


if __name__ == "__main__":
    expert.run(
        trade_mode="backtest",
        backtest_start="2024-01-01",
        backtest_end="2024-03-31",
        initial_capital=10_000,
    )
