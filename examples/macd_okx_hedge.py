"""MACD on OKX USDT swaps in hedge mode: long and short legs live side by side.

A MACD cross up opens (or keeps) a long leg and closes the short leg; a cross down does
the opposite. Cross margin, 2x. A trailing stop protects each leg.
"""

from metaexpert import MetaExpert

expert = MetaExpert(
    exchange="okx",
    market_type="futures",
    contract_type="linear",
    margin_mode="cross",
    position_mode="hedge",
    log_to_file=False,
)


@expert.on_init(
    symbol="ETHUSDT",
    timeframe="1h",
    lookback_bars=100,
    strategy_name="macd_okx_hedge",
    leverage=2,
    size_type="percent_equity",
    size_value=20.0,
    trailing_stop_pct=4.0,
    max_positions_per_symbol=2,
)
def init(ctx):
    ctx.log.info("MACD hedge on %s", ctx.symbol)


@expert.on_bar(timeframe="1h")
def bar(ctx, bars):
    line, signal, _ = bars.macd(12, 26, 9)
    above = line > signal
    previous = ctx.state.get("above")
    ctx.state["above"] = above
    if previous is None or previous == above:
        return
    if above:
        ctx.close(side="short", tag="macd_cross_up")
        if ctx.position(side="long") is None:
            ctx.buy(position_side="long")
    else:
        ctx.close(side="long", tag="macd_cross_down")
        if ctx.position(side="short") is None:
            ctx.sell(position_side="short")


if __name__ == "__main__":
    expert.run(
        trade_mode="backtest",
        backtest_start="2024-01-01",
        backtest_end="2024-12-31",
        initial_capital=10_000,
    )
