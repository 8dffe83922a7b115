"""``metaexpert run FILE --mode paper|live``: trade an expert file against its exchange.

The same file backtests with ``metaexpert backtest``; only the mode changes. Paper mode
needs no keys (market data from the venue, fills simulated by the engine); live mode
takes keys from the expert file or the environment (``metaexpert secrets``). ``--base-url``
points the expert at the local sandbox (``metaexpert sandbox``) for offline development, as
it does for ``metaexpert stream`` (``--sandbox-url`` is accepted as another name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from metaexpert.cli.errors import exit_if_run_failed, reported_errors
from metaexpert.cli.loader import load_expert
from metaexpert.cli.options import BaseUrlOption, DebugOption, SandboxUrlOption
from metaexpert.cli.stream import one_base_url, sandbox_exchange_overrides

__all__ = ["run_command"]


def run_command(
    file: Annotated[Path, typer.Argument(help="The expert file.")],
    mode: Annotated[str, typer.Option("--mode", help="paper or live.")] = "paper",
    steps: Annotated[
        int | None, typer.Option("--steps", min=1, help="Stop after this many polls.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", min=1, help="Stop after this many seconds.")
    ] = None,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.05, help="Seconds between polls.")
    ] = 1.0,
    base_url: BaseUrlOption = None,
    sandbox_url: SandboxUrlOption = None,
    capital: Annotated[
        float, typer.Option("--capital", min=0.01, help="Paper-mode starting capital.")
    ] = 10_000.0,
    stop_on_error: Annotated[
        bool,
        typer.Option(
            "--stop-on-error",
            help="Stop at the first handler error (the exit code is 1 either way).",
        ),
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65_535,
            help="Serve Prometheus metrics at http://127.0.0.1:PORT/metrics (0: a free port).",
        ),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Run FILE in paper or live mode until --steps, --duration, Ctrl-C or ctx.stop()."""
    if mode not in ("paper", "live"):
        raise typer.BadParameter(
            "expected paper or live (backtests: metaexpert backtest)", param_hint="--mode"
        )
    with reported_errors(debug=debug):
        url = one_base_url(base_url, sandbox_url)
        # Polling needs the REST URL only; the same check and form as stream's (no trailing slash).
        overrides: dict[str, object] = {}
        if url:
            overrides["base_url"] = sandbox_exchange_overrides(url)["base_url"]
        if metrics_port is not None:
            overrides["metrics_port"] = metrics_port
        loaded = load_expert(file, overrides=overrides or None)
        expert = loaded.expert
        engine = expert.run(
            trade_mode=mode,
            initial_capital=capital,
            max_steps=steps,
            duration_seconds=duration,
            poll_interval=poll_interval,
            **({"stop_on_error": True} if stop_on_error else {}),
        )
    console = Console(highlight=False)
    account = engine.portfolio.account
    console.print(
        f"{escape(loaded.name)} ({mode}): {len(engine.orders)} orders, {len(engine.fills)} fills, "
        f"equity {account.equity:,.2f} {account.currency}"
    )
    for position in engine.portfolio.positions():
        console.print(
            f"  open {position.side} {position.quantity:g} {position.symbol} at {position.entry_price:,.2f}"
        )
    exit_if_run_failed(engine)
