"""``metaexpert stream FILE``: the streaming worker (trades -> on_tick, order book -> on_book).

A long-running process next to the cron-driven evaluations: it starts the expert in paper
(default) or live mode, then keeps websocket subscriptions through the gateway until
interrupted or ``--duration`` elapses, and prints tick-to-handler latency at the end.
``--base-url`` points REST and websockets at a local ``metaexpert sandbox``, as it does for
``metaexpert run`` (``--sandbox-url`` is its old name, still accepted).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from metaexpert.cli.errors import reported_errors
from metaexpert.cli.options import BaseUrlOption, DebugOption, SandboxUrlOption
from metaexpert.core.enums import TradeMode
from metaexpert.core.errors import ConfigurationError

__all__ = ["one_base_url", "run_stream", "sandbox_exchange_overrides", "stream_command"]


def one_base_url(base_url: str | None, old_name_value: str | None) -> str | None:
    """``--base-url``, or its old name ``--sandbox-url`` (kept, hidden); both at once must agree."""
    if base_url and old_name_value and base_url != old_name_value:
        raise ConfigurationError(
            f"--base-url {base_url} and --sandbox-url {old_name_value} differ; give --base-url only"
        )
    return base_url or old_name_value


def sandbox_exchange_overrides(sandbox_url: str, exchange: str = "binance") -> dict[str, Any]:
    """REST base and websocket URLs of a local sandbox of ``exchange`` (each venue's path layout:
    Binance ``/stream/ws``, Bybit ``/v5/public/<category>``, OKX ``/ws/v5``)."""
    from metaexpert.sandbox.venues import client_urls

    base = sandbox_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigurationError(f"--base-url must be http(s)://host:port, got {sandbox_url!r}")
    return {"base_url": base, "websocket_urls": client_urls(str(exchange), base)["ws"]}


async def run_stream(
    expert: Any,
    trade_mode: TradeMode = TradeMode.PAPER,
    *,
    exchange_overrides: dict[str, Any] | None = None,
    config: Any | None = None,
    duration_seconds: float | None = None,
    stop_event: asyncio.Event | None = None,
    clock: Callable[[], int] | None = None,
    on_stale: Callable[[Any], Any] | None = None,
    on_started: Callable[[Any], Any] | None = None,
    initial_capital: float = 10_000.0,
) -> Any:
    """Start ``expert`` (built by its ``RunBuilder``: the risk manager, compliance gate and recorder
    of every mode; an unreachable exchange is retried with backoff) and stream until stopped;
    returns the worker, or None when stopped before the exchange answered."""
    from metaexpert.engine.run_settings import TradingRunSettings
    from metaexpert.engine.streaming import StreamingConfig, StreamingWorker, start_with_backoff

    if trade_mode is TradeMode.BACKTEST:
        raise ConfigurationError("the streaming worker runs paper or live mode")
    builder = expert.builder(trade_mode, TradingRunSettings(initial_capital=initial_capital))
    if exchange_overrides:
        exchange = builder.plan.exchange
        builder.plan.exchange = type(exchange).model_validate(
            {**exchange.model_dump(), **exchange_overrides}
        )
    async with builder.trading() as runtime:
        engine = await start_with_backoff(
            runtime.start, config or StreamingConfig(), stop_event=stop_event
        )
        if engine is None:  # stopped while waiting for the exchange
            return None
        options: dict[str, Any] = {
            "config": config,
            "on_stale": on_stale,
            "persistence": runtime.persistence,
        }
        if clock is not None:
            options["clock"] = clock
        worker = StreamingWorker(
            engine, runtime.broker, runtime.gateway, list(runtime.strategy.symbols), **options
        )
        if on_started is not None:
            on_started(worker)
        await worker.run(duration_seconds=duration_seconds, stop_event=stop_event)
        engine.call(
            expert.handlers.get("deinit"), engine.stop_reason or "stream stopped", name="on_deinit"
        )
        if runtime.persistence is not None:
            runtime.persistence.commit_step_quietly()
        return worker


def stream_command(
    file: Annotated[Path, typer.Argument(help="The expert file (.py).")],
    mode: Annotated[str, typer.Option("--mode", help="paper or live.")] = "paper",
    duration: Annotated[
        float | None, typer.Option("--duration", min=0.1, help="Stop after this many seconds.")
    ] = None,
    max_delay_ms: Annotated[
        int, typer.Option("--max-delay-ms", min=1, help="Flag updates older than this.")
    ] = 2_000,
    max_silence_ms: Annotated[
        int, typer.Option("--max-silence-ms", min=1, help="Flag streams silent this long.")
    ] = 10_000,
    base_url: BaseUrlOption = None,
    sandbox_url: SandboxUrlOption = None,
    clock: Annotated[
        str | None,
        typer.Option(
            "--clock",
            help="Staleness clock: wall (live) or stream (replays); default stream with --base-url.",
        ),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Stream trades and order books to the expert's on_tick / on_book until interrupted."""
    from metaexpert.cli.loader import load_expert
    from metaexpert.engine.streaming import StalenessClock, StreamingConfig

    console = Console(
        highlight=False, emoji=False, markup=False
    )  # plain text: "BTCUSDT:book:" stays as is
    with reported_errors(debug=debug):
        try:
            trade_mode = TradeMode(mode)
        except ValueError:
            raise ConfigurationError(f"--mode must be paper or live, got {mode!r}") from None
        expert = load_expert(file).expert
        url = one_base_url(base_url, sandbox_url)
        try:
            staleness = StalenessClock(clock or ("stream" if url else "wall"))
        except ValueError:
            raise ConfigurationError(f"--clock must be wall or stream, got {clock!r}") from None
        config = StreamingConfig(
            max_event_delay_ms=max_delay_ms,
            max_silence_ms=max_silence_ms,
            staleness_clock=staleness,
        )
        overrides = sandbox_exchange_overrides(url, expert.config.exchange.value) if url else None

        def stale(change: Any) -> None:
            console.print(
                f"{change.stream}: {'STALE' if change.stale else 'fresh'} ({change.reason})"
            )

        async def main() -> Any:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signal_number in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signal_number, stop.set)
            return await run_stream(
                expert,
                trade_mode,
                exchange_overrides=overrides,
                config=config,
                duration_seconds=duration,
                stop_event=stop,
                on_stale=stale,
            )

        worker = asyncio.run(main())
        if worker is None:
            console.print("stopped before the exchange could be reached")
            return
        latency = worker.latency_percentiles()
        statistics = worker.statistics
        console.print(
            f"ticks {statistics.ticks}, books {statistics.books}, stale events {statistics.stale_events}, "
            f"reconnects {worker.reconnects}; tick->on_tick p50 {latency['p50_us']:.1f} us, "
            f"p99 {latency['p99_us']:.1f} us"
        )
