"""Sustained insert rate of fills and audit events, on SQLite and PostgreSQL.

Run: ``.venv/bin/python -m bench.bench_storage [--rows 20000] [--backend both]``.

Three write paths are measured per backend and record kind:
* ``batched``: ``BatchWriter`` with its journal (fsync per flush cycle), the path the
  engine uses in paper and live mode; the rate counts until everything is committed;
* ``bulk``: ``StateStore.apply`` with 500 records per transaction (no journal);
* ``single``: one transaction per record (what a naive engine would do), fewer rows.
PostgreSQL runs in a scratch schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from metaexpert.core import Order, OrderSide, OrderType, Trade
from metaexpert.storage import (
    BatchWriter,
    Database,
    StateStore,
    StorageRecord,
    audit_record,
    trade_record,
)

POSTGRES_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def _trade(index: int) -> Trade:
    order = Order(
        symbol="BTCUSDT",
        side=OrderSide.BUY,
        order_type=OrderType.MARKET,
        quantity=1.0,
        client_order_id=f"bench-{index}",
    )
    order.submit(index)
    return order.apply_fill(
        1.0,
        40_000.0 + index % 100,
        0.04,
        "USDT",
        1_700_000_000_000 + index,
        trade_id=f"t-{uuid.uuid4().hex}",
    )


def _records(kind: str, expert_id: int, count: int) -> list[StorageRecord]:
    if kind == "fills":
        return [trade_record(expert_id, _trade(index)) for index in range(count)]
    return [
        audit_record(
            expert_id,
            "order_intent",
            {"symbol": "BTCUSDT", "quantity": 1.0, "i": index},
            timestamp_ms=1_700_000_000_000 + index,
            client_order_id=f"bench-{index}",
        )
        for index in range(count)
    ]


@contextmanager
def _database(backend: str) -> Iterator[Database]:
    if backend == "sqlite":
        directory = Path(tempfile.mkdtemp(prefix="bench-storage-"))
        database = Database(f"sqlite:///{directory / 'bench.sqlite'}")
        try:
            database.upgrade()
            yield database
        finally:
            database.dispose()
            shutil.rmtree(directory)
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    database = Database(
        f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    )
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _timed(action: Callable[[], None], rows: int) -> float:
    started = time.perf_counter()
    action()
    return rows / (time.perf_counter() - started)


def _batched(store: StateStore, records: list[StorageRecord]) -> None:
    journal = Path(tempfile.mkdtemp(prefix="bench-journal-"))
    try:
        with BatchWriter(
            store, journal, flush_interval_ms=50, max_batch_rows=1_000, fsync="batch"
        ) as writer:
            for record in records:
                writer.submit(record)
            writer.flush(timeout=600)
    finally:
        shutil.rmtree(journal)


def _bulk(store: StateStore, records: list[StorageRecord]) -> None:
    for start in range(0, len(records), 500):
        store.apply(records[start : start + 500])


def _single(store: StateStore, records: list[StorageRecord]) -> None:
    for record in records:
        store.apply([record])


def submit_latency(store: StateStore, records: list[StorageRecord], fsync: str) -> float:
    """Mean microseconds a trading thread spends in ``BatchWriter.submit`` (the hot-path cost)."""
    journal = Path(tempfile.mkdtemp(prefix="bench-journal-"))
    try:
        with BatchWriter(
            store, journal, flush_interval_ms=50, max_batch_rows=1_000, fsync=fsync
        ) as writer:
            spent = 0.0
            for record in records:
                started = time.perf_counter()
                writer.submit(record)
                spent += time.perf_counter() - started
            writer.flush(timeout=600)
    finally:
        shutil.rmtree(journal)
    return spent / len(records) * 1e6


def run(backend: str, rows: int, single_rows: int) -> list[tuple[str, str, str, float]]:
    results = []
    for kind in ("fills", "audit"):
        with _database(backend) as database:
            store = StateStore(database)
            expert_id = store.experts.register("bench", trade_mode="paper")
            for path, writer, count in (
                ("batched", _batched, rows),
                ("bulk", _bulk, rows),
                ("single", _single, single_rows),
            ):
                records = _records(kind, expert_id, count)
                rate = _timed(functools.partial(writer, store, records), count)
                results.append((backend, kind, path, rate))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--single-rows", type=int, default=500)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    arguments = parser.parse_args()
    backends = ["sqlite", "postgresql"] if arguments.backend == "both" else [arguments.backend]
    print(f"{'backend':<11} {'records':<7} {'path':<8} {'rows/s':>10}")
    for backend in backends:
        for name, kind, path, rate in run(backend, arguments.rows, arguments.single_rows):
            print(f"{name:<11} {kind:<7} {path:<8} {rate:>10,.0f}", flush=True)
    print()
    print("BatchWriter.submit latency on the trading thread (SQLite, audit events):")
    with _database("sqlite") as database:
        store = StateStore(database)
        expert_id = store.experts.register("bench", trade_mode="paper")
        for fsync in ("never", "batch", "always"):
            records = _records("audit", expert_id, min(arguments.rows, 5_000))
            print(
                f"  fsync={fsync:<7} {submit_latency(store, records, fsync):8.1f} us per record",
                flush=True,
            )


if __name__ == "__main__":
    main()
