"""EMA cross on Binance spot: long when the fast EMA crosses above the slow one.

Run a backtest of 2024 on the shared recordings, either way:
    python examples/ema_cross_binance_spot.py
    metaexpert backtest examples/ema_cross_binance_spot.py --start 2024-01-01 --end 2024-12-31
"""

from metaexpert import MetaExpert

expert = MetaExpert(
    exchange="binance",
    market_type="spot",
    log_level="INFO",
    log_to_file=False,
)


@expert.on_init(
    symbol="BTCUSDT",
    timeframe="1h",
    lookback_bars=200,
    strategy_name="ema_cross_binance_spot",
    size_type="percent_equity",
    size_value=95.0,
    stop_loss_pct=3.0,
    take_profit_pct=9.0,
    min_volume=100.0,  # skip entries after bars with < 100 BTC traded
    fast=12,
    slow=48,
    trend=200,
)
def init(ctx):
    ctx.log.info(
        "EMA cross %s/%s on %s %s", ctx.params.fast, ctx.params.slow, ctx.symbol, ctx.timeframe
    )


@expert.on_bar(timeframe="1h")
def bar(ctx, bars):
    fast, slow = bars.ema(ctx.params.fast), bars.ema(ctx.params.slow)
    state = ctx.state
    above = fast > slow
    crossed_up = above and state.get("above") is False
    crossed_down = not above and state.get("above") is True
    state["above"] = above
    position = ctx.position()
    if crossed_up and position is None and bars.last_close > bars.ema(ctx.params.trend):
        ctx.buy()
    elif crossed_down and position is not None:
        ctx.close(tag="ema_cross_down")


@expert.on_deinit()
def deinit(ctx, reason):
    ctx.log.info("finished: %s, equity %.2f", reason, ctx.equity)


if __name__ == "__main__":
    expert.run(
        trade_mode="backtest",
        backtest_start="2024-01-01",
        backtest_end="2024-12-31",
        initial_capital=10_000,
    )
