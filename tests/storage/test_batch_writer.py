from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from metaexpert.core import Order, OrderEvent, OrderSide, OrderType
from metaexpert.storage import (
    BatchWriter,
    BufferFullError,
    StateStore,
    WriteAheadJournal,
    WriterState,
    WriterStoppedError,
    audit_record,
    trade_record,
)
from metaexpert.storage.database import Database
from tests.storage.conftest import fast_settings, plain_url
from tests.storage.tcp_proxy import TcpProxy
from tests.storage.writer_process import submit_until_killed


def _events(count: int, expert_id: int, start: int = 0):  # type: ignore[no-untyped-def]
    return [
        audit_record(expert_id, "order_intent", {"i": index}, timestamp_ms=1_000 + index)
        for index in range(start, start + count)
    ]


def _wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_batch_writer_with_many_records_commits_all_in_batches(
    store: StateStore, expert_id: int, tmp_path: Path
) -> None:
    with BatchWriter(
        store, tmp_path / "journal", flush_interval_ms=20, max_batch_rows=64
    ) as writer:
        writer.submit(_events(300, expert_id))
        order = Order(
            symbol="BTCUSDT", side=OrderSide.BUY, order_type=OrderType.MARKET, quantity=1.0
        )
        order.submit(5)
        writer.submit_event(expert_id, OrderEvent(order, 5))
        writer.flush(timeout=30)
        statistics = writer.statistics()
    assert store.audit.count() == 301
    assert store.orders.get(expert_id, order.client_order_id) is not None
    assert statistics.committed == 302 and statistics.batches >= 5 and statistics.pending == 0
    assert writer.state is WriterState.CLOSED


def test_batch_writer_without_journal_commits_on_flush(store: StateStore, expert_id: int) -> None:
    writer = BatchWriter(store, None, flush_interval_ms=10_000)
    writer.start()
    writer.submit(_events(10, expert_id))
    writer.flush(timeout=10)
    assert store.audit.count() == 10
    writer.close()


def test_batch_writer_with_committed_but_unmarked_records_replays_without_duplicates(
    store: StateStore, expert_id: int, tmp_path: Path
) -> None:
    # A crash after the database commit but before the journal's commit mark.
    journal = WriteAheadJournal(tmp_path / "journal")
    journal.open()
    records = _events(20, expert_id) + [trade_record(expert_id, _trade())]
    for record in records:
        journal.append(record)
    store.apply(records)
    journal.close()
    with BatchWriter(store, tmp_path / "journal") as writer:
        assert writer.statistics().replayed == 21
        writer.flush(timeout=10)
    assert store.audit.count() == 20
    assert len(store.trades.list(expert_id)) == 1


def test_batch_writer_with_record_the_database_refuses_sets_it_aside_and_continues(
    store: StateStore, expert_id: int, tmp_path: Path
) -> None:
    errors: list[BaseException] = []
    bad = audit_record(
        99_999, "order_intent", {}, timestamp_ms=1
    )  # no such expert: foreign key refuses it
    with BatchWriter(store, tmp_path / "journal", on_error=errors.append) as writer:
        writer.submit(_events(5, expert_id) + [bad] + _events(5, expert_id, start=5))
        writer.flush(timeout=10)
        assert writer.statistics().rejected == 1
    assert store.audit.count() == 10
    rejected = (tmp_path / "journal" / "rejected.jsonl").read_text()
    assert bad.uid in rejected and "IntegrityError" in rejected
    assert len(errors) == 1


@pytest.mark.slow
def test_batch_writer_killed_with_sigkill_mid_stream_keeps_every_acknowledged_record(
    store: StateStore, expert_id: int, tmp_path: Path
) -> None:
    journal = tmp_path / "journal"
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=submit_until_killed,
        args=(plain_url(store.database), expert_id, str(journal), "always", sender),
    )
    child.start()
    sender.close()
    acknowledged: list[int] = []
    try:
        while len(acknowledged) < 450:
            assert receiver.poll(30), "the writer process stopped acknowledging"
            acknowledged.append(receiver.recv())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    committed_before_restart = store.audit.count()
    assert committed_before_restart < len(
        acknowledged
    )  # some acknowledged records were only in the journal

    with BatchWriter(store, journal) as writer:
        assert writer.statistics().replayed >= len(acknowledged) - committed_before_restart
        writer.flush(timeout=30)
    counts = Counter(event.payload["i"] for event in store.audit.list(expert_id))
    assert set(acknowledged) <= set(counts)
    assert max(counts.values()) == 1


def test_batch_writer_with_locked_sqlite_buffers_then_flushes_when_unlocked(tmp_path: Path) -> None:
    database = _sqlite(tmp_path)
    store = StateStore(database)
    expert = store.experts.register("locked", trade_mode="paper")
    blocker = _lock(tmp_path)
    writer = BatchWriter(
        store, tmp_path / "journal", flush_interval_ms=10, retry_max_wait_seconds=0.1
    )
    writer.start()
    writer.submit(_events(50, expert))
    _wait_for(lambda: writer.state is WriterState.BUFFERING)
    writer.submit(_events(5, expert, start=50))  # still accepted while buffering
    blocker.rollback()
    blocker.close()
    writer.flush(timeout=20)
    assert writer.state is WriterState.RUNNING
    writer.close()
    assert store.audit.count() == 55
    database.dispose()


