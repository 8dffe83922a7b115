"""``metaexpert stream FILE``: the streaming worker (trades -> on_tick, order book -> on_book).

A long-running process next to the cron-driven evaluations: it starts the expert in paper
(default) or live mode, then keeps websocket subscriptions through the gateway until
interrupted or ``--duration`` elapses, and prints tick-to-handler latency at the end.
``--sandbox-url`` points REST and websockets at a local ``metaexpert sandbox``.
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
from metaexpert.core.enums import MarketType, TradeMode
from metaexpert.core.errors import ConfigurationError

__all__ = ["run_stream", "sandbox_exchange_overrides", "stream_command"]


def sandbox_exchange_overrides(sandbox_url: str) -> dict[str, Any]:
    """REST base and websocket URLs of a local sandbox (its Binance path layout)."""
    base = sandbox_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ConfigurationError(f"--sandbox-url must be http(s)://host:port, got {sandbox_url!r}")
    ws = "ws" + base[len("http"):]
    return {"base_url": base, "websocket_urls": {
        "spot": f"{ws}/stream/ws", "margin": f"{ws}/stream/ws", "linear": f"{ws}/fstream/ws",
        "ws-api": {"spot": f"{ws}/ws-api/v3", "linear": f"{ws}/ws-fapi/v1"}}}


async def run_stream(expert: Any, trade_mode: TradeMode = TradeMode.PAPER, *,
                     exchange_overrides: dict[str, Any] | None = None, config: Any | None = None,
                     duration_seconds: float | None = None, stop_event: asyncio.Event | None = None,
                     clock: Callable[[], int] | None = None, on_stale: Callable[[Any], Any] | None = None,
                     on_started: Callable[[Any], Any] | None = None, initial_capital: float = 10_000.0) -> Any:
    """Start ``expert`` (``TradingRuntime.start``) and stream until stopped; returns the worker."""
    from metaexpert.engine.runtime import TradingRuntime
    from metaexpert.engine.streaming import StreamingConfig, StreamingWorker, start_with_backoff
    from metaexpert.exchanges import CcxtGateway, ExchangeConfig
    from metaexpert.risk import RiskManager

    if trade_mode is TradeMode.BACKTEST:
        raise ConfigurationError("the streaming worker runs paper or live mode")
    strategy, risk_config = expert.settings_for(trade_mode)
    exchange = expert.exchange_config(trade_mode)
    if exchange_overrides:
        exchange = ExchangeConfig.model_validate({**exchange.model_dump(), **exchange_overrides})
    notifier = expert.notifier()
    gateway = CcxtGateway(exchange)
    try:
        runtime = TradingRuntime(
            handlers=expert.handlers, strategy=strategy, gateway=gateway, trade_mode=trade_mode,
            risk=RiskManager(risk_config, notifier=notifier), notifier=notifier, initial_capital=initial_capital,
            leverage=risk_config.leverage, market_type=expert.config.market_type,
            position_mode=expert.config.position_mode,
            margin_mode=expert.config.margin_mode if expert.config.market_type is not MarketType.SPOT else None)
        engine = await start_with_backoff(runtime.start, config or StreamingConfig(), stop_event=stop_event)
        if engine is None:  # stopped while waiting for the exchange
            return None
        options: dict[str, Any] = {"config": config, "on_stale": on_stale}
        if clock is not None:
            options["clock"] = clock
        worker = StreamingWorker(engine, runtime.broker, gateway, list(strategy.symbols), **options)
        if on_started is not None:
            on_started(worker)
        await worker.run(duration_seconds=duration_seconds, stop_event=stop_event)
        engine.call(expert.handlers.get("deinit"), engine.stop_reason or "stream stopped", name="on_deinit")
        return worker
    finally:
        await gateway.close()


def stream_command(
    file: Annotated[Path, typer.Argument(help="The expert file (.py).")],
    mode: Annotated[str, typer.Option("--mode", help="paper or live.")] = "paper",
    duration: Annotated[float | None, typer.Option("--duration", min=0.1, help="Stop after this many seconds.")] = None,
    max_delay_ms: Annotated[int, typer.Option("--max-delay-ms", min=1, help="Flag updates older than this.")] = 2_000,
    max_silence_ms: Annotated[int, typer.Option("--max-silence-ms", min=1, help="Flag streams silent this long.")] = 10_000,
    sandbox_url: Annotated[str | None, typer.Option("--sandbox-url", help="Local sandbox, e.g. http://127.0.0.1:8765.")] = None,
    clock: Annotated[str | None, typer.Option(
        "--clock", help="Staleness clock: wall (live) or stream (replays); default stream with --sandbox-url.")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Stream trades and order books to the expert's on_tick / on_book until interrupted."""
    from metaexpert.cli.loader import load_expert
    from metaexpert.engine.streaming import StalenessClock, StreamingConfig

    console = Console(highlight=False, emoji=False, markup=False)  # plain text: "BTCUSDT:book:" stays as is
    with reported_errors(debug=debug):
        try:
            trade_mode = TradeMode(mode)
        except ValueError:
            raise ConfigurationError(f"--mode must be paper or live, got {mode!r}") from None
        expert = load_expert(file).expert
        try:
            staleness = StalenessClock(clock or ("stream" if sandbox_url else "wall"))
        except ValueError:
            raise ConfigurationError(f"--clock must be wall or stream, got {clock!r}") from None
        config = StreamingConfig(max_event_delay_ms=max_delay_ms, max_silence_ms=max_silence_ms,
                                 staleness_clock=staleness)
        overrides = sandbox_exchange_overrides(sandbox_url) if sandbox_url else None

        def stale(change: Any) -> None:
            console.print(f"{change.stream}: {'STALE' if change.stale else 'fresh'} ({change.reason})")

        async def main() -> Any:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signal_number in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signal_number, stop.set)
            return await run_stream(expert, trade_mode, exchange_overrides=overrides, config=config,
                                    duration_seconds=duration, stop_event=stop, on_stale=stale)

        worker = asyncio.run(main())
        if worker is None:
            console.print("stopped before the exchange could be reached")
            return
        latency = worker.latency_percentiles()
        statistics = worker.statistics
        console.print(f"ticks {statistics.ticks}, books {statistics.books}, stale events {statistics.stale_events}, "
                      f"reconnects {worker.reconnects}; tick->on_tick p50 {latency['p50_us']:.1f} us, "
                      f"p99 {latency['p99_us']:.1f} us")
