"""An expert that scores itself in on_backtest and raises for one parameter value."""

from metaexpert import MetaExpert

expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)
expert.pass_calls = []


@expert.on_init(
    symbol="BTCUSDT",
    timeframe="1h",
    lookback_bars=0,
    strategy_name="scored_by_handler",
    target=3,
    explode=0,
)
def init(ctx):
    if ctx.params.explode:
        raise RuntimeError("this parameter set is broken on purpose")


@expert.on_bar(timeframe="1h")
def bar(ctx, bars):
    return None


@expert.on_backtest()
def score(ctx, result):
    return -abs(ctx.params.target - 7)  # the expert's own fitness: best at target = 7


@expert.on_backtest_pass()
def after_pass(ctx, result):
    expert.pass_calls.append(result.metrics.get("fitness"))
