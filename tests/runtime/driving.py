"""Drive a paper or live run against a loopback sandbox, bar by bar, built by the one builder.

Tests of the live and paper runtime used to wire ``TradingRuntime`` by hand (risk manager,
gateway, margin and position settings), three copies that could drift from what the facade
builds. ``drive`` asks the expert's ``RunBuilder`` for the gateway and the runtime instead, so
a test runs exactly what ``expert.run("live"|"paper")`` runs, only stepped by the test: the
sandbox advances one bar, then the runtime polls once. Nothing is recorded (no recorder).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from metaexpert.core.enums import TradeMode
from metaexpert.engine.run_settings import TradingRunSettings
from metaexpert.engine.runtime import TradingRuntime


async def drive(
    expert: Any,
    sandbox: Any,
    mode: TradeMode,
    steps: int,
    *,
    until: Callable[[TradingRuntime], bool] | None = None,
    simulation: Any | None = None,
    after: Callable[[Any], Awaitable[Any]] | None = None,
    **gateway_options: Any,
) -> tuple[TradingRuntime, Any]:
    """Start the run, then ``steps`` times advance the sandbox one bar and poll (stopping early
    once ``until(runtime)`` holds); ``after(gateway)`` reads what the test needs from the venue
    before the gateway closes. Returns the runtime and what ``after`` returned (or None)."""
    settings = TradingRunSettings(simulation=simulation) if simulation is not None else None
    builder = expert.builder(mode, settings)
    gateway = builder.gateway(**gateway_options)
    runtime = builder.trading_runtime(gateway, None)
    try:
        await runtime.start()
        for _ in range(steps):
            sandbox.advance(1)
            await runtime.step()
            if until is not None and until(runtime):
                break
        venue = await after(gateway) if after is not None else None
    finally:
        await gateway.close()
    return runtime, venue
