"""Stream supervision: a dead order-book stream raises the degraded flag, then reconnects."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from metaexpert.core.errors import PermanentError
from metaexpert.exchanges import ExchangeUnavailableError, StreamStateChange, StreamSupervisor
from metaexpert.sandbox import AccountConfig, SandboxConfig, SandboxServer
from tests.exchanges.conftest import SANDBOX_KEY, SANDBOX_SECRET, sandbox_gateway


def test_stream_supervisor_with_failures_marks_degraded_and_recovers() -> None:
    script = [
        1,
        ExchangeUnavailableError("socket closed"),
        ExchangeUnavailableError("refused"),
        ExchangeUnavailableError("refused again"),
        2,
        3,
    ]
    received: list[int] = []
    changes: list[StreamStateChange] = []
    sleeps: list[float] = []

    async def watch() -> int:
        if not script:
            raise asyncio.CancelledError
        item = script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    supervisor = StreamSupervisor(
        "book",
        watch,
        received.append,
        on_state_change=changes.append,
        initial_delay=1.0,
        maximum_delay=4.0,
        sleep=fake_sleep,
    )
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(supervisor.run())
    assert received == [1, 2, 3]
    assert [change.degraded for change in changes] == [True, False]
    assert "socket closed" in changes[0].reason
    assert supervisor.reconnects == 3 and not supervisor.degraded
    # A healthy stream that broke reconnects at once; failing again, it backs off exponentially
    # with jitter (the first reconnect used to wait initial_delay: 78 ms of the soak's recovery).
    assert sleeps[0] == 0.0 and 0.5 <= sleeps[1] <= 1.0 and 1.0 <= sleeps[2] <= 2.0


def test_stream_supervisor_with_permanent_error_stops_degraded() -> None:
    async def watch() -> int:
        raise PermanentError("binance watch_order_book: unknown symbol")

    supervisor = StreamSupervisor("book", watch, print)
    with pytest.raises(PermanentError):
        asyncio.run(supervisor.run())
    assert supervisor.degraded


@pytest.fixture(scope="module")
def tick_sandbox() -> Iterator[SandboxServer]:
    config = SandboxConfig(
        spot_symbols=["BTCUSDT"],
        futures_symbols=[],
        timeframe="5m",
        start_time_ms=1723161000000,
        warmup_bars=20,
        tick_replay=True,
        accounts=[AccountConfig(api_key=SANDBOX_KEY, secret=SANDBOX_SECRET)],
    )
    with SandboxServer(config) as server:
        yield server


@pytest.mark.asyncio
@pytest.mark.network
async def test_order_book_stream_with_dropped_websocket_degrades_then_reconnects(
    tick_sandbox,
) -> None:
    changes: list[StreamStateChange] = []
    gateway = sandbox_gateway(tick_sandbox, "spot", on_stream_state_change=changes.append)
    books = []

    async def pump(rounds: int) -> None:
        for _ in range(rounds):
            await asyncio.to_thread(tick_sandbox.advance_ticks, 200)
            await asyncio.sleep(0.02)

    try:
        await gateway.load_markets()
        supervisor = gateway.start_order_book_stream(
            "BTCUSDT", books.append, initial_delay=0.05, maximum_delay=0.2
        )
        await pump(15)
        assert books and books[-1].best_bid is not None and books[-1].best_bid < books[-1].best_ask
        assert not gateway.stream_degraded
        assert await asyncio.to_thread(tick_sandbox.drop_websockets) >= 1
        for _ in range(50):
            await pump(1)
            if changes:
                break
        assert changes and changes[0].degraded
        seen = len(books)
        for _ in range(100):
            await pump(1)
            if not gateway.stream_degraded and len(books) > seen:
                break
        assert not gateway.stream_degraded
        assert [change.degraded for change in changes] == [True, False]
        assert supervisor.reconnects >= 1 and len(books) > seen
        # Trading on bars goes on while the book is down: REST still answers.
        assert (await gateway.fetch_ticker("BTCUSDT")).price > 0
    finally:
        await gateway.close()


@pytest.mark.asyncio
@pytest.mark.network
async def test_watch_methods_with_sandbox_streams_return_core_types(tick_sandbox) -> None:
    from metaexpert.core.enums import OrderSide, OrderStatus, OrderType
    from metaexpert.core.order import Order

    gateway = sandbox_gateway(tick_sandbox, "spot")

    async def replay() -> None:
        while True:
            await asyncio.to_thread(tick_sandbox.advance_ticks, 500)
            await asyncio.to_thread(tick_sandbox.advance, 1)
            await asyncio.sleep(0.05)

    pump = asyncio.create_task(replay())
    try:
        await gateway.load_markets()
        tick = await asyncio.wait_for(gateway.watch_ticker("BTCUSDT"), 5)
        trades = await asyncio.wait_for(gateway.watch_trades("BTCUSDT"), 5)
        bars = await asyncio.wait_for(gateway.watch_ohlcv("BTCUSDT", "5m"), 5)
        assert tick.symbol == "BTCUSDT" and tick.price > 0
        assert trades and all(trade.quantity > 0 for trade in trades)
        assert bars and bars[-1].timeframe == "5m" and bars[-1].high >= bars[-1].low
        placed = Order(
            symbol="BTCUSDT", side=OrderSide.BUY, order_type=OrderType.MARKET, quantity=0.001
        )
        watcher = asyncio.create_task(gateway.watch_orders("BTCUSDT"))
        await asyncio.sleep(0.3)
        await gateway.create_order(placed)
        updates = await asyncio.wait_for(watcher, 5)
        assert any(update is placed for update in updates)  # the tracked order, updated in place
        assert placed.status is OrderStatus.FILLED
    finally:
        pump.cancel()
        await gateway.close()
