"""Fixtures: a manually stepped loopback Binance sandbox and helpers to run a persisted expert.

The sandbox runs at speed 0 and every runtime step is driven by the test, so each run is
deterministic. Recorders write to a SQLite file in the test's temporary directory (and,
where marked, to PostgreSQL through the storage tests' fixtures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from metaexpert import MetaExpert
from metaexpert.core.enums import TradeMode
from metaexpert.engine.persistence import ExpertRecorder, PersistenceConfig
from metaexpert.engine.runtime import TradingRuntime
from metaexpert.engine.wiring import RunParts
from metaexpert.exchanges import CcxtGateway
from metaexpert.risk import RiskManager
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer
from tests.storage.conftest import postgres_database, postgres_url  # noqa: F401 - re-exported fixtures

KEY, SECRET = "persist-key-" + "c" * 52, "persist-secret-" + "d" * 49


@pytest.fixture
def sandbox():
    """A fresh sandbox per test: venue orders and positions of one test never leak into another."""
    config = SandboxConfig(
        timeframe="1m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=["BTCUSDT"],
        speed=0.0,
        accounts=[
            AccountConfig(
                api_key=KEY,
                secret=SECRET,
                spot_balances={"USDT": 100_000},
                futures_balances={"USDT": 100_000},
            )
        ],
    )
    with SandboxServer(config) as server:
        yield server


def make_expert(sandbox: Any, **settings: Any) -> MetaExpert:
    return MetaExpert(
        exchange="binance",
        base_url=f"http://{sandbox.host}:{sandbox.port}",
        log_to_file=False,
        log_to_console=False,
        **settings,
    )


def open_recorder(
    url: str, directory: Path, mode: TradeMode, name: str = "persisted", **options: Any
) -> ExpertRecorder:
    config = PersistenceConfig(
        storage_url=url,
        journal_directory=directory / f"journal-{name}-{mode.value}",
        flush_interval_ms=20,
        **options,
    )
    return ExpertRecorder.open(config, expert_name=name, trade_mode=mode, exchange="binance")


def make_runtime(
    expert: MetaExpert, mode: TradeMode, recorder: ExpertRecorder | None
) -> TradingRuntime:
    strategy, risk = expert.strategy_config(expert._init_options)
    gateway = CcxtGateway(expert.exchange_config(mode))
    return TradingRuntime(
        handlers=expert.handlers,
        strategy=strategy,
        gateway=gateway,
        trade_mode=mode,
        parts=RunParts(risk=RiskManager(risk), recorder=recorder),
        leverage=risk.leverage,
        market_type=expert.config.market_type,
        position_mode=expert.config.position_mode,
        margin_mode=expert.config.margin_mode
        if expert.config.market_type.value != "spot"
        else None,
        poll_interval=0.0,
    )


async def drive(runtime: TradingRuntime, sandbox: Any, steps: int) -> TradingRuntime:
    """Start the runtime and step it ``steps`` times, one sandbox bar per step; closes the gateway."""
    try:
        await runtime.start()
        for _ in range(steps):
            sandbox.advance(1)
            await runtime.step()
    finally:
        await runtime.gateway.close()
    return runtime
