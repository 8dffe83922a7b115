"""RSI mean reversion on Bybit USDT linear perpetuals, 3x isolated, one-way mode.

Buys when RSI(14) is oversold and price is above its 4h trend, sells short when overbought
and below it; exits at the RSI midline or through the protective stop/target. Runs in
backtest on the shared Binance recordings (used as a price proxy for Bybit).
"""

from metaexpert import MetaExpert

expert = MetaExpert(
    exchange="bybit",
    market_type="futures",
    contract_type="linear",
    margin_mode="isolated",
    position_mode="oneway",
    log_to_file=False,
)


@expert.on_init(
    symbol="BTCUSDT",
    timeframe="1h",
    lookback_bars=300,
    strategy_name="rsi_mean_reversion_bybit_linear",
    leverage=3,
    size_type="risk_based",
    size_value=1.0,  # risk 1% of equity per trade
    stop_loss_pct=2.5,
    take_profit_pct=5.0,
    max_open_positions=1,
    max_drawdown_pct=30.0,
    daily_loss_limit=500.0,
    oversold=28,
    overbought=72,
)
def init(ctx):
    ctx.log.info("RSI mean reversion on %s (%s)", ctx.symbol, ctx.mode)


@expert.on_bar(timeframe="4h")
def trend(ctx, bars):
    ctx.state["trend_up"] = bars.last_close > bars.ema(50)


@expert.on_bar(timeframe="1h")
def bar(ctx, bars):
    rsi = bars.rsi(14)
    position = ctx.position()
    if position is None:
        if rsi < ctx.params.oversold and ctx.state.get("trend_up", False):
            ctx.buy()
        elif rsi > ctx.params.overbought and not ctx.state.get("trend_up", True):
            ctx.sell()
    elif (position.side == "long" and rsi > 50) or (position.side == "short" and rsi < 50):
        ctx.close(tag="rsi_midline")


@expert.on_risk()
def risk(ctx, event):
    ctx.log.info("risk rule %s %s: %s", event.rule, event.action, event.reason)


if __name__ == "__main__":
    expert.run(
        trade_mode="backtest",
        backtest_start="2024-01-01",
        backtest_end="2024-12-31",
        initial_capital=10_000,
    )
