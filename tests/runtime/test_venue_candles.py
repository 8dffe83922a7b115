"""Candles from the venue are validated in paper and live mode as a backtest validates a file.

A backtest refuses a file with a negative low before the first order; paper and live runs used
to take the same candle from the venue as warm-up history (and as a new bar) without a check.
The venue here is the loopback sandbox behind the real ccxt gateway; one test gateway wrapper
corrupts the candles it passes on, as a venue (or a broken proxy) would send them.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from metaexpert import MetaExpert
from metaexpert.core.enums import TradeMode
from metaexpert.data.validation import CandleValidationError
from metaexpert.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.network


@pytest.fixture(scope="module")
def sandbox():
    config = SandboxConfig(timeframe="1m", spot_symbols=["BTCUSDT"], futures_symbols=[], speed=0.0)
    with SandboxServer(config) as server:
        yield server


class CorruptingGateway:
    """The real gateway, except that the ``fetch_ohlcv`` answers chosen by ``corrupt`` carry
    a negative low on their newest bar."""

    def __init__(self, gateway, corrupt) -> None:
        self._gateway = gateway
        self._corrupt = corrupt
        self.calls = 0

    def __getattr__(self, name):
        return getattr(self._gateway, name)

    async def fetch_ohlcv(self, symbol, timeframe, **window):
        bars = await self._gateway.fetch_ohlcv(symbol, timeframe, **window)
        self.calls += 1
        if bars and self._corrupt(self.calls):
            bars[-1] = dataclasses.replace(bars[-1], low=-1.0)
        return bars


def _expert(sandbox, seen: list[int]) -> MetaExpert:
    expert = MetaExpert(
        exchange="binance",
        market_type="spot",
        base_url=sandbox.base_url,
        log_to_file=False,
        log_to_console=False,
    )

    @expert.on_init(symbol="BTCUSDT", timeframe="1m", lookback_bars=5)
    def init(ctx):
        pass

    @expert.on_bar("1m")
    def bar(ctx, bars):
        assert bars.last.low > 0
        seen.append(bars.last.timestamp)

    return expert


def _runtime(expert, corrupt):
    builder = expert.builder(TradeMode.PAPER)
    real = builder.gateway()
    gateway = CorruptingGateway(real, corrupt)
    return builder.trading_runtime(gateway, None), real


def test_paper_warmup_with_negative_low_from_venue_is_refused_naming_the_check(sandbox):
    seen: list[int] = []
    runtime, real = _runtime(_expert(sandbox, seen), corrupt=lambda call: call == 1)

    async def start() -> None:
        try:
            await runtime.start()
        finally:
            await real.close()

    with pytest.raises(CandleValidationError) as raised:
        asyncio.run(start())
    message = str(raised.value)
    assert "binance/spot BTCUSDT 1m from the venue" in message
    assert "low" in message and "greater_than(0)" in message
    assert seen == []


def test_paper_step_with_malformed_new_bar_skips_it_then_takes_the_good_one(sandbox):
    seen: list[int] = []
    runtime, real = _runtime(_expert(sandbox, seen), corrupt=lambda call: call == 2)

    async def go() -> None:
        try:
            await runtime.start()
            sandbox.advance(1)
            await runtime.step()  # the second fetch: its new bar has a negative low
            assert seen == []
            await runtime.step()  # the venue answers again, valid this time
        finally:
            await real.close()

    asyncio.run(go())
    assert len(seen) == 1
    engine = runtime.engine
    assert engine is not None and engine.failures.total == 1
    assert any("from the venue" in line for line in engine.failures.lines())
