"""Expert files the pipeline tests write to disk (flows load experts from files, as in production)."""

from __future__ import annotations

from pathlib import Path

TIMER_EXPERT = """
from metaexpert import MetaExpert

expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)


@expert.on_init(symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.01,
                strategy_name="timer_buyer")
def init(ctx):
    pass


@expert.on_bar(timeframe="1m")
def bar(ctx, bars):
    ctx.state["bars"] = ctx.state.get("bars", 0) + 1


@expert.on_timer(interval="5m")
def every_five_minutes(ctx):
    fired = ctx.state.get("timer_fired", 0) + 1
    ctx.state["timer_fired"] = fired
    if fired == 2:  # the first tick after the one it started on
        ctx.buy()
"""

BAR_EXPERT = """
from metaexpert import MetaExpert

expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_to_console=False)


@expert.on_init(symbol="BTCUSDT", timeframe="1h", size_type="fixed_base", size_value=0.01)
def init(ctx):
    pass


@expert.on_bar(timeframe="1h")
def bar(ctx, bars):
    if len(bars) >= 24 and bars.last_close > bars.sma(24) and not ctx.positions():
        ctx.buy()
    elif len(bars) >= 24 and bars.last_close < bars.sma(24) and ctx.positions():
        ctx.close()
"""


def write_expert(folder: Path, name: str, source: str) -> str:
    path = folder / f"{name}.py"
    path.write_text(source)
    return str(path)
