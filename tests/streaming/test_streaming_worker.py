"""The streaming worker against the sandbox's websocket replay of real Binance trades and depth."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
import pytest

from metaexpert import MetaExpert
from metaexpert.cli.stream import run_stream, sandbox_exchange_overrides
from metaexpert.engine.streaming import StreamingConfig
from metaexpert.sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.network

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TICKS = DATA / "binance" / "spot" / "ticks"
ALIGNED_START_MS = 1_723_161_000_000  # the sandbox docstring: 5m candles and tick recordings agree


@pytest.fixture(scope="module")
def tick_sandbox():
    if not TICKS.is_dir():
        pytest.skip(f"tick recordings not found at {TICKS}")
    config = SandboxConfig(
        data_dir=DATA,
        timeframe="5m",
        spot_symbols=["BTCUSDT"],
        futures_symbols=[],
        speed=0.0,
        start_time_ms=ALIGNED_START_MS,
        tick_replay=True,
    )
    with SandboxServer(config) as server:
        yield server


def make_expert(sandbox) -> tuple[MetaExpert, dict]:
    expert = MetaExpert(
        exchange="binance",
        market_type="spot",
        log_to_file=False,
        log_to_console=False,
        base_url=f"http://{sandbox.host}:{sandbox.port}",
    )
    seen: dict = {"ticks": [], "books": []}

    @expert.on_init(
        symbol="BTCUSDT", timeframe="5m", lookback_bars=3, size_type="fixed_base", size_value=0.001
    )
    def init(ctx):
        pass

    @expert.on_tick()
    def tick(ctx, tick):
        seen["ticks"].append((tick.timestamp, tick.price, tick.quantity))

    @expert.on_book()
    def book(ctx, book):
        seen["books"].append((book.sequence, book.best_bid, book.best_ask))

    return expert, seen


async def stream_while_replaying(
    sandbox, expert, milliseconds: int, replayed: dict | None = None, **options
):
    started = asyncio.Event()
    stop = asyncio.Event()
    holder = {}

    def on_started(worker):
        holder["worker"] = worker
        started.set()

    async def replay():
        await asyncio.wait_for(started.wait(), 20)
        await asyncio.sleep(0.5)  # subscriptions open
        for _ in range(milliseconds // 250):
            await asyncio.to_thread(sandbox.advance_ticks, 250)
            if replayed is not None:
                replayed["ms"] += 250
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        stop.set()

    replay_task = asyncio.create_task(replay())
    worker = await run_stream(
        expert,
        exchange_overrides=sandbox_exchange_overrides(f"http://{sandbox.host}:{sandbox.port}"),
        stop_event=stop,
        on_started=on_started,
        **options,
    )
    await replay_task
    return worker


def test_stream_with_sandbox_tick_replay_delivers_recorded_trades_and_consistent_books(
    tick_sandbox,
):
    expert, seen = make_expert(tick_sandbox)
    changes = []
    replayed = {"ms": 0}  # the replay runs on its own clock: judge delays against its position
    first_ms = (
        min(
            pl.read_parquet(TICKS / f"BTCUSDT-{name}.parquet", columns=["local_ts_ns"])[
                "local_ts_ns"
            ].min()
            for name in ("trades", "depth-diff", "bookticker")
        )
        // 1_000_000
    )

    def clock() -> int:
        return first_ms + replayed["ms"]

    worker = asyncio.run(
        stream_while_replaying(
            tick_sandbox,
            expert,
            20_000,
            replayed=replayed,
            clock=clock,
            on_stale=changes.append,
            config=StreamingConfig(max_event_delay_ms=5_000, max_silence_ms=60_000),
        )
    )
    ticks = seen["ticks"]
    assert len(ticks) > 50
    trades = pl.read_parquet(TICKS / "BTCUSDT-trades.parquet")
    window = trades.filter(pl.col("trade_time_ms").is_between(ticks[0][0], ticks[-1][0]))
    assert [(t, p) for t, p, _ in ticks] == list(
        zip(window["trade_time_ms"], window["price"], strict=True)
    )
    books = seen["books"]
    assert len(books) > 10
    sequences = [sequence for sequence, _, _ in books]
    assert sequences == sorted(sequences) and worker.statistics.sequence_regressions == 0
    ticker = pl.read_parquet(TICKS / "BTCUSDT-bookticker.parquet").sort("update_id")
    for sequence, bid, ask in books[-5:]:
        reference = ticker.filter(pl.col("update_id") <= sequence).tail(1)
        assert (bid, ask) == (reference["bid"].item(), reference["ask"].item())
    latency = worker.latency_percentiles()
    # Every tick was measured; how fast is the bench's business (bench/), not a busy CI machine's.
    assert latency["count"] == len(ticks) and 0 <= latency["p50_us"] <= latency["p99_us"]
    assert not any(change.stale for change in changes), changes


def test_stream_with_silent_replay_flags_stale_streams(tick_sandbox):
    expert, _ = make_expert(tick_sandbox)
    changes = []
    worker = asyncio.run(
        stream_while_replaying(
            tick_sandbox,
            expert,
            1_000,
            on_stale=changes.append,
            config=StreamingConfig(max_event_delay_ms=None, max_silence_ms=300),
        )
    )
    assert worker.statistics.stale_events >= 1
    assert any(change.stale and "no update" in change.reason for change in changes)


def test_stream_with_compliance_rule_blocks_order_and_records_it(tick_sandbox, tmp_path):
    from metaexpert.core.enums import OrderStatus
    from metaexpert.storage import Database, StateStore

    url = f"sqlite:///{tmp_path / 'stream.sqlite'}"
    expert = MetaExpert(
        exchange="binance",
        market_type="spot",
        log_to_file=False,
        log_to_console=False,
        base_url=f"http://{tick_sandbox.host}:{tick_sandbox.port}",
        storage_url=url,
        journal_dir=str(tmp_path / "journal"),
        jurisdiction="US",
        compliance_config={"jurisdictions": {"US": {"max_order_notional": 10}}},
    )
    placed: list = []

    @expert.on_init(
        symbol="BTCUSDT",
        timeframe="5m",
        lookback_bars=3,
        size_type="fixed_base",
        size_value=0.001,
        strategy_name="streamed",
    )
    def init(ctx):
        pass

    @expert.on_tick()
    def tick(ctx, tick):
        if not placed:
            placed.append(ctx.buy())  # about 60 USDT: above the jurisdiction's 10 USDT limit

    asyncio.run(stream_while_replaying(tick_sandbox, expert, 2_000))
    assert len(placed) == 1
    order = placed[0]
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason.startswith("risk rule compliance:max_order_notional")
    store = StateStore(Database(url))
    try:
        stored = store.orders.get(
            store.experts.find("streamed", trade_mode="paper").expert_id, order.client_order_id
        )
        assert stored is not None and stored.status is OrderStatus.REJECTED, (
            "the streamed run is recorded"
        )
    finally:
        store.database.dispose()
