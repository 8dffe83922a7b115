"""The streaming worker under Prefect: a run you can watch, with a heartbeat in its logs.

``metaexpert stream`` is the long-running process (compose service ``stream``); this flow
runs the same worker (``metaexpert.cli.stream.run_stream``) for ``duration_minutes`` and
reports its health every ``heartbeat_seconds`` as a run log line and a table artifact
(ticks, books, stale streams, reconnects), so the Prefect UI shows whether it is alive and
fresh. Schedule the deployment to start a new run as the previous one ends (or run it once
with a long duration); a crash alerts through the failure hooks like every flow.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from pydantic import Field

from tasks.alerts import FAILURE_HOOKS
from tasks.parameters import document_parameters


def health(worker: Any) -> dict[str, Any]:
    statistics = worker.statistics
    stale = sorted(stream for stream, flag in worker.stale.items() if flag)
    return {
        "ticks": statistics.ticks,
        "books": statistics.books,
        "stale_events": statistics.stale_events,
        "stale_now": ", ".join(stale) or "none",
        "reconnects": worker.reconnects,
        "handler_errors": statistics.handler_errors,
    }


@flow(name="streaming-worker", flow_run_name="stream {expert_file} ({trade_mode})", **FAILURE_HOOKS)
@document_parameters
def stream(
    expert_file: Annotated[
        str, Field(description="The expert's Python file (on_tick / on_book handlers).")
    ],
    trade_mode: Annotated[str, Field(description="paper or live.")] = "paper",
    sandbox_url: Annotated[
        str | None, Field(description="Local sandbox, e.g. http://127.0.0.1:8765.")
    ] = None,
    duration_minutes: Annotated[
        float, Field(gt=0, description="How long this run streams.")
    ] = 60.0,
    heartbeat_seconds: Annotated[
        float, Field(gt=0, description="Seconds between health reports.")
    ] = 60.0,
    clock: Annotated[
        str | None,
        Field(description="Staleness clock: wall or stream (default: stream with a sandbox)."),
    ] = None,
) -> dict[str, Any]:
    """Stream trades and books to the expert, reporting health each heartbeat; returns the last report."""
    from metaexpert.cli.loader import load_expert
    from metaexpert.cli.stream import run_stream, sandbox_exchange_overrides
    from metaexpert.core.enums import TradeMode
    from metaexpert.core.errors import ConfigurationError
    from metaexpert.engine.streaming import StalenessClock, StreamingConfig

    logger = get_run_logger()
    try:
        mode = TradeMode(trade_mode)
        staleness = StalenessClock(clock or ("stream" if sandbox_url else "wall"))
    except ValueError:
        raise ConfigurationError(
            f"trade_mode must be paper or live and clock wall or stream, got {trade_mode!r}, "
            f"{clock!r}"
        ) from None
    expert = load_expert(expert_file).expert
    overrides = sandbox_exchange_overrides(sandbox_url) if sandbox_url else None
    beats: list[dict[str, Any]] = []

    def report(worker: Any) -> None:
        current = health(worker)
        beats.append(current)
        logger.info("heartbeat %d: %s", len(beats), current)
        create_table_artifact(
            key="streaming-worker-health",
            table=[current],
            description=f"Streaming worker health of {expert.name}",
        )

    async def main() -> Any:
        holder: dict[str, Any] = {}

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(heartbeat_seconds)
                if "worker" in holder:
                    report(holder["worker"])

        beating = asyncio.create_task(heartbeat())
        try:
            return await run_stream(
                expert,
                mode,
                exchange_overrides=overrides,
                config=StreamingConfig(staleness_clock=staleness),
                duration_seconds=duration_minutes * 60,
                on_started=lambda worker: holder.__setitem__("worker", worker),
            )
        finally:
            beating.cancel()

    worker = asyncio.run(main())
    if worker is None:
        raise ConfigurationError(
            "the streaming worker stopped before the exchange could be reached"
        )
    report(worker)
    return {"heartbeats": len(beats), **beats[-1]}
