"""An expert that records, per pass, every bar timestamp it could see: the leak detector.

Each pass appends (first bar seen, last bar seen, newest timestamp visible anywhere in the
series) to ``expert.seen_passes``. It also trades the cycle so passes have scores.
"""

from metaexpert import MetaExpert
from metaexpert.backtest.optimization import IntegerRange

HOUR_MS = 3_600_000

expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)
expert.seen_passes = []


@expert.on_init(
    symbol="BTCUSDT",
    timeframe="1h",
    lookback_bars=24,
    size_type="percent_equity",
    size_value=50.0,
    strategy_name="bar_recorder",
    phase=0,
    hold=12,
)
def init(ctx):
    ctx.state["seen"] = []
    ctx.state["entered_ms"] = None


@expert.on_bar(timeframe="1h")
def bar(ctx, bars):
    ctx.state["seen"].append((bars.last.timestamp, int(bars.timestamps.max())))
    position = ctx.position()
    stamp = bars.last.timestamp
    if position is None and (stamp // HOUR_MS) % 48 == ctx.params.phase:
        ctx.buy()
        ctx.state["entered_ms"] = stamp
    elif position is not None and stamp - ctx.state["entered_ms"] >= ctx.params.hold * HOUR_MS:
        ctx.close()


@expert.on_backtest_pass()
def record(ctx, result):
    seen = ctx.state["seen"]
    expert.seen_passes.append(
        {
            "first": min(s[0] for s in seen),
            "last": max(s[0] for s in seen),
            "newest_visible": max(s[1] for s in seen),
            "parameters": dict(result.parameters),
        }
    )


expert.parameter_space(
    phase=IntegerRange(low=12, high=36, step=24), hold=IntegerRange(low=12, high=24, step=12)
)
