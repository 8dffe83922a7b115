"""A strategy with one known best parameter set on the synthetic sine series of conftest.

The price is a sine wave with a 48-bar period whose trough closes at phase 36: buying
at the close of the bar at ``phase`` and selling ``hold`` bars later earns most with
phase=36 (the trough) and hold=24 (the next peak). Nothing in the strategy knows that.
"""

from metaexpert import MetaExpert
from metaexpert.backtest.optimization import IntegerRange

HOUR_MS = 3_600_000
PERIOD = 48

expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)


@expert.on_init(
    symbol="BTCUSDT",
    timeframe="1h",
    lookback_bars=0,
    size_type="percent_equity",
    size_value=95.0,
    strategy_name="cycle_timer",
    phase=0,
    hold=6,
)
def init(ctx):
    ctx.state["entered_ms"] = None


@expert.on_bar(timeframe="1h")
def bar(ctx, bars):
    stamp = bars.last.timestamp
    position = ctx.position()
    if position is None:
        if (stamp // HOUR_MS) % PERIOD == ctx.params.phase:
            ctx.buy()
            ctx.state["entered_ms"] = stamp
    elif (
        ctx.state.get("entered_ms") is not None
        and stamp - ctx.state["entered_ms"] >= ctx.params.hold * HOUR_MS
    ):
        ctx.close(tag="hold_elapsed")
        ctx.state["entered_ms"] = None


expert.parameter_space(
    phase=IntegerRange(low=0, high=42, step=6), hold=IntegerRange(low=6, high=42, step=6)
)
