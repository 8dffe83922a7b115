"""``metaexpert demo``: backtest the bundled EMA-cross example on real Binance candles.

One command for a first impression: BTCUSDT 1h over 2024 with 10,000 USDT, data from
``--data``, ``$METAEXPERT_DATA_DIR`` or the project's shared data folder, else fetched from
the exchange; ends by saying where the HTML report is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from metaexpert.cli.backtest import BacktestRequest, run_backtest
from metaexpert.cli.errors import ExpertLoadError, reported_errors
from metaexpert.cli.options import DebugOption, repository_root, resolve_data_dir

__all__ = ["DEMO_CAPITAL", "DEMO_END", "DEMO_START", "demo_command", "demo_request", "example_path"]

EXAMPLE_FILE = "ema_cross_binance_spot.py"
DEMO_START = "2024-01-01"
DEMO_END = "2024-12-31"
DEMO_CAPITAL = 10_000.0


def example_path() -> Path:
    """The bundled example expert, next to the package in the repository."""
    return repository_root() / "examples" / EXAMPLE_FILE


def shared_data_dir() -> Path:
    """``<repo>/../shared/data``: where the project keeps recorded market data."""
    return repository_root().parent / "shared" / "data"


def demo_request(data: Path | None = None, output: Path | None = None) -> BacktestRequest:
    """The demo backtest, with its data folder resolved (see ``resolve_data_dir``)."""
    example = example_path()
    if not example.is_file():
        raise ExpertLoadError(f"the demo example is missing: {example}")
    return BacktestRequest(
        file=example,
        start=DEMO_START,
        end=DEMO_END,
        capital=DEMO_CAPITAL,
        data_dir=resolve_data_dir(data, fallback=shared_data_dir()),
        output_dir=output,
    )


def demo_command(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Folder of recorded candles (default: $METAEXPERT_DATA_DIR, then "
            "<repo>/../shared/data, else fetch from the exchange).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="Folder for the reports (default: output/<expert>-<timestamp>/).",
            show_default=False,
        ),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Backtest the EMA-cross example on BTCUSDT 1h, 2024, 10,000 USDT."""
    console = Console(highlight=False, soft_wrap=True)
    with reported_errors(debug=debug):
        request = demo_request(data, output)
        source = str(request.data_dir) if request.data_dir else "the exchange (no local data)"
        console.print(
            f"demo: {request.file.name} on BTCUSDT 1h, {DEMO_START} to {DEMO_END}, "
            f"{DEMO_CAPITAL:,.0f} USDT; candles from {escape(source)}"
        )
        outcome = run_backtest(request, console=console)
    if outcome.html_path is not None:
        location = outcome.html_path.resolve().as_uri()
        console.print(f"[bold green]open the report:[/] {escape(location)}")