def test_batch_writer_with_stop_policy_and_locked_sqlite_stops_and_replays_on_restart(
    tmp_path: Path,
) -> None:
    database = _sqlite(tmp_path)
    store = StateStore(database)
    expert = store.experts.register("locked", trade_mode="paper")
    blocker = _lock(tmp_path)
    errors: list[BaseException] = []
    writer = BatchWriter(
        store,
        tmp_path / "journal",
        flush_interval_ms=10,
        on_database_down="stop",
        on_error=errors.append,
    )
    writer.start()
    writer.submit(_events(20, expert))
    _wait_for(lambda: writer.state is WriterState.STOPPED)
    with pytest.raises(WriterStoppedError, match="database is locked"):
        writer.submit(_events(1, expert, start=20))
    with pytest.raises(WriterStoppedError):
        writer.flush(timeout=1)
    writer.close()
    assert errors and "is unavailable" in str(errors[0])
    blocker.rollback()
    blocker.close()
    with BatchWriter(store, tmp_path / "journal") as restarted:
        assert restarted.statistics().replayed == 20
        restarted.flush(timeout=10)
    assert store.audit.count() == 20
    database.dispose()


def test_batch_writer_with_full_buffer_raises_buffer_full_error(tmp_path: Path) -> None:
    database = _sqlite(tmp_path)
    store = StateStore(database)
    expert = store.experts.register("locked", trade_mode="paper")
    blocker = _lock(tmp_path)
    writer = BatchWriter(
        store, None, flush_interval_ms=10, max_batch_rows=10, max_buffered_records=30
    )
    writer.start()
    writer.submit(_events(30, expert))
    with pytest.raises(BufferFullError, match="buffer full"):
        writer.submit(_events(1, expert))
    blocker.rollback()
    blocker.close()
    writer.flush(timeout=20)
    writer.close()
    database.dispose()


def test_batch_writer_with_invalid_options_raises_value_error(store: StateStore) -> None:
    with pytest.raises(ValueError, match="on_database_down must be 'buffer' or 'stop'"):
        BatchWriter(store, None, on_database_down="ignore")
    with pytest.raises(ValueError, match="flush_interval_ms must be positive"):
        BatchWriter(store, None, flush_interval_ms=0)
    writer = BatchWriter(store, None)
    with pytest.raises(WriterStoppedError, match="call start"):
        writer.submit(_events(1, 1))


def _trade():  # type: ignore[no-untyped-def]
    order = Order(symbol="BTCUSDT", side=OrderSide.BUY, order_type=OrderType.MARKET, quantity=1.0)
    order.submit(1)
    return order.apply_fill(1.0, 100.0, 0.1, "USDT", 2)


def _sqlite(tmp_path: Path) -> Database:
    database = Database(
        settings=fast_settings(
            f"sqlite:///{tmp_path / 'locked.sqlite'}", sqlite_busy_timeout_ms=50, retry_attempts=2
        )
    )
    database.upgrade()
    return database


def _lock(tmp_path: Path) -> sqlite3.Connection:
    blocker = sqlite3.connect(
        tmp_path / "locked.sqlite", isolation_level=None, check_same_thread=False
    )
    blocker.execute("BEGIN EXCLUSIVE")
    return blocker


@pytest.mark.postgres
def test_batch_writer_with_postgresql_down_buffers_then_flushes_when_it_returns(
    postgres_url: str, tmp_path: Path
) -> None:
    database_url = postgres_url
    proxy = TcpProxy("127.0.0.1", 5432)
    proxy.start()
    proxied = database_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    database = Database(settings=fast_settings(proxied))
    database.upgrade()
    store = StateStore(database)
    expert = store.experts.register("outage", trade_mode="live")
    writer = BatchWriter(
        store, tmp_path / "journal", flush_interval_ms=10, retry_max_wait_seconds=0.2
    )
    writer.start()
    try:
        proxy.stop()
        writer.submit(_events(30, expert))
        _wait_for(lambda: writer.state is WriterState.BUFFERING)
        assert "is unavailable" in writer.statistics().last_error
        assert "127.0.0.1" in writer.statistics().last_error
        proxy.start()  # same port: the server is back
        writer.flush(timeout=30)
        assert writer.state is WriterState.RUNNING
    finally:
        writer.close()
        proxy.stop()
    direct = Database(settings=fast_settings(database_url))
    assert StateStore(direct).audit.count() == 30
    direct.dispose()
    database.dispose()


def test_write_with_sqlite_lock_released_during_retries_succeeds(tmp_path: Path) -> None:
    database = Database(
        settings=fast_settings(
            f"sqlite:///{tmp_path / 'locked.sqlite'}",
            sqlite_busy_timeout_ms=20,
            retry_attempts=30,
            retry_initial_wait_seconds=0.02,
            retry_max_wait_seconds=0.1,
        )
    )
    database.upgrade()
    store = StateStore(database)
    expert = store.experts.register("x", trade_mode="paper")
    blocker = _lock(tmp_path)

    def release() -> None:
        time.sleep(0.3)
        blocker.rollback()
        blocker.close()

    releaser = threading.Thread(target=release)
    releaser.start()
    store.audit.append(
        expert, "order_intent", {}, timestamp_ms=1
    )  # retried with backoff until the lock goes
    releaser.join()
    assert store.audit.count() == 1
    database.dispose()
