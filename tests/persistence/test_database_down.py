"""The database goes away while an expert trades (PostgreSQL behind a loopback TCP proxy).

``on_database_down="buffer"``: trading goes on, the BatchWriter buffers (and journals)
every record, and everything lands once the database is back. ``"stop"``: the expert
stops safely at the end of the step in which the writer gave up.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from metaexpert.core.enums import TradeMode
from metaexpert.engine.engine import StopRun
from metaexpert.storage import WriterState
from tests.persistence.conftest import make_expert, make_runtime, open_recorder
from tests.storage.packet_drop import packets_dropped, require_packet_drop
from tests.storage.private_postgres import private_server
from tests.storage.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.network, pytest.mark.postgres]

FAST = {
    "retry_attempts": 2,
    "retry_initial_wait_seconds": 0.01,
    "retry_max_wait_seconds": 0.05,
    "connect_timeout_seconds": 1,
}


def _busy_expert(sandbox):
    """Buys on odd bars and sells on even ones: every step produces records."""
    expert = make_expert(sandbox, market_type="spot")

    @expert.on_init(
        symbol="BTCUSDT", timeframe="1m", lookback_bars=5, size_type="fixed_base", size_value=0.01
    )
    def init(ctx):
        pass

    @expert.on_bar(timeframe="1m")
    def bar(ctx, bars):
        ctx.state["bars"] = ctx.state.get("bars", 0) + 1
        ctx.close() if ctx.position() is not None else ctx.buy()

    return expert


@pytest.fixture
def proxied_url(postgres_url):
    proxy = TcpProxy("127.0.0.1", 5432)
    proxy.start()
    try:
        yield proxy, postgres_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/", 1)
    finally:
        proxy.stop()


def _assert_next_start_writes_the_journal(recorder, runtime, url, tmp_path) -> None:
    """The records of the outage wait in the journal: the next start writes them."""
    again = open_recorder(
        url, tmp_path, TradeMode.PAPER, on_database_down="stop", storage_settings=FAST
    )
    assert again.writer.journal.directory == recorder.writer.journal.directory
    stored = {t.trade_id for t in again.store.trades.list(again.expert_id)}
    assert stored == {t.trade_id for t in runtime.engine.fills}
    again.close()


def _wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def _step_until_stopped(runtime, sandbox, recorder, outage) -> tuple[float | None, int]:
    """One step, then steps paced 0.25 s apart inside ``outage()`` until the expert stops
    (``StopRun``) or 120 s pass (a hang, not a pace): the writer's time decides, not the test's
    speed. Returns the seconds into the outage at which it stopped (None: never) and the steps."""
    stopped_after: float | None = None
    steps = 0

    async def scenario():
        nonlocal stopped_after, steps
        await runtime.start()
        sandbox.advance(1)
        await runtime.step()
        recorder.flush(10)
        with outage():
            started = time.monotonic()
            try:
                while time.monotonic() - started < 120:
                    sandbox.advance(1)
                    await runtime.step()
                    steps += 1
                    await asyncio.sleep(0.25)
            except StopRun:
                stopped_after = time.monotonic() - started
            finally:
                await runtime.gateway.close()

    asyncio.run(scenario())
    return stopped_after, steps


def test_database_down_with_buffer_policy_keeps_trading_and_flushes_later(
    sandbox, tmp_path, proxied_url
):
    proxy, url = proxied_url
    recorder = open_recorder(
        url, tmp_path, TradeMode.PAPER, on_database_down="buffer", storage_settings=FAST
    )
    runtime = make_runtime(_busy_expert(sandbox), TradeMode.PAPER, recorder)

    async def scenario():
        await runtime.start()
        sandbox.advance(1)
        await runtime.step()
        recorder.flush(10)
        proxy.stop()  # the database goes away
        for _ in range(4):
            sandbox.advance(1)
            await runtime.step()
            await asyncio.sleep(0.05)
        assert _wait_for(lambda: recorder.writer.state is WriterState.BUFFERING), (
            recorder.writer.statistics()
        )
        assert not runtime.engine.stopped
        await runtime.gateway.close()

    asyncio.run(scenario())
    engine = runtime.engine
    assert len(engine.fills) >= 3, "trading must go on while the database is down"
    proxy.start()  # back on the same port
    recorder.flush(20)
    assert recorder.writer.state is WriterState.RUNNING
    store, eid = recorder.store, recorder.expert_id
    stored = {t.trade_id for t in store.trades.list(eid)}
    assert stored == {t.trade_id for t in engine.fills}
    for order in engine.orders:
        assert store.orders.get(eid, order.client_order_id).status is order.status
    assert store.state.get(eid, "bars") == engine.context.state["bars"]
    recorder.close()


def test_database_down_with_stop_policy_stops_the_expert_safely(sandbox, tmp_path, proxied_url):
    proxy, url = proxied_url
    recorder = open_recorder(
        url, tmp_path, TradeMode.PAPER, on_database_down="stop", storage_settings=FAST
    )
    runtime = make_runtime(_busy_expert(sandbox), TradeMode.PAPER, recorder)
    steps_after_outage = 0

    async def scenario():
        nonlocal steps_after_outage
        await runtime.start()
        sandbox.advance(1)
        await runtime.step()
        recorder.flush(10)
        proxy.stop()
        try:
            for _ in range(40):
                sandbox.advance(1)
                await runtime.step()
                steps_after_outage += 1
                await asyncio.sleep(0.05)
        except StopRun:
            pass
        finally:
            await runtime.gateway.close()

    asyncio.run(scenario())
    assert runtime.engine.stopped and "persistence stopped" in runtime.engine.stop_reason
    assert recorder.writer.state is WriterState.STOPPED
    assert steps_after_outage < 40, "the expert must stop, not trade on without records"
    recorder.close()
    proxy.start()
    _assert_next_start_writes_the_journal(recorder, runtime, url, tmp_path)


def test_database_partition_with_packets_dropped_stops_the_expert(sandbox, tmp_path, proxied_url):
    # Issue 15: with packets dropped (not refused) nothing was logged, ``on_database_down="stop"``
    # never fired, and the run traded 14 more bars. The partition is real: iptables drops every
    # packet of the proxy's port while the expert keeps stepping; the steps are paced (0.25 s)
    # so that the writer's time, not the test's speed, decides. 120 s is a hang, not a pace.
    require_packet_drop()
    proxy, url = proxied_url
    recorder = open_recorder(
        url, tmp_path, TradeMode.PAPER, on_database_down="stop", storage_settings=FAST
    )
    runtime = make_runtime(_busy_expert(sandbox), TradeMode.PAPER, recorder)
    detected_after, steps = _step_until_stopped(
        runtime, sandbox, recorder, lambda: packets_dropped(proxy.port)
    )
    print(f"\npartition detected after {detected_after} s and {steps} steps")
    assert runtime.engine.stopped and "persistence stopped" in runtime.engine.stop_reason
    assert recorder.writer.state is WriterState.STOPPED
    assert detected_after is not None, "the expert traded on through the partition"
    recorder.close()
    _assert_next_start_writes_the_journal(recorder, runtime, url, tmp_path)  # healed


def test_database_server_stopped_with_sigstop_stops_the_expert(sandbox, tmp_path):
    # Issue 15: a PostgreSQL whose processes stop (not a dropped network) kept TCP alive, so
    # the writer waited forever: nothing logged, ``on_database_down="stop"`` never fired.
    # The server is a private one, every process of it SIGSTOPped; paced steps as above.
    with private_server() as server:
        recorder = open_recorder(
            server.url, tmp_path, TradeMode.PAPER, on_database_down="stop", storage_settings=FAST
        )
        runtime = make_runtime(_busy_expert(sandbox), TradeMode.PAPER, recorder)
        detected_after, _steps = _step_until_stopped(runtime, sandbox, recorder, server.frozen)
        print(f"\nstopped server detected after {detected_after} s")
        assert detected_after is not None, "the expert traded on while the database was stopped"
        assert runtime.engine.stopped and "persistence stopped" in runtime.engine.stop_reason
        assert recorder.writer.state is WriterState.STOPPED
        recorder.close()
        _assert_next_start_writes_the_journal(recorder, runtime, server.url, tmp_path)  # resumed
