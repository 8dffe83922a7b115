"""``metaexpert report RESULT.json``: render the HTML report again from a stored backtest result.

Useful after changing the display time zone, or for a result copied from another machine.
The stored JSON holds the metrics, trades and equity curve; the price charts need the
candles, which ``--data`` (a store folder or candle file, validated as in a backtest) supplies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from metaexpert.backtest.result import BacktestResult, PriceSeries
from metaexpert.cli.errors import reported_errors
from metaexpert.cli.options import DebugOption

__all__ = ["render_report", "report_command"]


def render_report(
    result_path: Path,
    output: Path | None = None,
    *,
    display_timezone: str = "UTC",
    data: Path | None = None,
    exchange: str = "binance",
    market_type: str = "spot",
    console: Console | None = None,
) -> Path:
    """Read ``result_path``, optionally reload its candles from ``data``, write the HTML report."""
    from metaexpert.backtest.report import print_summary, resolve_timezone, write_html_report
    from metaexpert.backtest.result_file import read_result_json

    resolve_timezone(display_timezone)  # a bad zone fails before any work
    result = read_result_json(result_path)
    if data is not None:
        result.prices = _prices(result, data, exchange, market_type)
    console = console or Console(highlight=False, soft_wrap=True)
    print_summary(result, console)
    target = output or result_path.with_name("report.html")
    path = write_html_report(result, target, display_timezone=display_timezone)
    console.print(f"HTML report: {escape(str(path))}", highlight=False)
    return path


def _prices(
    result: BacktestResult, data: Path, exchange: str, market_type: str
) -> dict[str, PriceSeries]:
    """Each symbol's candles over the result's period (a store without them falls back to Binance spot)."""
    from metaexpert.backtest.data_source import candle_source_for

    source = candle_source_for(data)
    prices: dict[str, PriceSeries] = {}
    for symbol in result.symbols:
        frame = source.load(
            exchange, market_type, symbol, result.timeframe, result.start_ms, result.end_ms
        ).frame
        prices[symbol] = PriceSeries(
            *(
                frame.get_column(name).to_numpy()
                for name in ("timestamp", "open", "high", "low", "close")
            )
        )
    return prices


def report_command(
    result: Annotated[
        Path,
        typer.Argument(help="A result.json written by `metaexpert backtest`.", show_default=False),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="Where to write the HTML (default: report.html beside the JSON).",
            show_default=False,
        ),
    ] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="Display time zone (IANA name).")
    ] = "UTC",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Store folder or candle file for the price charts (without it: equity and tables only).",
            show_default=False,
        ),
    ] = None,
    exchange: Annotated[
        str, typer.Option("--exchange", help="Exchange folder of the store (with --data).")
    ] = "binance",
    market_type: Annotated[
        str, typer.Option("--market-type", help="Market folder of the store (with --data).")
    ] = "spot",
    debug: DebugOption = False,
) -> None:
    """Render the HTML report again from a stored backtest result (result.json)."""
    with reported_errors(debug=debug):
        render_report(
            result,
            output,
            display_timezone=timezone,
            data=data,
            exchange=exchange.lower(),
            market_type=market_type.lower(),
        )
