"""``metaexpert sandbox``: run the local Binance sandbox for offline development.

Real ccxt (and ``metaexpert stream --sandbox-url``) talks to it; it replays the recorded
candles and ticks and matches orders. Blocks until Ctrl-C / SIGTERM.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from metaexpert.cli.errors import reported_errors

__all__ = ["sandbox_command"]


def sandbox_command(
    host: Annotated[str, typer.Option("--host", help="Interface to bind (keep 127.0.0.1 unless you mean it).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port (0: a free one).")] = 8765,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Recorded market data (candle store root).")] = None,
    speed: Annotated[float, typer.Option("--speed", min=0.0, help="Market seconds per wall second (0: step by hand).")] = 60.0,
    timeframe: Annotated[str | None, typer.Option("--timeframe", help="Replayed candle timeframe, e.g. 1m or 5m.")] = None,
    start_time_ms: Annotated[int | None, typer.Option("--start-time-ms", help="Market time to start at (UTC ms).")] = None,
    symbols: Annotated[list[str] | None, typer.Option("--symbol", help="Spot and futures symbol (repeatable).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Serve the loopback Binance (REST + websockets) until interrupted."""
    from metaexpert.sandbox import run_sandbox

    console = Console(highlight=False)
    overrides: dict[str, object] = {}
    if timeframe:
        overrides["timeframe"] = timeframe
    if start_time_ms is not None:
        overrides["start_time_ms"] = start_time_ms
    if symbols:
        overrides["spot_symbols"] = list(symbols)
        overrides["futures_symbols"] = list(symbols)

    def ready(server: object) -> None:
        console.print(f"sandbox listening on http://{server.host}:{server.port} "  # type: ignore[attr-defined]
                      "(Ctrl-C stops it)")

    with reported_errors(debug=debug):
        run_sandbox(host=host, port=port, data_dir=data_dir, speed=speed, on_ready=ready, **overrides)
