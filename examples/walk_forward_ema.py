"""Walk-forward analysis of an EMA cross on real BTCUSDT 1h candles (2019 to 2025).

Every 180 days, the fast/slow/trend EMA lengths are re-optimised (Optuna TPE, Sharpe with
at least 5 trades) on the preceding 365 days, then traded on the next 180 days that the
optimisation never saw. The report compares in-sample and out-of-sample results per
window, draws the stitched out-of-sample equity and rates robustness.

    python examples/walk_forward_ema.py            # about a minute on 2 cores
    python examples/walk_forward_ema.py --workers 1 --trials 8 --start 2022-01-01
"""

import argparse

from metaexpert import MetaExpert
from metaexpert.backtest.optimization import (
    IntegerRange,
    optimize_walk_forward,
    write_walk_forward_report,
)

expert = MetaExpert(exchange="binance", market_type="spot", log_to_file=False, log_level="WARNING")


@expert.on_init(
    symbol="BTCUSDT",
    timeframe="1h",
    lookback_bars=300,
    strategy_name="walk_forward_ema",
    size_type="percent_equity",
    size_value=95.0,
    stop_loss_pct=4.0,
    fast=12,
    slow=48,
    trend=200,
)
def init(ctx):
    ctx.state["above"] = None


@expert.on_bar(timeframe="1h")
def bar(ctx, bars):
    fast, slow = bars.ema(ctx.params.fast), bars.ema(ctx.params.slow)
    above = fast > slow
    crossed_up = above and ctx.state.get("above") is False
    crossed_down = not above and ctx.state.get("above") is True
    ctx.state["above"] = above
    position = ctx.position()
    if crossed_up and position is None and bars.last_close > bars.ema(ctx.params.trend):
        ctx.buy()
    elif crossed_down and position is not None:
        ctx.close(tag="ema_cross_down")


# What the optimiser may vary, declared next to the strategy.
expert.parameter_space(
    fast=IntegerRange(low=6, high=36, step=3),
    slow=IntegerRange(low=24, high=144, step=12),
    trend=IntegerRange(low=100, high=300, step=50),
    constraints=["fast * 2 <= slow"],
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--start", default="2019-01-01")
    parser.add_argument("--end", default="2025-12-31")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", default="output/walk_forward_ema/report.html")
    parser.add_argument(
        "--database-url", default=None, help="store every pass, e.g. sqlite:///output/runs.sqlite"
    )
    arguments = parser.parse_args()

    def progress(window) -> None:
        best = window.best
        print(
            f"window {window.window.index:2d}: best {best.parameters if best else None} "
            f"IS {window.in_sample_metrics.get('total_return_pct') or 0:7.1f}%  "
            f"OOS {window.out_of_sample_metrics.get('total_return_pct') or 0:7.1f}% "
            f"in {window.out_of_sample_metrics.get('number_of_trades') or 0} trades",
            flush=True,
        )

    result = optimize_walk_forward(
        expert,
        start=arguments.start,
        end=arguments.end,
        windows={"mode": "rolling", "in_sample_days": 365, "out_of_sample_days": 180},
        method="tpe",
        trials=arguments.trials,
        seed=42,
        fitness={"name": "sharpe", "min_trades": 5},
        workers=arguments.workers,
        backtest={"initial_capital": 10_000.0},
        database_url=arguments.database_url,
        on_window=progress,
    )
    summary = result.summary
    trades = sum(
        int(window.out_of_sample_metrics.get("number_of_trades") or 0) for window in result.windows
    )
    print(f"out-of-sample trades: {trades} in {summary['windows_tested']} windows")
    print(f"walk-forward efficiency: {summary['walk_forward_efficiency']}")
    print(
        f"stitched out-of-sample return: {summary['out_of_sample_total_return_pct']:.1f}% "
        f"(max drawdown {summary['out_of_sample_max_drawdown_pct']:.1f}%), "
        f"{summary['profitable_out_of_sample_windows']}/{summary['windows_tested']} windows profitable"
    )
    path = write_walk_forward_report(
        result,
        arguments.output,
        title="EMA cross walk-forward, BTCUSDT 1h",
        heat_map=("fast", "slow"),
    )
    print(f"report: {path}")


if __name__ == "__main__":
    main()
